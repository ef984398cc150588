/// `chunkkv` — ChunkKV (Liu et al., "ChunkKV: Semantic-Preserving KV Cache Compression for Efficient
/// Long-Context LLM Inference", 2025). The prompt is cut into fixed chunks of `chunk` tokens; a chunk's
/// score is the sum of its tokens' SnapKV scores (attention from the observation window, pooled); whole
/// chunks are kept best first, so a number or a name survives whole or not at all. The observation window
/// is always kept. Layer-wise index reuse: the positions chosen at one layer are reused by the next
/// `reuse − 1` layers, which skip scoring and selection (the paper reuses across 2–3 layers).
/// Parameters: chunk, reuse, then SnapKV's scoring parameters.
public struct ChunkKVPolicy: EvictionPolicy, Configurable {
    @Parameter("chunk", 1...512, "tokens per chunk") public var chunk = 10
    @Parameter("reuse", 1...64, "layers sharing one selection (1 = each layer selects)") public var reuse = 1
    public var scoring = SnapKVPolicy()
    public var name: String { "chunkkv" }
    public var needs: ObservationNeeds { scoring.needs }
    public var passes: [PolicyPass] { scoring.passes }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] { scoring.scores(s) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { scoring.pinned(s, budget: budget) }
    public func selectionSource(layer: Int) -> Int { layer - layer % max(1, reuse) }
    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        zip(views, budgets).map { v, b in
            keepSpans(v, spans: FixedChunks(size: chunk).spans(v), tokenScores: scores(v), by: .sum, budget: b, pinned: pinned(v, budget: b))
        }
    }

    public static let info = PolicyInfo(
        ChunkKVPolicy.self, summary: "whole fixed chunks by summed SnapKV score",
        paper: "Liu et al. 2025, ChunkKV (arXiv:2502.00299)")
}

/// `sentencekv` — keeps whole sentences. Spans end at sentence punctuation and newlines as the tokenizer
/// sees them (`SentenceSpans`), long sentences are cut at `max` tokens; a span's score is the mean or the
/// sum of its tokens' SnapKV scores. Mean favours short, sharply attended sentences (a needle among
/// filler); sum favours long ones. The observation window is always kept. In the spirit of
/// SentenceKV (Zhu et al. 2025) and of ChunkKV's semantic chunks, with sentence boundaries instead of a
/// fixed size.
/// Parameters: by, max, then SnapKV's scoring parameters.
public struct SentenceKVPolicy: EvictionPolicy, Configurable {
    @Parameter("by", "span score: mean or sum of token scores") public var by = SpanScore.mean
    @Parameter("max", 1...1024, "longest span, in tokens") public var maxLength = 48
    public var scoring = SnapKVPolicy()
    public var name: String { "sentencekv" }
    public var needs: ObservationNeeds { scoring.needs }
    public var passes: [PolicyPass] { scoring.passes }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] { scoring.scores(s) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { scoring.pinned(s, budget: budget) }
    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        // Every head of a layer holds the same tokens before compression: find the sentences once.
        var memo: (ids: [Int32], spans: [Range<Int>])?
        return zip(views, budgets).map { v, b in
            let spans: [Range<Int>]
            if let m = memo, m.ids == v.tokenIds { spans = m.spans } else { spans = SentenceSpans(maxLength: maxLength).spans(v); memo = (v.tokenIds, spans) }
            return keepSpans(v, spans: spans, tokenScores: scores(v), by: by, budget: b, pinned: pinned(v, budget: b))
        }
    }

    public static let info = PolicyInfo(
        SentenceKVPolicy.self, summary: "whole sentences by mean (or summed) SnapKV score",
        paper: "sentence spans, after Zhu et al. 2025, SentenceKV (arXiv:2504.00970)")
}
