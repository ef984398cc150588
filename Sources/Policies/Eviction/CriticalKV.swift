import KVCache
import TensorMath

/// `criticalkv` — CriticalKV (Feng et al., "Identify Critical KV Cache in LLM Inference from an Output
/// Perturbation Perspective", 2025; kvpress 0.5.5's `CriticalKVPress`), a wrapper: what evicting a token
/// changes in the attention output depends on its value as the output projection sees it, not on its
/// attention weight alone. Two stages per stream: the base policy's scores choose a share `first` of the
/// budget alone; the rest goes to the highest (base score + `epsilon`) · ‖v · W_oₕᵀ‖₁, the L1 norm of the
/// token's value through its query heads' columns of W_o, averaged over the group (the pass `norms`
/// below, run once per prompt on the model's own W_o). The base policy's pinned slots are always kept.
/// As in kvpress the base is a per-stream scorer (a base that ranks across streams, such as `kvzip`, is
/// used by its per-stream scores here). Parameters: `base`, `first`, `epsilon`.
public struct CriticalKVPolicy: EvictionPolicy, Configurable {
    @Parameter("base", "scoring policy: any registered policy that frees tokens (its defaults)") public var scoring: PolicyName = "snapkv"
    @Parameter("first", 0...1, "share of the budget the base scores spend alone (the first stage)") public var first = 0.5
    @Parameter("epsilon", 0...1, "added to the base score before the projected-value weighting") public var epsilon = 1e-4
    public var name: String { "criticalkv" }
    public init() {}
    private var base: any EvictionPolicy { scoring.policy ?? SnapKVPolicy() }
    public var needs: ObservationNeeds { base.needs }
    public var passes: [PolicyPass] {
        (base.passes + [PolicyPass(key: Self.passKey, label: "projected values") { model, cache, _ in Self.projectedNorms(model: model, cache: cache) }])
            .uniqued()
    }
    public func layerBudgets(uniform: [Int], counts: [Int]) -> [Int] { base.layerBudgets(uniform: uniform, counts: counts) }

    /// The key of the pass's result: `[layer·kvHeads + head][position]`, the mean over the KV head's query
    /// heads of ‖v · W_oₕᵀ‖₁ (the same for every criticalkv variant).
    public static let passKey = "criticalkv.projected-norms"

    /// For every stream of `cache` (holding the prompt), each slot's value through its query heads' columns
    /// of W_o: the L1 norm of the `hidden`-wide output, averaged over the group, by position.
    public static func projectedNorms(model: any ModelPass, cache: PagedKVCache) -> [[Float]] {
        let hd = model.headDim, dim = model.hidden, qDim = model.heads * hd, group = model.heads / model.kvHeads
        var out: [[Float]] = []
        for l in 0..<cache.layers {
            let wo = model.outputProjection(layer: l)
            for h in 0..<cache.kvHeads {
                let v = Compressor.view(cache, layer: l, head: h, seed: 0)
                let n = v.count
                var norms = [Float](repeating: 0, count: cache.nextPosition)
                guard n > 0 else { out.append(norms); continue }
                var values = [Float](repeating: 0, count: n * hd)
                for i in 0..<n { values.replaceSubrange((i * hd)..<((i + 1) * hd), with: v.value(i)) }
                var projected = [Float](repeating: 0, count: n * dim), sum = [Float](repeating: 0, count: n)
                for g in 0..<group {
                    let q = h * group + g
                    // projected[n][dim] = values[n][hd] · (W_o[:, q·hd ..< (q+1)·hd])ᵀ
                    wo.withUnsafeBufferPointer { w in
                        BLAS.gemm(
                            m: n, n: dim, k: hd, values, lda: hd, w.baseAddress! + q * hd, ldb: qDim, transB: true,
                            beta: 0, &projected, ldc: dim)
                    }
                    for i in 0..<n {
                        var s: Float = 0
                        for d in 0..<dim { s += abs(projected[i * dim + d]) }
                        sum[i] += s
                    }
                }
                for i in 0..<n where Int(v.positions[i]) < norms.count { norms[Int(v.positions[i])] = sum[i] / Float(group) }
                out.append(norms)
            }
        }
        return out
    }

    /// The projected-value norm of each slot (1 when the pass did not run or the slot came after it).
    func norms(_ s: StreamView) -> [Float] {
        let all = s.prepared[Self.passKey] as? [[Float]]
        return s.positions.map { p in all.flatMap { s.stream < $0.count && Int(p) < $0[s.stream].count ? $0[s.stream][Int(p)] : nil } ?? 1 }
    }

    /// The second stage's score, (base + ε) · projected norm (what a wrapper ranking by scores reads).
    public func scores(_ s: StreamView) -> [Float] {
        let b = base.scores(s.seen(by: base.needs)), n = norms(s)
        return (0..<s.count).map { (b[$0] + Float(epsilon)) * n[$0] }
    }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { base.pinned(s.seen(by: base.needs), budget: budget) }

    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        zip(views, budgets).map { v, budget in
            let own = v.seen(by: base.needs)
            let b = base.scores(own), n = norms(v)
            // The first stage: the base's best `first` share of the budget (at least one token, as kvpress).
            let share = first > 0 ? max(1, Int(Double(budget) * first)) : 0
            let chosen = topK(own, budget: min(share, budget), scores: b, pinned: [])
            var second = (0..<v.count).map { (b[$0] + Float(epsilon)) * n[$0] }
            for i in chosen { second[i] = .greatestFiniteMagnitude }
            return topK(own, budget: budget, scores: second, pinned: base.pinned(own, budget: budget))
        }
    }

    public static let info = PolicyInfo(
        CriticalKVPolicy.self, summary: "base scores reweighted by the value's norm through W_o (two stages)",
        paper: "Feng et al. 2025, CriticalKV (arXiv:2502.03805)")
}
