/// `adakv` — Ada-KV (Feng et al., "Ada-KV: Optimizing KV Cache Eviction by Adaptive Budget Allocation",
/// 2024), a wrapper: the budget of a whole layer (the sum of its heads' budgets) is shared across its KV
/// heads by the base policy's scores, so heads whose attention is concentrated give tokens to heads whose
/// attention is spread. Each head first keeps its pinned slots and a safeguard share `floor` of its uniform
/// budget; the rest goes to the highest scores layer-wide. Because KVKit's page tables are per KV head,
/// the uneven counts really free pages (in kvpress per-head budgets only mask tokens).
/// `floor` is the paper's alpha safeguard.
public struct AdaKVPolicy: EvictionPolicy, Configurable {
    @Parameter("base", "scoring policy: any registered policy that frees tokens (its defaults)") public var scoring: PolicyName = "snapkv"
    @Parameter("floor", 0...1, "share of the uniform budget every head keeps") public var floor = 0.2
    /// The scoring policy itself; set it to wrap one with other parameters (or a plug-in's).
    public var base: any EvictionPolicy {
        get { custom.policy ?? scoring.policy ?? SnapKVPolicy() }
        set { custom.policy = newValue }
    }
    private struct Override: Sendable { var policy: (any EvictionPolicy)? }
    private var custom = Override()
    private enum CodingKeys: String, CodingKey { case scoring, floor }
    public var name: String { "adakv" }
    public init() {}
    public var needs: ObservationNeeds { base.needs }
    public var passes: [PolicyPass] { base.passes }

    public func scores(_ s: StreamView) -> [Float] { base.scores(s) }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { base.pinned(s, budget: budget) }
    public func layerBudgets(uniform: [Int], counts: [Int]) -> [Int] { base.layerBudgets(uniform: uniform, counts: counts) }

    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        var total = 0
        var kept: [Set<Int>] = []
        var candidates: [(score: Float, head: Int, slot: Int)] = []
        let base = self.base  // made once from the registry, not per head
        for (h, v) in views.enumerated() {
            let b = min(budgets[h], v.count)
            total += b
            let sc = base.scores(v)
            // Guaranteed: pinned slots, then the head's own top `floor · b`.
            let pins = base.pinned(v, budget: b)
            let guaranteed = max(pins.count, Int((floor * Double(b)).rounded()))
            let own = Set(topK(v, budget: min(guaranteed, b), scores: sc, pinned: pins))
            kept.append(own)
            for i in 0..<v.count where !own.contains(i) { candidates.append((sc[i], h, i)) }
        }
        var remaining = total - kept.reduce(0) { $0 + $1.count }
        candidates.sort { $0.score != $1.score ? $0.score > $1.score : ($0.head, $0.slot) > ($1.head, $1.slot) }
        for c in candidates where remaining > 0 {
            kept[c.head].insert(c.slot)
            remaining -= 1
        }
        return kept.map { $0.sorted() }
    }

    public static let info = PolicyInfo(
        AdaKVPolicy.self, summary: "wrapper: a layer's budget shared across KV heads by score",
        paper: "Feng et al. 2024, Ada-KV (arXiv:2407.11550)")
}
