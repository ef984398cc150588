import Policies

/// What one policy × budget kept of one case, and how it answered. One line of `results.jsonl`.
public struct VariantResult: Codable, Sendable, Equatable {
    public var caseId: String
    public var probe: String
    public var length: Int
    public var depth: Double
    public var sample: Int
    public var policy: String
    public var budget: String
    /// The codec of the variant's full pages (`fp32`: not quantized).
    public var quant: String
    public var queryAware: Bool
    /// The case's score: a single turn's score (fraction of expected values found in the answer), or for
    /// several turns 1 only when all are right (multi-query "all k found", multi-hop "whole chain").
    public var score: Double
    public var turnScores: [Double]
    public var answers: [String]
    /// Fraction of needle tokens still cached, averaged over needles, layers and KV heads; nil (JSON
    /// null) for a case without needle spans, where nothing was measured.
    @ExplicitNull public var needleSurvival: Double?
    /// Per needle label (per hop for multi-hop), averaged over layers and heads.
    public var survivalByNeedle: [String: Double]
    /// [layer] averaged over heads and needles; [layer][head] averaged over needles (empty without needles).
    public var survivalByLayer: [Double]
    public var survivalByLayerHead: [[Double]]
    /// KL(full ‖ compressed) of the first answer token's distribution (nats).
    public var firstTokenKL: Double
    /// Per layer: cosine between the compressed and full-cache attention outputs at the question tokens
    /// (query-aware mode: at the first answer token), all heads together.
    public var attentionCosineByLayer: [Double]
    /// Per layer: ‖compressed − full‖ / ‖full‖ of the same attention outputs.
    public var attentionRelativeErrorByLayer: [Double]
    public var contextTokens: Int
    public var keptSlots: Int
    public var liveBytes: Int
    public var fullLiveBytes: Int
    /// K/V bytes the prompt's sliding-window layers freed because no later token could attend to them
    /// (Gemma 3's local layers; 0 for a model without windows; nil in results written before it existed).
    public var windowFreedBytes: Int?
    /// Live bytes of the full cache over this variant's.
    public var compressionRatio: Double
    /// K/V data bytes as stored after compression (codes, scales, zero points, Float32 residual, compressed
    /// cold payloads; no slot metadata), and the full cache's fp16 K/V bytes over them.
    public var kvDataBytes: Int
    public var ratioVsFP16: Double
    /// Of `kvDataBytes`: hot (in the pool) and cold (LZ4, memory or file), and the cold data uncompressed.
    public var hotBytes: Int
    public var coldBytes: Int
    public var coldUncompressedBytes: Int
    /// Share of the cache's pages that attention read after compression, over every block of the turns:
    /// 1 for dense attention, the pages a read-side policy (quest) chose otherwise. Bytes read per step
    /// ≈ readFraction × liveBytes.
    public var readFraction: Double
    /// Compressions while answering, after the one after the prompt (`--compress-every`,
    /// `--compress-between-turns`); nil when the run compressed only after the prompt.
    public var recompressions: Int?
    /// Slots summed over every stream right after the last of those compressions (the budget held).
    public var recompressedSlots: Int?
    /// Fraction of the model's own earlier answers (every turn's but the last) still cached once the case
    /// is answered, over their tokens, layers and KV heads: what a compression between turns kept of what
    /// the model wrote. nil for a single-turn case.
    public var ownAnswerSurvival: Double?
    public var prefillSeconds: Double
    public var compressSeconds: Double
    public var decodeSeconds: Double
    /// The SHA-256 of the case's content (`ProbeCase.contentSHA256`: context tokens, needles, questions,
    /// answers): rows of two runs pair only when their cases are the same, not merely their ids (nil: rows
    /// written before 2026-12-06).
    public var caseSHA256: String? = nil
}

/// An optional that JSON writes as `null` when absent (synthesized coding would leave the key out),
/// so a reader sees "not measured" rather than a missing field.
@propertyWrapper
public struct ExplicitNull<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?
    public init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let v = wrappedValue { try c.encode(v) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key reads as nil, as for a plain optional.
    public func decode<V>(_ type: ExplicitNull<V>.Type, forKey key: Key) throws -> ExplicitNull<V> {
        try decodeIfPresent(type, forKey: key) ?? ExplicitNull(wrappedValue: nil)
    }
}
