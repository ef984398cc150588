import KVCache

/// `compactor` — Compactor (Chari & Van Durme, "Compactor: Calibrated Query-Agnostic KV Cache Compression
/// with Approximate Leverage Scores", 2025; kvpress 0.5.5's `CompactorPress`). Two query-agnostic views of
/// a token blended: its keys' statistical leverage before RoPE (`leverage`: a key no mix of the others can
/// stand in for) and the attention it gets from its own chunk of the prompt read non-causally (every query
/// of a 256-token chunk attends to every key of it, `ChunkedAttention`), averaged over the query heads of
/// its KV head, times its value's norm and smoothed over 3 neighbours. Both are z-scored over the layer and
/// added, leverage weighted by `blend` (kvpress's default, −1 here: the compression ratio). The first
/// `sinks` and the last `recent` prompt tokens are left out of both and always kept. As in kvpress,
/// `sketch=0` aside (kvpress draws a 48-column Gaussian sketch; see `leverage`). Prefill only: tokens
/// after the prompt have no chunk score and go first. Parameters: `sinks`, `recent`, `chunk`, `sketch`, `blend`.
public struct CompactorPolicy: EvictionPolicy, Configurable {
    @Parameter("sinks", 0...4096, "first prompt tokens always kept and left out of the scores") public var sinks = 8
    @Parameter("recent", 0...4096, "last prompt tokens always kept and left out of the scores") public var recent = 4
    @Parameter("chunk", 1...8192, "tokens per chunk of the non-causal attention") public var chunk = 256
    @Parameter("sketch", 0...4096, "columns of the leverage's Gaussian sketch (0: exact leverage)") public var sketch = 0
    @Parameter("blend", -1...100, "weight of the leverage scores (-1: the compression ratio, kvpress's default)") public var blend = -1.0
    public var name: String { "compactor" }
    public init() {}

    var spec: ChunkedAttention.Spec { ChunkedAttention.Spec(chunk: chunk, skipFirst: sinks, skipLast: recent) }
    public var needs: ObservationNeeds {
        var n = ObservationNeeds()
        n.chunks = [spec]
        return n
    }
    public var passes: [PolicyPass] { [.rope] }

    /// Per stream, the slots scored (inside the tapped range) and their two raw scores.
    private func raw(_ s: StreamView) -> (slots: Range<Int>, leverage: [Float], attention: [Float]) {
        guard let c = s.chunkedAttention(spec), let rope = s.prepared[PolicyPass.rope.key] as? RoPEInfo else {
            preconditionFailure("compactor needs its chunked attention and the model's RoPE; the runner taps `needs` and runs `passes`")
        }
        let until = c.from + Int32(c.sums.count / s.group)
        let first = s.positions.firstIndex { $0 >= c.from } ?? s.count
        let end = s.positions.firstIndex { $0 >= until } ?? s.count
        let slots = first..<max(first, end)
        let lev = LeveragePolicy.leverage(s, slots: slots, rope: rope, sketch: sketch)
        let norms = s.valueNorms()
        var a = slots.map { i -> Float in
            let p = Int(s.positions[i] - c.from)
            var m: Float = 0
            for g in 0..<s.group { m += c.sums[p * s.group + g] }
            return m / Float(s.group) * norms[i]
        }
        // avg_pool1d(kernel 3, padding 1): zero padding counted, so the ends are divided by 3 as well.
        let x = a
        for i in a.indices { a[i] = ((i > 0 ? x[i - 1] : 0) + x[i] + (i + 1 < x.count ? x[i + 1] : 0)) / 3 }
        return (slots, lev, a)
    }

    /// (x − mean) / std over every value of the layer (torch's unbiased std, floored at 1e−6), as kvpress.
    private static func zscored(_ all: [[Float]]) -> [[Float]] {
        let flat = all.joined(), n = Double(flat.count)
        guard n > 1 else { return all }
        let mean = flat.reduce(0.0) { $0 + Double($1) } / n
        let variance = flat.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
        let sd = max(variance.squareRoot(), 1e-6)
        return all.map { $0.map { Float((Double($0) - mean) / sd) } }
    }

    /// The layer's blended scores, per stream by slot; slots outside the scored range are the sinks and
    /// recent tokens (pinned) or come after the prompt (lowest).
    private func layerScores(_ views: [StreamView], ratio: Double) -> [[Float]] {
        let parts = views.map(raw)
        let lev = Self.zscored(parts.map(\.leverage)), att = Self.zscored(parts.map(\.attention))
        let w = Float(blend >= 0 ? blend : ratio)
        return views.indices.map { h in
            var out = [Float](repeating: -.greatestFiniteMagnitude, count: views[h].count)
            for (j, slot) in parts[h].slots.enumerated() { out[slot] = w * lev[h][j] + att[h][j] }
            return out
        }
    }

    public func scores(_ s: StreamView) -> [Float] { layerScores([s], ratio: 0.5)[0] }

    /// The first `sinks` prompt positions and the last `recent` before the scored range ends.
    public func pinned(_ s: StreamView, budget: Int) -> [Int] {
        guard let c = s.chunkedAttention(spec) else { return edges(s.count, first: sinks, last: recent) }
        let until = c.from + Int32(c.sums.count / s.group)
        return s.positions.indices.filter { s.positions[$0] < Int32(sinks) || (s.positions[$0] >= until && s.positions[$0] < until + Int32(recent)) }
    }

    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        let total = views.reduce(0) { $0 + $1.count }
        let ratio = total > 0 ? 1 - Double(budgets.reduce(0, +)) / Double(total) : 0
        let scores = layerScores(views, ratio: ratio)
        return views.indices.map { h in topK(views[h], budget: budgets[h], scores: scores[h], pinned: pinned(views[h], budget: budgets[h])) }
    }

    public static let info = PolicyInfo(
        CompactorPolicy.self, summary: "key leverage blended with chunked non-causal attention × value norm",
        paper: "Chari & Van Durme 2025, Compactor (arXiv:2507.08143)")
}
