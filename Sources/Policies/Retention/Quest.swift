import Foundation
import KVCache

/// `quest` — Quest (Tang et al., "Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference",
/// 2024). Nothing is evicted. Each page keeps the per-channel minimum and maximum of its keys; for every
/// attention block after compression (the question and each decode step), the page's upper bound
/// Σ_d max(q_d·min_d, q_d·max_d) — the largest score any of its keys could reach — is taken over the
/// block's query rows, and only the `k` pages with the highest bounds are read. The budget is the share
/// of pages read: `k = ⌈budget tokens / page size⌉` per stream, at least 1. Pages appended after
/// compression (the question and the answer) are always read and count inside `k`. The retrieval-
/// preserving extreme: nothing is lost, little is read; the cache itself is not smaller.
/// The first `dense_layers` read every page (the paper: attention there is not sparse); a block of several
/// query tokens (the question after the context) reads every page as Quest's prefill is dense, unless
/// `prefill=sparse` (max of the bound over the block's rows); `sinks` pages at the start (the attention
/// sink) and `recent` pages at the end are always read (at least the last page present at compression,
/// which later tokens fill, so its stored bounds would be stale).
public struct QuestPolicy: EvictionPolicy, Configurable {
    /// How a block of several query tokens reads the cache.
    public enum Prefill: String, ParameterChoice { case dense, sparse }
    @Parameter("recent", 1...64, "pages at the end of each stream always read") public var recent = 1
    @Parameter("sinks", 0...64, "pages at the start of each stream always read") public var sinks = 1
    @Parameter("dense_layers", 0...1024, "first layers that read every page") public var denseLayers = 2
    @Parameter("prefill", "blocks of several query tokens: read every page, or select") public var prefill = Prefill.dense
    public var name: String { "quest" }
    public var evicts: Bool { false }
    public init() {}

    public func scores(_ s: StreamView) -> [Float] { [Float](repeating: 0, count: s.count) }
    public func select(layer views: [StreamView], budgets: [Int]) -> [[Int]] { views.map { Array(0..<$0.count) } }
    public func reads(_ cache: PagedKVCache, budget: Budget) -> (any PageSelector)? {
        QuestSelector(cache: cache, budget: budget, recent: recent, sinks: sinks, denseLayers: denseLayers, sparsePrefill: prefill == .sparse)
    }

    public static let info = PolicyInfo(
        QuestPolicy.self, summary: "keep all; each query reads the top pages by key min/max bound",
        paper: "Tang et al. 2024, Quest (arXiv:2406.10774)")
}

/// Per-page key bounds of a compressed cache and the top-k choice; counts the pages it lets blocks read.
public final class QuestSelector: PageSelector, @unchecked Sendable {
    let headDim: Int
    /// Per stream: `[page][2·headDim]` (min then max) for the pages present at compression.
    let bounds: [[Float]]
    let boundPages: [Int]
    /// Pages read per stream and block.
    public let k: [Int]
    let recent: Int
    private let lock = NSLock()
    private var read = 0, total = 0

    let denseLayers: Int, sparsePrefill: Bool, sinks: Int

    init(cache: PagedKVCache, budget: Budget, recent: Int, sinks: Int, denseLayers: Int, sparsePrefill: Bool) {
        self.sinks = sinks
        headDim = cache.headDim; self.recent = max(1, recent); self.denseLayers = denseLayers; self.sparsePrefill = sparsePrefill
        var bounds: [[Float]] = [], boundPages: [Int] = [], k: [Int] = []
        let hd = cache.headDim, ps = cache.pageSize
        let scratch = PagePool.Scratch(cache.pool)
        for l in 0..<cache.layers {
            for h in 0..<cache.kvHeads {
                let t = cache.table(layer: l, head: h)
                var b = [Float](repeating: 0, count: t.pages.count * 2 * hd)
                for (pi, page) in t.pages.enumerated() {
                    guard let keys = cache.pool.read(page, scratch, values: false)?.keys else { continue }
                    let n = min(ps, t.count - pi * ps)
                    for d in 0..<hd {
                        var mn = Float.infinity, mx = -Float.infinity
                        for j in 0..<n { let x = keys[j * hd + d]; mn = min(mn, x); mx = max(mx, x) }
                        b[pi * 2 * hd + d] = mn; b[pi * 2 * hd + hd + d] = mx
                    }
                }
                bounds.append(b); boundPages.append(t.pages.count)
                k.append(max(1, (budget.tokens(for: t.count) + ps - 1) / ps))
            }
        }
        self.bounds = bounds; self.boundPages = boundPages; self.k = k
        kvHeads = cache.kvHeads
    }
    let kvHeads: Int

    /// Share of the pages present that blocks have read so far (1 = dense attention).
    public var readFraction: Double { lock.lock(); defer { lock.unlock() }; return total > 0 ? Double(read) / Double(total) : 1 }

    public func readsEveryPage(layer: Int, tokens: Int) -> Bool { layer < denseLayers || (tokens > 1 && !sparsePrefill) }

    public func select(layer: Int, head: Int, pageCount: Int, q: UnsafePointer<Float>, rows: Int, tokens: Int) -> [Int] {
        let s = layer * kvHeads + head, hd = headDim
        let known = min(boundPages[s], pageCount)
        let budget = readsEveryPage(layer: layer, tokens: tokens) ? pageCount : k[s]
        // Pages written after compression, and the last `recent` pages, are always read.
        var always = Set(known..<pageCount)
        for p in max(0, known - recent)..<known { always.insert(p) }
        for p in 0..<min(sinks, known) { always.insert(p) }
        var chosen: [Int]
        if pageCount <= budget {
            chosen = Array(0..<pageCount)
        } else {
            let b = bounds[s]
            var scored: [(Float, Int)] = []
            for p in 0..<known where !always.contains(p) {
                var best = -Float.infinity
                for r in 0..<rows {
                    let qr = q + r * hd
                    var u: Float = 0
                    for d in 0..<hd { let x = qr[d]; u += max(x * b[p * 2 * hd + d], x * b[p * 2 * hd + hd + d]) }
                    best = max(best, u)
                }
                scored.append((best, p))
            }
            scored.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 > $1.1 }
            // The newest always-read pages first if they alone exceed the budget, then the sinks.
            let newest = always.filter { $0 >= sinks }.sorted().suffix(budget)
            chosen = Array(newest) + always.filter { $0 < sinks }.sorted().prefix(max(0, budget - newest.count))
            chosen += scored.prefix(max(0, budget - chosen.count)).map(\.1)
            chosen.sort()
        }
        lock.lock(); read += chosen.count; total += pageCount; lock.unlock()
        return chosen
    }
}
