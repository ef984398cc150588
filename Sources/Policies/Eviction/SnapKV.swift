/// `snapkv` — SnapKV (Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", 2024).
/// Scores each prefix token by the attention it gets from the last `window` queries (the observation
/// window), smoothed by 1-D pooling over neighbouring tokens so that clusters survive together; the window
/// itself is always kept and counts inside the budget.
/// Parameters: `kvkit policies` lists them (each declared once below, with its default, range and help).
public struct SnapKVPolicy: EvictionPolicy, Configurable {
    /// 1-D pooling of the window's attention over neighbouring tokens.
    public enum Pooling: String, ParameterChoice { case max, avg }

    @Parameter("window", 1...4096, "observation window (last queries), always kept") public var window = 32
    @Parameter("kernel", 1...63, "pooling width over neighbouring tokens (odd: same-length output)", rule: .odd) public var kernel = 7
    @Parameter("pool", "pooling kind") public var pool = Pooling.max
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.mean
    public var name: String { "snapkv" }
    public init() {}
    public var needs: ObservationNeeds { ObservationNeeds(window: window) }

    public func scores(_ s: StreamView) -> [Float] {
        guard let w = s.window else { preconditionFailure("snapkv needs window attention; the runner requests it from `needs`") }
        // Pool each query head's scores along the slots, then combine the group.
        var pooled = [Float](repeating: 0, count: w.count)
        let half = kernel / 2
        for g in 0..<s.group {
            for i in 0..<s.count {
                var acc: Float = pool == .max ? -.infinity : 0
                var n: Float = 0
                for j in max(0, i - half)...min(s.count - 1, i + half) {
                    let v = w[j * s.group + g]
                    if pool == .max { acc = Swift.max(acc, v) } else { acc += v }
                    n += 1
                }
                pooled[i * s.group + g] = pool == .max ? acc : acc / Float(kernel)  // avg_pool1d counts padding
            }
        }
        return s.combine(pooled, gqa)
    }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: window) }

    public static let info = PolicyInfo(
        SnapKVPolicy.self, summary: "attention from the observation window, pooled",
        paper: "Li et al. 2024, SnapKV (arXiv:2404.14469)")
}
