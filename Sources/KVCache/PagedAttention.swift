import Foundation
import TensorMath

/// Causal grouped-query attention that reads K and V through a cache's page tables.
///
/// For each KV head, the `G = nHeads / kvHeads` query heads that share it are stacked into one block of
/// `G × T` query rows, and keys are visited page by page (or in gathered tiles of whole pages for large
/// query blocks) with a streaming ("online") softmax: a running max `m`, normaliser `l` and output
/// accumulator per row, rescaled when the max grows (Milakov & Gimelshein 2018; FlashAttention).
/// Scratch memory is a few tiles per worker and never grows with context length; no n × n score matrix
/// exists. Causality is by recorded position: key slot j is visible to query t iff pos(j) ≤ pos(t).
public enum PagedAttention {
    /// Query rows processed together per work item.
    public static let queryChunk = 64
    /// Keys per gathered tile on the matrix-product path.
    public static let keyTile = 128
    /// Below this many query rows per block, dot products are computed directly on pages (decode);
    /// at or above it, tiles are gathered and multiplied with sgemm (prefill).
    public static let gemmMinRows = 16

    /// - Parameters:
    ///   - q: `[T][nHeads][headDim]` queries (RoPE applied).
    ///   - positions: the T queries' positions.
    ///   - out: `[T][nHeads][headDim]` attention outputs.
    public static func attend(cache: PagedKVCache, layer: Int, q: UnsafePointer<Float>, positions: [Int32],
                              nHeads: Int, out: UnsafeMutablePointer<Float>) {
        let T = positions.count, kvHeads = cache.kvHeads
        precondition(nHeads % kvHeads == 0, "query heads must be a multiple of KV heads")
        let chunks = (T + queryChunk - 1) / queryChunk
        let qBox = UnsafeSendable(q), oBox = UnsafeSendable(out)
        Threads.parallelFor(kvHeads * chunks) { item in
            let h = item / chunks, c = item % chunks
            let t0 = c * queryChunk, t1 = min(T, t0 + queryChunk)
            attendBlock(cache: cache, layer: layer, head: h, q: qBox.value, out: oBox.value,
                        positions: positions, t0: t0, t1: t1, nHeads: nHeads)
        }
    }

    /// Bytes of scratch one worker uses for a block of `rows` query rows: independent of context length.
    public static func scratchBytes(rows: Int, headDim: Int, pageSize: Int) -> Int {
        let tile = max(keyTile, pageSize)
        return MemoryLayout<Float>.size * (2 * rows * headDim + rows * tile + 2 * tile * headDim + 2 * rows) + 4 * tile
    }

    private static func attendBlock(cache: PagedKVCache, layer: Int, head h: Int, q: UnsafePointer<Float>,
                                    out: UnsafeMutablePointer<Float>, positions: [Int32], t0: Int, t1: Int, nHeads: Int) {
        let hd = cache.headDim, G = nHeads / cache.kvHeads, Tc = t1 - t0, R = G * Tc
        let pool = cache.pool, ps = pool.pageSize
        let table = cache.table(layer: layer, head: h)
        let scale = 1 / Float(hd).squareRoot()
        let useGemm = R >= gemmMinRows
        let tileCap = useGemm ? max(keyTile / ps, 1) * ps : ps

        // Scratch: Q [R][hd], O [R][hd], S [R][tileCap], K/V tiles [tileCap][hd], m/l [R], row positions [R].
        let Qb = UnsafeMutablePointer<Float>.allocate(capacity: R * hd); defer { Qb.deallocate() }
        let O = UnsafeMutablePointer<Float>.allocate(capacity: R * hd); defer { O.deallocate() }
        let S = UnsafeMutablePointer<Float>.allocate(capacity: R * tileCap); defer { S.deallocate() }
        let Kt = UnsafeMutablePointer<Float>.allocate(capacity: useGemm ? tileCap * hd : 1); defer { Kt.deallocate() }
        let Vt = UnsafeMutablePointer<Float>.allocate(capacity: useGemm ? tileCap * hd : 1); defer { Vt.deallocate() }
        let Pt = UnsafeMutablePointer<Int32>.allocate(capacity: tileCap); defer { Pt.deallocate() }
        var m = [Float](repeating: -.infinity, count: R), l = [Float](repeating: 0, count: R)
        var rowPos = [Int32](repeating: 0, count: R)
        O.initialize(repeating: 0, count: R * hd)
        var maxQPos: Int32 = .min
        // Row r = g·Tc + t holds query head h·G + g at token t0 + t, pre-scaled by 1/sqrt(hd).
        for g in 0..<G {
            for t in 0..<Tc {
                let r = g * Tc + t
                let src = q + ((t0 + t) * nHeads + h * G + g) * hd
                for d in 0..<hd { Qb[r * hd + d] = src[d] * scale }
                rowPos[r] = positions[t0 + t]
                maxQPos = max(maxQPos, rowPos[r])
            }
        }

        // One block of n contiguous keys: scores, mask, online-softmax update, accumulate P·V.
        func block(_ K: UnsafePointer<Float>, _ V: UnsafePointer<Float>, _ kpos: UnsafePointer<Int32>, _ n: Int) {
            var minK = Int32.max
            for j in 0..<n { minK = min(minK, kpos[j]) }
            if minK > maxQPos { return }  // every key is in the future of every query here
            if useGemm {
                BLAS.gemm(m: R, n: n, k: hd, Qb, lda: hd, K, ldb: hd, transB: true, beta: 0, S, ldc: tileCap)
            } else {
                for r in 0..<R {
                    let qr = Qb + r * hd
                    for j in 0..<n { S[r * tileCap + j] = Vector.dot(qr, K + j * hd, count: hd) }
                }
            }
            for r in 0..<R {
                let s = S + r * tileCap, qp = rowPos[r]
                var mx = -Float.infinity
                for j in 0..<n {
                    if kpos[j] > qp { s[j] = -.infinity } else { mx = max(mx, s[j]) }
                }
                if mx == -.infinity {  // no visible key in this block for this row
                    for j in 0..<n { s[j] = 0 }
                    continue
                }
                let mNew = max(m[r], mx)
                let alpha = Foundation.exp(m[r] - mNew)  // exp(-inf) = 0 on the first visible block
                var sum: Float = 0
                for j in 0..<n {
                    let p = s[j] == -.infinity ? 0 : Foundation.exp(s[j] - mNew)
                    s[j] = p
                    sum += p
                }
                l[r] = l[r] * alpha + sum
                m[r] = mNew
                if alpha != 1 {
                    let o = O + r * hd
                    for d in 0..<hd { o[d] *= alpha }
                }
                if !useGemm {
                    let o = O + r * hd
                    for j in 0..<n where s[j] != 0 {
                        let p = s[j], v = V + j * hd
                        for d in 0..<hd { o[d] += p * v[d] }
                    }
                }
            }
            if useGemm {
                BLAS.gemm(m: R, n: hd, k: n, S, lda: tileCap, V, ldb: hd, transB: false, beta: 1, O, ldc: hd)
            }
        }

        if useGemm {
            // Gather whole pages into a tile of up to tileCap keys, then one pair of sgemm calls per tile.
            var pi = 0
            while pi * ps < table.count {
                var n = 0
                while n < tileCap, pi * ps < table.count {
                    let page = table.pages[pi], c = min(ps, table.count - pi * ps)
                    (Kt + n * hd).update(from: pool.keys(page), count: c * hd)
                    (Vt + n * hd).update(from: pool.values(page), count: c * hd)
                    (Pt + n).update(from: pool.positions(page), count: c)
                    n += c
                    pi += 1
                }
                block(Kt, Vt, Pt, n)
            }
        } else {
            for (pi, page) in table.pages.enumerated() {
                let c = min(ps, table.count - pi * ps)
                block(pool.keys(page), pool.values(page), pool.positions(page), c)
            }
        }

        for g in 0..<G {
            for t in 0..<Tc {
                let r = g * Tc + t
                let dst = out + ((t0 + t) * nHeads + h * G + g) * hd
                let inv: Float = l[r] > 0 ? 1 / l[r] : 0
                for d in 0..<hd { dst[d] = O[r * hd + d] * inv }
            }
        }
    }
}

/// A pointer handed to a fork-join region whose caller outlives every worker.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
