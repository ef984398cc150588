extension Architecture {
    /// Llama 2/3.x, SmolLM2, TinyLlama, Mistral: pre-norm blocks, SwiGLU, RoPE on adjacent pairs.
    public static let llama = Architecture(names: ["llama", "mistral"])
}
