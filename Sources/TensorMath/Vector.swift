import CKernels
import Foundation

/// Element-wise kernels on Float32 rows. Written as plain loops over unsafe pointers so the
/// optimiser vectorises them (checked in release builds); no `fmaf` calls (they failed to link here).
public enum Vector {
    /// `out = x / rms(x) * weight`, rms = sqrt(mean(x²) + eps).
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count n: Int, eps: Float) {
        var ss: Float = 0
        for i in 0..<n { ss += x[i] * x[i] }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        for i in 0..<n { out[i] = x[i] * scale * weight[i] }
    }

    /// `gate = silu(gate) * up`, silu(g) = g / (1 + e^-g), 8 lanes at a time (`simdExp`; libm's scalar
    /// `expf` was 1–2 % of a prefill).
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        let done = KernelBuild.vnni512 ? kvkit_silu_mul_avx512(gate, up, n) : 0  // 16 lanes, the same bits
        lanes(gate + done, up + done, n - done) { g, u in g * u / (1 + simdExp(-g)) }
    }

    /// `gate = gelu(gate) * up` with GELU's tanh form, 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))) (Gemma's
    /// GeGLU), written as g / (1 + e^(−2·√(2/π)·(g + 0.044715·g³))) (the same function: 1 + tanh(a) =
    /// 2 / (1 + e^(−2a))), 8 lanes at a time: libm's scalar `tanhf` took 18 % of a Gemma 3 prefill.
    public static func geluTanhMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        let c: Float = -2 * 0.797_884_56  // −2·√(2/π)
        let done = KernelBuild.vnni512 ? kvkit_gelu_tanh_mul_avx512(gate, up, n, c) : 0  // 16 lanes, the same bits
        lanes(gate + done, up + done, n - done) { g, u in g * u / (1 + simdExp(c * (g + 0.044715 * g * g * g))) }
    }

    /// `gate[i] = f(gate[i], up[i])` 8 lanes at a time; the tail through one zero-padded vector, so every
    /// element takes the same arithmetic.
    @inline(__always) static func lanes(
        _ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, _ n: Int,
        _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>
    ) {
        let g = UnsafeMutableRawPointer(gate), u = UnsafeRawPointer(up)
        var i = 0
        while i + 8 <= n {
            g.storeBytes(
                of: f(g.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self), u.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)),
                toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        guard i < n else { return }
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        for k in 0..<(n - i) { a[k] = gate[i + k]; b[k] = up[i + k] }
        let r = f(a, b)
        for k in 0..<(n - i) { gate[i + k] = r[k] }
    }

    /// `y += x`.
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// Index of the largest value (first on ties).
    public static func argmax(_ x: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }
}

/// e^x for 8 lanes (Cephes `expf` scheme: x = n·ln2 + r, degree-6 polynomial for e^r, 2^n by exponent
/// bits), relative error ≲ 2e-7 over the range used here. Inputs below −87 (including −∞ for masked
/// keys) give exactly 0, as the softmax needs. Only add, multiply, min/max, compare and integer shifts
/// are used, so it stays vectorised on baseline x86-64 (no SSE4.1 rounding): n is rounded by adding
/// 1.5·2²³, which leaves n in the low mantissa bits.
@inlinable @inline(__always) public func simdExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let v0 = x.replacing(with: -87, where: x .< -87).replacing(with: 88, where: x .> 88)
    let magic = SIMD8<Float>(repeating: 12_582_912)  // 1.5 · 2^23
    let t = v0 * 1.442_695_04 + magic
    let n = t - magic  // round(x · log2 e)
    let r = v0 - n * 0.693_359_375 + n * 2.121_944_4e-4
    let z = r * r
    var y = SIMD8<Float>(repeating: 1.987_569_15e-4)
    y = y * r + 1.398_199_95e-3
    y = y * r + 8.333_451_9e-3
    y = y * r + 4.166_579_59e-2
    y = y * r + 1.666_666_55e-1
    y = y * r + 5.000_000_12e-1
    y = y * z + r + 1
    let nBits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000  // n as an integer
    let pow2 = unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD8<Float>.self)
    let keep = unsafeBitCast(x .>= -87, to: SIMD8<Int32>.self)  // all-ones lanes where not underflowing
    return unsafeBitCast(unsafeBitCast(y * pow2, to: SIMD8<Int32>.self) & keep, to: SIMD8<Float>.self)
}
