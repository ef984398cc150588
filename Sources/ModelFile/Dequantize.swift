// Dequantization of GGML block formats into Float32. Layouts follow ggml-quants.c (block_q4_0 etc.).
// Each function reads `count` elements (a multiple of the block size) from `src` into `dst`.

@inline(__always) func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

@inline(__always) private func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
    p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
}

public enum Dequantize {
    /// Converts `count` elements of `type` at `src` into Float32 at `dst`.
    /// Precondition: `type.canDequantize` and `count` is a multiple of `type.blockSize` (the reader checks both).
    public static func run(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        precondition(type.canDequantize && count % type.blockSize == 0, "caller validates type and count")
        let blocks = count / type.blockSize
        switch type {
        case .f32:
            for i in 0..<count { dst[i] = src.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        case .f16:
            for i in 0..<count { dst[i] = halfToFloat(u16(src, 2 * i)) }
        case .bf16:
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(src, 2 * i)) << 16) }
        case .q8_0:
            for b in 0..<blocks {
                let p = src + b * 34, y = dst + b * 32
                let d = halfToFloat(u16(p, 0))
                for j in 0..<32 { y[j] = d * Float(Int8(bitPattern: p.load(fromByteOffset: 2 + j, as: UInt8.self))) }
            }
        case .q4_0:
            for b in 0..<blocks {
                let p = src + b * 18, y = dst + b * 32
                let d = halfToFloat(u16(p, 0))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                    y[j] = d * Float(Int(q & 0xF) - 8)
                    y[j + 16] = d * Float(Int(q >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let p = src + b * 20, y = dst + b * 32
                let d = halfToFloat(u16(p, 0)), m = halfToFloat(u16(p, 2))
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                    y[j] = d * Float(q & 0xF) + m
                    y[j + 16] = d * Float(q >> 4) + m
                }
            }
        case .q4_K:
            for b in 0..<blocks { dequantizeQ4K(src + b * 144, dst + b * 256) }
        case .q6_K:
            for b in 0..<blocks { dequantizeQ6K(src + b * 210, dst + b * 256) }
        default:
            preconditionFailure("unreachable: canDequantize checked")
        }
    }

    /// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min each, packed in 12 bytes.
    private static func dequantizeQ4K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
        let scales = p + 4, qs = p + 16
        func scaleMin(_ j: Int) -> (Float, Float) {
            let s = { (i: Int) in scales.load(fromByteOffset: i, as: UInt8.self) }
            if j < 4 { return (Float(s(j) & 63), Float(s(j + 4) & 63)) }
            let sc = (s(j + 4) & 0xF) | ((s(j - 4) >> 6) << 4)
            let m = (s(j + 4) >> 4) | ((s(j) >> 6) << 4)
            return (Float(sc), Float(m))
        }
        var out = 0
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMin(2 * chunk), (sc2, m2) = scaleMin(2 * chunk + 1)
            let q = qs + 32 * chunk
            for l in 0..<32 { y[out + l] = d * sc1 * Float(q.load(fromByteOffset: l, as: UInt8.self) & 0xF) - dmin * m1 }
            for l in 0..<32 { y[out + 32 + l] = d * sc2 * Float(q.load(fromByteOffset: l, as: UInt8.self) >> 4) - dmin * m2 }
            out += 64
        }
    }

    /// Q6_K: 6-bit weights (4 low bits in ql, 2 high bits in qh), 16 int8 scales, one fp16 super-scale.
    private static func dequantizeQ6K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 208))
        for half in 0..<2 {
            let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half
            let yy = y + 128 * half
            for l in 0..<32 {
                let s = { (i: Int) in Float(Int8(bitPattern: sc.load(fromByteOffset: i, as: UInt8.self))) }
                let lo0 = ql.load(fromByteOffset: l, as: UInt8.self), lo1 = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                let hi = qh.load(fromByteOffset: l, as: UInt8.self)
                let is_ = l / 16
                let q1 = Int(lo0 & 0xF | ((hi >> 0) & 3) << 4) - 32
                let q2 = Int(lo1 & 0xF | ((hi >> 2) & 3) << 4) - 32
                let q3 = Int(lo0 >> 4 | ((hi >> 4) & 3) << 4) - 32
                let q4 = Int(lo1 >> 4 | ((hi >> 6) & 3) << 4) - 32
                yy[l] = d * s(is_) * Float(q1)
                yy[l + 32] = d * s(is_ + 2) * Float(q2)
                yy[l + 64] = d * s(is_ + 4) * Float(q3)
                yy[l + 96] = d * s(is_ + 6) * Float(q4)
            }
        }
    }
}
