import Foundation

/// `lagkv` — LagKV (Liang et al., "LagKV: Lag-Relative Information of the KV Cache Tells Which Tokens Are
/// Important", 2025). After `sinks` attention sinks the stream is cut into partitions of `lag` tokens;
/// each partition is judged against the next one (its "lag"): every channel of its keys and values is
/// min–max normalized by the next partition's range, a token's spread across channels (standard deviation)
/// says how much it departs from what follows, softmax over the partition, keys and values averaged.
/// Tokens are kept by their rank inside their partition, so every partition keeps about the same share.
/// The sinks and the last partition (with the remainder) have no successor and are always kept; a stream
/// shorter than `sinks + 2·lag` keeps its sinks and most recent tokens. Needs no attention (query-agnostic);
/// the scores follow kvpress's LagKVPress (without its experimental cross-partition scoring). A channel
/// whose reference range is zero contributes 0.
public struct LagKVPolicy: EvictionPolicy, Configurable {
    @Parameter("sinks", 0...1024, "initial tokens always kept") public var sinks = 4
    @Parameter("lag", 2...4096, "partition size; each partition is scored against the next") public var lag = 128
    public var name: String { "lagkv" }
    public init() {}

    /// Where scoring ends: partitions of `lag` after the sinks, the last whole one and the rest kept.
    func tail(_ count: Int) -> Int {
        guard count >= sinks + 2 * lag else { return max(0, count - sinks) }
        let end = sinks + ((count - sinks) / lag) * lag
        return lag + count - end
    }

    public func pinned(_ s: StreamView, budget: Int) -> [Int] {
        s.count >= sinks + 2 * lag ? edges(s.count, first: sinks, last: tail(s.count)) : Array(0..<min(sinks, s.count))
    }

    public func scores(_ s: StreamView) -> [Float] {
        let n = s.count
        guard n >= sinks + 2 * lag else {
            // Too short to compare partitions: recency after the sinks (kvpress does the same).
            return (0..<n).map { $0 < sinks ? 1 : Float($0 - sinks) / Float(max(n - sinks, 1)) }
        }
        var score = [Float](repeating: 1, count: n)
        let keys = (0..<n).map(s.key), values = (0..<n).map(s.value)
        let parts = (n - sinks - tail(n)) / lag
        for p in 0..<parts {
            let start = sinks + p * lag
            let k = Self.lagScores(keys, start: start, lag: lag), v = Self.lagScores(values, start: start, lag: lag)
            let combined = zip(k, v).map { ($0 + $1) / 2 }
            // Rank inside the partition (ties by position, as a stable sort gives), scaled to [0, 1).
            let order = (0..<lag).sorted { combined[$0] != combined[$1] ? combined[$0] < combined[$1] : $0 < $1 }
            for (rank, i) in order.enumerated() { score[start + i] = Float(rank) / Float(lag) }
        }
        return score
    }

    /// Softmax over one partition of each token's channel spread, normalized by the next partition's range.
    static func lagScores(_ rows: [[Float]], start: Int, lag: Int) -> [Float] {
        let d = rows[start].count
        var lo = [Float](repeating: .infinity, count: d), hi = [Float](repeating: -.infinity, count: d)
        for r in (start + lag)..<(start + 2 * lag) { for c in 0..<d { lo[c] = min(lo[c], rows[r][c]); hi[c] = max(hi[c], rows[r][c]) } }
        let spread = (start..<(start + lag)).map { r -> Float in
            let x = (0..<d).map { c in hi[c] > lo[c] ? (rows[r][c] - lo[c]) / (hi[c] - lo[c]) : 0 }
            let mean = x.reduce(0, +) / Float(d)
            return (x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(max(d - 1, 1))).squareRoot()  // unbiased, as torch.std
        }
        let m = spread.max() ?? 0
        let e = spread.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        return e.map { $0 / z }
    }

    public static let info = PolicyInfo(
        LagKVPolicy.self, summary: "tokens departing most from the next partition's key/value range",
        paper: "Liang et al. 2025, LagKV (arXiv:2504.04704)")
}
