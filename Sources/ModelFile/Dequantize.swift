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
        case .q5_0, .q5_1:
            let q51 = type == .q5_1, stride = q51 ? 24 : 22
            for b in 0..<blocks {
                let p = src + b * stride, y = dst + b * 32
                let d = halfToFloat(u16(p, 0)), m = q51 ? halfToFloat(u16(p, 2)) : 0
                let hOff = q51 ? 4 : 2
                let qh = p.loadUnaligned(fromByteOffset: hOff, as: UInt32.self)
                for j in 0..<16 {
                    let q = p.load(fromByteOffset: hOff + 4 + j, as: UInt8.self)
                    let x0 = Int(q & 0xF) | Int((qh >> UInt32(j)) << 4 & 0x10)
                    let x1 = Int(q >> 4) | Int((qh >> UInt32(j + 12)) & 0x10)
                    if q51 { y[j] = d * Float(x0) + m; y[j + 16] = d * Float(x1) + m } else { y[j] = d * Float(x0 - 16); y[j + 16] = d * Float(x1 - 16) }
                }
            }
        case .q2_K:
            for b in 0..<blocks { dequantizeQ2K(src + b * 84, dst + b * 256) }
        case .q3_K:
            for b in 0..<blocks { dequantizeQ3K(src + b * 110, dst + b * 256) }
        case .q5_K:
            for b in 0..<blocks { dequantizeQ5K(src + b * 176, dst + b * 256) }
        case .q4_K:
            for b in 0..<blocks { dequantizeQ4K(src + b * 144, dst + b * 256) }
        case .q6_K:
            for b in 0..<blocks { dequantizeQ6K(src + b * 210, dst + b * 256) }
        default:
            preconditionFailure("unreachable: canDequantize checked")
        }
    }

    /// The 6-bit scale and min of sub-block `j` of a Q4_K / Q5_K block, packed in 12 bytes (`get_scale_min_k4`).
    @inline(__always) public static func scaleMinK4(_ j: Int, _ scales: UnsafeRawPointer) -> (Float, Float) {
        let s = { (i: Int) in scales.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (Float(s(j) & 63), Float(s(j + 4) & 63)) }
        let sc = (s(j + 4) & 0xF) | ((s(j - 4) >> 6) << 4)
        let m = (s(j + 4) >> 4) | ((s(j) >> 6) << 4)
        return (Float(sc), Float(m))
    }

    /// Q2_K: 16 sub-blocks of 16 with 4-bit scale and min, 2-bit codes; fp16 d and dmin at the end.
    private static func dequantizeQ2K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 80)), dmin = halfToFloat(u16(p, 82))
        var out = 0, sub = 0
        for n in 0..<2 {
            let q = p + 16 + 32 * n
            for shift in stride(from: 0, to: 8, by: 2) {
                for half in 0..<2 {
                    let sc = p.load(fromByteOffset: sub, as: UInt8.self); sub += 1
                    let dl = d * Float(sc & 0xF), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { y[out + l] = dl * Float((q.load(fromByteOffset: 16 * half + l, as: UInt8.self) >> UInt8(shift)) & 3) - ml }
                    out += 16
                }
            }
        }
    }

    /// Q3_K: 2 low bits in qs, the third (inverted) in hmask, 16 signed 6-bit scales packed in 12 bytes.
    private static func dequantizeQ3K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 108))
        let a0 = p.loadUnaligned(fromByteOffset: 96, as: UInt32.self), a1 = p.loadUnaligned(fromByteOffset: 100, as: UInt32.self)
        let tmp = p.loadUnaligned(fromByteOffset: 104, as: UInt32.self)
        let k1: UInt32 = 0x0303_0303, k2: UInt32 = 0x0F0F_0F0F
        let aux = [
            (a0 & k2) | (((tmp >> 0) & k1) << 4), (a1 & k2) | (((tmp >> 2) & k1) << 4),
            ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4), ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4),
        ]
        func scale(_ i: Int) -> Float { Float(Int8(truncatingIfNeeded: aux[i / 4] >> UInt32(8 * (i % 4))) &- 32) }
        var out = 0, sub = 0, m: UInt8 = 1
        for n in 0..<2 {
            let q = p + 32 + 32 * n
            for shift in stride(from: 0, to: 8, by: 2) {
                for half in 0..<2 {
                    let dl = d * scale(sub); sub += 1
                    for l in 0..<16 {
                        let code = Int((q.load(fromByteOffset: 16 * half + l, as: UInt8.self) >> UInt8(shift)) & 3)
                        let high = p.load(fromByteOffset: 16 * half + l, as: UInt8.self) & m != 0 ? 0 : 4
                        y[out + l] = dl * Float(code - high)
                    }
                    out += 16
                }
                m <<= 1
            }
        }
    }

    /// Q5_K: as Q4_K with a fifth bit per value in qh.
    private static func dequantizeQ5K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
        let scales = p + 4, qh = p + 16, ql = p + 48
        var out = 0, u1: UInt8 = 1, u2: UInt8 = 2
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMinK4(2 * chunk, scales), (sc2, m2) = scaleMinK4(2 * chunk + 1, scales)
            let q = ql + 32 * chunk
            for l in 0..<32 {
                let h = qh.load(fromByteOffset: l, as: UInt8.self), v = q.load(fromByteOffset: l, as: UInt8.self)
                y[out + l] = d * sc1 * Float(Int(v & 0xF) + (h & u1 != 0 ? 16 : 0)) - dmin * m1
                y[out + 32 + l] = d * sc2 * Float(Int(v >> 4) + (h & u2 != 0 ? 16 : 0)) - dmin * m2
            }
            out += 64; u1 <<= 2; u2 <<= 2
        }
    }

    /// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min each, packed in 12 bytes.
    private static func dequantizeQ4K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
        let scales = p + 4, qs = p + 16
        func scaleMin(_ j: Int) -> (Float, Float) { scaleMinK4(j, scales) }
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
