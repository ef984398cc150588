import KVCache
import Policies

/// `scissorhands` — Scissorhands (Liu et al., "Scissorhands: Exploiting the Persistence of Importance
/// Hypothesis for LLM KV Cache Compression at Test Time", NeurIPS 2023): a token that drew little attention
/// over the last `history` queries will draw little later. Each key counts the queries of the history window
/// that gave it less than the uniform share 1 / t (t: the keys the query sees); the keys counted least often
/// are kept, the query heads of a group by the mean of their counts, and the last `recent` tokens always.
///
/// The statistic is not one of KVKit's: it is declared here (`LowAttentionCount`) and the kernel folds every
/// observed query's probabilities through it; the policy reads it back with `StreamView.statistic`.
public struct ScissorhandsPolicy: EvictionPolicy, Configurable {
    @Parameter("history", 1...4096, "queries whose attention is counted (the history window)") public var history = 32
    @Parameter("recent", 0...4096, "latest tokens always kept") public var recent = 32
    public var name: String { "scissorhands" }
    public var needs: ObservationNeeds {
        var n = ObservationNeeds()
        n.statistics = [LowAttentionCount(history: history)]
        return n
    }
    public init() {}

    /// Per key, the number of observed queries that gave it less than 1 / t of their attention.
    public struct LowAttentionCount: AttentionStatistic {
        public let history: Int
        public init(history: Int) { self.history = history }
        public var key: String { "scissorhands.low:\(history)" }
        public func observes(query position: Int32, promptEnd: Int32) -> Bool { position >= promptEnd - Int32(history) }
        /// `fold` compares with 1 / (keys the query sees): the kernel counts them for this statistic.
        public var needsVisibleCount: Bool { true }
        public func fold(
            _ p: UnsafePointer<Float>, keys: UnsafePointer<Int32>, count: Int, row: AttentionRow, into column: UnsafeMutablePointer<Float>, stride: Int
        ) {
            let uniform = 1 / Float(max(row.visible, 1))
            for j in 0..<count where row.sees(keys[j]) && p[j] < uniform { column[j * stride] += 1 }
        }
    }

    public func scores(_ s: StreamView) -> [Float] {
        guard let low = s.statistic(LowAttentionCount(history: history).key) else {
            preconditionFailure("scissorhands reads its own statistic; the runner taps it from `needs`")
        }
        return s.combine(low, .mean).map { -$0 }
    }

    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: recent) }

    public static let info = PolicyInfo(
        ScissorhandsPolicy.self, summary: "keys least often under 1/t attention in the history window (plugin example: a statistic of its own)",
        paper: "Liu et al. 2023, Scissorhands (arXiv:2305.17118)")
}
