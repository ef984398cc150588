import Foundation
import KVKitTestSupport
import Testing
@testable import KVCache

/// K and V values derived from (layer, head, position), so survivors can be checked after any history.
func kvValue(_ layer: Int, _ head: Int, _ pos: Int32, _ d: Int, value: Bool) -> Float {
    Float(layer * 1000 + head * 100) + Float(pos) + Float(d) / 64 + (value ? 0.5 : 0)
}

func appendTokens(_ cache: PagedKVCache, count n: Int) {
    let hd = cache.headDim, H = cache.kvHeads
    let pos = (0..<n).map { Int32(cache.nextPosition + $0) }
    for l in 0..<cache.layers {
        var k = [Float](repeating: 0, count: n * H * hd), v = k
        for i in 0..<n {
            for h in 0..<H {
                for d in 0..<hd {
                    k[(i * H + h) * hd + d] = kvValue(l, h, pos[i], d, value: false)
                    v[(i * H + h) * hd + d] = kvValue(l, h, pos[i], d, value: true)
                }
            }
        }
        cache.append(layer: l, keys: k, values: v, positions: pos, tokens: pos.map { $0 &* 7 })
    }
    cache.nextPosition += n
}

/// Checks every invariant of a set of caches sharing one pool, against the expected positions per stream.
func audit(_ caches: [PagedKVCache], expected: [[[Int32]]], pool: PagePool) -> String? {
    var owners: [Int32: Int] = [:]
    for c in caches { for t in c.tables { for p in t.pages { owners[p, default: 0] += 1 } } }
    for (p, n) in owners where pool.refCount(p) != n { return "page \(p): refcount \(pool.refCount(p)), owners \(n)" }
    let free = Set(pool.freePages)
    if free.count != pool.freePages.count { return "a page is on the free list twice" }
    if !free.isDisjoint(with: owners.keys) { return "a page in use is on the free list" }
    if free.count + owners.count != pool.capacityPages { return "leak: \(pool.capacityPages) pages, \(owners.count) used, \(free.count) free" }
    for (ci, c) in caches.enumerated() {
        for l in 0..<c.layers {
            for h in 0..<c.kvHeads {
                let t = c.table(layer: l, head: h)
                if t.pages.count != (t.count + c.pageSize - 1) / c.pageSize { return "cache \(ci) (\(l),\(h)): \(t.pages.count) pages for \(t.count) tokens" }
                let slots = c.slots(layer: l, head: h)
                if slots.map(\.position) != expected[ci][l * c.kvHeads + h] { return "cache \(ci) (\(l),\(h)): positions differ" }
                for (i, s) in slots.enumerated() {
                    let page = t.pages[i / c.pageSize], j = i % c.pageSize
                    if s.token != s.position &* 7 { return "token id changed" }
                    for d in 0..<c.headDim {
                        if c.pool.keys(page)[j * c.headDim + d] != kvValue(l, h, s.position, d, value: false)
                            || c.pool.values(page)[j * c.headDim + d] != kvValue(l, h, s.position, d, value: true)
                        {
                            return "cache \(ci) (\(l),\(h)) slot \(i): K/V changed"
                        }
                    }
                }
            }
        }
    }
    return nil
}

@Suite struct CacheOperationTests {
    /// 10^5 random append / keep / fork / release operations over caches sharing one pool.
    @Test func randomOperationsKeepEveryInvariant() {
        var rng = SplitMix64(seed: 42)
        let pool = PagePool(headDim: 4, pageSize: 3)
        var caches: [PagedKVCache] = [PagedKVCache(layers: 2, kvHeads: 2, headDim: 4, pool: pool)]
        var expected: [[[Int32]]] = [Array(repeating: [], count: 4)]
        var ops = 0, failures = 0
        while ops < 100_000 {
            let ci = Int.random(in: 0..<caches.count, using: &rng)
            // No local reference to caches[ci]: a released cache must really be gone before the audit.
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...3 where caches[ci].nextPosition < 10_000:
                let n = Int.random(in: 1...5, using: &rng)
                let start = Int32(caches[ci].nextPosition)
                appendTokens(caches[ci], count: n)
                for s in 0..<4 { expected[ci][s] += (0..<Int32(n)).map { start + $0 } }
            case 4...6:
                let s = Int.random(in: 0..<4, using: &rng)
                let n = expected[ci][s].count
                let keep = (0..<n).filter { _ in Int.random(in: 0..<4, using: &rng) != 0 }
                caches[ci].keep(layer: s / 2, head: s % 2, indices: keep)
                expected[ci][s] = keep.map { expected[ci][s][$0] }
            case 7 where caches.count < 6:
                caches.append(caches[ci].fork())
                expected.append(expected[ci])
            case 8 where caches.count > 1:
                caches.remove(at: ci)
                expected.remove(at: ci)
            default:
                continue
            }
            ops += 1
            if ops % 97 == 0 || ops > 99_900, let problem = audit(caches, expected: expected, pool: pool) {
                failures += 1
                Issue.record("after \(ops) operations: \(problem)")
                if failures > 3 { return }
            }
        }
        caches.removeAll()
        #expect(pool.livePages == 0, "every page returns to the pool when the last cache goes")
    }

    @Test func forkSharesPagesUntilWritten() {
        let base = PagedKVCache(layers: 1, kvHeads: 1, headDim: 4, pageSize: 4)
        appendTokens(base, count: 10)  // pages: 4, 4, 2
        let f = base.fork()
        #expect(base.pool.livePages == 3)
        #expect(f.sharedPages == 3)
        appendTokens(f, count: 1)  // the partly filled last page is copied, not written in place
        #expect(base.pool.livePages == 4)
        #expect(base.count(layer: 0, head: 0) == 10 && f.count(layer: 0, head: 0) == 11)
        f.keep(layer: 0, head: 0, indices: Array(0..<4) + [5, 6])  // first page unchanged: still shared
        #expect(f.table(layer: 0, head: 0).pages[0] == base.table(layer: 0, head: 0).pages[0])
        #expect(base.pool.refCount(f.table(layer: 0, head: 0).pages[0]) == 2)
        #expect(audit([base, f], expected: [[Array(0..<10)], [Array(0..<4) + [5, 6]]], pool: base.pool) == nil)
    }

    @Test func keepReturnsEmptiedPagesAndAccountsBytes() {
        let c = PagedKVCache(layers: 1, kvHeads: 2, headDim: 8, pageSize: 16)
        appendTokens(c, count: 100)
        #expect(c.pool.livePages == 2 * 7)
        c.keep(layer: 0, head: 0, indices: Array(stride(from: 0, to: 100, by: 5)))  // 20 kept → 2 pages
        #expect(c.pool.livePages == 2 + 7)
        #expect(c.liveTokenBytes == (20 + 100) * (2 * 8 * 4 + 8))
        #expect(c.pageBytes == 9 * c.pool.pageBytes)
        #expect(c.pool.allocatedBytes == 14 * c.pool.pageBytes + 2 * c.pool.pageBytes, "two fresh pages were written; freed ones stay pooled")
    }
}

/// Observation taps against probabilities computed densely.
@Suite struct ObservationTests {
    @Test(arguments: [1, 5, 16])
    func accumulatedAndWindowAttentionMatchDense(pageSize: Int) {
        var rng = SplitMix64(seed: UInt64(pageSize))
        let H = 2, G = 3, nHeads = H * G, hd = 16
        let cache = PagedKVCache(layers: 1, kvHeads: H, headDim: hd, group: G, pageSize: pageSize)
        cache.observations = Observations(layers: 1, kvHeads: H, group: G, windowStart: 30)
        // Two statistics of the open kind, declared here as a plug-in would: the default fold (a sum: H2O's
        // totals) and a count of the probabilities under the uniform share from position 30 on.
        cache.observations!.statistics.install(SumOfProbabilities(), promptEnd: 0, slots: [0, 0], group: G)
        cache.observations!.statistics.install(BelowUniform(), promptEnd: 0, slots: [0, 0], group: G)
        var allK: [Float] = [], allQ: [Float] = [], pos: [Int32] = []
        for T in [25, 1, 1, 7, 1] {  // prefill, decode steps, a chunk crossing the window start, decode
            let p = (0..<T).map { Int32(cache.nextPosition + $0) }
            let k = randomFloats(T * H * hd, &rng, scale: 2), v = randomFloats(T * H * hd, &rng)
            let q = randomFloats(T * nHeads * hd, &rng, scale: 2)
            cache.append(layer: 0, keys: k, values: v, positions: p, tokens: p)
            cache.nextPosition += T
            var out = [Float](repeating: 0, count: T * nHeads * hd)
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    PagedAttention.attend(cache: cache, layer: 0, q: qp.baseAddress!, positions: p, nHeads: nHeads, out: op.baseAddress!)
                }
            }
            allK += k; allQ += q; pos += p
        }
        let N = pos.count
        var acc = [Double](repeating: 0, count: N * H * G), win = acc, below = acc, belowLoose = acc
        for t in 0..<N {
            for head in 0..<nHeads {
                let h = head / G, g = head % G
                let s = (0...t).map { j in
                    (0..<hd).reduce(0.0) { $0 + Double(allQ[(t * nHeads + head) * hd + $1]) * Double(allK[(j * H + h) * hd + $1]) } / Double(hd).squareRoot()
                }
                let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                for j in 0...t {
                    acc[(h * N + j) * G + g] += e[j] / z
                    if pos[t] >= 30 { win[(h * N + j) * G + g] += e[j] / z }
                    // Float32 may round a probability within 1e-5 of 1/(t+1) either way: bounds, not one count.
                    if pos[t] >= 30 && e[j] / z < 1 / Double(t + 1) - 1e-5 { below[(h * N + j) * G + g] += 1 }
                    if pos[t] >= 30 && e[j] / z < 1 / Double(t + 1) + 1e-5 { belowLoose[(h * N + j) * G + g] += 1 }
                }
            }
        }
        let obs = cache.observations!
        var worst = 0.0
        for h in 0..<H {
            for i in 0..<(N * G) {
                worst = max(worst, abs(Double(obs.statistics["sum"]![h][i]) - acc[h * N * G + i]), abs(Double(obs.window[h][i]) - win[h * N * G + i]))
            }
        }
        #expect(worst < 1e-5, "max abs error \(worst)")
        let sums = obs.statistics["sum"]!, counts = obs.statistics["below"]!
        var outside = 0
        for h in 0..<H {
            for i in 0..<(N * G) where Double(counts[h][i]) < below[h * N * G + i] || Double(counts[h][i]) > belowLoose[h * N * G + i] { outside += 1 }
        }
        #expect(outside == 0 && belowLoose.reduce(0, +) > 0, "\(outside) counts outside the dense bounds")
        // Compaction keeps the statistics aligned with the slots they describe.
        cache.keep(layer: 0, head: 1, indices: [0, 3, 30])
        #expect(cache.observations!.statistics["sum"]![1].count == 3 * G)
        #expect(abs(Double(cache.observations!.statistics["sum"]![1][2 * G + 1]) - acc[(1 * N + 30) * G + 1]) < 1e-5)
        #expect(cache.observations!.statistics["sum"]![0] == sums[0], "the other stream is untouched")
        #expect(cache.observations!.statistics["below"]![1] == Array(counts[1][0..<G] + counts[1][(3 * G)..<(4 * G)] + counts[1][(30 * G)..<(31 * G)]))
    }
}

/// The default fold: probabilities summed over every query.
private struct SumOfProbabilities: AttentionStatistic {
    var key: String { "sum" }
}

/// How many queries at or after position 30 gave a key less than the uniform share of what they see.
private struct BelowUniform: AttentionStatistic {
    var key: String { "below" }
    var needsVisibleCount: Bool { true }
    func observes(query position: Int32, promptEnd: Int32) -> Bool { position >= 30 }
    func fold(_ p: UnsafePointer<Float>, keys: UnsafePointer<Int32>, count: Int, row: AttentionRow, into column: UnsafeMutablePointer<Float>, stride: Int) {
        for j in 0..<count where row.sees(keys[j]) && p[j] < 1 / Float(row.visible) { column[j * stride] += 1 }
    }
}

/// Counts the rows a layer was fed and sums their first value (a tap as small as a test needs).
private struct RowCounter: LayerInputTap {
    var key: String
    var rows: [Int] = [0, 0]
    var firstValues: Float = 0
    mutating func add(layer: Int, rows r: UnsafePointer<Float>, width: Int, positions: [Int32]) {
        rows[layer] += positions.count
        for t in positions.indices { firstValues += r[t * width] }
    }
}

@Suite struct LayerInputTapTests {
    /// Taps are installed once per key (a second `prepare` keeps what the first collected), are handed
    /// every row in installation order, and travel with a fork by value: after the fork each side keeps
    /// adding its own rows, as the other observations do.
    @Test func tapsAreInstalledOncePerKeyAndForkByValue() throws {
        let cache = PagedKVCache(layers: 2, kvHeads: 1, headDim: 2, pageSize: 4)
        cache.observations = Observations(layers: 2, kvHeads: 1, group: 1, windowStart: nil)
        cache.observations!.inputTaps.install(RowCounter(key: "a"))
        cache.observations!.inputTaps.install(RowCounter(key: "b"))
        let rows: [Float] = [1, 0, 2, 0, 3, 0]
        rows.withUnsafeBufferPointer { cache.observations!.inputTaps.add(layer: 0, rows: $0.baseAddress!, width: 2, positions: [0, 1, 2]) }
        cache.observations!.inputTaps.install(RowCounter(key: "a"))  // already there: kept as it stands
        #expect(cache.observations!.inputTaps.all.map(\.key) == ["a", "b"])
        #expect((cache.observations!.inputTaps["a"] as? RowCounter)?.rows == [3, 0])
        let fork = cache.fork()
        rows.withUnsafeBufferPointer { fork.observations!.inputTaps.add(layer: 1, rows: $0.baseAddress!, width: 2, positions: [3]) }
        let forked = try #require(fork.observations!.inputTaps["b"] as? RowCounter), original = try #require(cache.observations!.inputTaps["b"] as? RowCounter)
        #expect(forked.rows == [3, 1] && forked.firstValues == 7)
        #expect(original.rows == [3, 0] && original.firstValues == 6)
        #expect(fork.observations != cache.observations)
        cache.reset()
        #expect(cache.observations!.inputTaps.isEmpty, "a reset cache starts without taps (prepare installs them again)")
    }
}
