import Foundation
import KVKitTestSupport
import Testing
import TensorMath
@testable import KVCache

func randomFloats(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) }
}

/// Runs the paged kernel over `steps` appends (a prefill of `steps[0]` tokens, then more chunks) and
/// returns the max abs error against the dense oracle on every step's queries.
/// With `window`, layer 1 is a sliding-window layer whose expired pages are freed after every step.
func pagedVsDense(heads: Int, kvHeads: Int, headDim: Int, pageSize: Int, steps: [Int], seed: UInt64, window: Int? = nil) -> Float {
    var rng = SplitMix64(seed: seed)
    let cache = PagedKVCache(layers: 2, kvHeads: kvHeads, headDim: headDim, pageSize: pageSize)
    cache.windows[1] = window
    var allK: [Float] = [], allV: [Float] = [], allPos: [Int32] = []
    var worst: Float = 0
    for T in steps {
        let pos = (0..<T).map { Int32(cache.nextPosition + $0) }
        let k = randomFloats(T * kvHeads * headDim, &rng, scale: 2)
        let v = randomFloats(T * kvHeads * headDim, &rng)
        let q = randomFloats(T * heads * headDim, &rng, scale: 2)
        for layer in 0..<2 { cache.append(layer: layer, keys: k, values: v, positions: pos, tokens: pos) }
        cache.nextPosition += T
        allK += k; allV += v; allPos += pos
        var out = [Float](repeating: .nan, count: T * heads * headDim)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                PagedAttention.attend(cache: cache, layer: 1, q: qp.baseAddress!, positions: pos, nHeads: heads, out: op.baseAddress!)
            }
        }
        if window != nil { cache.releaseOutsideWindow(layer: 1, next: cache.nextPosition) }
        let ref = DenseAttention.attend(
            q: q, queryPositions: pos, k: allK, v: allV, keyPositions: allPos,
            nHeads: heads, kvHeads: kvHeads, headDim: headDim, window: window)
        for i in ref.indices { worst = max(worst, abs(out[i] - ref[i])) }
        if out.contains(where: { $0.isNaN }) { return .infinity }
    }
    return worst
}

@Suite struct PagedAttentionTests {
    /// Random head counts, page sizes and lengths (many not filling the last page), on both kernel paths:
    /// decode-sized query blocks (direct dot products on pages) and prefill-sized ones (gathered tiles, sgemm).
    @Test(arguments: 0..<24)
    func pagedMatchesDenseOracle(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 7919)
        let kvHeads = Int.random(in: 1...3, using: &rng)
        let heads = kvHeads * Int.random(in: 1...4, using: &rng)
        let headDim = [8, 16, 32, 64].randomElement(using: &rng)!
        let pageSize = [1, 3, 7, 16, 32, 100].randomElement(using: &rng)!
        let prefill = Int.random(in: 1...300, using: &rng)
        let steps =
            [prefill] + (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 1...3, using: &rng) } + [Int.random(in: 20...90, using: &rng)]
        for threads in [1, 2] {
            let err = Threads.with(threads) {
                pagedVsDense(heads: heads, kvHeads: kvHeads, headDim: headDim, pageSize: pageSize, steps: steps, seed: UInt64(seed))
            }
            #expect(err <= 1e-5, "heads \(heads)/\(kvHeads) hd \(headDim) page \(pageSize) steps \(steps) threads \(threads): max abs err \(err)")
        }
    }

    /// Sliding-window layers (Gemma 3's local layers): the same random shapes with a window of 1–120
    /// tokens, expired pages freed between steps; the kernel equals the dense oracle with the window mask.
    @Test(arguments: 0..<12)
    func slidingWindowMatchesDenseOracle(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed) &* 104_729)
        let kvHeads = Int.random(in: 1...2, using: &rng), heads = kvHeads * Int.random(in: 1...4, using: &rng)
        let headDim = [8, 16, 32].randomElement(using: &rng)!, pageSize = [1, 4, 16].randomElement(using: &rng)!
        let window = Int.random(in: 1...120, using: &rng)
        let steps = [Int.random(in: 1...300, using: &rng)] + (0..<5).map { _ in Int.random(in: 1...40, using: &rng) }
        for threads in [1, 2] {
            let err = Threads.with(threads) {
                pagedVsDense(heads: heads, kvHeads: kvHeads, headDim: headDim, pageSize: pageSize, steps: steps, seed: UInt64(seed), window: window)
            }
            #expect(err <= 1e-5, "window \(window) page \(pageSize) steps \(steps) threads \(threads): max abs err \(err)")
        }
    }

    /// Pages wholly outside a layer's window are freed (whole pages only, global layers untouched) and
    /// counted; a fork keeps its parent's pages.
    @Test func expiredWindowPagesAreFreed() {
        let hd = 8, cache = PagedKVCache(layers: 2, kvHeads: 1, headDim: hd, pageSize: 16)
        cache.windows = [40, nil]
        let pos = (0..<100).map(Int32.init), kv = [Float](repeating: 1, count: 100 * hd)
        for l in 0..<2 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
        cache.nextPosition = 100
        let parent = cache.fork()
        // Next query at 100 sees positions 61...100: pages ending at 15, 31, 47 go; the page ending at 63 stays.
        #expect(cache.releaseOutsideWindow(layer: 0, next: 100) == 48 * 2 * hd * 4)
        #expect(cache.releaseOutsideWindow(layer: 1, next: 100) == 0)
        #expect(cache.count(layer: 0, head: 0) == 52 && cache.slots(layer: 0, head: 0).first?.position == 48)
        #expect(cache.count(layer: 1, head: 0) == 100 && cache.windowFreedBytes == 48 * 2 * hd * 4)
        #expect(parent.count(layer: 0, head: 0) == 100 && parent.windows == [40, nil])
    }

    @Test func bothKernelPathsAreExercised() {
        // One query row per head group (decode) stays below the gemm threshold; a long prefill is above it.
        #expect(3 * 1 < PagedAttention.gemmMinRows)
        #expect(3 * PagedAttention.queryChunk >= PagedAttention.gemmMinRows)
        #expect(pagedVsDense(heads: 9, kvHeads: 3, headDim: 64, pageSize: 16, steps: [517, 1, 1, 1], seed: 1) <= 1e-5)
    }

    @Test func scratchDoesNotGrowWithContext() {
        // The scratch bound depends on query rows, head size and page size only, never on keys held.
        let a = PagedAttention.scratchBytes(rows: 192, headDim: 64, pageSize: 16)
        #expect(a < 512 * 1024)
        #expect(a < 8192 * 8192 * 4 / 100, "far below one n×n score matrix at 8,192 tokens")
    }

    @Test func pagesAreAllocatedPerHeadAndAccounted() {
        let cache = PagedKVCache(layers: 3, kvHeads: 2, headDim: 4, pageSize: 5)
        let n = 12
        let kv = [Float](repeating: 1, count: n * 2 * 4)
        let pos = (0..<n).map(Int32.init)
        for l in 0..<3 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos.map { $0 + 100 }) }
        #expect(cache.table(layer: 1, head: 1).pages.count == 3)  // ceil(12 / 5)
        #expect(cache.pool.livePages == 3 * 2 * 3)
        #expect(cache.liveTokenBytes == 3 * 2 * 12 * (2 * 4 * 4 + 8))
        #expect(cache.pool.allocatedBytes == 18 * 5 * (2 * 4 * 4 + 8))
        let slots = cache.slots(layer: 2, head: 0)
        #expect(slots.map(\.position) == pos)
        #expect(slots.map(\.token) == pos.map { $0 + 100 })
        cache.reset()
        #expect(cache.pool.livePages == 0)
        #expect(cache.pool.capacityPages == 18, "reset returns pages to the free list, not the system")
        for l in 0..<3 { cache.append(layer: l, keys: kv, values: kv, positions: pos, tokens: pos) }
        #expect(cache.pool.capacityPages == 18, "freed pages are reused")
    }
}

@Suite struct SimdExpTests {
    /// The vectorised exp against libm's over the range softmax uses, plus the edges.
    @Test func matchesLibmExp() {
        var worst: Double = 0
        var x: Float = -90
        while x <= 10 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 0.0013 })
            let e = simdExp(lanes)
            for i in 0..<8 {
                let ref = Foundation.exp(Double(lanes[i]))
                if lanes[i] < -87 { #expect(e[i] == 0); continue }
                worst = max(worst, abs(Double(e[i]) - ref) / ref)
            }
            x += 0.0137
        }
        #expect(worst < 4e-7, "max relative error \(worst)")
        let edge = simdExp(SIMD8<Float>(-.infinity, 0, -87.5, 1, -1, 88, -0.0, 0.5))
        #expect(edge[0] == 0 && edge[1] == 1 && edge[2] == 0 && edge[6] == 1)
    }
}

@Suite struct AttendBatchTests {
    /// The batched kernel over several caches (forks of one context, each thinned differently, as a run
    /// holds them) equals `attend` on each cache alone, for decode-sized and question-sized inputs.
    @Test(arguments: [1, 31])
    func batchEqualsOneByOne(rowsPerSequence: Int) {
        var rng = SplitMix64(seed: 42)
        let kvHeads = 3, heads = 9, hd = 64, layers = 2
        let base = PagedKVCache(layers: layers, kvHeads: kvHeads, headDim: hd, pageSize: 16)
        let n = 300
        let pos = (0..<n).map(Int32.init)
        for l in 0..<layers {
            base.append(
                layer: l, keys: randomFloats(n * kvHeads * hd, &rng, scale: 2), values: randomFloats(n * kvHeads * hd, &rng),
                positions: pos, tokens: pos)
        }
        base.nextPosition = n
        let caches = (0..<12).map { i -> PagedKVCache in
            let f = base.fork()
            for l in 0..<layers {
                for h in 0..<kvHeads {
                    let keep = (0..<n).filter { ($0 * 7 + i * 3 + h) % (i + 2) != 0 }
                    f.keep(layer: l, head: h, indices: keep)
                }
            }
            return f
        }
        let T = rowsPerSequence
        let qs = caches.map { _ in randomFloats(T * heads * hd, &rng, scale: 2) }
        let ks = caches.map { _ in randomFloats(T * kvHeads * hd, &rng, scale: 2) }
        let vs = caches.map { _ in randomFloats(T * kvHeads * hd, &rng) }
        let qpos = (0..<T).map { Int32(n + $0) }
        func run(batched: Bool) -> [[Float]] {
            let cs = caches.map { $0.fork() }
            for (i, c) in cs.enumerated() { c.append(layer: 1, keys: ks[i], values: vs[i], positions: qpos, tokens: qpos) }
            var outs = cs.map { _ in [Float](repeating: .nan, count: T * heads * hd) }
            let qp = qs.map { q -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: q.count); p.initialize(from: q, count: q.count); return p
            }
            let op = outs.map { o -> UnsafeMutablePointer<Float> in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: o.count); p.initialize(repeating: .nan, count: o.count); return p
            }
            defer { for p in qp + op { p.deallocate() } }
            if batched {
                PagedAttention.attendBatch(cs.indices.map { .init(cache: cs[$0], q: qp[$0], positions: qpos, out: op[$0]) }, layer: 1, nHeads: heads)
            } else {
                for i in cs.indices { PagedAttention.attend(cache: cs[i], layer: 1, q: qp[i], positions: qpos, nHeads: heads, out: op[i]) }
            }
            for i in outs.indices { outs[i] = Array(UnsafeBufferPointer(start: op[i], count: outs[i].count)) }
            return outs
        }
        Threads.set(2)
        let one = run(batched: false), batch = run(batched: true)
        var worst: Float = 0
        for (a, b) in zip(one, batch) { for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) } }
        #expect(worst <= 1e-5 && !batch.joined().contains { $0.isNaN }, "max abs diff \(worst)")
    }
}

/// Reads a fixed set of pages (a stand-in for a query-aware selector such as Quest).
final class FixedPages: PageSelector, @unchecked Sendable {
    let pages: [Int]
    init(_ pages: [Int]) { self.pages = pages }
    var readFraction: Double { 1 }
    func select(layer: Int, head: Int, pageCount: Int, q: UnsafePointer<Float>, rows: Int, tokens: Int) -> [Int] { pages.filter { $0 < pageCount } }
}

@Suite struct PageSelectionTests {
    /// With a page selector the kernel equals dense attention over only the selected pages' keys, on the
    /// decode path (direct on pages) and the prefill path (gathered tiles).
    @Test(arguments: [1, 40])
    func selectedPagesEqualDenseAttentionOverThoseKeys(queries: Int) {
        var rng = SplitMix64(seed: 9)
        let kvHeads = 3, heads = 9, hd = 16, ps = 8, n = 200
        let cache = PagedKVCache(layers: 1, kvHeads: kvHeads, headDim: hd, pageSize: ps)
        let k = randomFloats(n * kvHeads * hd, &rng, scale: 2), v = randomFloats(n * kvHeads * hd, &rng)
        let pos = (0..<n).map(Int32.init)
        cache.append(layer: 0, keys: k, values: v, positions: pos, tokens: pos)
        cache.nextPosition = n
        let chosen = [0, 3, 4, 11, 24]
        let reads = FixedPages(chosen)
        let qpos = (0..<queries).map { Int32(n + 50 + $0) }  // after every key: nothing masked
        let q = randomFloats(queries * heads * hd, &rng, scale: 2)
        var out = [Float](repeating: .nan, count: queries * heads * hd)
        Threads.set(2)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                PagedAttention.attend(cache: cache, layer: 0, q: qp.baseAddress!, positions: qpos, nHeads: heads, out: op.baseAddress!, reads: reads)
            }
        }
        let slots = chosen.flatMap { p in (p * ps)..<min(n, (p + 1) * ps) }
        var sk: [Float] = [], sv: [Float] = []
        for s in slots { sk += k[(s * kvHeads * hd)..<((s + 1) * kvHeads * hd)]; sv += v[(s * kvHeads * hd)..<((s + 1) * kvHeads * hd)] }
        let ref = DenseAttention.attend(
            q: q, queryPositions: qpos, k: sk, v: sv, keyPositions: slots.map { Int32($0) },
            nHeads: heads, kvHeads: kvHeads, headDim: hd)
        var worst: Float = 0
        for i in ref.indices { worst = max(worst, abs(out[i] - ref[i])) }
        #expect(worst <= 1e-5, "max abs err \(worst)")
    }
}

/// The AVX-512 products of the prefill path (`PagedAttention.wide`, chosen at run time): against the dense
/// oracle and sgemm's path, rows independent of the rows beside them, and KVzip's restricted maxima against a
/// Float64 reference. Runs where the CPU has AVX-512 (the portable and AVX2 paths are the tests above).
@Suite(.enabled(if: PagedAttention.wide(headDim: 64), "the CPU has no AVX-512 (the sgemm path is tested above)"))
struct WideAttentionTests {
    /// Whether this CPU runs the AVX-512 kernels (says so when it does not: the test is then skipped).
    func wideKernelsHere() -> Bool {
        if !KernelBuild.vnni512 { print("skipped: this CPU (\(KernelBuild.cpu)) lacks AVX-512, or KVKIT_KERNELS=avx2 is set") }
        return KernelBuild.vnni512
    }

    /// Runs `body` with the wide kernels on or off.
    func with<T>(wide: Bool, _ body: () -> T) -> T {
        let saved = KernelBuild.vnni512
        KernelBuild.vnni512 = wide
        defer { KernelBuild.vnni512 = saved }
        return body()
    }

    /// The softmax step on AVX-512 (`kvkit_exp_shift_sum_avx512`) gives bitwise the Swift loop's values and sum:
    /// lengths 0 … 70 (16-lane steps, an 8-lane step, a scalar tail), scores far below the shift (exp underflows to
    /// exactly 0 below −87), masked keys (−∞), values clamped at 88, and ordinary ones.
    @Test func expShiftSumIsTheSwiftLoop() {
        guard wideKernelsHere() else { return }
        var rng = SplitMix64(seed: 51)
        for n in 0...70 {
            var x = (0..<n).map { _ in Float.random(in: -30...4, using: &rng) }
            if n > 3 { x[1] = -.infinity; x[2] = -200; x[3] = 95 }
            let shift = Float.random(in: -2...2, using: &rng)
            var fast = x, slow = x
            let a = fast.withUnsafeMutableBufferPointer { expShiftSum($0.baseAddress!, n, shift: shift) }
            let b = slow.withUnsafeMutableBufferPointer { expShiftSumRest($0.baseAddress!, n, shift: shift, from: 0, SIMD8()) }
            #expect(a.bitPattern == b.bitPattern, "n \(n): sum \(a) vs \(b)")
            #expect(zip(fast, slow).allSatisfy { $0.bitPattern == $1.bitPattern }, "n \(n): values differ")
        }
    }

    /// The gated activations on AVX-512 (`kvkit_silu_mul_avx512`, `kvkit_gelu_tanh_mul_avx512`) give bitwise the
    /// 8-lane Swift loop's values: lengths 0 … 70 (16-lane steps, then the Swift loop's 8-lane step and padded tail),
    /// ordinary values, ±0, values whose exponent clamps (±90, ±200) and infinities.
    @Test func gatedActivationsAreTheSwiftLoop() {
        guard wideKernelsHere() else { return }
        var rng = SplitMix64(seed: 53)
        let special: [Float] = [0, -0.0, 90, -90, 200, -200, .infinity, -.infinity, 1e-30, -1e-30]
        for n in 0...70 {
            var gate = (0..<n).map { _ in Float.random(in: -12...12, using: &rng) }
            for i in 0..<min(n, special.count) { gate[(i * 7) % n] = special[i] }
            let up = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
            for gelu in [false, true] {
                func run(_ wide: Bool) -> [Float] {
                    with(wide: wide) {
                        var g = gate
                        g.withUnsafeMutableBufferPointer { gp in
                            up.withUnsafeBufferPointer {
                                if gelu {
                                    Vector.geluTanhMul(gp.baseAddress!, $0.baseAddress!, count: n)
                                } else {
                                    Vector.siluMul(gp.baseAddress!, $0.baseAddress!, count: n)
                                }
                            }
                        }
                        return g
                    }
                }
                let fast = run(true), slow = run(false)
                #expect(zip(fast, slow).allSatisfy { $0.bitPattern == $1.bitPattern }, "n \(n) gelu \(gelu)")
            }
        }
    }

    /// The AVX-512 key transpose writes exactly the scalar loop's cells and no others: key counts 0 … 40 (whole and
    /// partial 16-key steps), head sizes that are and are not multiples of 16, columns at an offset in a wider tile.
    @Test func keyTransposeIsTheScalarOne() {
        guard wideKernelsHere() else { return }
        var rng = SplitMix64(seed: 52)
        for hd in [8, 16, 40, 64, 128] {
            for n in 0...40 {
                for at in [0, 5, 16] {
                    let ldk = at + n + 3
                    let K = (0..<(n * hd)).map { _ in Float.random(in: -4...4, using: &rng) }
                    var fast = (0..<(hd * ldk)).map { Float(-$0 - 1) }, slow = fast
                    K.withUnsafeBufferPointer { k in
                        fast.withUnsafeMutableBufferPointer {
                            PagedAttention.transpose(k.baseAddress!, keys: n, headDim: hd, into: $0.baseAddress!, ldk: ldk, at: at)
                        }
                        slow.withUnsafeMutableBufferPointer {
                            PagedAttention.transposeReference(k.baseAddress!, keys: n, headDim: hd, into: $0.baseAddress!, ldk: ldk, at: at)
                        }
                    }
                    #expect(zip(fast, slow).allSatisfy { $0.bitPattern == $1.bitPattern }, "hd \(hd) n \(n) at \(at)")
                }
            }
        }
    }

    func attend(_ cache: PagedKVCache, _ q: [Float], _ pos: [Int32], heads: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: q.count)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer {
                PagedAttention.attend(cache: cache, layer: 0, q: qp.baseAddress!, positions: pos, nHeads: heads, out: $0.baseAddress!)
            }
        }
        return out
    }

    @Test(arguments: [64, 128, 256])
    func agreesWithDenseAndSgemmRowByRow(headDim hd: Int) {
        var rng = SplitMix64(seed: UInt64(hd))
        // Qwen 0.5B's grouping (14 query heads on 2 KV heads): 7 × 64 rows a block, tails of every size (every
        // block ≥ 16 rows: below that a block takes the few-row kernel, as decode does).
        for (heads, kvHeads, T) in [(14, 2, 333), (4, 1, 150), (3, 3, 90)] {
            let cache = PagedKVCache(layers: 1, kvHeads: kvHeads, headDim: hd, pageSize: 16)
            let pos = (0..<T).map(Int32.init)
            let k = randomFloats(T * kvHeads * hd, &rng, scale: 2), v = randomFloats(T * kvHeads * hd, &rng)
            let q = randomFloats(T * heads * hd, &rng, scale: 2)
            cache.append(layer: 0, keys: k, values: v, positions: pos, tokens: pos)
            cache.nextPosition = T
            let wide = with(wide: true) { attend(cache, q, pos, heads: heads) }
            let sgemm = with(wide: false) { attend(cache, q, pos, heads: heads) }
            let dense = DenseAttention.attend(
                q: q, queryPositions: pos, k: k, v: v, keyPositions: pos, nHeads: heads, kvHeads: kvHeads, headDim: hd, window: nil)
            let errDense = zip(wide, dense).map { abs($0 - $1) }.max()!, errSgemm = zip(wide, sgemm).map { abs($0 - $1) }.max()!
            #expect(errDense <= 1e-5 && errSgemm <= 1e-5, "hd \(hd) heads \(heads)/\(kvHeads) T \(T): dense \(errDense), sgemm \(errSgemm)")
            #expect(wide != sgemm, "the switch takes another path (equal bits: it did nothing)")
            // The last 40 queries alone (another block split, fewer rows a call) get the same bits.
            let tail = T - 40, d = heads * hd
            let alone = with(wide: true) { attend(cache, Array(q[(tail * d)...]), Array(pos[tail...]), heads: heads) }
            let same = Array(wide[(tail * d)...]), moved = zip(alone, same).filter { $0 != $1 }.count
            #expect(
                moved == 0,
                "hd \(hd) heads \(heads)/\(kvHeads): \(moved) of \(same.count) outputs depend on the rows beside them (max \(zip(alone, same).map { abs($0 - $1) }.max()!))"
            )
        }
    }

    /// KVzip's scores: each re-read query's softmax over the admitted keys (sinks, the chunk, the re-read
    /// tokens), the chunk keys' maxima, against Float64; the wide and sgemm paths within 1e-6.
    @Test func restrictedMaximaAgreeWithFloat64() {
        var rng = SplitMix64(seed: 7)
        let H = 2, G = 3, heads = H * G, hd = 64, prompt = 120, reread = 90
        let keys = Observations.MaximaKeys(sinks: 4, chunk: 40..<80, repeatFrom: Int32(prompt))
        let T = prompt + reread, pos = (0..<T).map(Int32.init)
        let k = randomFloats(T * H * hd, &rng, scale: 2), v = randomFloats(T * H * hd, &rng)
        let q = randomFloats(reread * heads * hd, &rng, scale: 2)
        func run(wide: Bool) -> [[Float]] {
            with(wide: wide) {
                let cache = PagedKVCache(layers: 1, kvHeads: H, headDim: hd, group: G, pageSize: 16)
                cache.append(
                    layer: 0, keys: Array(k[..<(prompt * H * hd)]), values: Array(v[..<(prompt * H * hd)]), positions: Array(pos[..<prompt]),
                    tokens: Array(pos[..<prompt]))
                cache.nextPosition = prompt
                var obs = Observations(layers: 1, kvHeads: H, group: G, windowStart: nil)
                obs.maxima = Array(repeating: [Float](repeating: 0, count: prompt * G), count: H)
                obs.maximaKeys = keys
                cache.observations = obs
                let rp = Array(pos[prompt...])
                cache.append(layer: 0, keys: Array(k[(prompt * H * hd)...]), values: Array(v[(prompt * H * hd)...]), positions: rp, tokens: rp)
                cache.nextPosition = T
                _ = attend(cache, q, rp, heads: heads)
                return cache.observations!.maxima!
            }
        }
        let wide = run(wide: true), sgemm = run(wide: false)
        var worst = 0.0, worstPaths: Float = 0
        for h in 0..<H {
            for g in 0..<G {
                var ref = [Double](repeating: 0, count: prompt)
                for t in 0..<reread {
                    let qp = prompt + t, head = h * G + g
                    let admitted = (0...qp).filter { keys.admits(Int32($0)) }
                    let s = admitted.map { j in
                        (0..<hd).reduce(0.0) { $0 + Double(q[(t * heads + head) * hd + $1]) * Double(k[(j * H + h) * hd + $1]) } / Double(hd).squareRoot()
                    }
                    let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                    for (i, j) in admitted.enumerated() where keys.chunk.contains(Int32(j)) { ref[j] = max(ref[j], e[i] / z) }
                }
                for p in 0..<prompt {
                    worst = max(worst, abs(Double(wide[h][p * G + g]) - ref[p]))
                    worstPaths = max(worstPaths, abs(wide[h][p * G + g] - sgemm[h][p * G + g]))
                }
            }
        }
        #expect(worst < 1e-5 && worstPaths < 1e-6, "max abs error \(worst) against Float64, \(worstPaths) between the paths")
        #expect(wide[0][39 * G] == 0 && wide[0][40 * G] > 0, "only the chunk's keys are scored")
    }
}
