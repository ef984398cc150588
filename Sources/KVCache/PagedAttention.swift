import CKernels
import Foundation
import TensorMath

/// Causal grouped-query attention that reads K and V through a cache's page tables.
///
/// For each KV head, the `G = nHeads / kvHeads` query heads that share it are stacked into one block of
/// `G × T` query rows, and keys are visited page by page (or in gathered tiles of whole pages for large
/// query blocks) with a streaming ("online") softmax: a running max `m`, normaliser `l` and output
/// accumulator per row, rescaled when the max grows (Milakov & Gimelshein 2018; FlashAttention).
/// Scratch memory is a few tiles per worker and never grows with context length; no n × n score matrix
/// exists. Causality is by recorded position: key slot j is visible to query t iff pos(j) ≤ pos(t), and, in
/// a layer with a sliding window w (`PagedKVCache.windows`), pos(t) − pos(j) < w (llama.cpp's SWA mask).
///
/// Decode has one query row per head, too few blocks to occupy every thread, so the page range of each
/// stream is split across workers and the partial (m, l, O) states are merged afterwards (the
/// "flash-decoding" split-K scheme).
public enum PagedAttention {
    /// Query tokens processed together per work item.
    public static let queryChunk = 64
    /// Keys per gathered tile on the matrix-product path.
    public static let keyTile = 128
    /// Below this many query rows per block, dot products are computed directly on pages (decode);
    /// at or above it, tiles are gathered and multiplied with sgemm (prefill).
    public static let gemmMinRows = 16
    /// A split of one stream's pages across workers covers at least this many pages.
    public static let minPagesPerSplit = 8

    /// Whether the many-row products (scores and P·V of a gathered tile, the observation passes' scores) take
    /// the AVX-512 F kernels (`CKernels/Attention512.c`, chosen at run time with the VNNI set; `KVKIT_KERNELS=avx2`
    /// declines them) instead of OpenBLAS sgemm: 1.7–2× faster here, and each row's result depends on that row
    /// alone. Their sums run in another order than sgemm's, so runs record them (`record`, compared on resume).
    public static func wide(headDim: Int) -> Bool { KernelBuild.vnni512 && headDim % 64 == 0 }
    /// How a run records the prefill attention's products: "avx512" where `wide`, nil where sgemm.
    public static func record(headDim: Int) -> String? { wide(headDim: headDim) ? "avx512" : nil }

    /// `K` [n][hd] transposed into `KT` [hd][ldk] at column `at`: on AVX-512 in 16 × 16 steps (the scalar loop's
    /// strided stores were 5 % of a 2,048-token prefill of Qwen 1.5B), else `transposeReference`.
    @inline(__always) static func transpose(_ K: UnsafePointer<Float>, keys n: Int, headDim hd: Int, into KT: UnsafeMutablePointer<Float>, ldk: Int, at j0: Int)
    {
        if KernelBuild.vnni512 {
            kvkit_transpose_keys_avx512(K, n, hd, KT, ldk, j0)
        } else {
            transposeReference(K, keys: n, headDim: hd, into: KT, ldk: ldk, at: j0)
        }
    }

    /// The plain transpose the AVX-512 one is tested against.
    static func transposeReference(_ K: UnsafePointer<Float>, keys n: Int, headDim hd: Int, into KT: UnsafeMutablePointer<Float>, ldk: Int, at j0: Int) {
        for j in 0..<n {
            let k = K + j * hd, col = KT + j0 + j
            for d in 0..<hd { col[d * ldk] = k[d] }
        }
    }

    /// - Parameters:
    ///   - q: `[T][nHeads][headDim]` queries (RoPE applied).
    ///   - positions: the T queries' positions.
    ///   - out: `[T][nHeads][headDim]` attention outputs.
    ///   - reads: the pages each block reads (query-aware sparse attention; nil: every page). The caller
    ///     owns it beside the cache: the cache is storage and attention statistics only.
    ///   - split: whether a stream with few query rows may be split across workers by pages (split-K: its
    ///     partial softmax states merged afterwards, which changes the summation order); false gives every
    ///     row the arithmetic of an unsplit block, whatever the cache's length and the workers.
    public static func attend(
        cache: PagedKVCache, layer: Int, q: UnsafePointer<Float>, positions: [Int32],
        nHeads: Int, out: UnsafeMutablePointer<Float>, reads: (any PageSelector)? = nil, split: Bool = true
    ) {
        let T = positions.count, kvHeads = cache.kvHeads, hd = cache.headDim
        precondition(nHeads % kvHeads == 0, "query heads must be a multiple of KV heads")
        let G = nHeads / kvHeads
        let chunks = (T + queryChunk - 1) / queryChunk
        let blocks = kvHeads * chunks
        let maxRows = G * min(T, queryChunk)
        var splits = 1
        if split && maxRows < gemmMinRows && blocks < 4 * Threads.count && reads == nil {
            let pages = (0..<kvHeads).map { cache.table(layer: layer, head: $0).pages.count }.max() ?? 0
            splits = max(1, min((4 * Threads.count + blocks - 1) / blocks, pages / minPagesPerSplit))
        }
        let qBox = UnsafeSendable(q), oBox = UnsafeSendable(out)
        // Per (token, query head): the softmax max and normaliser, kept for the observation pass.
        let observe =
            cache.observations?.observes(positions) ?? false
        let stats = observe ? RowStats(count: T * nHeads) : nil
        defer { stats?.free() }
        if splits == 1 {
            Threads.parallelFor(blocks) { item in
                let h = item / chunks, c = item % chunks
                let t0 = c * queryChunk, t1 = min(T, t0 + queryChunk)
                let state = BlockState(rows: G * (t1 - t0), headDim: hd)
                defer { state.free() }
                attendBlock(
                    cache: cache, layer: layer, head: h, q: qBox.value, positions: positions,
                    t0: t0, t1: t1, nHeads: nHeads, pageRange: nil, reads: reads, state: state)
                state.write(to: oBox.value, t0: t0, t1: t1, head: h, G: G, nHeads: nHeads, stats: stats)
            }
            if let stats { observeLayer(cache: cache, layer: layer, q: q, positions: positions, nHeads: nHeads, stats: stats) }
            return
        }
        // Split-K: item = (block, split); partial states are merged per block afterwards.
        let states = (0..<(blocks * splits)).map { item -> BlockState in
            let c = (item / splits) % chunks
            return BlockState(rows: G * (min(T, (c + 1) * queryChunk) - c * queryChunk), headDim: hd)
        }
        defer { for s in states { s.free() } }
        Threads.parallelFor(blocks * splits) { item in
            let block = item / splits, s = item % splits
            let h = block / chunks, c = block % chunks
            let t0 = c * queryChunk, t1 = min(T, t0 + queryChunk)
            let n = cache.table(layer: layer, head: h).pages.count
            let range = (n * s / splits)..<(n * (s + 1) / splits)
            attendBlock(
                cache: cache, layer: layer, head: h, q: qBox.value, positions: positions,
                t0: t0, t1: t1, nHeads: nHeads, pageRange: range, reads: nil, state: states[item])
        }
        for block in 0..<blocks {
            let h = block / chunks, c = block % chunks
            let t0 = c * queryChunk, t1 = min(T, t0 + queryChunk)
            let first = states[block * splits]
            for s in 1..<splits { first.merge(states[block * splits + s]) }
            first.write(to: out, t0: t0, t1: t1, head: h, G: G, nHeads: nHeads, stats: stats)
        }
        if let stats { observeLayer(cache: cache, layer: layer, q: q, positions: positions, nHeads: nHeads, stats: stats) }
    }

    /// One sequence of a batched attention call: its cache, queries, positions and output rows.
    public struct BatchItem {
        public let cache: PagedKVCache
        public let q: UnsafePointer<Float>
        public let positions: [Int32]
        public let out: UnsafeMutablePointer<Float>
        /// The pages each block reads (Quest's selector; nil: every page).
        public let reads: (any PageSelector)?
        public init(cache: PagedKVCache, q: UnsafePointer<Float>, positions: [Int32], out: UnsafeMutablePointer<Float>, reads: (any PageSelector)? = nil) {
            self.cache = cache; self.q = q; self.positions = positions; self.out = out; self.reads = reads
        }
    }

    /// `attend` for several sequences, each on its own cache, as one parallel loop over every
    /// sequence's (KV head, query chunk) blocks. Decoding many forks one token each is then a few dozen
    /// equal work items per layer instead of one small split-K call per fork. Falls back to `attend`
    /// per sequence when a cache records observations or when there are too few blocks to share.
    /// `rowInvariant`: every sequence gets the same arithmetic whatever else is in the batch (no split-K,
    /// whose use depends on the batch's size): a run's forks answer the same alone as beside others.
    public static func attendBatch(_ items: [BatchItem], layer: Int, nHeads: Int, rowInvariant: Bool = false) {
        var blocks: [(item: Int, head: Int, t0: Int, t1: Int)] = []
        for (i, it) in items.enumerated() {
            let T = it.positions.count
            for h in 0..<it.cache.kvHeads {
                for t0 in stride(from: 0, to: T, by: queryChunk) { blocks.append((i, h, t0, min(T, t0 + queryChunk))) }
            }
        }
        let observing = items.contains { it in
            it.cache.observations?.observes(it.positions) ?? false
        }
        if !rowInvariant && (items.count == 1 || observing || blocks.count < 4 * Threads.count) {
            for it in items { attend(cache: it.cache, layer: layer, q: it.q, positions: it.positions, nHeads: nHeads, out: it.out, reads: it.reads) }
            return
        }
        if rowInvariant && observing {
            // The observation pass needs each row's softmax statistics: per sequence, unsplit (the same
            // arithmetic as the shared loop below).
            for it in items {
                attend(cache: it.cache, layer: layer, q: it.q, positions: it.positions, nHeads: nHeads, out: it.out, reads: it.reads, split: false)
            }
            return
        }
        let boxes = UnsafeSendable(items)
        Threads.parallelFor(blocks.count) { b in
            let (i, h, t0, t1) = blocks[b]
            let it = boxes.value[i]
            precondition(nHeads % it.cache.kvHeads == 0, "query heads must be a multiple of KV heads")
            let G = nHeads / it.cache.kvHeads
            let state = BlockState(rows: G * (t1 - t0), headDim: it.cache.headDim)
            defer { state.free() }
            attendBlock(
                cache: it.cache, layer: layer, head: h, q: it.q, positions: it.positions,
                t0: t0, t1: t1, nHeads: nHeads, pageRange: nil, reads: it.reads, state: state)
            state.write(to: it.out, t0: t0, t1: t1, head: h, G: G, nHeads: nHeads, stats: nil)
        }
    }

    /// Bytes of scratch one worker uses for a block of `rows` query rows: independent of context length.
    public static func scratchBytes(rows: Int, headDim: Int, pageSize: Int) -> Int {
        let tile = max(keyTile / pageSize, 1) * pageSize
        return MemoryLayout<Float>.size * (2 * rows * headDim + rows * tile + 2 * tile * headDim + 2 * rows) + 8 * (tile + rows)
    }

    /// Online-softmax state of one block of query rows: unnormalised output O, running max m, sum l.
    final class BlockState: @unchecked Sendable {
        let rows: Int, hd: Int
        let O: UnsafeMutablePointer<Float>  // [rows][hd]
        let m: UnsafeMutablePointer<Float>  // [rows]
        let l: UnsafeMutablePointer<Float>  // [rows]

        init(rows: Int, headDim: Int) {
            self.rows = rows; hd = headDim
            O = .allocate(capacity: rows * headDim); O.initialize(repeating: 0, count: rows * headDim)
            m = .allocate(capacity: rows); m.initialize(repeating: -.infinity, count: rows)
            l = .allocate(capacity: rows); l.initialize(repeating: 0, count: rows)
        }

        func free() { O.deallocate(); m.deallocate(); l.deallocate() }

        /// Folds another partial state over a disjoint key range into this one.
        func merge(_ other: BlockState) {
            for r in 0..<rows where other.l[r] > 0 {
                let mNew = max(m[r], other.m[r])
                let a = Foundation.exp(m[r] - mNew), b = Foundation.exp(other.m[r] - mNew)
                let o = O + r * hd, p = other.O + r * hd
                for d in 0..<hd { o[d] = o[d] * a + p[d] * b }
                l[r] = l[r] * a + other.l[r] * b
                m[r] = mNew
            }
        }

        /// Normalises and scatters rows (r = g·Tc + t) to `out[t][h·G + g]`; records each row's (m, l).
        func write(to out: UnsafeMutablePointer<Float>, t0: Int, t1: Int, head h: Int, G: Int, nHeads: Int, stats: RowStats?) {
            let Tc = t1 - t0
            for g in 0..<G {
                for t in 0..<Tc {
                    let r = g * Tc + t
                    let dst = out + ((t0 + t) * nHeads + h * G + g) * hd
                    let inv: Float = l[r] > 0 ? 1 / l[r] : 0
                    for d in 0..<hd { dst[d] = O[r * hd + d] * inv }
                    if let stats {
                        stats.m[(t0 + t) * nHeads + h * G + g] = m[r]
                        stats.l[(t0 + t) * nHeads + h * G + g] = l[r]
                    }
                }
            }
        }
    }

    /// Softmax max and normaliser per (token, query head).
    final class RowStats: @unchecked Sendable {
        let m: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>
        init(count: Int) {
            m = .allocate(capacity: count); m.initialize(repeating: -.infinity, count: count)
            l = .allocate(capacity: count); l.initialize(repeating: 0, count: count)
        }
        func free() { m.deallocate(); l.deallocate() }
    }

    private static func attendBlock(
        cache: PagedKVCache, layer: Int, head h: Int, q: UnsafePointer<Float>,
        positions: [Int32], t0: Int, t1: Int, nHeads: Int,
        pageRange: Range<Int>?, reads: (any PageSelector)?, state: BlockState
    ) {
        let hd = cache.headDim, G = nHeads / cache.kvHeads, Tc = t1 - t0, R = G * Tc
        let pool = cache.pool, ps = pool.pageSize
        let table = cache.table(layer: layer, head: h)
        var pages = Array(pageRange ?? 0..<table.pages.count)
        let scale = 1 / Float(hd).squareRoot()
        let useGemm = R >= gemmMinRows
        let wide = useGemm && Self.wide(headDim: hd)  // K tiles gathered transposed for the AVX-512 kernels
        let tileCap = useGemm ? max(keyTile / ps, 1) * ps : ps
        let O = state.O, m = state.m, l = state.l

        // Scratch: Q [R][hd], S [R][tileCap], K/V tiles [tileCap][hd] (gemm path), key/row positions.
        let Qb = UnsafeMutablePointer<Float>.allocate(capacity: R * hd); defer { Qb.deallocate() }
        let S = UnsafeMutablePointer<Float>.allocate(capacity: R * tileCap); defer { S.deallocate() }
        let Kt = UnsafeMutablePointer<Float>.allocate(capacity: useGemm ? tileCap * hd : 1); defer { Kt.deallocate() }
        let Vt = UnsafeMutablePointer<Float>.allocate(capacity: useGemm ? tileCap * hd : 1); defer { Vt.deallocate() }
        let Pt = UnsafeMutablePointer<Int32>.allocate(capacity: tileCap); defer { Pt.deallocate() }
        let rowPos = UnsafeMutablePointer<Int32>.allocate(capacity: R); defer { rowPos.deallocate() }
        // The AVX2 build's register-blocked kernels for the few-row path (they take each row's rescale).
        #if KVKIT_AVX2
            let fast = !useGemm && AttentionAVX2.applies(headDim: hd)
        #else
            let fast = false
        #endif
        let alphas = UnsafeMutablePointer<Float>.allocate(capacity: R); defer { alphas.deallocate() }
        var maxQPos: Int32 = .min, minQPos: Int32 = .max
        // A key is visible to a row at qp iff qp − window < kpos ≤ qp.
        let window = cache.windows[layer].map { Int32(clamping: $0) }
        // Row r = g·Tc + t holds query head h·G + g at token t0 + t, pre-scaled by 1/sqrt(hd).
        for g in 0..<G {
            for t in 0..<Tc {
                let r = g * Tc + t
                let src = q + ((t0 + t) * nHeads + h * G + g) * hd
                for d in 0..<hd { Qb[r * hd + d] = src[d] * scale }
                rowPos[r] = positions[t0 + t]
                maxQPos = max(maxQPos, rowPos[r]); minQPos = min(minQPos, rowPos[r])
            }
        }

        // Packed and cold pages are decoded one at a time into this worker's scratch (made on first need).
        var scratchBox: PagePool.Scratch?
        func scratch() -> PagePool.Scratch {
            if let s = scratchBox { return s }
            let s = PagePool.Scratch(pool); scratchBox = s; return s
        }

        if let selector = reads, pageRange == nil {
            pages = selector.select(layer: layer, head: h, pageCount: table.pages.count, q: Qb, rows: R, tokens: Tc)
        }

        // One block of n contiguous keys: scores, mask, online-softmax update, accumulate P·V.
        func block(_ K: UnsafePointer<Float>, _ V: UnsafePointer<Float>, _ kpos: UnsafePointer<Int32>, _ n: Int) {
            var minK = Int32.max, maxK = Int32.min
            for j in 0..<n { minK = min(minK, kpos[j]); maxK = max(maxK, kpos[j]) }
            if minK > maxQPos { return }  // every key is in the future of every query here
            if let w = window, Int(maxK) <= Int(minQPos) - Int(w) { return }  // every key is outside every query's window
            if wide {
                kvkit_attn_scores_avx512(Qb, R, hd, K, tileCap, n, S, tileCap)
            } else if useGemm {
                BLAS.gemm(m: R, n: n, k: hd, Qb, lda: hd, K, ldb: hd, transB: true, beta: 0, S, ldc: tileCap)
            } else if fast {
                #if KVKIT_AVX2
                    AttentionAVX2.scores(Qb, rows: R, headDim: hd, K, keys: n, S, ldS: tileCap)
                #endif
            } else {
                for j in 0..<n {
                    let kj = K + j * hd
                    for r in 0..<R { S[r * tileCap + j] = simdDot(Qb + r * hd, kj, hd) }
                }
            }
            for r in 0..<R {
                let s = S + r * tileCap, qp = rowPos[r]
                let oldest = window.map { qp &- $0 } ?? .min  // keys at or before this are outside the window
                var mx = -Float.infinity
                if maxK <= qp && minK > oldest {
                    mx = simdMax(s, n)
                } else {
                    mx = maskAndMax(s, keys: kpos, n, query: qp, oldest: oldest)
                }
                if mx == -.infinity {  // no visible key in this block for this row
                    for j in 0..<n { s[j] = 0 }
                    alphas[r] = 1
                    continue
                }
                let mNew = max(m[r], mx)
                let alpha = Foundation.exp(m[r] - mNew)  // exp(-inf) = 0 on the first visible block
                let sum = expShiftSum(s, n, shift: mNew)  // masked keys (−∞) become exactly 0
                l[r] = l[r] * alpha + sum
                m[r] = mNew
                if fast { alphas[r] = alpha; continue }
                let o = O + r * hd
                if alpha != 1 { simdScale(o, alpha, hd) }
                if !useGemm {
                    for j in 0..<n where s[j] != 0 { simdAxpy(o, s[j], V + j * hd, hd) }
                }
            }
            if fast {
                #if KVKIT_AVX2
                    AttentionAVX2.accumulate(O, rows: R, headDim: hd, alpha: alphas, S, ldP: tileCap, V, keys: n)
                #endif
            }
            if wide {
                kvkit_attn_pv_avx512(S, tileCap, R, n, V, hd, O)
            } else if useGemm {
                BLAS.gemm(m: R, n: hd, k: n, S, lda: tileCap, V, ldb: hd, transB: false, beta: 1, O, ldc: hd)
            }
        }

        if useGemm {
            // Gather whole pages into a tile of up to tileCap keys, then one pair of sgemm calls per tile.
            var i = 0
            while i < pages.count {
                var n = 0
                while n + ps <= tileCap || (n == 0 && i < pages.count), i < pages.count {
                    let pi = pages[i]
                    let page = table.pages[pi], c = min(ps, table.count - pi * ps)
                    i += 1
                    guard let r = pool.read(page, scratch()) else { continue }  // corrupt cold page: recorded, not used
                    if wide {
                        transpose(r.keys, keys: c, headDim: hd, into: Kt, ldk: tileCap, at: n)
                    } else {
                        (Kt + n * hd).update(from: r.keys, count: c * hd)
                    }
                    (Vt + n * hd).update(from: r.values, count: c * hd)
                    (Pt + n).update(from: pool.positions(page), count: c)
                    n += c
                }
                if n > 0 { block(Kt, Vt, Pt, n) }
            }
        } else {
            for pi in pages {
                let page = table.pages[pi], c = min(ps, table.count - pi * ps)
                guard let r = pool.read(page, scratch()) else { continue }  // corrupt cold page: recorded, not used
                block(r.keys, r.values, pool.positions(page), c)
            }
        }
    }
}

/// The number of elements of the ascending `a` that are ≤ `x`.
@inline(__always) private func upperBound(_ a: [Int32], _ x: Int32) -> Int {
    var lo = 0, hi = a.count
    while lo < hi { let mid = (lo + hi) / 2; if a[mid] <= x { lo = mid + 1 } else { hi = mid } }
    return lo
}

extension PagedAttention {
    /// The observation pass: recomputes each observed row's probabilities p = exp(q·k/√d − m)/l and adds
    /// them to the keys' statistics (the rows each `AttentionStatistic` observes → its fold: an observation
    /// window's totals, H2O's, a plug-in's; KVzip's maxima).
    /// Same tiling as the main pass (query chunks × gathered key tiles, sgemm for the scores); one worker
    /// per (KV head, query head of its group), so each worker writes only its own column of `[slot][group]`.
    static func observeLayer(
        cache: PagedKVCache, layer: Int, q: UnsafePointer<Float>, positions: [Int32],
        nHeads: Int, stats: RowStats
    ) {
        guard var obs = cache.observations else { return }
        if let keys = obs.maximaKeys, obs.maxima != nil {
            precondition(obs.statistics.isEmpty, "restricted maxima (KVzip) are tapped alone")
            restrictedMaxima(cache: cache, layer: layer, q: q, positions: positions, nHeads: nHeads, keys: keys)
            return
        }
        let kvHeads = cache.kvHeads, G = nHeads / kvHeads, hd = cache.headDim
        let pool = cache.pool, ps = pool.pageSize
        let scale = 1 / Float(hd).squareRoot()
        let custom = obs.statistics.entries.map(\.statistic)
        // Per statistic, the query rows it folds (by index into `positions`).
        let customRows = obs.statistics.entries.map { e in positions.map { e.observes($0) } }
        let rows = positions.indices.filter { t in obs.maxima != nil || customRows.contains { $0[t] } }
        guard !rows.isEmpty else { return }
        // Raw copies of this layer's statistics; written back after the parallel region.
        func buffers(_ on: Bool, _ arrays: [[Float]], perSlot: Bool = true) -> [UnsafeMutablePointer<Float>?] {
            (0..<kvHeads).map { h in
                guard on else { return nil }
                let a = arrays[layer * kvHeads + h]
                // The kernel writes by slot index: totals out of step with the stream would write past them.
                precondition(
                    !perSlot || a.count == cache.count(layer: layer, head: h) * G,
                    "attention statistics (\(a.count / max(G, 1)) slots) out of step with stream (\(layer), \(h)) of \(cache.count(layer: layer, head: h)) slots"
                )
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(a.count, 1))
                a.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: a.count) }
                return p
            }
        }
        let mx = buffers(obs.maxima != nil, obs.maxima ?? [], perSlot: false), maxPositions = Int32((obs.maxima?.first?.count ?? 0) / G)
        let cst = obs.statistics.entries.map { buffers(true, $0.values) }
        defer { for p in mx + cst.flatMap({ $0 }) { p?.deallocate() } }
        let mxBox = UnsafeSendable(mx), cstBox = UnsafeSendable(cst)
        // Per KV head, the stream's key positions in order, for each query's count of visible keys: only when a
        // statistic reads it (slots are normally already in position order; sorted only if not).
        let counting = custom.contains { $0.needsVisibleCount }
        let sortedPositions: [[Int32]] =
            counting
            ? (0..<kvHeads).map { h in
                let p = cache.slots(layer: layer, head: h).map(\.position)
                return zip(p, p.dropFirst()).allSatisfy { $0 <= $1 } ? p : p.sorted()
            } : []
        let tileCap = max(keyTile / ps, 1) * ps
        let window = cache.windows[layer].map { Int32(clamping: $0) }
        let wide = Self.wide(headDim: hd)
        Threads.parallelFor(kvHeads * G) { item in
            let h = item / G, g = item % G
            let table = cache.table(layer: layer, head: h)
            let Qc = min(queryChunk, rows.count)
            let Qb = UnsafeMutablePointer<Float>.allocate(capacity: Qc * hd); defer { Qb.deallocate() }
            let S = UnsafeMutablePointer<Float>.allocate(capacity: Qc * tileCap); defer { S.deallocate() }
            let Kt = UnsafeMutablePointer<Float>.allocate(capacity: tileCap * hd); defer { Kt.deallocate() }
            let Pt = UnsafeMutablePointer<Int32>.allocate(capacity: tileCap); defer { Pt.deallocate() }
            let scratch = PagePool.Scratch(pool)
            var c0 = 0
            while c0 < rows.count {
                let chunk = rows[c0..<min(rows.count, c0 + Qc)]
                let R = chunk.count
                var maxQ = Int32.min
                for (r, t) in chunk.enumerated() {
                    let row = t * nHeads + h * G + g
                    for d in 0..<hd { Qb[r * hd + d] = q[row * hd + d] * scale }
                    maxQ = max(maxQ, positions[t])
                }
                // Each row's visible-key count, once per row (−1: no statistic reads it).
                let visible: [Int] = chunk.map { t in
                    guard counting else { return -1 }
                    let sp = sortedPositions[h], qp = positions[t]
                    return upperBound(sp, qp) - (window == nil ? 0 : upperBound(sp, qp &- window!))
                }
                var pi = 0
                while pi < table.pages.count {
                    let base = pi * ps
                    var n = 0
                    while pi < table.pages.count && (n + ps <= tileCap || n == 0) {
                        let page = table.pages[pi], c = min(ps, table.count - pi * ps)
                        if let r = pool.read(page, scratch, values: false) {
                            if wide {
                                transpose(r.keys, keys: c, headDim: hd, into: Kt, ldk: tileCap, at: n)
                            } else {
                                (Kt + n * hd).update(from: r.keys, count: c * hd)
                            }
                        } else if wide {  // corrupt cold page: recorded; its keys get no probability mass here
                            for d in 0..<hd { (Kt + d * tileCap + n).update(repeating: 0, count: c) }
                        } else {
                            (Kt + n * hd).update(repeating: 0, count: c * hd)
                        }
                        (Pt + n).update(from: pool.positions(page), count: c)
                        n += c
                        pi += 1
                    }
                    var minK = Int32.max
                    for j in 0..<n { minK = min(minK, Pt[j]) }
                    if minK > maxQ { continue }
                    if wide {
                        kvkit_attn_scores_avx512(Qb, R, hd, Kt, tileCap, n, S, tileCap)
                    } else if R >= gemmMinRows {
                        BLAS.gemm(m: R, n: n, k: hd, Qb, lda: hd, Kt, ldb: hd, transB: true, beta: 0, S, ldc: tileCap)
                    } else {
                        for r in 0..<R { for j in 0..<n { S[r * tileCap + j] = simdDot(Qb + r * hd, Kt + j * hd, hd) } }
                    }
                    for (r, t) in chunk.enumerated() {
                        let row = t * nHeads + h * G + g
                        let m = stats.m[row], l = stats.l[row]
                        guard l > 0 else { continue }
                        let s = S + r * tileCap, qp = positions[t]
                        let oldest = window.map { qp &- $0 } ?? .min
                        for j in 0..<n { s[j] = Pt[j] <= qp && Pt[j] > oldest ? s[j] - m : -.infinity }
                        _ = expShiftSum(s, n, shift: 0)
                        let inv = 1 / l
                        for j in 0..<n { s[j] *= inv }  // the probabilities
                        if let x = mxBox.value[h] {
                            for j in 0..<n where Pt[j] < maxPositions { let at = Int(Pt[j]) * G + g; x[at] = max(x[at], s[j]) }
                        }
                        for (ci, st) in custom.enumerated() where customRows[ci][t] {
                            guard let c = cstBox.value[ci][h] else { continue }
                            st.fold(
                                s, keys: Pt, count: n, row: AttentionRow(query: qp, oldest: oldest, visible: visible[r]), into: c + (base * G + g), stride: G)
                        }
                    }
                }
                c0 += R
            }
        }
        for h in 0..<kvHeads {
            let i = layer * kvHeads + h
            if let x = mx[h] { obs.maxima![i] = Array(UnsafeBufferPointer(start: x, count: obs.maxima![i].count)) }
            for ci in cst.indices {
                if let c = cst[ci][h] {
                    let e = obs.statistics.entries[ci]
                    obs.statistics.set(e.statistic.key, stream: i, Array(UnsafeBufferPointer(start: c, count: e.values[i].count)))
                }
            }
        }
        cache.observations = obs
    }
}

extension PagedAttention {
    /// `Observations.maxima` under `MaximaKeys`: per (KV head, query head), the admitted keys gathered once,
    /// then per block of query rows their scores (sgemm), each row's softmax over the admitted keys it can
    /// see (causal, and within a windowed layer's window), and the chunk keys' maxima.
    static func restrictedMaxima(cache: PagedKVCache, layer: Int, q: UnsafePointer<Float>, positions: [Int32], nHeads: Int, keys: Observations.MaximaKeys) {
        guard var obs = cache.observations, var maxima = obs.maxima else { return }
        let kvHeads = cache.kvHeads, G = nHeads / kvHeads, hd = cache.headDim, pool = cache.pool, ps = pool.pageSize
        let scale = 1 / Float(hd).squareRoot(), T = positions.count
        let window = cache.windows[layer].map { Int32(clamping: $0) }
        let known = maxima[layer * kvHeads].count / G
        var columns = [[Float]](repeating: [], count: kvHeads * G)
        let out = UnsafeSendable(UnsafeMutablePointer<[Float]>.allocate(capacity: kvHeads * G)), qBox = UnsafeSendable(q)
        defer { out.value.deinitialize(count: kvHeads * G); out.value.deallocate() }
        out.value.initialize(repeating: [], count: kvHeads * G)
        Threads.parallelFor(kvHeads * G) { item in
            let h = item / G, g = item % G
            let table = cache.table(layer: layer, head: h)
            // The admitted keys of this stream, gathered once.
            var K: [Float] = [], P: [Int32] = []
            let scratch = PagePool.Scratch(pool)
            for (pi, page) in table.pages.enumerated() {
                let c = min(ps, table.count - pi * ps), pos = pool.positions(page)
                guard (0..<c).contains(where: { keys.admits(pos[$0]) }) else { continue }
                let r = pool.read(page, scratch, values: false)
                for j in 0..<c where keys.admits(pos[j]) {
                    if let r {
                        K.append(contentsOf: UnsafeBufferPointer(start: r.keys + j * hd, count: hd))
                    } else {
                        K.append(contentsOf: repeatElement(0, count: hd))
                    }
                    P.append(pos[j])
                }
            }
            let n = P.count
            var col = [Float](repeating: 0, count: known)
            // The chunk's keys: one run of the gathered keys (slots are in position order).
            let chunkSlots = P.indices.filter { keys.chunk.contains(P[$0]) && Int(P[$0]) < known }
            guard n > 0 else { out.value[item] = col; return }
            let Qc = min(queryChunk, T)
            var Qb = [Float](repeating: 0, count: Qc * hd), S = [Float](repeating: 0, count: Qc * n)
            let wide = Self.wide(headDim: hd)
            if wide {  // [hd][n] for the AVX-512 kernel
                var KT = [Float](repeating: 0, count: hd * n)
                K.withUnsafeBufferPointer { k in
                    KT.withUnsafeMutableBufferPointer { transpose(k.baseAddress!, keys: n, headDim: hd, into: $0.baseAddress!, ldk: n, at: 0) }
                }
                K = KT
            }
            var t0 = 0
            while t0 < T {
                let R = min(Qc, T - t0)
                for r in 0..<R { let row = (t0 + r) * nHeads + h * G + g; for d in 0..<hd { Qb[r * hd + d] = qBox.value[row * hd + d] * scale } }
                Qb.withUnsafeBufferPointer { qb in
                    K.withUnsafeBufferPointer { k in
                        S.withUnsafeMutableBufferPointer { s in
                            if wide {
                                kvkit_attn_scores_avx512(qb.baseAddress!, R, hd, k.baseAddress!, n, n, s.baseAddress!, n)
                            } else {
                                BLAS.gemm(m: R, n: n, k: hd, qb.baseAddress!, lda: hd, k.baseAddress!, ldb: hd, transB: true, beta: 0, s.baseAddress!, ldc: n)
                            }
                        }
                    }
                }
                S.withUnsafeMutableBufferPointer { sb in
                    P.withUnsafeBufferPointer { pb in
                        col.withUnsafeMutableBufferPointer { cb in
                            for r in 0..<R {
                                let qp = positions[t0 + r], oldest = window.map { qp &- $0 } ?? .min
                                let row = sb.baseAddress! + r * n
                                let m = maskAndMax(row, keys: pb.baseAddress!, n, query: qp, oldest: oldest)
                                guard m > -.infinity else { continue }
                                let inv = 1 / expShiftSum(row, n, shift: m)
                                for j in chunkSlots { let p = Int(pb[j]); cb[p] = max(cb[p], row[j] * inv) }
                            }
                        }
                    }
                }
                t0 += R
            }
            out.value[item] = col
        }
        for item in 0..<(kvHeads * G) { columns[item] = out.value[item] }
        for h in 0..<kvHeads {
            let i = layer * kvHeads + h
            for g in 0..<G { let col = columns[h * G + g]; for p in 0..<min(known, col.count) { maxima[i][p * G + g] = max(maxima[i][p * G + g], col[p]) } }
        }
        obs.maxima = maxima
        cache.observations = obs
    }
}

// SIMD helpers: explicit 8-wide vectors (two SSE registers on baseline x86-64, one AVX register where
// enabled); `acc += x * y` rather than addingProduct, which lowered to unlinkable fmaf calls here.

@inline(__always) func simdDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        acc0 += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        acc1 += ra.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
        i += 16
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// `y += alpha · x`
@inline(__always) func simdAxpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    let ry = UnsafeMutableRawPointer(y), rx = UnsafeRawPointer(x)
    let a = SIMD8<Float>(repeating: alpha)
    while i + 8 <= n {
        let v = ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) + a * rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        ry.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}

/// The largest of s[0 ..< n] (−∞ for none). Exact, so the vector order gives what a scalar loop gives.
@inline(__always) func simdMax(_ s: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>(repeating: -.infinity)
    var j = 0
    let raw = UnsafeRawPointer(s)
    while j + 8 <= n {
        let v = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
        acc.replace(with: v, where: v .> acc)  // (pointwiseMax is not inlined: a call per vector)
        j += 8
    }
    var m = acc.max()
    while j < n { m = max(m, s[j]); j += 1 }
    return m
}

/// Sets s[j] = −∞ for the keys a query at `qp` cannot see (keys[j] > qp or ≤ oldest) and returns the largest
/// visible score (−∞ for none).
@inline(__always) func maskAndMax(_ s: UnsafeMutablePointer<Float>, keys: UnsafePointer<Int32>, _ n: Int, query qp: Int32, oldest: Int32) -> Float {
    var acc = SIMD8<Float>(repeating: -.infinity)
    let q = SIMD8<Int32>(repeating: qp), o = SIMD8<Int32>(repeating: oldest), none = SIMD8<Float>(repeating: -.infinity)
    var j = 0
    let raw = UnsafeMutableRawPointer(s), kr = UnsafeRawPointer(keys)
    while j + 8 <= n {
        let k = kr.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Int32>.self)
        let v = raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self).replacing(with: none, where: (k .> q) .| (k .<= o))
        raw.storeBytes(of: v, toByteOffset: 4 * j, as: SIMD8<Float>.self)
        acc.replace(with: v, where: v .> acc)
        j += 8
    }
    var m = acc.max()
    while j < n {
        if keys[j] > qp || keys[j] <= oldest { s[j] = -.infinity } else { m = max(m, s[j]) }
        j += 1
    }
    return m
}

/// `y *= alpha`
@inline(__always) func simdScale(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ n: Int) {
    for i in 0..<n { y[i] *= alpha }
}

/// `s[j] = e^(s[j] − shift)` for j < n, returning the sum.
@inline(__always) func expShiftSum(_ s: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
    var acc = SIMD8<Float>()
    var j = 0
    // The same steps on 16 lanes where the CPU has AVX-512 (C: Swift cannot compile one function for it).
    if KernelBuild.vnni512 {
        j = withUnsafeMutablePointer(to: &acc) { kvkit_exp_shift_sum_avx512(s, n, shift, UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self)) }
    }
    return expShiftSumRest(s, n, shift: shift, from: j, acc)
}

/// `expShiftSum` in Swift from value `j` on, the 8 lanes `acc` carrying the sums of the chunks before it: the
/// reference the AVX-512 version is tested against (from 0: `expShiftSumIsTheSwiftLoop`), and the path of other
/// CPUs.
@inline(__always) func expShiftSumRest(_ s: UnsafeMutablePointer<Float>, _ n: Int, shift: Float, from j0: Int, _ acc0: SIMD8<Float>) -> Float {
    var acc = acc0
    var j = j0
    let raw = UnsafeMutableRawPointer(s)
    let sh = SIMD8<Float>(repeating: shift)
    while j + 8 <= n {
        let e = simdExp(raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self) - sh)
        raw.storeBytes(of: e, toByteOffset: 4 * j, as: SIMD8<Float>.self)
        acc += e
        j += 8
    }
    var sum = acc.sum()
    while j < n {
        let e = Foundation.exp(s[j] - shift)
        s[j] = e
        sum += e
        j += 1
    }
    return sum
}
