// The two matrix products of the attention kernel's prefill path (query rows × a gathered tile of keys) on
// AVX-512 F, chosen at run time like the VNNI kernels (`kvkit_has_avx512vnni()`): until now OpenBLAS sgemm, whose
// Haswell kernels this environment selects on purpose and whose packing dominates products with k = head_dim.
// Both are register-blocked broadcast-FMA kernels with a fixed order of summation: every row's result depends on
// that row's inputs alone, never on how many rows share the call (sgemm's blocking does).
#include "CKernels.h"
// `exp16` must be `simdExp`'s operations exactly: no contraction into fused multiply-adds (the tile products
// call _mm512_fmadd_ps explicitly, which the pragma does not touch).
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx2,fma,avx512f")))
#define INLINE __attribute__((always_inline)) static inline
#include "Exp16.h"

/// Rows r0 ..< r0 + RB of S against keys j ..< j + 32 (m0, m1: the valid lanes of the two halves).
AVX512 INLINE void scores_block(
    const float *Q, long hd, const float *KT, long ldk, float *S, long ldS, long r0, const int RB, long j, __mmask16 m0,
    __mmask16 m1) {
    __m512 a[8][2];
    for (int r = 0; r < RB; r++) { a[r][0] = _mm512_setzero_ps(); a[r][1] = _mm512_setzero_ps(); }
    const float *q = Q + r0 * hd;
    for (long d = 0; d < hd; d++) {
        const float *k = KT + d * ldk + j;
        __m512 k0 = _mm512_maskz_loadu_ps(m0, k), k1 = _mm512_maskz_loadu_ps(m1, k + 16);
        for (int r = 0; r < RB; r++) {
            __m512 x = _mm512_set1_ps(q[r * hd + d]);
            a[r][0] = _mm512_fmadd_ps(x, k0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(x, k1, a[r][1]);
        }
    }
    for (int r = 0; r < RB; r++) {
        float *s = S + (r0 + r) * ldS + j;
        _mm512_mask_storeu_ps(s, m0, a[r][0]);
        _mm512_mask_storeu_ps(s + 16, m1, a[r][1]);
    }
}

AVX512 long kvkit_exp_shift_sum_avx512(float *s, long n, float shift, float *acc8) {
    const __m512 sh = _mm512_set1_ps(shift);
    __m256 acc = _mm256_loadu_ps(acc8);
    long j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), sh));
        _mm512_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));  // the 8-lane chunks in order, as the Swift loop adds them
        acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    if (j + 8 <= n) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(0x00FF, s + j), sh));
        _mm512_mask_storeu_ps(s + j, 0x00FF, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        j += 8;
    }
    _mm256_storeu_ps(acc8, acc);
    return j;
}

/// K [n][hd] transposed into KT [hd][ldk] at column `at`: 16 keys × 16 dimensions a step (unpacks within 128-bit
/// lanes, then two rounds of lane shuffles), masked loads and stores for a partial step. Pure data movement: the
/// same floats as the scalar loop (`PagedAttention.transposeReference`), ~8× faster than its strided stores.
AVX512 void kvkit_transpose_keys_avx512(const float *K, long n, long hd, float *KT, long ldk, long at) {
    for (long j = 0; j < n; j += 16) {
        const long c = n - j < 16 ? n - j : 16;
        const __mmask16 keys = (__mmask16)((1u << c) - 1);
        for (long d0 = 0; d0 < hd; d0 += 16) {
            const long w = hd - d0 < 16 ? hd - d0 : 16;
            const __mmask16 dims = (__mmask16)((1u << w) - 1);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = i < c ? _mm512_maskz_loadu_ps(dims, K + (j + i) * hd + d0) : _mm512_setzero_ps();
            for (int i = 0; i < 8; i++) { t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]); t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]); }
            for (int i = 0; i < 4; i++) {
                r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
                r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i]), _mm512_castps_pd(t[4 * i + 2])));
                r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
                r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[4 * i + 1]), _mm512_castps_pd(t[4 * i + 3])));
            }
            for (int i = 0; i < 2; i++) {
                for (int q = 0; q < 4; q++) {
                    t[8 * i + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0x88);
                    t[8 * i + 4 + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0xDD);
                }
            }
            // Row q of the transpose (dimension d0 + q) is the shuffle pair (t[q], t[8 + q]) for q < 8, (t[q − 8], t[q]) above.
            for (int q = 0; q < 8; q++) {
                if (q < w) _mm512_mask_storeu_ps(KT + (d0 + q) * ldk + at + j, keys, _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88));
                if (q + 8 < w) _mm512_mask_storeu_ps(KT + (d0 + q + 8) * ldk + at + j, keys, _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD));
            }
        }
    }
}

AVX512 void kvkit_attn_scores_avx512(const float *Q, long R, long hd, const float *KT, long ldk, long n, float *S, long ldS) {
    for (long j = 0; j < n; j += 32) {
        long left = n - j;
        __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
        long r = 0;
        for (; r + 8 <= R; r += 8) scores_block(Q, hd, KT, ldk, S, ldS, r, 8, j, m0, m1);
        switch (R - r) {
        case 7: scores_block(Q, hd, KT, ldk, S, ldS, r, 7, j, m0, m1); break;
        case 6: scores_block(Q, hd, KT, ldk, S, ldS, r, 6, j, m0, m1); break;
        case 5: scores_block(Q, hd, KT, ldk, S, ldS, r, 5, j, m0, m1); break;
        case 4: scores_block(Q, hd, KT, ldk, S, ldS, r, 4, j, m0, m1); break;
        case 3: scores_block(Q, hd, KT, ldk, S, ldS, r, 3, j, m0, m1); break;
        case 2: scores_block(Q, hd, KT, ldk, S, ldS, r, 2, j, m0, m1); break;
        case 1: scores_block(Q, hd, KT, ldk, S, ldS, r, 1, j, m0, m1); break;
        default: break;
        }
    }
}

/// Rows r0 ..< r0 + RB of O, columns c ..< c + 64: O += P · V over keys 0 ..< n in order.
AVX512 INLINE void pv_block(const float *P, long ldP, long r0, const int RB, long n, const float *V, long hd, long c, float *O) {
    __m512 a[4][4];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < 4; v++) a[r][v] = _mm512_loadu_ps(O + (r0 + r) * hd + c + 16 * v);
    for (long j = 0; j < n; j++) {
        const float *vj = V + j * hd + c;
        __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32), v3 = _mm512_loadu_ps(vj + 48);
        for (int r = 0; r < RB; r++) {
            __m512 p = _mm512_set1_ps(P[(r0 + r) * ldP + j]);
            a[r][0] = _mm512_fmadd_ps(p, v0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(p, v1, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(p, v2, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(p, v3, a[r][3]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < 4; v++) _mm512_storeu_ps(O + (r0 + r) * hd + c + 16 * v, a[r][v]);
}

AVX512 void kvkit_attn_pv_avx512(const float *P, long ldP, long R, long n, const float *V, long hd, float *O) {
    for (long c = 0; c < hd; c += 64) {
        long r = 0;
        for (; r + 4 <= R; r += 4) pv_block(P, ldP, r, 4, n, V, hd, c, O);
        switch (R - r) {
        case 3: pv_block(P, ldP, r, 3, n, V, hd, c, O); break;
        case 2: pv_block(P, ldP, r, 2, n, V, hd, c, O); break;
        case 1: pv_block(P, ldP, r, 1, n, V, hd, c, O); break;
        default: break;
        }
    }
}

#else
void kvkit_attn_scores_avx512(const float *Q, long R, long hd, const float *KT, long ldk, long n, float *S, long ldS) {
    (void)Q; (void)R; (void)hd; (void)KT; (void)ldk; (void)n; (void)S; (void)ldS;
    __builtin_trap();  // kvkit_has_avx512vnni() is 0 here: never called
}
void kvkit_attn_pv_avx512(const float *P, long ldP, long R, long n, const float *V, long hd, float *O) {
    (void)P; (void)ldP; (void)R; (void)n; (void)V; (void)hd; (void)O;
    __builtin_trap();
}
long kvkit_exp_shift_sum_avx512(float *s, long n, float shift, float *acc8) {
    (void)s; (void)n; (void)shift; (void)acc8;
    __builtin_trap();
}
void kvkit_transpose_keys_avx512(const float *K, long n, long hd, float *KT, long ldk, long at) {
    (void)K; (void)n; (void)hd; (void)KT; (void)ldk; (void)at;
    __builtin_trap();
}
#endif
