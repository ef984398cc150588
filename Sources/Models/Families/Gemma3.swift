extension Architecture {
    /// Gemma 3 (llama.cpp's `gemma3`): embeddings × √dim, RMS norms before and after attention and MLP,
    /// per-head QK norm, GeGLU (tanh GELU), NEOX RoPE; layer l is global iff l % 6 == 5 (RoPE base
    /// `rope.freq_base`), the others attend through a window of `attention.sliding_window` tokens with RoPE
    /// base 10,000. The converter already folded Gemma's "1 + w" into the norm weights.
    public static let gemma3: Architecture = {
        var a = Architecture(names: ["gemma3"])
        a.ropePairs = .halves
        a.activation = .geluTanh
        a.scalesEmbedding = true
        a.qkNorm = true
        a.postNorms = true
        a.slidingLayer = { $0 % 6 != 5 }
        a.localRopeBase = 10_000
        return a
    }()
}
