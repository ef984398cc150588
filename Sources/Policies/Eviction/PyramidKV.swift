/// `pyramidkv` — PyramidKV (Cai et al., "PyramidKV: Dynamic KV Cache Compression based on Pyramidal
/// Information Funneling", 2024). SnapKV's scores with per-layer budgets that shrink linearly from the
/// first layer to the last (attention funnels onto fewer tokens in higher layers). The non-window budget
/// B′ = budget − window gives layer 0 `2B′ − B′/beta` and the last layer `B′/beta`, so the mean over
/// layers is the uniform budget; where that does not fit the stream it falls back to SnapKV's uniform split
/// (as kvpress does).
/// Parameters: SnapKV's, and `beta`, the ratio of the top to the bottom layer's budget.
public struct PyramidKVPolicy: EvictionPolicy, Configurable {
    public var snap = SnapKVPolicy()
    @Parameter("beta", 1...1000, "top-to-bottom layer budget ratio") public var beta = 20.0
    public var name: String { "pyramidkv" }
    public init() {}
    public var needs: ObservationNeeds { snap.needs }

    public func scores(_ s: StreamView) -> [Float] { snap.scores(s) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { snap.pinned(s, budget: budget) }

    public func layerBudgets(uniform: [Int], counts: [Int]) -> [Int] {
        let L = uniform.count
        guard L > 1 else { return uniform }
        return (0..<L).map { l in
            let b = Double(uniform[l] - snap.window)
            let minB = b / beta, maxB = 2 * b - minB
            guard b > 0, Double(counts[l]) >= maxB + Double(snap.window) else { return uniform[l] }
            return snap.window + Int((maxB - Double(l) * (maxB - minB) / Double(L - 1)).rounded())
        }
    }

    public static let info = PolicyInfo(
        PyramidKVPolicy.self, summary: "SnapKV scores, budgets shrinking with depth",
        paper: "Cai et al. 2024, PyramidKV (arXiv:2406.02069)")
}
