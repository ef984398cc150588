#if KVKIT_AVX2
import _Builtin_intrinsics.intel
import ModelFile

/// The integer decode kernels of a host build (`make` passes `-target-cpu haswell -DKVKIT_AVX2` where the
/// CPU has AVX2, FMA and F16C; `scripts/host-flags.sh`): the same arithmetic as the portable SSE2 kernels
/// (16-bit activation codes, exact Int32 block sums, one float scale per block), on 256-bit lanes.
///
/// They call the compiler's x86 intrinsics (clang's own headers, imported as `_Builtin_intrinsics.intel`)
/// rather than Swift `SIMD` types: written with `SIMD16<Int16>`, LLVM turned the widening multiply-add
/// into `vpmulld` + `vphaddd` shuffles or a generic call (measured 2.2× slower per block than
/// `vpmaddwd`, and slower than the SSE2 build). One 32-value block: `vpmovzxbw` (16 nibble bytes to 16
/// lanes), a mask and a shift (values 0–15 and 16–31, in order), two `vpmaddwd`, one `vpaddd`, one
/// convert and one FMA. Activation codes lie in natural order (`lane(j) = j`); Int32 block sums do not
/// depend on the order, so both builds compute the same block sums.
extension IntKernels {
    @inline(__always) static func lane(_ j: Int) -> Int { j }

    /// A block's 32 codes as Int16 lanes: values 0–15, then 16–31.
    typealias Codes = (__m256i, __m256i)

    @inline(__always) static func bytes(_ p: UnsafeRawPointer, _ at: Int) -> __m128i { p.loadUnaligned(fromByteOffset: at, as: __m128i.self) }
    /// 16 unsigned bytes at `p + at` as 16 Int16 lanes.
    @inline(__always) static func widen(_ p: UnsafeRawPointer, _ at: Int) -> __m256i { _mm256_cvtepu8_epi16(bytes(p, at)) }
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float { _cvtsh_ss(p.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }

    /// 16 in lane k where bit k of `bits` is set (Q5_0 / Q5_1's fifth bits).
    @inline(__always) static func fifthBits(_ bits: UInt32) -> __m256i {
        let lanes = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, -32768)
        let set = _mm256_and_si256(_mm256_set1_epi16(Int16(truncatingIfNeeded: bits)), lanes)
        return _mm256_and_si256(_mm256_cmpeq_epi16(set, lanes), _mm256_set1_epi16(16))
    }

    /// The codes of one 32-value block of Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 at `q`.
    @inline(__always) static func codes(_ type: GGMLType, _ q: UnsafeRawPointer) -> Codes {
        if type == .q8_0 { return (_mm256_cvtepi8_epi16(bytes(q, 2)), _mm256_cvtepi8_epi16(bytes(q, 18))) }
        let five = type == .q5_0 || type == .q5_1, at = (hasMin(type) ? 4 : 2) + (five ? 4 : 0)
        // Byte k holds value k (low nibble) and value 16 + k (high nibble).
        let w = widen(q, at)
        var c = (_mm256_and_si256(w, _mm256_set1_epi16(0x0F)), _mm256_srli_epi16(w, 4))
        if five {
            let qh = q.loadUnaligned(fromByteOffset: at - 4, as: UInt32.self)
            c = (_mm256_or_si256(c.0, fifthBits(qh)), _mm256_or_si256(c.1, fifthBits(qh >> 16)))
        }
        return c
    }

    typealias Lanes = __m256
    @inline(__always) static func add(_ a: Lanes, _ b: Lanes) -> Lanes { _mm256_add_ps(a, b) }
    /// `acc + (Σ codes · activation codes of the block at xb) · d`, one FMA.
    @inline(__always) static func accumulate(_ acc: Lanes, _ c: Codes, _ xb: UnsafeRawPointer, _ d: Float) -> Lanes { fma(blockSum(c, xb), d, acc) }
    @inline(__always) static func codes(_ type: GGMLType, _ q: UnsafeRawPointer, _ m: Masks) -> Codes { codes(type, q) }

    /// Σ codes · activation codes of one block, in 8 Int32 lanes, as floats.
    @inline(__always) static func blockSum(_ c: Codes, _ xb: UnsafeRawPointer) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(c.0, xb.load(as: __m256i.self)),
                                            _mm256_madd_epi16(c.1, xb.load(fromByteOffset: 32, as: __m256i.self))))
    }

    @inline(__always) static func fma(_ a: __m256, _ s: Float, _ acc: __m256) -> __m256 { _mm256_fmadd_ps(a, _mm256_set1_ps(s), acc) }

    /// Q4_K, Q5_K and Q6_K rows (256-value super-blocks) against every row of `a`, written to `y[t · stride]`
    /// (the layouts as in the SSE2 `dotK`; here each sub-block's 32 codes come out in order).
    static func dotK(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks,
                     into y: UnsafeMutablePointer<Float>, stride: Int) {
        let nsb = a.blocks / 8, rows = a.rows
        let nibble = _mm256_set1_epi16(0x0F), one = _mm256_set1_epi16(1), three = _mm256_set1_epi16(3), thirtyTwo = _mm256_set1_epi16(32)
        @inline(__always) func shr(_ v: __m256i, _ n: Int) -> __m256i { _mm256_srl_epi16(v, _mm_cvtsi32_si128(Int32(n))) }
        withUnsafeTemporaryAllocation(of: __m256.self, capacity: 2 * rows) { acc in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows) { off in
                acc.initialize(repeating: _mm256_setzero_ps()); off.initialize(repeating: 0)
                for sb in 0..<nsb {
                    if type == .q4_K || type == .q5_K {
                        let five = type == .q5_K, p = row + sb &* (five ? 176 : 144)
                        let d = half(p, 0), dmin = half(p, 2)
                        // Q5_K's fifth bits: qh[l] bit j for value l of sub-block j.
                        let h = five ? (widen(p, 16), widen(p, 32)) : (_mm256_setzero_si256(), _mm256_setzero_si256())
                        for pair in 0..<4 {
                            let (sc0, mn0) = Dequantize.scaleMinK4(2 * pair, p + 4), (sc1, mn1) = Dequantize.scaleMinK4(2 * pair + 1, p + 4)
                            let q = p + (five ? 48 : 16) + 32 * pair
                            let w = (widen(q, 0), widen(q, 16))
                            var lo = (_mm256_and_si256(w.0, nibble), _mm256_and_si256(w.1, nibble))
                            var hi = (_mm256_srli_epi16(w.0, 4), _mm256_srli_epi16(w.1, 4))
                            if five {
                                @inline(__always) func bit(_ v: __m256i, _ j: Int) -> __m256i { _mm256_slli_epi16(_mm256_and_si256(shr(v, j), one), 4) }
                                lo = (_mm256_or_si256(lo.0, bit(h.0, 2 * pair)), _mm256_or_si256(lo.1, bit(h.1, 2 * pair)))
                                hi = (_mm256_or_si256(hi.0, bit(h.0, 2 * pair + 1)), _mm256_or_si256(hi.1, bit(h.1, 2 * pair + 1)))
                            }
                            let b0 = sb &* 8 &+ 2 &* pair
                            for t in 0..<rows {
                                let xr = UnsafeRawPointer(a.codes + t &* a.count), i = t &* a.blocks &+ b0
                                acc[2 &* t] = fma(blockSum(lo, xr + b0 &* 64), d * sc0 * a.scales[i], acc[2 &* t])
                                acc[2 &* t &+ 1] = fma(blockSum(hi, xr + (b0 &+ 1) &* 64), d * sc1 * a.scales[i &+ 1], acc[2 &* t &+ 1])
                                off[t] -= dmin * (mn0 * a.sums[i] + mn1 * a.sums[i &+ 1])
                            }
                        }
                    } else {
                        let p = row + sb &* 210, d = half(p, 208)
                        for part in 0..<2 {
                            let ql = p + 64 * part, qh = p + 128 + 32 * part, sc = p + 192 + 8 * part
                            let h = (widen(qh, 0), widen(qh, 16))
                            // Sub-block k of this half: low (k 0, 1) or high (k 2, 3) nibbles of ql[0…31] (k even)
                            // or ql[32…63] (k odd), and bits 2k, 2k+1 of qh[l] as bits 4, 5; minus 32.
                            for k in 0..<4 {
                                let at = k & 1 == 0 ? 0 : 32, shift = k >= 2 ? 4 : 0
                                @inline(__always) func code(_ l: __m256i, _ h: __m256i) -> __m256i {
                                    let low = _mm256_and_si256(shr(l, shift), nibble), high = _mm256_slli_epi16(_mm256_and_si256(shr(h, 2 * k), three), 4)
                                    return _mm256_sub_epi16(_mm256_or_si256(low, high), thirtyTwo)
                                }
                                let c0 = code(widen(ql, at), h.0), c1 = code(widen(ql, at + 16), h.1)
                                // An int8 scale per 16 values: values 0–15 (c0) and 16–31 (c1).
                                let sc0 = Float(Int8(bitPattern: sc.load(fromByteOffset: 2 * k, as: UInt8.self))) * d
                                let sc1 = Float(Int8(bitPattern: sc.load(fromByteOffset: 2 * k + 1, as: UInt8.self))) * d
                                let b = sb &* 8 &+ part &* 4 &+ k
                                for t in 0..<rows {
                                    let xb = UnsafeRawPointer(a.codes + t &* a.count) + b &* 64, xs = a.scales[t &* a.blocks &+ b]
                                    acc[2 &* t] = fma(_mm256_cvtepi32_ps(_mm256_madd_epi16(c0, xb.load(as: __m256i.self))), sc0 * xs, acc[2 &* t])
                                    acc[2 &* t &+ 1] = fma(_mm256_cvtepi32_ps(_mm256_madd_epi16(c1, xb.load(fromByteOffset: 32, as: __m256i.self))), sc1 * xs, acc[2 &* t &+ 1])
                                }
                            }
                        }
                    }
                }
                for t in 0..<rows { y[t * stride] = _mm256_add_ps(acc[2 * t], acc[2 * t + 1]).sum() + off[t] }
            }
        }
    }
}
#endif
