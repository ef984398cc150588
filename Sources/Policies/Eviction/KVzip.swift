/// `kvzip` — KVzip (Kim et al., "KVzip: Query-Agnostic KV Cache Compression with Context
/// Reconstruction", 2025). A KV pair matters if the model needs it to reproduce the context: after the
/// prompt, the model is asked to repeat it and reads it again, and each prompt key's score is the largest
/// attention any of those reconstruction queries gives it (`ObservationNeeds.reconstruction`; the runner
/// runs the pass chunk by chunk on a throw-away fork, `Reconstruction` in Runs, and counts it as prefill).
/// The query heads of a group are combined by `gqa` (max, as the paper). As in the paper, the scores are
/// ranked across every head of every layer at once (`scope=global`: heads and layers get what their
/// scores earn, the total stays the budget's, each stream keeps at least its best token); `scope=layer`
/// ranks within each layer, `scope=head` keeps each stream's own top share. Query-agnostic: the score does
/// not depend on any question, so one compressed cache serves them all. The first 4 tokens (sinks) are
/// always kept. Scores as kvpress 0.5.5's `KVzipPress` computes them (`Reconstruction` in Runs says how).
/// Parameters: `gqa`, `scope`.
public struct KVzipPolicy: EvictionPolicy, Configurable {
    public enum Scope: String, ParameterChoice { case global, layer, head }
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.max
    @Parameter("scope", "where scores compete for the budget: across every layer and head (global, the paper's), within a layer, or per head") public var scope = Scope.global
    public var name: String { "kvzip" }
    public var needs: ObservationNeeds { ObservationNeeds(reconstruction: true) }
    public init() {}

    /// Attention sinks (the first tokens) are never evicted, as kvpress's `KVzipPress` (`n_sink`).
    public static let sinks: Int32 = 4

    public func scores(_ s: StreamView) -> [Float] {
        guard let r = s.reconstruction else { preconditionFailure("kvzip needs reconstruction scores; the runner requests them from `needs`") }
        var c = s.combine(r, gqa)
        // Above every score, the first sink first (so a budget below the sinks keeps the earliest).
        for (i, p) in s.positions.enumerated() where p < Self.sinks { c[i] = .greatestFiniteMagnitude / Float(p + 1) }
        return c
    }

    public var ranksAcrossStreams: Bool { scope == .global }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? {
        switch scope {
        case .head: return nil
        case .layer: return zip(views, budgets).map { pooled([$0], [$1])[0] }
        case .global: return pooled(views, budgets)
        }
    }

    /// Every stream's best slot, then the highest scores of all streams until the summed budget is spent.
    private func pooled(_ views: [[StreamView]], _ budgets: [[Int]]) -> [[[Int]]] {
        var total = budgets.joined().reduce(0, +)
        var keep = views.map { $0.map { _ in [Int]() } }
        var pool: [(score: Float, layer: Int, head: Int, slot: Int)] = []
        for (l, layer) in views.enumerated() {
            for (h, v) in layer.enumerated() where v.count > 0 {
                let s = scores(v)
                let best = s.indices.max { s[$0] < s[$1] || (s[$0] == s[$1] && $0 < $1) }!
                keep[l][h].append(best); total -= 1
                for (i, x) in s.enumerated() where i != best { pool.append((x, l, h, i)) }
            }
        }
        // Highest first; ties to the later slot, then the later layer and head (deterministic).
        pool.sort { ($0.score, $0.slot, $0.layer, $0.head) > ($1.score, $1.slot, $1.layer, $1.head) }
        for e in pool.prefix(max(0, total)) { keep[e.layer][e.head].append(e.slot) }
        return keep.map { $0.map { $0.sorted() } }
    }

    public static let info = PolicyInfo(KVzipPolicy.self, summary: "most attention received while the model repeats the context",
                                        paper: "Kim et al. 2025, KVzip (arXiv:2505.23416)")
}
