extension Architecture {
    /// Qwen 2 / 2.5 (llama.cpp's `qwen2`): the Llama block with biases on Q, K and V, NEOX RoPE.
    public static let qwen2: Architecture = {
        var a = Architecture(names: ["qwen2"])
        a.ropePairs = .halves
        a.qkvBias = true
        return a
    }()

    /// Qwen 3 (llama.cpp's `qwen3`): the Llama block with per-head RMS QK norm, NEOX RoPE, no biases.
    public static let qwen3: Architecture = {
        var a = Architecture(names: ["qwen3"])
        a.ropePairs = .halves
        a.qkNorm = true
        return a
    }()
}
