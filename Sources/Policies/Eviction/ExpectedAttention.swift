import Foundation
import KVCache
import TensorMath

/// `expected-attention` — Expected Attention (Devoto et al., "Expected Attention: KV Cache Compression by
/// Estimating Attention from Future Queries Distribution", 2025; kvpress's ExpectedAttentionPress).
/// Scores each token by the attention that queries still to come are expected to pay it, without any
/// query from the future: the prompt's queries before RoPE are modelled per query head as a Gaussian
/// (mean μ, covariance Σ, sink rows left out), rotated by the RoPE rotation averaged over the next
/// `future` positions (R̄), and for a key k the expected unnormalized attention is
/// E[exp(qᵀk/√d)] = exp(μ̄ᵀk/√d + kᵀΣ̄k/(2d)) with μ̄ = R̄μ, Σ̄ = R̄ΣR̄ᵀ. The scores are normalized over the
/// stream (softmax), averaged over the query heads of the KV head and scaled by the value's L2 norm
/// (a token whose value is small changes the output little). The first `sinks` tokens are always kept.
/// Query-agnostic: no question is needed, only the prompt's own queries. Parameters and defaults are
/// kvpress's (512 future positions, 4 sinks, covariance and value norms on).
public struct ExpectedAttentionPolicy: EvictionPolicy, Configurable {
    public enum Switch: String, ParameterChoice { case on, off }
    @Parameter("future", 1...131_072, "future positions the queries' RoPE rotation is averaged over") public var future = 512
    @Parameter("sinks", 0...256, "first tokens always kept and left out of the query statistics") public var sinks = 4
    @Parameter("cov", "model the queries' covariance (on) or only their mean (off)") public var covariance = Switch.on
    @Parameter("vnorm", "scale each score by the L2 norm of the token's value") public var vnorm = Switch.on
    public var name: String { "expected-attention" }
    public var needs: ObservationNeeds { ObservationNeeds(queriesFrom: sinks) }
    public init() {}

    public func pinned(_ s: StreamView, budget: Int) -> [Int] { edges(s.count, first: sinks, last: 0) }

    public func scores(_ s: StreamView) -> [Float] {
        guard let moments = s.queries else { preconditionFailure("expected-attention needs query moments; the runner requests them from `needs`") }
        let n = s.count, d = s.headDim, first = min(sinks, n), m = n - first
        guard m > 0 else { return [Float](repeating: 1, count: n) }
        var keys = [Float](repeating: 0, count: m * d)
        for j in 0..<m { keys.replaceSubrange((j * d)..<(j * d + d), with: s.key(first + j)) }
        let next = Int(s.positions.max() ?? -1) + 1
        let rotation = AverageRotation(moments.rope.layer(s.layer), headDim: d, positions: next..<(next + future))
        var total = [Double](repeating: 0, count: m)
        var projected = [Float](repeating: 0, count: m * d)
        let scale = 1 / Double(d).squareRoot()
        for g in 0..<s.group {
            let qh = s.head * s.group + g
            let mu = rotation.apply(moments.mean(layer: s.layer, head: qh))
            var z = [Double](repeating: 0, count: m)
            for j in 0..<m {
                var dot = 0.0
                for x in 0..<d { dot += mu[x] * Double(keys[j * d + x]) }
                z[j] = dot * scale
            }
            if covariance == .on {
                let sigma = rotation.conjugate(moments.covariance(layer: s.layer, head: qh)).map(Float.init)
                // kᵀΣ̄k for every key at once: (K·Σ̄) row by row against K.
                keys.withUnsafeBufferPointer { k in
                    sigma.withUnsafeBufferPointer { c in
                        projected.withUnsafeMutableBufferPointer { p in
                            BLAS.gemm(m: m, n: d, k: d, k.baseAddress!, lda: d, c.baseAddress!, ldb: d, transB: false, beta: 0, p.baseAddress!, ldc: d)
                        }
                    }
                }
                for j in 0..<m {
                    var q = 0.0
                    for x in 0..<d { q += Double(projected[j * d + x]) * Double(keys[j * d + x]) }
                    z[j] += q / Double(2 * d)
                }
            }
            let top = z.max()!
            var sum = 0.0
            for j in 0..<m { z[j] = Foundation.exp(z[j] - top); sum += z[j] }
            for j in 0..<m { total[j] += z[j] / sum / Double(s.group) }
        }
        if vnorm == .on {
            let norms = s.valueNorms()
            for j in 0..<m { total[j] *= Double(norms[first + j]) }
        }
        let best = Float(total.max() ?? 0)
        return Array(repeating: best + 1, count: first) + total.map(Float.init)
    }

    public static let info = PolicyInfo(
        ExpectedAttentionPolicy.self, summary: "attention expected from future queries (query statistics, averaged RoPE)",
        paper: "Devoto et al. 2025, Expected Attention (arXiv:2510.00636)")
}

/// The RoPE rotation averaged over a range of positions: for each rotated pair, the mean of its 2×2
/// rotation matrices (cos̄ on the diagonal, ∓sin̄ off it). Empty frequencies: the identity.
struct AverageRotation {
    let rope: RoPEInfo
    let headDim: Int
    private let cosines: [Double], sines: [Double]

    init(_ rope: RoPEInfo, headDim: Int, positions: Range<Int>) {
        self.rope = rope; self.headDim = headDim
        let n = Double(max(positions.count, 1))
        cosines = rope.frequencies.map { f in positions.reduce(0.0) { $0 + Foundation.cos(Double($1) * f) } / n }
        sines = rope.frequencies.map { f in positions.reduce(0.0) { $0 + Foundation.sin(Double($1) * f) } / n }
    }

    /// R̄ as a dense `[d][d]` matrix.
    var matrix: [Double] {
        let d = headDim
        var r = [Double](repeating: 0, count: d * d)
        for i in 0..<d { r[i * d + i] = 1 }
        for (i, (c, s)) in zip(cosines, sines).enumerated() {
            let (a, b) = rope.pair(i, headDim: d)
            r[a * d + a] = c; r[a * d + b] = -s
            r[b * d + a] = s; r[b * d + b] = c
        }
        return r
    }

    /// R̄ x.
    func apply(_ x: [Double]) -> [Double] {
        var y = x
        for (i, (c, s)) in zip(cosines, sines).enumerated() {
            let (a, b) = rope.pair(i, headDim: headDim)
            y[a] = c * x[a] - s * x[b]
            y[b] = s * x[a] + c * x[b]
        }
        return y
    }

    /// R̄ Σ R̄ᵀ for a `[d][d]` matrix Σ.
    func conjugate(_ sigma: [Double]) -> [Double] {
        let d = headDim, r = matrix
        var left = [Double](repeating: 0, count: d * d), out = left
        // R̄ has at most two non-zeros per row: both products cost O(d²).
        func row(_ x: Int) -> [(Int, Double)] { (0..<d).compactMap { r[x * d + $0] != 0 ? ($0, r[x * d + $0]) : nil } }
        let rows = (0..<d).map(row)
        for x in 0..<d { for (k, w) in rows[x] { for y in 0..<d { left[x * d + y] += w * sigma[k * d + y] } } }
        for x in 0..<d { for y in 0..<d { var v = 0.0; for (k, w) in rows[y] { v += left[x * d + k] * w }; out[x * d + y] = v } }
        return out
    }
}
