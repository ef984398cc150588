import ModelFile

/// Hyper-parameters of a Llama-family model, all read from GGUF metadata (`{arch}.*` keys), so any
/// Llama-shaped GGUF (SmolLM2, Llama 3.2, TinyLlama) loads without code changes.
public struct LlamaConfig: Codable, Sendable, Equatable {
    public var architecture: String
    public var dim: Int            // embedding width
    public var layers: Int
    public var heads: Int          // query heads
    public var kvHeads: Int        // key/value heads (grouped-query attention when < heads)
    public var headDim: Int
    public var ffnDim: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var ropeBase: Double
    public var rmsEps: Float

    /// Architectures whose GGUF tensors follow llama.cpp's `LLM_ARCH_LLAMA` naming and math.
    public static let supportedArchitectures: Set<String> = ["llama", "mistral"]

    public init(dim: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, ffnDim: Int, vocabSize: Int,
                contextLength: Int, ropeBase: Double, rmsEps: Float, architecture: String = "llama") {
        self.architecture = architecture
        self.dim = dim; self.layers = layers; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.ffnDim = ffnDim; self.vocabSize = vocabSize; self.contextLength = contextLength
        self.ropeBase = ropeBase; self.rmsEps = rmsEps
    }

    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string("general.architecture")
        guard Self.supportedArchitectures.contains(arch) else {
            throw GGUFError.badMetadata(key: "general.architecture", reason: "'\(arch)' is not a Llama-family model (supported: \(Self.supportedArchitectures.sorted().joined(separator: ", ")))")
        }
        architecture = arch
        dim = try gguf.int("\(arch).embedding_length")
        layers = try gguf.int("\(arch).block_count")
        heads = try gguf.int("\(arch).attention.head_count")
        // Optional keys take their default only when absent: a present key of the wrong type is an error.
        kvHeads = try gguf.optionalInt("\(arch).attention.head_count_kv") ?? heads
        headDim = try gguf.optionalInt("\(arch).attention.key_length") ?? (heads > 0 ? dim / heads : 0)
        ffnDim = try gguf.int("\(arch).feed_forward_length")
        contextLength = try gguf.optionalInt("\(arch).context_length") ?? 2048
        ropeBase = try gguf.optionalDouble("\(arch).rope.freq_base") ?? 10_000
        let eps = try gguf.optionalDouble("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5
        rmsEps = Float(eps)
        vocabSize = try gguf.optionalInt("\(arch).vocab_size") ?? gguf.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        // Sizes beyond these are corrupt files, not models (the largest released models are far below).
        let limits: [(String, Int, ClosedRange<Int>)] = [
            ("embedding_length", dim, 1...1 << 17), ("block_count", layers, 1...1024), ("attention.head_count", heads, 1...1024),
            ("attention.head_count_kv", kvHeads, 1...1024), ("attention.key_length", headDim, 1...4096),
            ("feed_forward_length", ffnDim, 1...1 << 20), ("vocab_size", vocabSize, 1...1 << 24), ("context_length", contextLength, 1...1 << 24),
        ]
        for (key, v, range) in limits where !range.contains(v) {
            throw GGUFError.badMetadata(key: "\(arch).\(key)", reason: "\(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        guard eps > 0, eps < 1 else { throw GGUFError.badMetadata(key: "\(arch).attention.layer_norm_rms_epsilon", reason: "\(eps) is not a small positive number") }
        guard ropeBase > 0 else { throw GGUFError.badMetadata(key: "\(arch).rope.freq_base", reason: "\(ropeBase) is not positive") }
        guard dim > 0, layers > 0, heads > 0, kvHeads > 0, headDim > 0, headDim % 2 == 0, ffnDim > 0, vocabSize > 0,
              heads % kvHeads == 0, contextLength > 0 else {
            throw GGUFError.badMetadata(key: "\(arch).*", reason: "inconsistent sizes (dim \(dim), heads \(heads)/\(kvHeads), head size \(headDim))")
        }
    }
}
