#if KVKIT_AVX2
    import _Builtin_intrinsics.intel

    /// The decode-path attention kernels of the AVX2 host build (`scripts/host-flags.sh`): a few query rows
    /// against one page of keys, where the portable path takes one dot product per (row, key) with its own
    /// horizontal sum and one load-add-store pass over the output per (row, key). Here scores come eight
    /// keys at a time (eight accumulators reduced together by `vhaddps`), and P·V keeps a row's output in
    /// registers across the page's keys: about a third of the instructions per key (measured: SmolLM2
    /// decode at 2,048 tokens of context ~99 → see docs/speed.md's engine table). Same products, summed in
    /// another order. `headDim` must be a multiple of 32 (`applies`).
    enum AttentionAVX2 {
        @inline(__always) static func applies(headDim: Int) -> Bool { headDim % 32 == 0 }

        /// The 8 sums of 8 vectors, in order.
        @inline(__always) static func sums(_ a: (__m256, __m256, __m256, __m256, __m256, __m256, __m256, __m256)) -> __m256 {
            let u0 = _mm256_hadd_ps(_mm256_hadd_ps(a.0, a.1), _mm256_hadd_ps(a.2, a.3))
            let u1 = _mm256_hadd_ps(_mm256_hadd_ps(a.4, a.5), _mm256_hadd_ps(a.6, a.7))
            // u0: a0…a3's low-half sums, then their high-half sums; u1 the same for a4…a7.
            return SIMD8(lowHalf: u0.lowHalf + u0.highHalf, highHalf: u1.lowHalf + u1.highHalf)
        }

        @inline(__always) static func load(_ p: UnsafePointer<Float>, _ i: Int) -> __m256 { UnsafeRawPointer(p + i).loadUnaligned(as: __m256.self) }

        /// `S[r · ldS + j] = Q[r] · K[j]` for R rows of Q (`[R][hd]`) and n keys (`[n][hd]`).
        static func scores(
            _ Q: UnsafePointer<Float>, rows R: Int, headDim hd: Int, _ K: UnsafePointer<Float>, keys n: Int,
            _ S: UnsafeMutablePointer<Float>, ldS: Int
        ) {
            for r in 0..<R {
                let q = Q + r &* hd, s = S + r &* ldS
                var j = 0
                while j &+ 8 <= n {
                    let k = K + j &* hd
                    var a = (
                        _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                        _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()
                    )
                    var d = 0
                    while d < hd {
                        let qv = load(q, d)
                        a.0 = _mm256_fmadd_ps(qv, load(k, d), a.0)
                        a.1 = _mm256_fmadd_ps(qv, load(k, hd &+ d), a.1)
                        a.2 = _mm256_fmadd_ps(qv, load(k, 2 &* hd &+ d), a.2)
                        a.3 = _mm256_fmadd_ps(qv, load(k, 3 &* hd &+ d), a.3)
                        a.4 = _mm256_fmadd_ps(qv, load(k, 4 &* hd &+ d), a.4)
                        a.5 = _mm256_fmadd_ps(qv, load(k, 5 &* hd &+ d), a.5)
                        a.6 = _mm256_fmadd_ps(qv, load(k, 6 &* hd &+ d), a.6)
                        a.7 = _mm256_fmadd_ps(qv, load(k, 7 &* hd &+ d), a.7)
                        d &+= 8
                    }
                    UnsafeMutableRawPointer(s + j).storeBytes(of: sums(a), as: __m256.self)
                    j &+= 8
                }
                while j < n {
                    let k = K + j &* hd
                    var a = (_mm256_setzero_ps(), _mm256_setzero_ps()), d = 0
                    while d < hd {
                        a.0 = _mm256_fmadd_ps(load(q, d), load(k, d), a.0)
                        a.1 = _mm256_fmadd_ps(load(q, d &+ 8), load(k, d &+ 8), a.1)
                        d &+= 16
                    }
                    s[j] = _mm256_add_ps(a.0, a.1).sum()
                    j &+= 1
                }
            }
        }

        /// `O[r] = alpha[r] · O[r] + Σ_j P[r · ldP + j] · V[j]` for R rows (`O`: `[R][hd]`), 32 output values
        /// at a time held in registers across the n keys.
        static func accumulate(
            _ O: UnsafeMutablePointer<Float>, rows R: Int, headDim hd: Int, alpha: UnsafePointer<Float>,
            _ P: UnsafePointer<Float>, ldP: Int, _ V: UnsafePointer<Float>, keys n: Int
        ) {
            for r in 0..<R {
                let o = O + r &* hd, p = P + r &* ldP, al = _mm256_set1_ps(alpha[r])
                var d = 0
                while d < hd {
                    var a = (
                        _mm256_mul_ps(load(o, d), al), _mm256_mul_ps(load(o, d &+ 8), al),
                        _mm256_mul_ps(load(o, d &+ 16), al), _mm256_mul_ps(load(o, d &+ 24), al)
                    )
                    var v = V + d
                    for j in 0..<n {
                        let w = _mm256_set1_ps(p[j])
                        a.0 = _mm256_fmadd_ps(w, load(v, 0), a.0)
                        a.1 = _mm256_fmadd_ps(w, load(v, 8), a.1)
                        a.2 = _mm256_fmadd_ps(w, load(v, 16), a.2)
                        a.3 = _mm256_fmadd_ps(w, load(v, 24), a.3)
                        v += hd
                    }
                    let out = UnsafeMutableRawPointer(o + d)
                    out.storeBytes(of: a.0, as: __m256.self); out.storeBytes(of: a.1, toByteOffset: 32, as: __m256.self)
                    out.storeBytes(of: a.2, toByteOffset: 64, as: __m256.self); out.storeBytes(of: a.3, toByteOffset: 96, as: __m256.self)
                    d &+= 32
                }
            }
        }
    }
#endif
