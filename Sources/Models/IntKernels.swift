import CKernels
import ModelFile

/// Integer decode kernels (`WeightStorage.native`): activations quantized per 32-value block to 16 bits
/// (q = round(x / d), d = max|x| / 32767), so that SSE2's `pmaddwd` multiplies 8 Int16 pairs and adds them
/// pairwise in one instruction. llama.cpp quantizes activations to 8 bits because its AVX2/VNNI kernels
/// multiply bytes; `pmaddwd` multiplies 16-bit lanes either way, so 16 bits cost nothing more here and cut
/// the rounding 258-fold: at most d/2 per value, 1/65534 of the block's largest (with 8 bits SmolLM2's
/// greedy text left llama.cpp's at token 15 of a reference prompt). Sums stay far inside Int32: a lane
/// adds 8 products of at most 127 · 32767. Each block's codes are laid out as [even 0…14][odd 1…15]
/// [even 16…30][odd 17…31]: the order in which 16-bit lanes of the weight bytes give their nibbles (Q4)
/// or bytes (Q8) with one shift and mask. These are the portable kernels; the host build (`-DKVKIT_AVX2`)
/// replaces `lane`, the block primitives and `dotK` with those of `IntKernelsAVX2.swift` (codes in
/// natural order); `dot` is shared. The K-quants (Q4_K, Q5_K, Q6_K) take 8-bit Q8_K codes instead
/// (`ActivationsK`), as llama.cpp does: byte products halve their multiplies (measured in `docs/speed.md`).
enum IntKernels {
    static func covers(_ type: GGMLType) -> Bool { [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K].contains(type) }
    /// The 256-value super-block types (their own kernel, `dotK`).
    @inline(__always) static func superBlock(_ type: GGMLType) -> Bool { type == .q4_K || type == .q5_K || type == .q6_K }

    /// Bytes per 32-value block, and where the nibbles start.
    @inline(__always) static func blockBytes(_ type: GGMLType) -> Int {
        switch type {
        case .q4_0: return 18;
        case .q4_1: return 20;
        case .q5_0: return 22;
        case .q5_1: return 24;
        default: return 34
        }
    }
    /// The code offset a type subtracts (Q4_0: 8, Q5_0: 16), applied through the activations' code sums.
    @inline(__always) static func bias(_ type: GGMLType) -> Float { type == .q4_0 ? 8 : type == .q5_0 ? 16 : 0 }
    /// Whether the block has a Float16 minimum after its scale (Q4_1, Q5_1), applied through the float sums.
    @inline(__always) static func hasMin(_ type: GGMLType) -> Bool { type == .q4_1 || type == .q5_1 }
    /// The C kernels' number for a 32-value block type (`CKernels.h`: 0–4 = Q4_0, Q4_1, Q5_0, Q5_1, Q8_0); nil for others.
    @inline(__always) static func blockCode(_ type: GGMLType) -> Int32? {
        switch type {
        case .q4_0: return 0
        case .q4_1: return 1
        case .q5_0: return 2
        case .q5_1: return 3
        case .q8_0: return 4
        default: return nil
        }
    }

    /// The quantized activations of a few rows, with each block's scale, float sum (Q4_1's offset term)
    /// and code sum (Q4_0's −8 term). Codes are 64-byte aligned: each block's four 16-byte groups load aligned.
    final class Activations: @unchecked Sendable {
        let rows: Int, count: Int, blocks: Int
        let codes: UnsafeMutablePointer<Int16>
        let scales: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Float>, codeSums: UnsafeMutablePointer<Int32>
        /// The activations a view's rows belong to (nil: these own their memory).
        private let owner: Activations?
        init(rows: Int, count: Int) {
            self.rows = rows; self.count = count; blocks = count / 32; owner = nil
            codes = UnsafeMutableRawPointer.allocate(byteCount: rows * count * 2, alignment: 64).bindMemory(to: Int16.self, capacity: rows * count)
            scales = .allocate(capacity: rows * blocks); sums = .allocate(capacity: rows * blocks); codeSums = .allocate(capacity: rows * blocks)
        }
        /// Rows `range` of `a`, sharing its memory.
        init(_ a: Activations, rows range: Range<Int>) {
            rows = range.count; count = a.count; blocks = a.blocks; owner = a
            codes = a.codes + range.lowerBound * a.count
            scales = a.scales + range.lowerBound * a.blocks; sums = a.sums + range.lowerBound * a.blocks; codeSums = a.codeSums + range.lowerBound * a.blocks
        }
        deinit { if owner == nil { UnsafeMutableRawPointer(codes).deallocate(); scales.deallocate(); sums.deallocate(); codeSums.deallocate() } }

        func quantize(row t: Int, _ x: UnsafePointer<Float>) {
            // Each block's float sum in order, as before; eight blocks' chains interleaved (one chain of 32
            // dependent adds per block was a third of this function's time).
            var b8 = 0
            while b8 + 8 <= blocks {
                let p = x + b8 * 32
                var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0, s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
                for j in 0..<32 {
                    s0 += p[j]; s1 += p[32 + j]; s2 += p[64 + j]; s3 += p[96 + j]
                    s4 += p[128 + j]; s5 += p[160 + j]; s6 += p[192 + j]; s7 += p[224 + j]
                }
                let o = sums + t * blocks + b8
                o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3; o[4] = s4; o[5] = s5; o[6] = s6; o[7] = s7
                b8 += 8
            }
            for b in b8..<blocks {
                var s: Float = 0
                for j in 0..<32 { s += x[b * 32 + j] }
                sums[t * blocks + b] = s
            }
            for b in 0..<blocks {
                let src = x + b * 32, dst = codes + t * count + b * 32
                let (d, inv) = scale(UnsafeRawPointer(src))
                #if KVKIT_AVX2
                    let qs = codeBlock(src, inv, dst)
                #else
                    var qs: Int32 = 0
                    for j in 0..<32 {
                        let q = Int16(code(src[j], inv))
                        dst[lane(j)] = q
                        qs += Int32(q)
                    }
                #endif
                scales[t * blocks + b] = d; codeSums[t * blocks + b] = qs
            }
        }
    }

    /// The activations of the K-quant kernels (Q4_K, Q5_K, Q6_K), coded as llama.cpp's Q8_K: per 256 values
    /// one float step d and 8-bit codes (the value of largest magnitude maps to ∓127, q = round(x / d)), and
    /// the code sum of every 16 values (the minimums' and Q6_K's −32 terms). Eight bits let the AVX2 kernel
    /// multiply 32 byte pairs per `vpmaddubsw` (against `vpmaddwd`'s 16 on 16-bit codes) and keep a whole
    /// super-block's sum in integers: measured against 16-bit codes in `docs/speed.md` (decode speed, and
    /// logits against the float64 and llama.cpp references). Codes are 32-byte aligned.
    final class ActivationsK: @unchecked Sendable {
        let rows: Int, count: Int, supers: Int
        let codes: UnsafeMutablePointer<Int8>
        let scales: UnsafeMutablePointer<Float>, bsums: UnsafeMutablePointer<Int16>
        private let owner: ActivationsK?
        init(rows: Int, count: Int) {
            self.rows = rows; self.count = count; supers = count / 256; owner = nil
            codes = UnsafeMutableRawPointer.allocate(byteCount: rows * count, alignment: 64).bindMemory(to: Int8.self, capacity: rows * count)
            scales = .allocate(capacity: rows * supers); bsums = .allocate(capacity: rows * supers * 16)
        }
        /// Rows `range` of `a`, sharing its memory.
        init(_ a: ActivationsK, rows range: Range<Int>) {
            rows = range.count; count = a.count; supers = a.supers; owner = a
            codes = a.codes + range.lowerBound * a.count
            scales = a.scales + range.lowerBound * a.supers; bsums = a.bsums + range.lowerBound * a.supers * 16
        }
        deinit { if owner == nil { UnsafeMutableRawPointer(codes).deallocate(); scales.deallocate(); bsums.deallocate() } }

        func quantize(row t: Int, _ x: UnsafePointer<Float>) {
            #if KVKIT_AVX2 && arch(x86_64)
                // The same steps on 16 lanes (C: Swift cannot compile one function for AVX-512); tested bitwise.
                if IntKernels.vnni512 {
                    kvkit_q8k_quantize_avx512(x, supers, codes + t * count, scales + t * supers, bsums + t * supers * 16)
                    return
                }
            #endif
            quantizePortable(row: t, x)
        }

        /// `quantize` in Swift: the reference the AVX-512 version is tested against, and the path of other CPUs.
        func quantizePortable(row t: Int, _ x: UnsafePointer<Float>) {
            for s in 0..<supers {
                let src = x + s * 256, dst = codes + t * count + s * 256, sums = bsums + (t * supers + s) * 16
                let (d, inv) = IntKernels.scaleK(src)
                for g in 0..<16 {
                    var sum: Int16 = 0
                    for j in (16 * g)..<(16 * g + 16) {
                        let q = Int8(Swift.min(127, code(src[j], inv)))
                        dst[j] = q; sum &+= Int16(q)
                    }
                    sums[g] = sum
                }
                scales[t * supers + s] = d
            }
        }
    }

    /// llama.cpp's Q8_K step for the 256 floats at `x` (`quantize_row_q8_K_ref`): the value of largest
    /// magnitude m, inverse −127 / m, step its reciprocal; both 0 for an all-zero block.
    @inline(__always) static func scaleK(_ x: UnsafePointer<Float>) -> (d: Float, inv: Float) {
        var amax: Float = 0, m: Float = 0
        for j in 0..<256 { let v = Swift.abs(x[j]); if v > amax { amax = v; m = x[j] } }
        guard amax > 0 else { return (0, 0) }
        let inv = -127 / m
        return (1 / inv, inv)
    }

    /// `x` rounded to its Q8_K codes and back (q · d per 256 values, as `ActivationsK` codes it): what the
    /// K-quant kernels multiply, for the sgemm path of the same matrices.
    static func roundK(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        for s in 0..<(count / 256) {
            let src = x + s * 256, (d, inv) = scaleK(src)
            for j in 0..<256 { y[s * 256 + j] = Swift.min(127, code(src[j], inv)) * d }
        }
    }

    /// `x` rounded to its 16-bit codes and back (q · d per 32-value block, exactly as `Activations` codes
    /// it): what the integer kernels multiply, for the sgemm path of the same storage.
    static func round(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<(count / 32) {
            let src = UnsafeRawPointer(x + b * 32), dst = UnsafeMutableRawPointer(y + b * 32)
            let v0 = src.loadUnaligned(as: SIMD16<Float>.self), v1 = src.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let (d, inv) = scale(src)
            dst.storeBytes(of: code(v0, inv) * d, as: SIMD16<Float>.self)
            dst.storeBytes(of: code(v1, inv) * d, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// A 32-value block's code step d = max|x| / 32767 and its inverse (0 for an all-zero block): the one
    /// definition `Activations` (integer kernels) and `round` (sgemm) share, so both see the same codes.
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> (d: Float, inv: Float) {
        let d = absMax(p) / 32767
        return (d, d > 0 ? 1 / d : 0)
    }

    /// x · inv rounded to the nearest integer, ties to even, by the 1.5·2²³ trick (exact for |x · inv| ≤ 2²²).
    @inline(__always) static func code(_ x: Float, _ inv: Float) -> Float { (x * inv + 12_582_912) - 12_582_912 }
    @inline(__always) static func code(_ x: SIMD16<Float>, _ inv: Float) -> SIMD16<Float> {
        let magic = SIMD16<Float>(repeating: 12_582_912)
        return (x * inv + magic) - magic
    }

    /// The largest |value| of the 32 floats at `p`: lane-wise maxima of the values and of their negations
    /// (selects LLVM keeps in registers; SIMD's `pointwiseMax` and `.max()` are calls here).
    @inline(__always) static func absMax(_ p: UnsafeRawPointer) -> Float {
        @inline(__always) func vmax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: a .< b) }
        var hi = SIMD4<Float>(), lo = SIMD4<Float>()
        for k in 0..<8 {
            let v = p.loadUnaligned(fromByteOffset: 16 * k, as: SIMD4<Float>.self)
            hi = vmax(hi, v); lo = vmax(lo, -v)
        }
        let m = vmax(hi, lo)
        return Swift.max(Swift.max(m[0], m[1]), Swift.max(m[2], m[3]))
    }

    /// Float16 bits to Float for finite values without a branch (a valid file's scales are finite; an
    /// infinite or NaN scale would read as a large finite one).
    @inline(__always) static func halfFinite(_ h: UInt16) -> Float {
        let magnitude = Float(bitPattern: UInt32(h & 0x7FFF) << 13) * 0x1p112
        return Float(bitPattern: magnitude.bitPattern | UInt32(h & 0x8000) << 16)
    }

    #if !KVKIT_AVX2
        /// Where value j of a block sits among its codes: [even 0…14][odd 1…15][even 16…30][odd 17…31].
        @inline(__always) static func lane(_ j: Int) -> Int { let r = j & 15; return (j & 16) + (r & 1) * 8 + (r >> 1) }

        /// 8 Int16 products added pairwise into 4 Int32 lanes (one `pmaddwd`).
        @inline(__always) static func madd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
            let p = SIMD8<Int32>(truncatingIfNeeded: a) &* SIMD8<Int32>(truncatingIfNeeded: b)
            return p.evenHalf &+ p.oddHalf
        }
    #endif

    /// The nibble mask and byte shift, read from memory once per call: as constants LLVM narrows the
    /// masked lanes (it knows their range) and turns `pmaddwd` into a shuffle-heavy multiply.
    nonisolated(unsafe) static var nibbleMask = SIMD4<UInt32>(repeating: 0x000F_000F)
    nonisolated(unsafe) static var byteShift: Int16 = 8
    /// Q5's fifth bits: lane k of the even groups tests bit 2k of a 16-bit half of `qh`, of the odd groups bit 2k+1.
    nonisolated(unsafe) static var evenBits = SIMD8<UInt16>(1, 4, 16, 64, 256, 1024, 4096, 16384)
    nonisolated(unsafe) static var oddBits = SIMD8<UInt16>(2, 8, 32, 128, 512, 2048, 8192, 32768)
    /// Q6_K's two high bits: `twoBits` (0b11 per lane) before a shift into place, `twoBitsHigh` (0b11 << 4) after.
    nonisolated(unsafe) static var twoBits = SIMD8<UInt16>(repeating: 3)
    nonisolated(unsafe) static var twoBitsHigh = SIMD8<UInt16>(repeating: 0x30)
    /// Q5_K's fifth bit: `one` before the shift into place, `sixteen` after.
    nonisolated(unsafe) static var oneBit = SIMD8<UInt16>(repeating: 1)
    nonisolated(unsafe) static var sixteenBit = SIMD8<UInt16>(repeating: 16)
    /// The SSE2 kernels' constants, read once per call (the AVX2 build's kernels take no masks: their
    /// intrinsics are not rewritten by LLVM).
    struct Masks {
        let nibbles = IntKernels.nibbleMask, shift = IntKernels.byteShift, even = IntKernels.evenBits, odd = IntKernels.oddBits
        let twoBits = IntKernels.twoBits, twoBitsHigh = IntKernels.twoBitsHigh, one = IntKernels.oneBit, sixteen = IntKernels.sixteenBit
    }

    /// One weight row's dot products with every row of `a`, written to `y[t · stride]`, for Q4_0, Q4_1, Q5_0,
    /// Q5_1 and Q8_0. Both builds: each supplies `Codes`, `Lanes`, `codes`, `accumulate`, `add` and `half`.
    @inline(__always) static func dot(
        _ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks,
        into y: UnsafeMutablePointer<Float>, stride: Int
    ) {
        #if KVKIT_AVX2
            if vnni512 && dotWide(type, row, a, into: y, stride: stride) { return }
        #endif
        if a.rows == 1 {
            switch type {
            case .q4_1: y[0] = dot1(.q4_1, row, a, m)
            case .q4_0: y[0] = dot1(.q4_0, row, a, m)
            case .q5_0: y[0] = dot1(.q5_0, row, a, m)
            case .q5_1: y[0] = dot1(.q5_1, row, a, m)
            case .q8_0: y[0] = dot1(.q8_0, row, a, m)
            default: preconditionFailure("IntKernels.dot: \(type) is not covered")
            }
            return
        }
        // Several rows (batched forks): each block's codes unpacked once, used for every row. Each row sums as
        // `dot1` does (even blocks into one accumulator, odd ones into another), so a row's result does not
        // depend on how many rows share the call: a fork answers the same alone as beside others.
        let bb = blockBytes(type), bias = bias(type), hasMin = hasMin(type), nb = a.blocks
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 2 * a.rows) { acc in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * a.rows) { off in
                acc.initialize(repeating: Lanes()); off.initialize(repeating: 0)
                for b in 0..<nb {
                    let q = row + b &* bb, c = codes(type, q, m)
                    let dw = half(q, 0), mw: Float = hasMin ? half(q, 2) : 0, k = b & 1
                    for t in 0..<a.rows {
                        let i = t &* nb &+ b, d = dw * a.scales[i], j = 2 &* t &+ k
                        acc[j] = accumulate(acc[j], c, UnsafeRawPointer(a.codes + t &* a.count) + b &* 64, d)
                        if hasMin { off[j] += mw * a.sums[i] } else if bias != 0 { off[j] -= bias * d * Float(a.codeSums[i]) }
                    }
                }
                for t in 0..<a.rows { y[t * stride] = add(acc[2 * t], acc[2 * t + 1]).sum() + (off[2 * t] + off[2 * t + 1]) }
            }
        }
    }

    /// One row, the type fixed at the call; two blocks per step into two accumulators (an FMA's latency
    /// would otherwise bound the loop). The arithmetic `dot` does for each of several rows.
    @inline(__always) static func dot1(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks) -> Float {
        let xr = UnsafeRawPointer(a.codes), bb = blockBytes(type), bias = bias(type), hasMin = hasMin(type), nb = a.blocks
        var acc = (Lanes(), Lanes()), off: (Float, Float) = (0, 0)
        @inline(__always) func block(_ b: Int, _ acc: inout Lanes, _ off: inout Float) {
            let q = row + b &* bb, d = half(q, 0) * a.scales[b]
            acc = accumulate(acc, codes(type, q, m), xr + b &* 64, d)
            if hasMin { off += half(q, 2) * a.sums[b] } else if bias != 0 { off -= bias * d * Float(a.codeSums[b]) }
        }
        var b = 0
        while b &+ 1 < nb { block(b, &acc.0, &off.0); block(b &+ 1, &acc.1, &off.1); b &+= 2 }
        if b < nb { block(b, &acc.0, &off.0) }
        return add(acc.0, acc.1).sum() + (off.0 + off.1)
    }
    #if !KVKIT_AVX2

        /// A block's 32 codes as unpacked by `codes`.
        typealias Codes = (SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>, SIMD8<Int16>)
        /// One row's codes of one block as four groups of 8 Int16 ([even 0…14][odd 1…15][even 16…30][odd 17…31]).
        @inline(__always) static func codes(_ type: GGMLType, _ q: UnsafeRawPointer, _ m: Masks) -> Codes {
            if type == .q8_0 {
                // Signed bytes: a lane's low byte (element 2k) by shifting left then arithmetically right, its
                // high byte (2k+1) by the right shift alone.
                let w0 = unsafeBitCast(q.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self), to: SIMD8<Int16>.self)
                let w1 = unsafeBitCast(q.loadUnaligned(fromByteOffset: 18, as: SIMD8<UInt16>.self), to: SIMD8<Int16>.self)
                return ((w0 &<< m.shift) &>> m.shift, w0 &>> m.shift, (w1 &<< m.shift) &>> m.shift, w1 &>> m.shift)
            }
            // 16-bit lane k holds bytes 2k, 2k+1: low nibbles are elements 2k, 2k+1; high ones 16+2k, 17+2k.
            let five = type == .q5_0 || type == .q5_1
            let at = (hasMin(type) ? 4 : 2) + (five ? 4 : 0)
            let w = q.loadUnaligned(fromByteOffset: at, as: SIMD4<UInt32>.self), m4 = m.nibbles
            var c = (
                unsafeBitCast(w & m4, to: SIMD8<UInt16>.self), unsafeBitCast((w &>> 8) & m4, to: SIMD8<UInt16>.self),
                unsafeBitCast((w &>> 4) & m4, to: SIMD8<UInt16>.self), unsafeBitCast((w &>> 12) & m4, to: SIMD8<UInt16>.self)
            )
            if five {
                // Element j's fifth bit is bit j of qh: 16 where set.
                let qh = q.loadUnaligned(fromByteOffset: at - 4, as: UInt32.self)
                let lo = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: qh)), hi = SIMD8<UInt16>(repeating: UInt16(truncatingIfNeeded: qh >> 16))
                let zero = SIMD8<UInt16>(), sixteen = SIMD8<UInt16>(repeating: 16)
                c.0 |= zero.replacing(with: sixteen, where: (lo & m.even) .!= zero)
                c.1 |= zero.replacing(with: sixteen, where: (lo & m.odd) .!= zero)
                c.2 |= zero.replacing(with: sixteen, where: (hi & m.even) .!= zero)
                c.3 |= zero.replacing(with: sixteen, where: (hi & m.odd) .!= zero)
            }
            return (
                unsafeBitCast(c.0, to: SIMD8<Int16>.self), unsafeBitCast(c.1, to: SIMD8<Int16>.self),
                unsafeBitCast(c.2, to: SIMD8<Int16>.self), unsafeBitCast(c.3, to: SIMD8<Int16>.self)
            )
        }

        /// The float lanes a row's block products accumulate in.
        typealias Lanes = SIMD4<Float>
        @inline(__always) static func add(_ a: Lanes, _ b: Lanes) -> Lanes { a + b }
        @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float { halfFinite(p.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        /// `acc + (Σ codes · activation codes of the block at xb) · d`.
        @inline(__always) static func accumulate(_ acc: Lanes, _ c: Codes, _ xb: UnsafeRawPointer, _ d: Float) -> Lanes {
            acc + SIMD4<Float>(blockSum(c, xb)) * d
        }

        /// Σ codes · activation codes of one block (4 Int32 lanes).
        @inline(__always) static func blockSum(_ c: Codes, _ xb: UnsafeRawPointer) -> SIMD4<Int32> {
            (madd(c.0, xb.load(as: SIMD8<Int16>.self)) &+ madd(c.1, xb.load(fromByteOffset: 16, as: SIMD8<Int16>.self)))
                &+ (madd(c.2, xb.load(fromByteOffset: 32, as: SIMD8<Int16>.self)) &+ madd(c.3, xb.load(fromByteOffset: 48, as: SIMD8<Int16>.self)))
        }

        /// Q4_K, Q5_K and Q6_K rows (256-value super-blocks) against every row of `a` (Q8_K codes), written to
        /// `y[t · stride]`: each row by the same one-row kernel, so a row's result does not depend on how many
        /// rows share the call.
        static func dotK(
            _ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, _ m: Masks,
            into y: UnsafeMutablePointer<Float>, stride: Int
        ) {
            for t in 0..<a.rows { y[t &* stride] = rowK(type, row, a, t) }
        }

        /// The portable K-quant kernel is slower than sgemm for many rows: prefill stays on panels + sgemm.
        static let integerPrefillK = false
        /// The AVX-512 VNNI panel kernels are the host build's (they read natural-order activation codes).
        static let vnniPanels = false

        /// Four consecutive weight rows against row `t` of `a` (the AVX2 build batches their float steps).
        static func rowsK(_ type: GGMLType, _ row: UnsafeRawPointer, rowBytes: Int, _ a: ActivationsK, _ t: Int) -> SIMD4<Float> {
            SIMD4((0..<4).map { rowK(type, row + $0 * rowBytes, a, t) })
        }

    #endif

    /// One K-quant row against row `t` of `a`, the portable kernel (both builds: the AVX2 kernels are tested
    /// against it): the integer sums the AVX2 kernel forms
    /// (per super-block Σ scale · Σ code · x-code, the minimums through the 16-value code sums), one float
    /// step each. Q4_K: sub-block j (32 values) is d · sc_j · code − dmin · m_j, its codes the low (even j)
    /// or high (odd j) nibbles of 32 bytes; Q5_K adds bit j of `qh[l]` as 16. Q6_K: 4 bits from `ql` and 2
    /// from `qh`, minus 32, an int8 scale per 16 values.
    static func rowK(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, _ t: Int) -> Float {
        let x = a.codes + t &* a.count, xs = a.scales + t &* a.supers, bs = a.bsums + t &* a.supers &* 16
        var acc: Float = 0, accm: Float = 0
        @inline(__always) func byte(_ p: UnsafeRawPointer, _ at: Int) -> Int32 { Int32(p.load(fromByteOffset: at, as: UInt8.self)) }
        for sb in 0..<a.supers {
            let xb = x + sb &* 256, b = bs + sb &* 16
            if type == .q4_K || type == .q5_K {
                let five = type == .q5_K, p = row + sb &* (five ? 176 : 144)
                var sumi: Int32 = 0, summ: Int32 = 0
                for j in 0..<8 {
                    let (sc, mn) = Dequantize.scaleMinK4(j, p + 4)
                    let q = p + (five ? 48 : 16) + 32 &* (j >> 1), shift = Int32((j & 1) &* 4)
                    var s: Int32 = 0
                    for l in 0..<32 {
                        var c = (byte(q, l) >> shift) & 0xF
                        if five { c |= ((byte(p, 16 &+ l) >> Int32(j)) & 1) << 4 }
                        s &+= c &* Int32(xb[32 &* j &+ l])
                    }
                    sumi &+= s &* Int32(sc); summ &+= Int32(mn) &* (Int32(b[2 &* j]) &+ Int32(b[2 &* j &+ 1]))
                }
                acc += Float(sumi) * (halfFinite(p.loadUnaligned(as: UInt16.self)) * xs[sb])
                accm += Float(summ) * (halfFinite(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) * xs[sb])
            } else {
                let p = row + sb &* 210
                var sumi: Int32 = 0
                for n in 0..<2 {
                    for k in 0..<4 {
                        let ql = p + 64 &* n + (k & 1) &* 32, qh = p + 128 + 32 &* n
                        let shift = Int32(k >= 2 ? 4 : 0), hs = Int32(2 &* k)
                        for h in 0..<2 {
                            let s = Int32(Int8(bitPattern: p.load(fromByteOffset: 192 &+ 8 &* n &+ 2 &* k &+ h, as: UInt8.self)))
                            var part: Int32 = 0
                            for l in (16 &* h)..<(16 &* h &+ 16) {
                                let c = (((byte(ql, l) >> shift) & 0xF) | (((byte(qh, l) >> hs) & 3) << 4)) &- 32
                                part &+= c &* Int32(xb[128 &* n &+ 32 &* k &+ l])
                            }
                            sumi &+= part &* s
                        }
                    }
                }
                acc += Float(sumi) * (halfFinite(p.loadUnaligned(fromByteOffset: 208, as: UInt16.self)) * xs[sb])
            }
        }
        return acc - accm
    }

}
