import Foundation
import KVCache
import TensorMath

/// `leverage` — statistical leverage of the keys before RoPE (Chari & Van Durme, "Compactor: Calibrated
/// Query-Agnostic KV Cache Compression with Approximate Leverage Scores", 2025; kvpress 0.5.5's
/// `LeverageScorePress`). A key that lies off the span the other keys fill is one no mix of them can stand
/// in for: with X the stream's keys before RoPE, centred over the stream, a token's score is its leverage
/// xᵢᵀ (XᵀX + λI)⁻¹ xᵢ, the diagonal of the hat matrix (λ = 0.01, kvpress's first Cholesky jitter).
/// kvpress multiplies X by a fresh Gaussian sketch of 48 columns first (the paper's speed-up for wide
/// heads; a new draw every call); `sketch=0`, the default here, computes the leverage the sketch
/// approximates, exactly (a d × d Cholesky per stream: cheap at d = 64–128); `sketch=K` draws the K-column
/// sketch from the run's seed. Query-agnostic, needs no attention. Parameters: `sketch`.
public struct LeveragePolicy: EvictionPolicy, Configurable {
    @Parameter("sketch", 0...4096, "columns of the Gaussian sketch (0: exact leverage)") public var sketch = 0
    public var name: String { "leverage" }
    public init() {}
    /// The keys are read before RoPE: the model's rotation comes from its pass (no computation).
    public var passes: [PolicyPass] { [.rope] }

    /// The ridge λ added to XᵀX (kvpress's `chol_with_jitter(..., jitter=1e-2)`, whose first try always adds it).
    static let ridge = 0.01

    public func scores(_ s: StreamView) -> [Float] {
        guard s.count > 0 else { return [] }
        guard let rope = s.prepared[PolicyPass.rope.key] as? RoPEInfo else {
            preconditionFailure("leverage needs the model's RoPE; the runner runs `passes` first")
        }
        return Self.leverage(s, slots: 0..<s.count, rope: rope, sketch: sketch)
    }

    /// The leverage of the keys of `slots` (read before RoPE, centred over those slots), in slot order.
    public static func leverage(_ s: StreamView, slots: Range<Int>, rope: RoPEInfo, sketch: Int) -> [Float] {
        let r = rope.layer(s.layer), d = s.headDim, n = slots.count
        guard n > 0 else { return [] }
        // Raw buffers, every sum in the order of the plain array version (`PolicyTests.leverageReference`, equal
        // bit for bit): array indexing's checks and copies made this 7 % of a RULER study's time.
        var x = UnsafeMutablePointer<Double>.allocate(capacity: n * d)
        defer { x.deallocate() }
        for (i, slot) in slots.enumerated() {
            let k = r.unrotate(s.key(slot), position: s.positions[slot])
            for j in 0..<d { x[i * d + j] = Double(k[j]) }
        }
        // Centre over the sequence (kvpress: key_states − mean over the tokens).
        for j in 0..<d {
            var m = 0.0
            for i in 0..<n { m += x[i * d + j] }
            m /= Double(n)
            for i in 0..<n { x[i * d + j] -= m }
        }
        var k = d
        if sketch > 0 {
            // X · Φ with Φ [d][sketch] Gaussian / √sketch, seeded per stream.
            var rng = SplitMix64(seed: s.seed)
            let phi = (0..<(d * sketch)).map { _ in gaussian(&rng) / Double(sketch).squareRoot() }
            let y = UnsafeMutablePointer<Double>.allocate(capacity: n * sketch)
            y.initialize(repeating: 0, count: n * sketch)
            phi.withUnsafeBufferPointer { phi in
                for i in 0..<n {
                    for a in 0..<d where x[i * d + a] != 0 {
                        let v = x[i * d + a], row = y + i * sketch, p = phi.baseAddress! + a * sketch
                        for b in 0..<sketch { row[b] += v * p[b] }
                    }
                }
            }
            x.deallocate()
            x = y
            k = sketch
        }
        // G = XᵀX + λI, its Cholesky factor L; score_i = ‖L⁻¹ xᵢ‖².
        let g = UnsafeMutablePointer<Double>.allocate(capacity: k * k), l = UnsafeMutablePointer<Double>.allocate(capacity: k * k)
        let y = UnsafeMutablePointer<Double>.allocate(capacity: k)
        defer { g.deallocate(); l.deallocate(); y.deallocate() }
        g.initialize(repeating: 0, count: k * k); l.initialize(repeating: 0, count: k * k)
        for i in 0..<n {
            let xi = x + i * k
            for a in 0..<k where xi[a] != 0 {
                let v = xi[a], ga = g + a * k
                for b in 0...a { ga[b] += v * xi[b] }
            }
        }
        for a in 0..<k { g[a * k + a] += ridge }
        for a in 0..<k {
            for b in 0...a {
                var sum = g[a * k + b]
                for c in 0..<b { sum -= l[a * k + c] * l[b * k + c] }
                l[a * k + b] = a == b ? Swift.max(sum, 1e-12).squareRoot() : sum / l[b * k + b]
            }
        }
        return (0..<n).map { i in
            var total = 0.0
            for a in 0..<k {
                var sum = x[i * k + a]
                for c in 0..<a { sum -= l[a * k + c] * y[c] }
                y[a] = sum / l[a * k + a]
                total += y[a] * y[a]
            }
            return Float(total)
        }
    }

    /// A standard normal draw (Box–Muller).
    static func gaussian(_ rng: inout SplitMix64) -> Double {
        let u = Swift.max(Double.random(in: 0..<1, using: &rng), 1e-300), v = Double.random(in: 0..<1, using: &rng)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    public static let info = PolicyInfo(
        LeveragePolicy.self, summary: "statistical leverage of the keys before RoPE (outliers kept)",
        paper: "Chari & Van Durme 2025, Compactor (arXiv:2507.08143)")
}
