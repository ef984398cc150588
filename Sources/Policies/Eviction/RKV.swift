import Foundation
import TensorMath

/// `rkv` — R-KV (Cai et al., "R-KV: Redundancy-aware KV Cache Compression for Reasoning Models", 2025,
/// arXiv:2505.24133), made for text the model writes itself: a token's score is its importance minus its
/// redundancy, `λ · importance − (1 − λ) · redundancy`.
/// - importance: the attention the last `window` queries give it (the mean over those queries and over
///   the query heads of the group), max-pooled over `kernel` neighbouring tokens;
/// - redundancy: the cosine similarity of its key with every other key of the stream, averaged over the
///   stream after removing, per row, its similarity with the *latest* key above `threshold` (that copy is
///   not held against it), then softmax-normalised over the stream. A token that repeats many others
///   scores high and goes first.
/// The window itself is always kept and counts inside the budget. Defaults are the paper's and kvpress's
/// `RkvPress` (window 8, kernel 7, λ = 0.07, threshold 0.5); one known quirk is kept so the two agree:
/// a row with no similar key removes its similarity with slot 0.
///
/// R-KV compresses while decoding: run it with `--compress-every N` (each N generated tokens the cache is
/// compressed back to the budget) or `--compress-between-turns`; alone it compresses once after the prompt.
public struct RKVPolicy: EvictionPolicy, Configurable {
    @Parameter("window", 1...4096, "recent queries whose attention gives importance; always kept") public var window = 8
    @Parameter("kernel", 1...63, "max-pooling width over neighbouring tokens (odd)", rule: .odd) public var kernel = 7
    @Parameter("lambda", 0.0...1.0, "weight of importance against redundancy") public var lambda = 0.07
    @Parameter("threshold", -1.0...1.0, "cosine above which a key counts as a copy") public var threshold = 0.5
    @Parameter("gqa", groupHelp) public var gqa = GroupCombine.mean
    public var name: String { "rkv" }
    public init() {}
    public var needs: ObservationNeeds { ObservationNeeds(window: window) }

    public func scores(_ s: StreamView) -> [Float] {
        guard let w = s.window else { preconditionFailure("rkv needs window attention; the runner requests it from `needs`") }
        let n = s.count
        // Importance: each query head's share of the window's attention (its totals sum to the queries
        // observed), the group combined, then max-pooled along the slots.
        var perHead = [Float](repeating: 0, count: n * s.group)
        for g in 0..<s.group {
            var q: Float = 0
            for i in 0..<n { q += w[i * s.group + g] }
            let scale = q > 0 ? 1 / q : 0
            for i in 0..<n { perHead[i * s.group + g] = w[i * s.group + g] * scale }
        }
        let attention = s.combine(perHead, gqa)
        let half = kernel / 2, scored = max(0, n - window)  // the window's own keys are not pooled in (kvpress)
        var importance = [Float](repeating: 0, count: n)
        for i in 0..<scored {
            var m: Float = -.infinity
            for j in max(0, i - half)...min(scored - 1, i + half) { m = Swift.max(m, attention[j]) }
            importance[i] = m
        }
        let redundancy = Self.redundancy(s, threshold: Float(threshold))
        let l = Float(lambda)
        return (0..<n).map { l * importance[$0] - (1 - l) * redundancy[$0] }
    }

    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: 0, last: window) }

    /// Per slot: the softmax over the stream of each key's mean cosine with the others (see the type's
    /// comment). Computed in blocks of rows with sgemm so memory stays O(block · n).
    static func redundancy(_ s: StreamView, threshold: Float) -> [Float] {
        let n = s.count, d = s.headDim
        guard n > 1 else { return [Float](repeating: n == 1 ? 1 : 0, count: n) }
        var unit = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            let k = s.key(i)
            let norm = k.reduce(0) { $0 + $1 * $1 }.squareRoot() + 1e-8
            for j in 0..<d { unit[i * d + j] = k[j] / norm }
        }
        var mean = [Float](repeating: 0, count: n)
        let block = 256
        var tile = [Float](repeating: 0, count: min(block, n) * n)
        unit.withUnsafeBufferPointer { u in
            tile.withUnsafeMutableBufferPointer { t in
                var r0 = 0
                while r0 < n {
                    let rows = min(block, n - r0)
                    BLAS.gemm(m: rows, n: n, k: d, u.baseAddress! + r0 * d, lda: d, u.baseAddress!, ldb: d, transB: true, beta: 0, t.baseAddress!, ldc: n)
                    for r in 0..<rows {
                        let i = r0 + r, row = t.baseAddress! + r * n
                        row[i] = 0
                        // The row's sum (16 lanes at a time), and its latest key above the threshold found
                        // by scanning back from the end (in prose one is usually near it).
                        var acc = SIMD16<Float>(), j = 0
                        let raw = UnsafeRawPointer(row)
                        while j + 16 <= n { acc += raw.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self); j += 16 }
                        var sum = acc.sum()
                        while j < n { sum += row[j]; j += 1 }
                        var last = n - 1
                        while last > 0 && !(row[last] > threshold) { last -= 1 }
                        mean[i] = (sum - row[last]) / Float(n)
                    }
                    r0 += rows
                }
            }
        }
        let m = mean.max() ?? 0
        var z: Float = 0
        var out = mean.map { x -> Float in
            let e = Foundation.exp(x - m); z += e; return e
        }
        for i in out.indices { out[i] /= z }
        return out
    }

    public static let info = PolicyInfo(
        RKVPolicy.self, summary: "importance from the recent window minus key redundancy, for decoding",
        paper: "Cai et al. 2025, R-KV (arXiv:2505.24133)")
}
