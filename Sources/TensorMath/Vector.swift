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

    /// `gate = silu(gate) * up`, silu(g) = g / (1 + e^-g).
    public static func siluMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + Foundation.exp(-g)) * up[i]
        }
    }

    /// `gate = gelu(gate) * up` with GELU's tanh form, 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))) (Gemma's GeGLU).
    public static func geluTanhMul(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count n: Int) {
        let c: Float = 0.797_884_56  // √(2/π)
        for i in 0..<n {
            let g = gate[i]
            gate[i] = 0.5 * g * (1 + Foundation.tanh(c * (g + 0.044715 * g * g * g))) * up[i]
        }
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
