/// `selective` — query-agnostic retention by self-information, after Selective Context (Li et al.,
/// "Compressing Context to Enhance Inference Efficiency of Large Language Models", EMNLP 2023): a token
/// the model predicts poorly carries information the rest of the prompt does not, so sentences are kept
/// by the mean (or summed) self-information −log p(token | prefix) of their tokens, from the model's own
/// prompt logits. It needs no question and no attention, so it can keep a needle before the question is
/// known; every head and layer keeps the same sentences (as Selective Context prunes the text itself).
/// `by` defaults to sum, which measured better: niah at 1,024 tokens, budget 0.25: 100% against 80% by mean.
public struct SelectiveContextPolicy: EvictionPolicy, Configurable {
    @Parameter("by", "sentence score: sum or mean of self-information") public var by = SpanScore.sum
    @Parameter("max", 1...1024, "longest span, in tokens") public var maxLength = 48
    @Parameter("sinks", 0...1024, "first tokens always kept") public var sinks = 4
    @Parameter("window", 0...4096, "most recent tokens always kept") public var window = 16
    public var name: String { "selective" }
    public var needs: ObservationNeeds { ObservationNeeds(selfInformation: true) }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] { s.selfInformation ?? [Float](repeating: 0, count: s.count) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: sinks, last: window) }

    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        var memo: (ids: [Int32], budget: Int, kept: [Int])?
        return zip(views, budgets).map { v, b in
            if let m = memo, m.ids == v.tokenIds, m.budget == b { return m.kept }
            let kept = keepSpans(
                v, spans: SentenceSpans(maxLength: maxLength).spans(v), tokenScores: scores(v), by: by,
                budget: b, pinned: pinned(v, budget: b))
            memo = (v.tokenIds, b, kept)
            return kept
        }
    }

    public static let info = PolicyInfo(
        SelectiveContextPolicy.self, summary: "retention: whole sentences by the model's self-information (query-agnostic)",
        paper: "after Li et al. 2023, Selective Context (arXiv:2310.06201)")
}
