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
    /// (the layouts as in the SSE2 `dotK`; here each sub-block's 32 codes come out in order). Each row of
    /// `a` is summed by the same one-row kernel, so a row's result does not depend on how many rows share
    /// the call (batched forks answer alone as beside others); the weight row, a few hundred bytes, is read
    /// from memory once and from L1 for the other rows.
    static func dotK(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, _ m: Masks,
                     into y: UnsafeMutablePointer<Float>, stride: Int) {
        switch type {
        case .q4_K: for t in 0..<a.rows { y[t &* stride] = rowQ45K(five: false, row, a, t) }
        case .q5_K: for t in 0..<a.rows { y[t &* stride] = rowQ45K(five: true, row, a, t) }
        default: for t in 0..<a.rows { y[t &* stride] = rowQ6K(row, a, t) }
        }
    }

    /// Q4_K / Q5_K's twelve packed bytes of 6-bit scales and minimums (llama.cpp's `get_scale_min_k4`
    /// layout) as 8 float scales and 8 float minimums, unpacked with four 32-bit word operations (as
    /// llama.cpp's AVX2 kernel does) instead of sixteen byte extractions.
    @inline(__always) static func scalesMins(_ p: UnsafeRawPointer) -> (__m256, __m256) {
        let m1: UInt32 = 0x3F3F_3F3F, m2: UInt32 = 0x0F0F_0F0F, m3: UInt32 = 0x0303_0303
        let u0 = p.loadUnaligned(as: UInt32.self), u1 = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self), u2 = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let sc = UInt64(u0 & m1) | UInt64((u2 & m2) | (((u0 >> 6) & m3) << 4)) << 32
        let mn = UInt64(u1 & m1) | UInt64(((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4)) << 32
        @inline(__always) func floats(_ v: UInt64) -> __m256 { _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(Int64(bitPattern: v)))) }
        return (floats(sc), floats(mn))
    }

    /// Lane `j` of `v` in every lane.
    @inline(__always) static func broadcast(_ v: __m256, _ j: Int) -> __m256 { _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(Int32(j))) }

    /// One Q4_K / Q5_K row against row `t` of `a`. Per super-block the eight sub-block factors d · scale ·
    /// activation scale are one vector product and the minimums' term one FMA; per 32 values two
    /// `vpmaddwd`, one convert and one FMA into two register accumulators (even and odd sub-blocks).
    @inline(__always) static func rowQ45K(five: Bool, _ row: UnsafeRawPointer, _ a: Activations, _ t: Int) -> Float {
        let nsb = a.blocks / 8, bytes = five ? 176 : 144
        let xr = UnsafeRawPointer(a.codes + t &* a.count), xs = a.scales + t &* a.blocks, xsum = a.sums + t &* a.blocks
        let nibble = _mm256_set1_epi16(0x0F), one = _mm256_set1_epi16(1)
        var even = _mm256_setzero_ps(), odd = _mm256_setzero_ps(), mins = _mm256_setzero_ps()
        for sb in 0..<nsb {
            let p = row + sb &* bytes, x = xr + sb &* 512
            let (sc, mn) = scalesMins(p + 4)
            let fac = _mm256_mul_ps(_mm256_mul_ps(sc, _mm256_set1_ps(half(p, 0))), _mm256_loadu_ps(xs + sb &* 8))
            mins = _mm256_fmadd_ps(_mm256_mul_ps(mn, _mm256_set1_ps(half(p, 2))), _mm256_loadu_ps(xsum + sb &* 8), mins)
            // Q5_K's fifth bits: qh[l] bit j for value l of sub-block j.
            let h = five ? (widen(p, 16), widen(p, 32)) : (_mm256_setzero_si256(), _mm256_setzero_si256())
            for pair in 0..<4 {
                let q = p + (five ? 48 : 16) + 32 &* pair
                let w = (widen(q, 0), widen(q, 16))
                var lo = (_mm256_and_si256(w.0, nibble), _mm256_and_si256(w.1, nibble))
                var hi = (_mm256_srli_epi16(w.0, 4), _mm256_srli_epi16(w.1, 4))
                if five {
                    @inline(__always) func bit(_ v: __m256i, _ j: Int) -> __m256i {
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(Int32(j))), one), 4)
                    }
                    lo = (_mm256_or_si256(lo.0, bit(h.0, 2 &* pair)), _mm256_or_si256(lo.1, bit(h.1, 2 &* pair)))
                    hi = (_mm256_or_si256(hi.0, bit(h.0, 2 &* pair &+ 1)), _mm256_or_si256(hi.1, bit(h.1, 2 &* pair &+ 1)))
                }
                even = _mm256_fmadd_ps(blockSum(lo, x + (128 &* pair)), broadcast(fac, 2 &* pair), even)
                odd = _mm256_fmadd_ps(blockSum(hi, x + (128 &* pair &+ 64)), broadcast(fac, 2 &* pair &+ 1), odd)
            }
        }
        return _mm256_add_ps(even, odd).sum() - mins.sum()
    }

    /// One Q6_K row against row `t` of `a`: per 32 values (one activation block, two 16-value weight
    /// scales) the codes are multiplied by their int8 scales in 16 bits (|code · scale| ≤ 32 · 128), so
    /// one `vpmaddwd` pair, one convert and one FMA cover both halves; two register accumulators.
    @inline(__always) static func rowQ6K(_ row: UnsafeRawPointer, _ a: Activations, _ t: Int) -> Float {
        let nsb = a.blocks / 8
        let xr = UnsafeRawPointer(a.codes + t &* a.count), xs = a.scales + t &* a.blocks
        let nibble = _mm256_set1_epi16(0x0F), three = _mm256_set1_epi16(3), thirtyTwo = _mm256_set1_epi16(32)
        var acc = (_mm256_setzero_ps(), _mm256_setzero_ps())
        for sb in 0..<nsb {
            let p = row + sb &* 210, d = half(p, 208)
            let fac = _mm256_mul_ps(_mm256_loadu_ps(xs + sb &* 8), _mm256_set1_ps(d))
            for part in 0..<2 {
                let ql = p + 64 &* part, qh = p + 128 + 32 &* part, sc = p + 192 + 8 &* part
                let h = (widen(qh, 0), widen(qh, 16))
                // Sub-block k of this half: low (k 0, 1) or high (k 2, 3) nibbles of ql[0…31] (k even) or
                // ql[32…63] (k odd), and bits 2k, 2k+1 of qh[l] as bits 4, 5; minus 32.
                for k in 0..<4 {
                    let at = k & 1 == 0 ? 0 : 32, shift = Int32(k >= 2 ? 4 : 0)
                    @inline(__always) func code(_ l: __m256i, _ h: __m256i) -> __m256i {
                        let low = _mm256_and_si256(_mm256_srl_epi16(l, _mm_cvtsi32_si128(shift)), nibble)
                        let high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(Int32(2 &* k))), three), 4)
                        return _mm256_sub_epi16(_mm256_or_si256(low, high), thirtyTwo)
                    }
                    // An int8 scale per 16 values: values 0–15 (first lanes) and 16–31.
                    let s0 = Int16(Int8(bitPattern: sc.load(fromByteOffset: 2 &* k, as: UInt8.self)))
                    let s1 = Int16(Int8(bitPattern: sc.load(fromByteOffset: 2 &* k &+ 1, as: UInt8.self)))
                    let c0 = _mm256_mullo_epi16(code(widen(ql, at), h.0), _mm256_set1_epi16(s0))
                    let c1 = _mm256_mullo_epi16(code(widen(ql, at &+ 16), h.1), _mm256_set1_epi16(s1))
                    let b = part &* 4 &+ k, xb = UnsafeRawPointer(xr) + (sb &* 8 &+ b) &* 64
                    let sum = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(c0, xb.load(as: __m256i.self)),
                                                                  _mm256_madd_epi16(c1, xb.load(fromByteOffset: 32, as: __m256i.self))))
                    if k & 1 == 0 { acc.0 = _mm256_fmadd_ps(sum, broadcast(fac, b), acc.0) } else { acc.1 = _mm256_fmadd_ps(sum, broadcast(fac, b), acc.1) }
                }
            }
        }
        return _mm256_add_ps(acc.0, acc.1).sum()
    }
}
#endif
