import KVCache

/// `h2o` — Heavy-Hitter Oracle (Zhang et al., "H2O: Heavy-Hitter Oracle for Efficient Generative
/// Inference of Large Language Models", NeurIPS 2023). Keeps the tokens with the largest attention
/// accumulated over every query so far (heavy hitters) plus a recent window; the paper splits the budget
/// evenly between the two.
public struct H2OPolicy: EvictionPolicy, Configurable {
    @Parameter("recent", 0...1, "share of the budget kept for the most recent tokens") public var recent = 0.5
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.mean
    public var name: String { "h2o" }
    public var needs: ObservationNeeds {
        var n = ObservationNeeds()
        n.statistics = [Totals()]
        return n
    }
    public init() {}

    /// H2O's statistic: each key's attention summed over every query since it arrived (the default fold).
    public struct Totals: AttentionStatistic {
        public init() {}
        public var key: String { "h2o.totals" }
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let acc = s.statistic(Totals().key) else { preconditionFailure("h2o needs accumulated attention; the runner requests it from `needs`") }
        return s.combine(acc, gqa)
    }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] {
        edges(s.count, first: 0, last: Int((Double(budget) * recent).rounded()))
    }

    public static let info = PolicyInfo(
        H2OPolicy.self, summary: "heavy hitters (accumulated attention) + recent window",
        paper: "Zhang et al. 2023, H2O (arXiv:2306.14048)")
}
