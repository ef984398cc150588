/// `compose` — two policies in one cache (`compose:A+B`, or `compose:first=A,then=B,share=S`): `first`
/// spends a share `share` of the budget with its own selection (DuoAttention's whole streams, say), then
/// `then` spends the rest on the slots `first` left, by its own scores: spread over the streams in
/// proportion to what each still holds, or, for a policy that ranks across streams (`kvzip`), ranked across
/// every stream. The kept total stays the budget's. A part is any registered policy that frees tokens
/// (plug-ins' included), with its defaults, and reads the statistics of its own settings. Made for the question the issue asks: can calibrated heads plus a
/// token score keep a needle at 10 % where neither does alone. Parameters: `first`, `then`, `share`.
public struct ComposePolicy: EvictionPolicy, Configurable {
    @Parameter("first", "the registered policy that spends its share first (its defaults)") public var first: PolicyName = "duo"
    @Parameter("then", "the registered policy that spends the rest on what the first left (its defaults)") public var then: PolicyName = "kvzip"
    @Parameter("share", 0...1, "share of the budget the first policy spends") public var share = 0.5
    public var name: String { "compose" }
    public init() {}
    private var parts: (first: any EvictionPolicy, then: any EvictionPolicy) { (first.policy ?? FullPolicy(), then.policy ?? FullPolicy()) }
    public var needs: ObservationNeeds { parts.first.needs.union(parts.then.needs) }
    public var passes: [PolicyPass] { (parts.first.passes + parts.then.passes).uniqued() }
    public func scores(_ s: StreamView) -> [Float] { parts.then.scores(s.seen(by: parts.then.needs)) }

    public func selectAll(layers all: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? {
        let (a, b) = parts
        // Each part reads the statistics of its own settings (its window, its query moments), not the union the prefill tapped.
        let views = all.map { $0.map { $0.seen(by: a.needs) } }, thenViews = all.map { $0.map { $0.seen(by: b.needs) } }
        let firstBudgets = budgets.map { $0.map { Int(Double($0) * share) } }
        let firstKeep =
            a.selectAll(layers: views, budgets: firstBudgets)
            ?? zip(views, firstBudgets).map { a.select(layer: $0, budgets: $1) }
        var keep = firstKeep.map { $0.map { Set($0) } }
        var remaining = budgets.joined().reduce(0, +) - keep.joined().reduce(0) { $0 + $1.count }
        guard remaining > 0 else { return firstKeep }
        // Candidates: every slot the first policy left, with the second policy's score.
        var candidates: [(score: Float, layer: Int, head: Int, slot: Int)] = []
        for (l, layer) in thenViews.enumerated() {
            for (h, v) in layer.enumerated() where keep[l][h].count < v.count {
                let s = b.scores(v)
                for i in 0..<v.count where !keep[l][h].contains(i) { candidates.append((s[i], l, h, i)) }
            }
        }
        if b.ranksAcrossStreams {
            // Scores comparable across streams (KVzip's attention probabilities): one ranking.
            candidates.sort { ($0.score, $0.slot, $0.layer, $0.head) > ($1.score, $1.slot, $1.layer, $1.head) }
            for c in candidates.prefix(remaining) { keep[c.layer][c.head].insert(c.slot) }
        } else {
            // Per stream, in proportion to what each still holds; each stream's best first.
            let left = candidates.count
            var byStream: [[Int]: [(Float, Int)]] = [:]
            for c in candidates { byStream[[c.layer, c.head], default: []].append((c.score, c.slot)) }
            for (key, list) in byStream.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                let quota = min(list.count, remaining * list.count / max(left, 1))
                for (_, slot) in list.sorted(by: { ($0.0, $0.1) > ($1.0, $1.1) }).prefix(quota) { keep[key[0]][key[1]].insert(slot) }
            }
            remaining = budgets.joined().reduce(0, +) - keep.joined().reduce(0) { $0 + $1.count }
            if remaining > 0 {  // rounding leftovers: the best remaining candidates anywhere, by stream order
                for c in candidates.sorted(by: { ($0.score, $0.slot) > ($1.score, $1.slot) }) where remaining > 0 && !keep[c.layer][c.head].contains(c.slot) {
                    keep[c.layer][c.head].insert(c.slot); remaining -= 1
                }
            }
        }
        return keep.map { $0.map { $0.sorted() } }
    }

    public static let info = PolicyInfo(
        ComposePolicy.self, summary: "wrapper: a first policy spends a share of the budget, a second the rest",
        paper: "a composition spec (`compose:A+B`), no paper of its own")
}
