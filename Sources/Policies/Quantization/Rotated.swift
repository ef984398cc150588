import Foundation
import KVCache
import TensorMath

/// `rot2`, `rot3`, `rot4` — rotated low-bit codes, after QuaRot (Ashkboos et al. 2024) and TurboQuant
/// (Zandieh et al. 2025, arXiv:2504.19874). Each K or V row is multiplied by a seeded randomized
/// Hadamard matrix T = H·D/√n (D: random ±1 signs, H: the Walsh–Hadamard matrix, applied by the fast
/// transform in O(d log d), in blocks of n = the largest power of two dividing the head size). The
/// rotation spreads outlier channels over every coordinate, so the rotated coordinates are close to
/// Gaussian with the row's RMS as their scale; each is coded to the nearest of 2^bits Lloyd–Max levels
/// for a unit Gaussian (levels fitted once by Lloyd's iteration), with one Float16 scale per row. Decoding
/// multiplies back by Tᵀ = D·H/√n when a page is read (the kernel sees plain rows; the alternative, rotating
/// the query and keeping values rotated until the output, would put the codec inside the kernel).
/// Bytes per 64-value row: 2 + 8·bits (rot4 34, rot3 26, rot2 18; int4 40, kivi2 ≈ 20).
/// Expected error on Gaussian coordinates: the Lloyd–Max distortion, 11.75 % (2 bits), 3.45 % (3), 0.95 % (4)
/// of the row's energy.
public struct RotatedCodec: PageCodec {
    public let bits: Int
    public let seed: UInt64
    public let name: String
    let levels: [Float]
    let thresholds: [Float]

    public init(bits: Int, seed: UInt64) {
        precondition((2...4).contains(bits), "bits must be 2, 3 or 4")
        self.bits = bits; self.seed = seed
        name = seed == 0 ? "rot\(bits)" : "rot\(bits):seed=\(seed)"
        levels = LloydMax.table[bits]
        thresholds = zip(levels, levels.dropFirst()).map { ($0 + $1) / 2 }
    }

    /// The random signs of D for a head of `d` values (a pure function of the seed).
    func signs(_ d: Int) -> [Float] {
        var rng = SplitMix64(seed: seed &+ 0x5EED_0F_D1A6)
        return (0..<d).map { _ in rng.next() & 1 == 0 ? 1 : -1 }
    }

    /// The rotation block: the largest power of two dividing the head size (64 for 64).
    static func block(_ d: Int) -> Int { d & -d }

    public func packedBytes(rows: Int, headDim: Int) -> Int { rows * 2 + (rows * headDim * bits + 7) / 8 }

    /// In-place orthonormal Walsh–Hadamard transform of each block of `n` values (its own inverse).
    static func hadamard(_ y: UnsafeMutablePointer<Float>, count d: Int) {
        let n = block(d), norm = 1 / Float(n).squareRoot()
        var b = 0
        while b < d {
            let p = y + b
            var h = 1
            while h < n {
                var i = 0
                while i < n {
                    for j in i..<(i + h) { let a = p[j], c = p[j + h]; p[j] = a + c; p[j + h] = a - c }
                    i += 2 * h
                }
                h *= 2
            }
            for j in 0..<n { p[j] *= norm }
            b += n
        }
    }

    public func encode(_ x: UnsafePointer<Float>, rows: Int, headDim d: Int, into out: UnsafeMutableRawPointer) {
        let signs = signs(d)
        let scales = out.assumingMemoryBound(to: Float16.self)
        let codes = (out + rows * 2).assumingMemoryBound(to: UInt8.self)
        codes.initialize(repeating: 0, count: (rows * d * bits + 7) / 8)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: d); defer { y.deallocate() }
        for r in 0..<rows {
            for j in 0..<d { y[j] = x[r * d + j] * signs[j] }
            Self.hadamard(y, count: d)
            var e: Float = 0
            for j in 0..<d { e += y[j] * y[j] }
            let sh = Float16((e / Float(d)).squareRoot())
            scales[r] = sh
            let inv: Float = Float(sh) > 0 ? 1 / Float(sh) : 0
            for j in 0..<d {
                let z = y[j] * inv
                // The level interval holding z: thresholds are ascending.
                var lo = 0, hi = thresholds.count
                while lo < hi { let mid = (lo + hi) / 2; if z > thresholds[mid] { lo = mid + 1 } else { hi = mid } }
                Self.put(UInt32(lo), at: (r * d + j) * bits, bits: bits, codes)
            }
        }
    }

    public func decode(_ p: UnsafeRawPointer, rows: Int, headDim d: Int, into x: UnsafeMutablePointer<Float>) {
        let scales = p.assumingMemoryBound(to: Float16.self)
        let codes = (p + rows * 2).assumingMemoryBound(to: UInt8.self)
        let signs = signs(d)
        for r in 0..<rows {
            let s = Float(scales[r]), y = x + r * d
            for j in 0..<d { y[j] = levels[Int(Self.get(at: (r * d + j) * bits, bits: bits, codes))] * s }
            Self.hadamard(y, count: d)
            for j in 0..<d { y[j] *= signs[j] }
        }
    }

    /// Bit-packed codes, low bits first, a code may straddle two bytes.
    @inline(__always) static func put(_ q: UInt32, at bit: Int, bits: Int, _ codes: UnsafeMutablePointer<UInt8>) {
        let byte = bit >> 3, shift = bit & 7
        codes[byte] |= UInt8(truncatingIfNeeded: q << UInt32(shift))
        if shift + bits > 8 { codes[byte + 1] |= UInt8(truncatingIfNeeded: q >> UInt32(8 - shift)) }
    }
    @inline(__always) static func get(at bit: Int, bits: Int, _ codes: UnsafePointer<UInt8>) -> UInt32 {
        let byte = bit >> 3, shift = bit & 7
        var v = UInt32(codes[byte]) >> UInt32(shift)
        if shift + bits > 8 { v |= UInt32(codes[byte + 1]) << UInt32(8 - shift) }
        return v & ((1 << UInt32(bits)) - 1)
    }
}

/// Lloyd–Max quantizer levels for a unit Gaussian: Lloyd's iteration (each threshold midway between its
/// levels, each level the mean of the Gaussian between its thresholds) from uniform levels, to a fixed point.
enum LloydMax {
    /// Levels for 0...4 bits (index = bits), fitted once.
    static let table: [[Float]] = (0...4).map { $0 == 0 ? [0] : gaussian(levels: 1 << $0) }

    static func gaussian(levels n: Int) -> [Float] {
        func pdf(_ x: Double) -> Double { x.isInfinite ? 0 : Foundation.exp(-x * x / 2) / (2 * Double.pi).squareRoot() }
        func cdf(_ x: Double) -> Double { 0.5 * (1 + Foundation.erf(x / 2.squareRoot())) }
        var l = (0..<n).map { -3 + 6 * (Double($0) + 0.5) / Double(n) }
        for _ in 0..<2000 {
            let t = [-Double.infinity] + zip(l, l.dropFirst()).map { ($0 + $1) / 2 } + [Double.infinity]
            l = (0..<n).map { i in
                let mass = cdf(t[i + 1]) - cdf(t[i])
                return mass > 0 ? (pdf(t[i]) - pdf(t[i + 1])) / mass : l[i]
            }
        }
        return l.map(Float.init)
    }
}

extension RotatedCodec {
    /// Settings of the rotated codecs.
    public struct Settings: Configurable {
        @Parameter("seed", 0...1_000_000, "seed of the random signs of the rotation") public var seed = 0
        @Parameter("residual", 0...1_000_000, "most recent tokens per stream kept in full precision (only full pages outside it are packed)")
        public var residual = 0
        public init() {}
    }

    /// The registry entry of `rot<bits>`.
    static func info(bits: Int) -> CodecInfo {
        CodecInfo(
            name: "rot\(bits)", summary: "\(bits)-bit Lloyd–Max codes of Hadamard-rotated rows, one scale per token",
            paper: "QuaRot (arXiv:2404.00456) / TurboQuant (arXiv:2504.19874) rotation", settings: Settings.self
        ) { s in
            let c = RotatedCodec(bits: bits, seed: UInt64(s.seed))
            return CacheCodec(name: c.name, keys: c, values: c, residual: s.residual)
        }
    }
}
