import KVCache

/// What the attention kernel must tap while the prompt runs, for a policy to score tokens.
public struct ObservationNeeds: Sendable, Equatable {
    /// Attention from the last `window` queries before compression (SnapKV: 32, TOVA: 1); 0 = none.
    /// The largest of `windows`.
    public var window: Int { windows.max() ?? 0 }
    /// Every window size asked for: policies sharing one prefill each get their own window's totals.
    public var windows: Set<Int>
    /// Each token's self-information under the model (Selective Context): the prompt's logits at every row.
    public var selfInformation = false
    /// Moments of the prompt's queries before RoPE, over the rows at or after this position (Expected
    /// Attention leaves its sink rows out); nil = none. The earliest of `queryStarts`.
    public var queriesFrom: Int? { queryStarts.min() }
    /// Every start asked for: policies sharing one prefill each get the moments from their own start.
    public var queryStarts: Set<Int>
    // Passes of a policy's own (KVzip's reconstruction, DuoAttention's calibration) are not statistics the
    // kernel taps: the policy declares them in its file (`EvictionPolicy.passes`).
    /// Non-causal attention within chunks of the prompt (Compactor's), one per spec asked for.
    public var chunks: Set<ChunkedAttention.Spec> = []
    /// Attention from the question's own queries: in a query-aware run the prompt ends with the question's
    /// turn, whose length the runner passes to `Compressor.prepare` (FINCH). Without a question (query-agnostic
    /// runs, `generate`) the policy reads its `windows` instead.
    public var questionWindow = false
    /// Statistics of the attention probabilities declared in a policy's own file (`AttentionStatistic`), by
    /// key: a policy reads its own with `StreamView.statistic(_:)`.
    public var statistics: [any AttentionStatistic] = []
    public init(window: Int = 0, selfInformation: Bool = false, queriesFrom: Int? = nil) {
        self.windows = window > 0 ? [window] : []
        self.selfInformation = selfInformation; self.queryStarts = queriesFrom.map { [$0] } ?? []
    }
    public static let none = ObservationNeeds()
    public func union(_ o: ObservationNeeds) -> ObservationNeeds {
        var u = ObservationNeeds(selfInformation: selfInformation || o.selfInformation)
        u.windows = windows.union(o.windows)
        u.queryStarts = queryStarts.union(o.queryStarts)
        u.chunks = chunks.union(o.chunks)
        u.questionWindow = questionWindow || o.questionWindow
        u.statistics = statistics + o.statistics.filter { st in !statistics.contains { $0.key == st.key } }
        return u
    }
    /// Whether the prompt's pass must tap anything.
    public var tapsAttention: Bool { window > 0 || !queryStarts.isEmpty || !chunks.isEmpty || !statistics.isEmpty }
    public static func == (a: ObservationNeeds, b: ObservationNeeds) -> Bool {
        a.windows == b.windows && a.selfInformation == b.selfInformation && a.queryStarts == b.queryStarts
            && a.chunks == b.chunks && a.questionWindow == b.questionWindow && a.statistics.map(\.key) == b.statistics.map(\.key)
    }
}

/// How the scores of the query heads that share one KV head are combined (grouped-query attention).
public enum GroupCombine: String, ParameterChoice {
    case mean, max
}

/// One (layer, KV head) stream as a policy sees it at compression time.
public struct StreamView {
    public let layer: Int
    public let head: Int
    public let layers: Int
    /// Tokens in the stream.
    public let count: Int
    /// Query heads per KV head.
    public let group: Int
    public let headDim: Int
    /// Original positions and token ids, in slot order.
    public let positions: [Int32]
    public let tokenIds: [Int32]
    public internal(set) var window: [Float]?
    /// The question's length in tokens when `window` is the question's (`ObservationNeeds.questionWindow` in
    /// a query-aware run); nil otherwise.
    public internal(set) var question: Int?
    /// Per slot: the token's self-information in nats, when requested through `ObservationNeeds`.
    public let selfInformation: [Float]?
    /// Moments of the layer's queries before RoPE (every query head), when requested through `ObservationNeeds`.
    public internal(set) var queries: QueryMoments?
    /// The results of the policies' own passes (`EvictionPolicy.passes`), by pass key: a policy reads its
    /// own and slices it for the stream (`layer`, `head`, `positions`).
    public var prepared: [String: any Sendable] = [:]
    /// The stream's index among every (layer, KV head) stream: `layer · kvHeads + head`.
    public var stream: Int { layer * cache.kvHeads + head }
    /// A seed for this stream, derived from the run's seed, layer and head.
    public let seed: UInt64
    let text: (@Sendable (Int32) -> String)?
    let cache: PagedKVCache

    /// The layer's sliding window in tokens (Gemma 3's local layers), nil for a global layer: such a stream
    /// holds only what the layer can still attend to, so a budget is a share of that.
    public var slidingWindow: Int? { cache.windows[layer] }

    /// The same stream as a policy with `needs` sees it alone: the totals of its own observation window
    /// and the query moments from its own start. A wrapper hands each part this view, so `compose:snapkv+rkv`
    /// scores rkv on rkv's 8 queries, not on the 32 SnapKV asked for (the prefill taps both).
    public func seen(by needs: ObservationNeeds) -> StreamView {
        var v = self
        let obs = cache.observations, i = layer * cache.kvHeads + head
        v.window = obs.flatMap { $0.window(size: needs.window)?[i] }
        if needs.questionWindow, let q = obs?.question, let w = obs?.window(size: q) { v.window = w[i]; v.question = q }
        v.queries = needs.queriesFrom.flatMap { obs?.queries(from: Int32($0)) } ?? (obs?.queryMoments.count == 1 ? obs?.queries : nil)
        return v
    }

    /// The chunked non-causal attention tapped for `spec` (`ObservationNeeds.chunks`): the first position
    /// it scores and `[(position − from)·group + g]` for this stream; nil when it was not tapped.
    public func chunkedAttention(_ spec: ChunkedAttention.Spec) -> (from: Int32, sums: [Float])? {
        guard let c = cache.observations?.chunked.first(where: { $0.spec == spec }) else { return nil }
        return (c.from, c.sums[stream])
    }

    /// The text of a slot's token (empty when the compression context has no tokenizer).
    public func tokenText(_ slot: Int) -> String { text?(tokenIds[slot]) ?? "" }

    /// Key and value rows of a slot (`headDim` floats, RoPE applied to keys; decoded when the page is
    /// quantized or cold).
    public func key(_ slot: Int) -> [Float] { row(slot, keys: true) }
    public func value(_ slot: Int) -> [Float] { row(slot, keys: false) }

    private func row(_ slot: Int, keys: Bool) -> [Float] {
        let page = cache.table(layer: layer, head: head).pages[slot / cache.pageSize]
        if cache.pool.kind(page) == .raw {
            let base = (keys ? cache.pool.keys(page) : cache.pool.values(page)) + (slot % cache.pageSize) * headDim
            return Array(UnsafeBufferPointer(start: base, count: headDim))
        }
        let scratch = PagePool.Scratch(cache.pool)
        guard let r = cache.pool.read(page, scratch, keys: keys, values: !keys) else {
            return [Float](repeating: 0, count: headDim)
        }
        let base = (keys ? r.keys : r.values) + (slot % cache.pageSize) * headDim
        return Array(UnsafeBufferPointer(start: base, count: headDim))
    }

    /// L2 norms of every slot's key (or value) row, one page decoded at a time.
    public func keyNorms() -> [Float] { norms(keys: true) }
    public func valueNorms() -> [Float] { norms(keys: false) }

    private func norms(keys: Bool) -> [Float] {
        let t = cache.table(layer: layer, head: head), ps = cache.pageSize
        let scratch = PagePool.Scratch(cache.pool)
        var out = [Float](repeating: 0, count: count)
        for (pi, page) in t.pages.enumerated() {
            guard let r = cache.pool.read(page, scratch, keys: keys, values: !keys) else { continue }
            let base = keys ? r.keys : r.values
            for j in 0..<min(ps, count - pi * ps) {
                var s: Float = 0
                for d in 0..<headDim { let x = base[j * headDim + d]; s += x * x }
                out[pi * ps + j] = s.squareRoot()
            }
        }
        return out
    }

    /// This stream's `[slot][group]` values of the attention statistic installed under `key`
    /// (`ObservationNeeds.statistics`); nil when it was not tapped.
    public func statistic(_ key: String) -> [Float]? {
        cache.observations?.statistics[key]?[stream]
    }

    /// Per-slot scores from a `[slot][group]` statistic, combined over the group.
    public func combine(_ perHead: [Float], _ how: GroupCombine) -> [Float] {
        (0..<count).map { i in
            let row = perHead[(i * group)..<(i * group + group)]
            return how == .mean ? row.reduce(0, +) / Float(group) : row.max()!
        }
    }
}

/// A token-eviction policy: scores the slots of each stream; the default selection keeps the pinned
/// slots (sinks, observation window: they count inside the budget, as in the papers) and fills the
/// rest of the budget with the highest-scoring slots. Most policies implement only `scores`.
public protocol EvictionPolicy: Sendable {
    /// The registry name (`--policy NAME`).
    var name: String { get }
    /// What the kernel must observe during the prompt.
    var needs: ObservationNeeds { get }
    /// Passes of the policy's own, run once the prompt is in the cache (KVzip's reconstruction,
    /// DuoAttention's calibration); their results are in `StreamView.prepared`. Default: none.
    var passes: [PolicyPass] { get }
    /// Higher is kept first. One value per slot.
    func scores(_ s: StreamView) -> [Float]
    /// Slots kept whatever their score, given the stream's token budget.
    func pinned(_ s: StreamView, budget: Int) -> [Int]
    /// Token budget per layer, given the budget one stream would get with a uniform split.
    func layerBudgets(uniform: [Int], counts: [Int]) -> [Int]
    /// The kept slots (ascending) of every KV head of one layer, given each head's budget.
    func select(layer views: [StreamView], budgets: [Int]) -> [[Int]]
    /// The kept slots of every stream of every layer at once, given the uniform budgets `[layer][head]`
    /// (a policy ranking across layers, as KVzip's global threshold); nil (the default): layer by layer.
    func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]?
    /// Whether the policy's scores are comparable across streams and it ranks them all at once (KVzip's
    /// global scope): a wrapper spending part of a budget by these scores then ranks across streams too.
    var ranksAcrossStreams: Bool { get }
    /// The earlier layer whose kept positions this layer reuses instead of selecting its own (layer-wise
    /// index reuse, as in ChunkKV); `layer` itself (the default) selects afresh.
    func selectionSource(layer: Int) -> Int
    /// Whether the policy frees tokens (true for all but read-side policies such as `quest`, which keep
    /// every token and limit what each query reads).
    var evicts: Bool { get }
    /// Whether compressing with the policy changes anything (false only for `full`, the reference: the
    /// compressor and the generate hooks then skip it, without naming a type).
    var compresses: Bool { get }
    /// Called after the kept slots are applied: a read-side policy returns the page selector later
    /// attention passes read through (the caller keeps it beside the cache); nil reads every page.
    func reads(_ cache: PagedKVCache, budget: Budget) -> (any PageSelector)?
    /// Throws `PolicyError.badValue` for a parameter outside its declaration, however the policy was
    /// built (the compressor calls it first). `Configurable` policies get it from their `@Parameter`s.
    func checkParameters() throws
}

extension EvictionPolicy where Self: Configurable {
    public func checkParameters() throws {
        do { try validate() } catch let e as ParameterError {
            throw PolicyError.badValue(policy: name, name: e.name, value: e.value, expected: e.expected)
        }
    }
}

extension EvictionPolicy {
    public var needs: ObservationNeeds { .none }
    public var passes: [PolicyPass] { [] }
    public func pinned(_ s: StreamView, budget: Int) -> [Int] { [] }
    public func layerBudgets(uniform: [Int], counts: [Int]) -> [Int] { uniform }
    public func selectionSource(layer: Int) -> Int { layer }
    public func selectAll(layers views: [[StreamView]], budgets: [[Int]]) -> [[[Int]]]? { nil }
    public var ranksAcrossStreams: Bool { false }
    public var evicts: Bool { true }
    public var compresses: Bool { true }
    public func reads(_ cache: PagedKVCache, budget: Budget) -> (any PageSelector)? { nil }
    public func checkParameters() throws {}
    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] {
        zip(views, budgets).map { v, b in topK(v, budget: b, scores: scores(v), pinned: pinned(v, budget: b)) }
    }
}

/// Pinned slots first (as many as fit), then the highest scores; ties go to the later slot.
/// Returns ascending slot indices, exactly `min(budget, count)` of them.
public func topK(_ v: StreamView, budget: Int, scores: [Float], pinned: [Int]) -> [Int] {
    let b = min(max(budget, 0), v.count)
    if b >= v.count { return Array(0..<v.count) }
    var chosen = Set<Int>()
    for p in pinned where chosen.count < b && p >= 0 && p < v.count { chosen.insert(p) }
    if chosen.count < b {
        let order = (0..<v.count).filter { !chosen.contains($0) }.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 > $1 }
        for i in order.prefix(b - chosen.count) { chosen.insert(i) }
    }
    return chosen.sorted()
}

/// The first `n` and the last `m` slots of a stream.
public func edges(_ count: Int, first n: Int, last m: Int) -> [Int] {
    Array(0..<min(n, count)) + Array(max(0, count - m)..<count)
}
