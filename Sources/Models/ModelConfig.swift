import ModelFile

/// Hyper-parameters of a decoder model, all read from GGUF metadata (`{arch}.*` keys) for any registered
/// family (`Architecture.registry`: llama/mistral, gemma3, qwen2, qwen3, phi3).
public struct ModelConfig: Codable, Sendable, Equatable {
    public var architecture: String
    public var dim: Int  // embedding width
    public var layers: Int
    public var heads: Int  // query heads
    public var kvHeads: Int  // key/value heads (grouped-query attention when < heads)
    public var headDim: Int
    public var ffnDim: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var ropeBase: Double
    public var rmsEps: Float
    /// The sliding window of windowed layers in tokens (`attention.sliding_window`; nil: every layer global).
    public var slidingWindow: Int?
    /// Layers that attend through `slidingWindow` (empty: none).
    public var windowedLayers: [Int]?
    /// RoPE base of the windowed layers, where it differs from `ropeBase`.
    public var localRopeBase: Double?
    /// Positions are multiplied by this before RoPE (`rope.scaling.type = linear`: 1 / `rope.scaling.factor`).
    public var ropePositionScale: Double?

    /// Whether layer `l` attends through the sliding window, and the window.
    public func window(layer l: Int) -> Int? {
        guard let w = slidingWindow, windowedLayers?.contains(l) ?? false else { return nil }
        return w
    }

    public init(
        dim: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int, ffnDim: Int, vocabSize: Int,
        contextLength: Int, ropeBase: Double, rmsEps: Float, architecture: String = "llama"
    ) {
        self.architecture = architecture
        self.dim = dim; self.layers = layers; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.ffnDim = ffnDim; self.vocabSize = vocabSize; self.contextLength = contextLength
        self.ropeBase = ropeBase; self.rmsEps = rmsEps
    }

    public init(gguf: GGUFFile) throws {
        let family = try Architecture.of(gguf)
        let arch = try gguf.string("general.architecture")
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
        if let w = try gguf.optionalInt("\(arch).attention.sliding_window") {
            guard w >= 1, w <= 1 << 24 else { throw GGUFError.badMetadata(key: "\(arch).attention.sliding_window", reason: "\(w) is outside 1...\(1 << 24)") }
            let layersIn = (0..<layers).filter { family.slidingLayer?($0) ?? true }
            if !layersIn.isEmpty { slidingWindow = w; windowedLayers = layersIn }
            if family.localRopeBase != nil && !layersIn.isEmpty { localRopeBase = family.localRopeBase }
        }
        if let kind = gguf.metadata["\(arch).rope.scaling.type"]?.string, kind != "none" {
            guard kind == "linear" else {
                throw GGUFError.badMetadata(
                    key: "\(arch).rope.scaling.type",
                    reason: "'\(kind)' is not supported (supported: none, linear; Llama 3.1's scaling comes as the rope_freqs tensor)")
            }
            if kind == "linear", let f = try gguf.optionalDouble("\(arch).rope.scaling.factor"), f != 1 {
                guard f > 0 else { throw GGUFError.badMetadata(key: "\(arch).rope.scaling.factor", reason: "\(f) is not positive") }
                ropePositionScale = 1 / f
            }
        }
        guard eps > 0, eps < 1 else {
            throw GGUFError.badMetadata(key: "\(arch).attention.layer_norm_rms_epsilon", reason: "\(eps) is not a small positive number")
        }
        guard ropeBase > 0 else { throw GGUFError.badMetadata(key: "\(arch).rope.freq_base", reason: "\(ropeBase) is not positive") }
        guard dim > 0, layers > 0, heads > 0, kvHeads > 0, headDim > 0, headDim % 2 == 0, ffnDim > 0, vocabSize > 0,
            heads % kvHeads == 0, contextLength > 0
        else {
            throw GGUFError.badMetadata(key: "\(arch).*", reason: "inconsistent sizes (dim \(dim), heads \(heads)/\(kvHeads), head size \(headDim))")
        }
    }
}
