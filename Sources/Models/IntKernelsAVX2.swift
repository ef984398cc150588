#if KVKIT_AVX2
    import _Builtin_intrinsics.intel
    import CKernels
    import ModelFile
    import TensorMath

    /// The integer decode kernels of a host build (`make` passes `-target-cpu haswell -DKVKIT_AVX2` where the
    /// CPU has AVX2, FMA and F16C; `scripts/host-flags.sh`): the same arithmetic as the portable SSE2 kernels
    /// (16-bit activation codes, exact Int32 block sums, one float scale per block; the K-quants on Q8_K
    /// codes with `vpmaddubsw`), on 256-bit lanes.
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

        /// `dot` (and `dot1`) on the AVX-512 kernel (two blocks a step; each row's two accumulators as the halves of
        /// one register): the same exact sums and fused multiply-adds lane for lane, each row finished here as
        /// `dot1` finishes. False for a type it does not cover.
        @inline(__always) static func dotWide(
            _ type: GGMLType, _ row: UnsafeRawPointer, _ a: Activations, into y: UnsafeMutablePointer<Float>, stride: Int
        ) -> Bool {
            guard let code = blockCode(type) else { return false }
            withUnsafeTemporaryAllocation(of: __m256.self, capacity: 2 &* a.rows) { accBuf in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 &* a.rows) { off in
                    let acc = accBuf.baseAddress!
                    kvkit_block_dot_avx512(
                        code, row, a.blocks, a.rows, a.codes, a.count, a.scales, a.sums, a.codeSums,
                        UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self), off.baseAddress!)
                    for t in 0..<a.rows { y[t &* stride] = acc[t].sum() + (off[2 &* t] + off[2 &* t &+ 1]) }
                }
            }
            return true
        }

        /// One block's 32 activation codes in natural order, and their sum: `code`'s multiply and add on eight
        /// lanes (separate instructions, as the scalar steps: the same bits), the exact integers converted and
        /// packed to Int16 (|code| ≤ 32,767). The scalar loop's checked conversions were a tenth of prefill.
        @inline(__always) static func codeBlock(_ src: UnsafePointer<Float>, _ inv: Float, _ dst: UnsafeMutablePointer<Int16>) -> Int32 {
            let r = UnsafeRawPointer(src), vi = _mm256_set1_ps(inv), magic = _mm256_set1_ps(12_582_912)
            @inline(__always) func eight(_ at: Int) -> __m256i {
                let x = r.loadUnaligned(fromByteOffset: at, as: __m256.self)
                return _mm256_cvttps_epi32(_mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(x, vi), magic), magic))
            }
            let c0 = eight(0), c1 = eight(32), c2 = eight(64), c3 = eight(96)
            // packs works within 128-bit halves: [c0 lo, c1 lo, c0 hi, c1 hi] → quadwords 0, 2, 1, 3.
            let w = UnsafeMutableRawPointer(dst), order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
            w.storeBytes(of: _mm256_permutevar8x32_epi32(_mm256_packs_epi32(c0, c1), order), as: __m256i.self)
            w.storeBytes(of: _mm256_permutevar8x32_epi32(_mm256_packs_epi32(c2, c3), order), toByteOffset: 32, as: __m256i.self)
            let s = _mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3))
            return unsafeBitCast(s, to: SIMD8<Int32>.self).wrappedSum()
        }

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
            _mm256_cvtepi32_ps(
                _mm256_add_epi32(
                    _mm256_madd_epi16(c.0, xb.load(as: __m256i.self)),
                    _mm256_madd_epi16(c.1, xb.load(fromByteOffset: 32, as: __m256i.self))))
        }

        @inline(__always) static func fma(_ a: __m256, _ s: Float, _ acc: __m256) -> __m256 { _mm256_fmadd_ps(a, _mm256_set1_ps(s), acc) }

        /// Q4_K, Q5_K and Q6_K rows (256-value super-blocks) against every row of `a` (Q8_K codes), written to
        /// `y[t · stride]`. The kernels sum each super-block exactly in Int32 and then take the portable
        /// `rowK`'s float steps (`acc += Float(Σ) · (d · dx)`, minimums likewise, `acc − accm` at the end), so a
        /// result is bitwise the portable kernel's, whichever kernel and however many rows share the call:
        /// batched forks answer alone as beside others, prefill (`Weights.integerGemm`) computes what decode
        /// does. Groups of four rows of `a` share the weight row's unpacked codes (`groupsK`); the rest go one
        /// by one (`rowQ45K`, `rowQ6K`).
        static func dotK(
            _ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, _ m: Masks,
            into y: UnsafeMutablePointer<Float>, stride: Int
        ) {
            let groups = a.rows / 4
            if groups > 0 {
                withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: 2 &* groups) { acc in
                    let acc = acc.baseAddress!
                    acc.initialize(repeating: SIMD4(), count: 2 &* groups)
                    groupsK(type, row, a, groups, acc, supers: 0..<a.supers)
                    finishK(a, groups, acc, into: y, stride: stride)
                }
            }
            restK(type, row, a, into: y, stride: stride)
        }

        /// Rows `4 · groups …` of `a` (those not in a group), one by one.
        @inline(__always) static func restK(_ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, into y: UnsafeMutablePointer<Float>, stride: Int) {
            for t in (a.rows & ~3)..<a.rows {
                switch type {
                case .q4_K: y[t &* stride] = rowQ45K(five: false, row, a, t)
                case .q5_K: y[t &* stride] = rowQ45K(five: true, row, a, t)
                default: y[t &* stride] = rowQ6K(row, a, t)
                }
            }
        }

        /// The grouped rows' results from their accumulators (sums − minimum terms) into `y`.
        @inline(__always) static func finishK(
            _ a: ActivationsK, _ groups: Int, _ acc: UnsafeMutablePointer<SIMD4<Float>>, into y: UnsafeMutablePointer<Float>, stride: Int
        ) {
            for g in 0..<groups {
                let r = acc[g] - acc[groups &+ g]
                for k in 0..<4 { y[(4 &* g &+ k) &* stride] = r[k] }
            }
        }

        /// The super-blocks `supers` of one weight row against the first `4 · groups` rows of `a`, added to
        /// `acc` (`acc[g]`: group g's sums, `acc[groups + g]`: its minimum terms; zero them first). Super-blocks
        /// taken in order in consecutive calls give what one call over all of them gives, so prefill can run
        /// a few super-blocks of many weight rows while their activations stay in L1.
        @inline(__always) static func groupsK(
            _ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, _ groups: Int, _ acc: UnsafeMutablePointer<SIMD4<Float>>, supers: Range<Int>
        ) {
            if vnni512 { return groupsKVNNI(type, row, a, groups, acc, supers) }
            switch type {
            case .q4_K: groupsQ45K(five: false, row, a, groups, acc, supers)
            case .q5_K: groupsQ45K(five: true, row, a, groups, acc, supers)
            default: groupsQ6K(row, a, groups, acc, supers)
            }
        }

        /// Whether `groupsK` runs on the AVX-512 VNNI kernels (`CKernels`; `KernelBuild.vnni512`, chosen by CPUID).
        @inline(__always) static var vnni512: Bool {
            get { KernelBuild.vnni512 }
            set { KernelBuild.vnni512 = newValue }
        }

        /// `groupsK` on the AVX-512 VNNI kernels (sums, minimum terms and float steps in C).
        @inline(__always) static func groupsKVNNI(
            _ type: GGMLType, _ row: UnsafeRawPointer, _ a: ActivationsK, _ groups: Int, _ acc: UnsafeMutablePointer<SIMD4<Float>>, _ supers: Range<Int>
        ) {
            let accs = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
            if type == .q6_K {
                kvkit_q6k_groups_avx512vnni(row, a.codes, a.scales, a.bsums, a.count, a.supers, groups, accs, supers.lowerBound, supers.upperBound)
            } else {
                kvkit_q45k_groups_avx512vnni(
                    row, type == .q5_K ? 1 : 0, a.codes, a.scales, a.bsums, a.count, a.supers, groups, accs, supers.lowerBound, supers.upperBound)
            }
        }

        /// A super-block's eight 32-value code vectors, held in registers.
        typealias Codes8 = (__m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i, __m256i)

        /// Σ_i scale_i · Σ code · x-code over a super-block's eight sub-blocks: `codes` in registers, the scale
        /// vectors `sv` and the activation codes at `x` as memory operands; one `vpmaddubsw`, one `vpmaddwd`
        /// and one add per 32 values.
        @inline(__always) static func stationary(_ c: Codes8, _ sv: UnsafePointer<__m256i>, _ x: UnsafeRawPointer) -> __m256i {
            @inline(__always) func one(_ i: Int, _ c: __m256i) -> __m256i {
                _mm256_madd_epi16(sv[i], _mm256_maddubs_epi16(c, (x + 32 &* i).load(as: __m256i.self)))
            }
            return _mm256_add_epi32(
                _mm256_add_epi32(_mm256_add_epi32(one(0, c.0), one(1, c.1)), _mm256_add_epi32(one(2, c.2), one(3, c.3))),
                _mm256_add_epi32(_mm256_add_epi32(one(4, c.4), one(5, c.5)), _mm256_add_epi32(one(6, c.6), one(7, c.7))))
        }

        /// `groupsK` for Q4_K / Q5_K, weights stationary: per super-block the eight sub-blocks' codes are
        /// unpacked once into registers and their scales into eight vectors in memory, then every group of four
        /// rows runs over them (per 32 values and row one `vpmaddubsw`, one `vpmaddwd` and one add, activations
        /// and scales as memory operands), its four totals with three `vphaddd` and `rowK`'s float steps on
        /// four lanes.
        @inline(__always) static func groupsQ45K(
            five: Bool, _ row: UnsafeRawPointer, _ a: ActivationsK, _ groups: Int, _ acc: UnsafeMutablePointer<SIMD4<Float>>, _ supers: Range<Int>
        ) {
            let nsb = a.supers, bytes = five ? 176 : 144, n = a.count
            let xr = UnsafeRawPointer(a.codes), bs = UnsafeRawPointer(a.bsums)
            withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 8) { scaleBuf in
                let sv = scaleBuf.baseAddress!
                for sb in supers {
                    let p = row + sb &* bytes
                    let (sc, mn) = scalesMins(p + 4)
                    let scales = _mm256_broadcastsi128_si256(words(sc)), mins = words(mn)
                    for i in 0..<8 { sv[i] = _mm256_shuffle_epi8(scales, wordMask(i)) }
                    let hb = five ? p.loadUnaligned(fromByteOffset: 16, as: __m256i.self) : _mm256_setzero_si256()
                    let c01 = codes45K(five: five, p, hb, 0), c23 = codes45K(five: five, p, hb, 1),
                        c45 = codes45K(five: five, p, hb, 2), c67 = codes45K(five: five, p, hb, 3)
                    let codes = (c01.0, c01.1, c23.0, c23.1, c45.0, c45.1, c67.0, c67.1)
                    let dw = half(p, 0), mw = half(p, 2)
                    for g in 0..<groups {
                        let t = 4 &* g
                        @inline(__always) func sum(_ k: Int) -> __m256i { stationary(codes, sv, xr + ((t &+ k) &* n &+ sb &* 256)) }
                        let xs = a.scales + (t &* nsb &+ sb)
                        let dx = SIMD4(xs[0], xs[nsb], xs[2 &* nsb], xs[3 &* nsb])
                        @inline(__always) func m(_ k: Int) -> __m128i { minSums(mins, bs + ((t &+ k) &* nsb &+ sb) &* 32) }
                        acc[g] += totals((sum(0), sum(1), sum(2), sum(3))) * (dw * dx)
                        acc[groups &+ g] += totals((m(0), m(1), m(2), m(3))) * (mw * dx)
                    }
                }
            }
        }

        /// `groupsK` for Q6_K: per super-block its eight 32-value codes in registers, the int8 scales of the
        /// sixteen 16-value halves as eight vectors in memory, the codes' −32 through the code sums (no minimum
        /// terms: `acc[groups + g]` stays zero).
        @inline(__always) static func groupsQ6K(
            _ row: UnsafeRawPointer, _ a: ActivationsK, _ groups: Int, _ acc: UnsafeMutablePointer<SIMD4<Float>>, _ supers: Range<Int>
        ) {
            let nsb = a.supers, n = a.count
            let xr = UnsafeRawPointer(a.codes), bs = UnsafeRawPointer(a.bsums)
            withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 8) { scaleBuf in
                let sv = scaleBuf.baseAddress!
                for sb in supers {
                    let p = row + sb &* 210
                    let lo = codes6K(p, 0), hi = codes6K(p, 1)
                    for i in 0..<4 { sv[i] = _mm256_shuffle_epi8(lo.scales, halves6K(i)); sv[4 &+ i] = _mm256_shuffle_epi8(hi.scales, halves6K(i)) }
                    let d = half(p, 208), codes = (lo.0, lo.1, lo.2, lo.3, hi.0, hi.1, hi.2, hi.3)
                    for g in 0..<groups {
                        let t = 4 &* g
                        @inline(__always) func sum(_ k: Int) -> __m256i {
                            _mm256_add_epi32(offset6K(p, bs + ((t &+ k) &* nsb &+ sb) &* 32), stationary(codes, sv, xr + ((t &+ k) &* n &+ sb &* 256)))
                        }
                        let xs = a.scales + (t &* nsb &+ sb)
                        acc[g] += totals((sum(0), sum(1), sum(2), sum(3))) * (d * SIMD4(xs[0], xs[nsb], xs[2 &* nsb], xs[3 &* nsb]))
                    }
                }
            }
        }

        /// The AVX2 K-quant kernels serve every row count (prefill too): see `Weights.integerGemm`.
        static let integerPrefillK = true
        /// Whether prefill takes the AVX-512 VNNI panel kernels (`Weights.blockGemm` for the 32-value block types,
        /// `Weights.kquantGemm` for the K-quants): where the CPU has them.
        static var vnniPanels: Bool { vnni512 }

        /// Q4_K / Q5_K's twelve packed bytes of 6-bit scales and minimums (llama.cpp's `get_scale_min_k4`
        /// layout) as 8 scale bytes and 8 minimum bytes, unpacked with four 32-bit word operations (as
        /// llama.cpp's AVX2 kernel does) instead of sixteen byte extractions.
        @inline(__always) static func scalesMins(_ p: UnsafeRawPointer) -> (UInt64, UInt64) {
            let m1: UInt32 = 0x3F3F_3F3F, m2: UInt32 = 0x0F0F_0F0F, m3: UInt32 = 0x0303_0303
            let u0 = p.loadUnaligned(as: UInt32.self), u1 = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
                u2 = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
            let sc = UInt64(u0 & m1) | UInt64((u2 & m2) | (((u0 >> 6) & m3) << 4)) << 32
            let mn = UInt64(u1 & m1) | UInt64(((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4)) << 32
            return (sc, mn)
        }

        /// Eight bytes as eight Int16 lanes.
        @inline(__always) static func words(_ v: UInt64) -> __m128i { _mm_cvtepu8_epi16(_mm_cvtsi64_si128(Int64(bitPattern: v))) }

        /// The `vpshufb` mask that puts 16-bit lane `k` of each 128-bit half in every lane of that half.
        @inline(__always) static func wordMask(_ k: Int) -> __m256i { _mm256_set1_epi16(Int16(2 &* k) | Int16(2 &* k &+ 1) << 8) }

        /// The sum of 8 / 4 Int32 lanes (exact: a super-block's sum fits Int32).
        @inline(__always) static func total(_ v: __m256i) -> Int32 { unsafeBitCast(v, to: SIMD8<Int32>.self).wrappedSum() }
        @inline(__always) static func total(_ v: __m128i) -> Int32 { unsafeBitCast(v, to: SIMD4<Int32>.self).wrappedSum() }
        /// Lane k = the sum of the lanes of the k-th vector (four totals with three `vphaddd`), as floats.
        @inline(__always) static func totals(_ v: (__m256i, __m256i, __m256i, __m256i)) -> SIMD4<Float> {
            let all = unsafeBitCast(_mm256_hadd_epi32(_mm256_hadd_epi32(v.0, v.1), _mm256_hadd_epi32(v.2, v.3)), to: SIMD8<Int32>.self)
            return SIMD4<Float>(all.lowHalf &+ all.highHalf)
        }
        @inline(__always) static func totals(_ v: (__m128i, __m128i, __m128i, __m128i)) -> SIMD4<Float> {
            SIMD4<Float>(unsafeBitCast(_mm_hadd_epi32(_mm_hadd_epi32(v.0, v.1), _mm_hadd_epi32(v.2, v.3)), to: SIMD4<Int32>.self))
        }

        /// Σ_j m_j · (code sums of sub-block j's two halves), in four Int32 lanes, for the 16 code sums at `b`.
        @inline(__always) static func minSums(_ mins: __m128i, _ b: UnsafeRawPointer) -> __m128i {
            _mm_madd_epi16(mins, _mm_hadd_epi16(b.loadUnaligned(as: __m128i.self), b.loadUnaligned(fromByteOffset: 16, as: __m128i.self)))
        }

        /// The 4-bit / 5-bit codes of sub-blocks 2j and 2j + 1 of a Q4_K / Q5_K super-block at `p`.
        @inline(__always) static func codes45K(five: Bool, _ p: UnsafeRawPointer, _ hb: __m256i, _ j: Int) -> (__m256i, __m256i) {
            let nibble = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16)
            let q = (p + (five ? 48 : 16) + 32 &* j).loadUnaligned(as: __m256i.self)
            var lo = _mm256_and_si256(q, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble)
            if five {
                // Bit 2j (low sub-block) and 2j + 1 (high) of each qh byte, as 16.
                @inline(__always) func bit(_ k: Int) -> __m256i {
                    let m = _mm256_set1_epi8(Int8(truncatingIfNeeded: 1 << k))
                    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, m), m), sixteen)
                }
                lo = _mm256_or_si256(lo, bit(2 &* j)); hi = _mm256_or_si256(hi, bit(2 &* j &+ 1))
            }
            return (lo, hi)
        }

        /// Σ scale_j · Σ code · x-code of a Q4_K / Q5_K super-block at `p` against the codes at `x`, in 8 Int32
        /// lanes: per 64 values one 32-byte load, a mask and a shift (two sub-blocks' nibbles), two
        /// `vpmaddubsw` (32 byte products each, paired into Int16), two `vpmaddwd` by the 6-bit scales.
        @inline(__always) static func sum45K(five: Bool, _ p: UnsafeRawPointer, _ scales: __m256i, _ x: UnsafeRawPointer) -> __m256i {
            let hb = five ? p.loadUnaligned(fromByteOffset: 16, as: __m256i.self) : _mm256_setzero_si256()
            var sumi = _mm256_setzero_si256()
            for j in 0..<4 {
                let (lo, hi) = codes45K(five: five, p, hb, j)
                let pl = _mm256_madd_epi16(
                    _mm256_shuffle_epi8(scales, wordMask(2 &* j)), _mm256_maddubs_epi16(lo, x.load(fromByteOffset: 64 &* j, as: __m256i.self)))
                let ph = _mm256_madd_epi16(
                    _mm256_shuffle_epi8(scales, wordMask(2 &* j &+ 1)), _mm256_maddubs_epi16(hi, x.load(fromByteOffset: 64 &* j &+ 32, as: __m256i.self)))
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph))
            }
            return sumi
        }

        /// One Q4_K / Q5_K row against row `t` of `a`, as llama.cpp's AVX2 `ggml_vec_dot_q4_K_q8_K` in its
        /// integer part (`sum45K`; the minimums' Σ m_j · code sums one `vpmaddwd`), then `rowK`'s float steps.
        @inline(__always) static func rowQ45K(five: Bool, _ row: UnsafeRawPointer, _ a: ActivationsK, _ t: Int) -> Float {
            let nsb = a.supers, bytes = five ? 176 : 144
            let xr = UnsafeRawPointer(a.codes + t &* a.count), xs = a.scales + t &* nsb, bs = UnsafeRawPointer(a.bsums + t &* nsb &* 16)
            var acc: Float = 0, accm: Float = 0
            for sb in 0..<nsb {
                let p = row + sb &* bytes, dx = xs[sb]
                let (sc, mn) = scalesMins(p + 4)
                let sumi = sum45K(five: five, p, _mm256_broadcastsi128_si256(words(sc)), xr + sb &* 256)
                acc += Float(total(sumi)) * (half(p, 0) * dx)
                accm += Float(total(minSums(words(mn), bs + sb &* 32))) * (half(p, 2) * dx)
            }
            return acc - accm
        }

        /// Sub-block k's halves of a Q6_K super-block: scale 2k in the first 128 bits (values 0–15), 2k + 1 in
        /// the second.
        @inline(__always) static func halves6K(_ k: Int) -> __m256i {
            _mm256_set_m128i(_mm_set1_epi16(Int16(4 &* k &+ 2) | Int16(4 &* k &+ 3) << 8), _mm_set1_epi16(Int16(4 &* k) | Int16(4 &* k &+ 1) << 8))
        }

        /// Half `n` (128 values) of a Q6_K super-block at `p`: its four sub-blocks' 6-bit codes (0–63) from
        /// three 32-byte loads with masks and shifts, and the int8 scales of its eight 16-value halves as Int16
        /// lanes, in both 128-bit halves.
        @inline(__always) static func codes6K(_ p: UnsafeRawPointer, _ n: Int) -> (__m256i, __m256i, __m256i, __m256i, scales: __m256i) {
            let low = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi8(0x30)
            let ql = p + 64 &* n, qh = p + 128 + 32 &* n
            let l0 = ql.loadUnaligned(as: __m256i.self), l1 = ql.loadUnaligned(fromByteOffset: 32, as: __m256i.self),
                h = qh.loadUnaligned(as: __m256i.self)
            let scales = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(p.loadUnaligned(fromByteOffset: 192 &+ 8 &* n, as: Int64.self))))
            return (
                _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(h, 4), high)),
                _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(h, 2), high)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(h, high)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_and_si256(_mm256_srli_epi16(h, 2), high)),
                scales
            )
        }

        /// −32 · Σ scale · code sum of a Q6_K super-block at `p` against the code sums at `b`: the codes' −32,
        /// the start of the block's integer sum.
        @inline(__always) static func offset6K(_ p: UnsafeRawPointer, _ b: UnsafeRawPointer) -> __m256i {
            let all = _mm256_cvtepi8_epi16(p.loadUnaligned(fromByteOffset: 192, as: __m128i.self))
            return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(all, b.loadUnaligned(as: __m256i.self)), 5))
        }

        /// One Q6_K row against row `t` of `a`: per 32 values one `vpmaddubsw`, one `vpshufb` (the two int8
        /// scales of its halves) and one `vpmaddwd`; the codes' −32 once per super-block through the 16-value
        /// code sums (`offset6K`); then `rowK`'s float step.
        @inline(__always) static func rowQ6K(_ row: UnsafeRawPointer, _ a: ActivationsK, _ t: Int) -> Float {
            let nsb = a.supers
            let xr = UnsafeRawPointer(a.codes + t &* a.count), xs = a.scales + t &* nsb, bs = UnsafeRawPointer(a.bsums + t &* nsb &* 16)
            var acc: Float = 0
            for sb in 0..<nsb {
                let p = row + sb &* 210
                acc += Float(total(sum6K(p, xr + sb &* 256, bs + sb &* 32))) * (half(p, 208) * xs[sb])
            }
            return acc
        }

        /// Σ scale · (code − 32) · x-code of a Q6_K super-block at `p` against the codes at `x` (code sums at
        /// `b`), in 8 Int32 lanes.
        @inline(__always) static func sum6K(_ p: UnsafeRawPointer, _ x: UnsafeRawPointer, _ b: UnsafeRawPointer) -> __m256i {
            var sumi = offset6K(p, b)
            for n in 0..<2 {
                let c = codes6K(p, n)
                @inline(__always) func sub(_ k: Int, _ codes: __m256i) -> __m256i {
                    _mm256_madd_epi16(
                        _mm256_shuffle_epi8(c.scales, halves6K(k)), _mm256_maddubs_epi16(codes, x.load(fromByteOffset: 128 &* n &+ 32 &* k, as: __m256i.self)))
                }
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(sub(0, c.0), sub(1, c.1)), _mm256_add_epi32(sub(2, c.2), sub(3, c.3))))
            }
            return sumi
        }

        /// Four consecutive weight rows (`row`, `row + rowBytes`, …) against row `t` of `a` (decode): each
        /// row's super-block sums as in `rowQ45K` / `rowQ6K`, one row after the other (the weights stream in
        /// order, as the prefetcher likes), kept as vectors; then per super-block the four rows' totals with
        /// three `vphaddd` and the float steps on four lanes — per lane `rowK`'s steps, so each result is
        /// bitwise the one-row kernel's.
        @inline(__always) static func rowsK(_ type: GGMLType, _ row: UnsafeRawPointer, rowBytes: Int, _ a: ActivationsK, _ t: Int) -> SIMD4<Float> {
            if vnni512 {
                var out = SIMD4<Float>()
                withUnsafeMutableBytes(of: &out) {
                    kvkit_k_rows4_avx512vnni(
                        type == .q6_K ? 2 : type == .q5_K ? 1 : 0, row, rowBytes, a.codes + t &* a.count, a.scales + t &* a.supers,
                        a.bsums + t &* a.supers &* 16, a.supers, $0.baseAddress!.assumingMemoryBound(to: Float.self))
                }
                return out
            }
            let nsb = a.supers, q6 = type == .q6_K, five = type == .q5_K, bytes = q6 ? 210 : five ? 176 : 144
            let xr = UnsafeRawPointer(a.codes + t &* a.count), xs = a.scales + t &* nsb, bs = UnsafeRawPointer(a.bsums + t &* nsb &* 16)
            return withUnsafeTemporaryAllocation(of: __m256i.self, capacity: 4 &* nsb) { sumsBuf in
                withUnsafeTemporaryAllocation(of: __m128i.self, capacity: q6 ? 1 : 4 &* nsb) { minsBuf in
                    let sums = sumsBuf.baseAddress!, mins = minsBuf.baseAddress!
                    for r in 0..<4 {
                        for sb in 0..<nsb {
                            let p = row + (r &* rowBytes &+ sb &* bytes), x = xr + sb &* 256, b = bs + sb &* 32
                            if q6 {
                                sums[r &* nsb &+ sb] = sum6K(p, x, b)
                            } else {
                                let (sc, mn) = scalesMins(p + 4)
                                sums[r &* nsb &+ sb] = sum45K(five: five, p, _mm256_broadcastsi128_si256(words(sc)), x)
                                mins[r &* nsb &+ sb] = minSums(words(mn), b)
                            }
                        }
                    }
                    var acc = SIMD4<Float>(), accm = SIMD4<Float>()
                    for sb in 0..<nsb {
                        @inline(__always) func p(_ r: Int) -> UnsafeRawPointer { row + (r &* rowBytes &+ sb &* bytes) }
                        let dx = xs[sb], at = q6 ? 208 : 0
                        acc +=
                            totals((sums[sb], sums[nsb &+ sb], sums[2 &* nsb &+ sb], sums[3 &* nsb &+ sb]))
                            * (SIMD4(half(p(0), at), half(p(1), at), half(p(2), at), half(p(3), at)) * dx)
                        if !q6 {
                            accm +=
                                totals((mins[sb], mins[nsb &+ sb], mins[2 &* nsb &+ sb], mins[3 &* nsb &+ sb]))
                                * (SIMD4(half(p(0), 2), half(p(1), 2), half(p(2), 2), half(p(3), 2)) * dx)
                        }
                    }
                    return acc - accm
                }
            }
        }
    }
#endif
