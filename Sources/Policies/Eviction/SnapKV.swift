/// `snapkv` — SnapKV (Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", 2024).
/// Scores each prefix token by the attention it gets from the last `window` queries (the observation
/// window), smoothed by 1-D pooling over neighbouring tokens so that clusters survive together; the window
/// itself is always kept and counts inside the budget.
/// - window (default 32): observation window, in tokens.
/// - kernel (default 7): pooling width (odd; same-length output).
/// - pool (default max): max or avg pooling.
/// - gqa (default mean): combine the query heads of a KV head by mean or max.
public struct SnapKVPolicy: EvictionPolicy, Codable {
    /// 1-D pooling of the window's attention over neighbouring tokens.
    public enum Pooling: String, Codable, Sendable, CaseIterable { case max, avg }

    public var window = 32
    public var kernel = 7
    public var pool = Pooling.max
    public var gqa = GroupCombine.mean
    public var name: String { "snapkv" }
    public var needs: ObservationNeeds { ObservationNeeds(window: window) }
    public init(window: Int = 32, kernel: Int = 7, pool: Pooling = .max, gqa: GroupCombine = .mean) {
        self.window = window; self.kernel = kernel; self.pool = pool; self.gqa = gqa
    }

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

    static let parameters: [ParameterSpec] = [
        ParameterSpec("window", .int(1...4096), default: "32", "observation window (last queries), always kept"),
        ParameterSpec("kernel", .int(1...63), default: "7", "pooling width over neighbouring tokens (odd)"),
        ParameterSpec("pool", .choice(Pooling.allCases.map(\.rawValue)), default: Pooling.max.rawValue, "pooling kind"),
        groupParameter,
    ]
    static func make(_ p: PolicyParameters) throws -> SnapKVPolicy {
        guard p.int("kernel") % 2 == 1 else {
            throw PolicyError.badValue(policy: "snapkv", name: "kernel", value: p.string("kernel"), expected: "an odd integer")
        }
        return SnapKVPolicy(window: p.int("window"), kernel: p.int("kernel"), pool: Pooling(rawValue: p.string("pool"))!, gqa: GroupCombine(rawValue: p.string("gqa"))!)
    }

    public static let info = PolicyInfo(
        name: "snapkv", summary: "attention from the observation window, pooled", paper: "Li et al. 2024, SnapKV (arXiv:2404.14469)",
        parameters: parameters) { p in try make(p) }
}
