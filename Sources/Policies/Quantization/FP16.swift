import KVCache
#if KVKIT_AVX2
    import _Builtin_intrinsics.intel
#endif

/// `fp16` — IEEE half precision, round to nearest even (2 bytes per value). Error bound: relative
/// 2⁻¹¹ for |x| ≥ 2⁻¹⁴ (normal halves), absolute 2⁻²⁵ below; overflow beyond ±65,504 (not met by
/// K/V activations here). Decoding is exact (a table of every half's Float32 value).
public struct FP16Codec: PageCodec {
    public var name: String { "fp16" }
    public init() {}
    public func packedBytes(rows: Int, headDim: Int) -> Int { rows * headDim * 2 }
    public func encode(_ x: UnsafePointer<Float>, rows: Int, headDim: Int, into out: UnsafeMutableRawPointer) {
        let h = out.assumingMemoryBound(to: Float16.self)
        for i in 0..<(rows * headDim) { h[i] = Float16(x[i]) }
    }
    public func decode(_ p: UnsafeRawPointer, rows: Int, headDim: Int, into x: UnsafeMutablePointer<Float>) {
        halfToFloat(p, count: rows * headDim, into: x)
    }

    public static let info = CodecInfo(
        name: "fp16", summary: "half-precision pages (the baseline every ratio is against)", paper: "IEEE 754 binary16",
        settings: ResidualSettings.self
    ) { s in
        CacheCodec(name: "fp16", keys: FP16Codec(), values: FP16Codec(), residual: s.residual)
    }
}

/// Widens `count` binary16 values to Float32 exactly, by lookup in a 65,536-entry table (256 KiB, built
/// once with the bit-level widening below; a table load beat the 8-lane bit arithmetic here by 6×). The
/// AVX2 host build converts 8 values per F16C instruction (`vcvtph2ps`, exact), 5× the table's speed.
@inline(__always) func halfToFloat(_ p: UnsafeRawPointer, count n: Int, into x: UnsafeMutablePointer<Float>) {
    var i = 0
    #if KVKIT_AVX2
        while i + 8 <= n {
            UnsafeMutableRawPointer(x + i).storeBytes(of: _mm256_cvtph_ps(p.loadUnaligned(fromByteOffset: 2 * i, as: __m128i.self)), as: __m256.self)
            i += 8
        }
    #endif
    let h = p.assumingMemoryBound(to: UInt16.self)
    HalfTable.shared.values.withUnsafeBufferPointer { t in
        let tb = t.baseAddress!
        while i < n { x[i] = tb[Int(h[i])]; i += 1 }
    }
}

/// Float32 value of every binary16 bit pattern.
final class HalfTable: Sendable {
    static let shared = HalfTable()
    let values: [Float]
    private init() { values = (0...UInt16.max).map(HalfTable.widen) }

    /// The 15 magnitude bits shifted into a float's exponent and mantissa and scaled by 2¹¹² (which also
    /// normalises subnormals); infinities and NaNs get the all-ones exponent; then the sign.
    static func widen(_ h: UInt16) -> Float {
        let v = UInt32(h), em = v & 0x7FFF
        var f = (Float(bitPattern: em << 13) * Float(bitPattern: 0x7780_0000)).bitPattern
        if em >= 0x7C00 { f = (em << 13) | 0x7F80_0000 }
        return Float(bitPattern: f | ((v & 0x8000) << 16))
    }
}
