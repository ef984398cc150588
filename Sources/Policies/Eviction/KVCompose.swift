import KVCache

/// `kvcompose` — KVCompose ("KVCompose: Efficient Structured KV Cache Compression with Composite Tokens",
/// arXiv:2509.05165; kvpress 0.5.5's `KVComposePress`). Query-agnostic and training-free: after the prompt,
/// the model reads the prompt again (kvpress feeds the context's ids a second time; here on a throw-away
/// fork), and a prompt key's score per query head is the largest attention any re-read query gives it, in
/// the model's own softmax over everything the query sees (`agg_task = max`). The query heads of a KV head
/// are averaged (`agg_group = mean`) and, with `headmean=on` (kvpress's `add_mean_across_heads`), the mean
/// over the layer's KV heads is added to each head's score at the same position. Budgets go by *composite
/// tokens*: each KV head's scores sorted from best down, averaged across the layer's heads rank by rank
/// (`agg_head = mean`), layer 0's composite row raised to the largest of every layer's; the best composite
/// tokens of all layers together decide how many tokens each layer keeps (at least 1), and every KV head of
/// a layer keeps that many of its own best (`layout=structured`: a rectangular cache per layer, the paper's
/// point). `layout=unstructured` ranks every head's scores together instead (per-head counts; each stream
/// keeps at least its best token, where kvpress could leave a head empty). No sinks are pinned, as in
/// kvpress. kvpress's `add_v_norm` (off by default) is not offered: the layer mean would need the other
/// heads' value norms. Prefill only: tokens after the re-read prompt score 0.
/// Parameters: `layout`, `headmean`.
public struct KVComposePolicy: EvictionPolicy, Configurable {
    public enum Layout: String, ParameterChoice { case structured, unstructured }
    public enum Switch: String, ParameterChoice { case on, off }
    @Parameter("layout", "structured: every KV head of a layer keeps as many tokens (the paper's); unstructured: per-head counts")
    public var layout = Layout.structured
    @Parameter("headmean", "add the mean of the layer's KV heads' scores at each position (kvpress's add_mean_across_heads)")
    public var headMean = Switch.on
    public var name: String { "kvcompose" }
    public init() {}

    /// The key of the re-read pass's result (independent of the parameters: every kvcompose variant shares it).
    public static let passKey = "kvcompose.reread"

    public var passes: [PolicyPass] {
        [PolicyPass(key: Self.passKey, label: "re-read") { model, cache, prompt in try Self.reread(model: model, cache: cache, prompt: prompt) }]
    }

    /// The re-read scores: `[layer·kvHeads + head][position·group + g]`, the largest attention any query of
    /// the prompt's second reading gives the key at each prompt position (`cache`, holding the prompt, is
    /// left unchanged). `prompt` nil: the cache holds exactly the prompt, read back from its slots.
    public static func reread(model: any ModelPass, cache: PagedKVCache, prompt: [Int32]?) throws -> [[Float]] {
        let tokens = try prompt ?? KVzipPolicy.promptReadBack(from: cache, policy: "kvcompose")
        guard cache.nextPosition + tokens.count <= model.contextLength else {
            throw PolicyError.passUnavailable(
                policy: "kvcompose",
                reason:
                    "it re-reads the prompt after itself (\(2 * tokens.count) tokens) beyond the model's context of \(model.contextLength); use a shorter context"
            )
        }
        let fork = cache.fork()
        var obs = Observations(layers: cache.layers, kvHeads: cache.kvHeads, group: cache.group, windowStart: nil)
        obs.maxima = Array(repeating: [Float](repeating: 0, count: tokens.count * cache.group), count: cache.layers * cache.kvHeads)
        fork.observations = obs
        try model.forward(tokens, cache: fork)
        return fork.observations!.maxima!
    }

    /// The group-averaged re-read score of stream `stream` at `position` (0 past the re-read prompt).
    private static func base(_ all: [[Float]], stream: Int, position: Int32, group: Int) -> Float {
        let r = all[stream], p = Int(position)
        guard p < r.count / group else { return 0 }
        var m: Float = 0
        for g in 0..<group { m += r[p * group + g] }
        return m / Float(group)
    }

    /// The slot scores of one stream: its group mean, plus (`headmean=on`) the mean over the layer's KV heads.
    public func scores(_ s: StreamView) -> [Float] {
        guard let all = s.prepared[Self.passKey] as? [[Float]], s.stream < all.count else {
            preconditionFailure("kvcompose needs its re-read pass's scores; the runner runs `passes` before compressing")
        }
        let heads = all.count / max(s.layers, 1), first = s.layer * heads
        return s.positions.map { p in
            let own = Self.base(all, stream: s.stream, position: p, group: s.group)
            guard headMean == .on else { return own }
            var mean: Float = 0
            for h in 0..<heads { mean += Self.base(all, stream: first + h, position: p, group: s.group) }
            return own + mean / Float(heads)
        }
    }

    public var ranksAcrossStreams: Bool { true }

    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? {
        if layout == .unstructured { return KVzipPolicy.pooled(views, budgets, scores: scores) }
        let scored = views.map { $0.map(scores) }
        // Composite tokens: per layer, the heads' sorted scores averaged rank by rank.
        var composite = scored.map { heads -> [Float] in
            let sorted = heads.map { $0.sorted(by: >) }
            let width = sorted.map(\.count).max() ?? 0
            return (0..<width).map { r in
                let present = sorted.filter { r < $0.count }
                return present.reduce(0) { $0 + $1[r] } / Float(max(present.count, 1))
            }
        }
        // Layer 0 keeps at least what any layer's composite tokens would earn (kvpress: "ensures first layer is the largest").
        if !composite.isEmpty {
            for r in composite[0].indices { composite[0][r] = composite.reduce(composite[0][r]) { r < $1.count ? max($0, $1[r]) : $0 } }
        }
        // The best composite tokens of all layers: as many as the budgets' total per KV head.
        let heads = max(views.map(\.count).max() ?? 1, 1)
        let total = budgets.joined().reduce(0, +) / heads
        var pool: [(score: Float, layer: Int, rank: Int)] = []
        for (l, row) in composite.enumerated() { for (r, x) in row.enumerated() { pool.append((x, l, r)) } }
        // Highest first; ties to the earlier rank, then the earlier layer (deterministic).
        pool.sort { ($0.score, -$0.rank, -$0.layer) > ($1.score, -$1.rank, -$1.layer) }
        var perLayer = [Int](repeating: 0, count: views.count)
        for e in pool.prefix(max(0, total)) { perLayer[e.layer] += 1 }
        return views.indices.map { l in
            views[l].indices.map { h in
                let v = views[l][h], n = min(max(perLayer[l], 1), v.count)
                return topK(v, budget: n, scores: scored[l][h], pinned: [])
            }
        }
    }

    public static let info = PolicyInfo(
        KVComposePolicy.self, summary: "attention from re-reading the prompt; layer budgets by composite tokens, equal per head",
        paper: "KVCompose, 2025 (arXiv:2509.05165)")
}
