extension Architecture {
    /// Phi-3 / Phi-3.5 (llama.cpp's `phi3`): the Llama block with Q, K and V in one fused matrix
    /// (`attn_qkv`) and the gate and up projections in one (`ffn_up`, gate rows first), NEOX RoPE. The
    /// fused matrices are read as row ranges of the one tensor (`DecoderModel`'s tensor map), without a
    /// copy. llama.cpp turns Phi-3's sliding window off ("Phi SWA is currently disabled"), and so does
    /// KVKit, to compute what it computes; the 128k variants' LongRoPE factor tensors are refused by name.
    public static let phi3: Architecture = {
        var a = Architecture(names: ["phi3"])
        a.ropePairs = .halves
        a.slidingLayer = { _ in false }
        return a
    }()
}
