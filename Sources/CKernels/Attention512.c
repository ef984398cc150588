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

/// `simdExp` (Vector.swift) on 16 lanes, operation for operation (no contraction: see the pragma above the caller).
AVX512 INLINE __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.0f), magic = _mm512_set1_ps(12582912.0f);
    __m512 v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), x, lo);
    v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), v, hi);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504f)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    const __m512 r = _mm512_add_ps(_mm512_sub_ps(v, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f))), _mm512_mul_ps(n, _mm512_set1_ps(2.1219444e-4f)));
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_set1_ps(1.98756915e-4f);
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(1.39819995e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(8.3334519e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(4.16657959e-2f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(1.66666655e-1f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(5.00000012e-1f));
    y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, z), r), _mm512_set1_ps(1.0f));
    const __m512i nb = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    const __m512 pow2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(nb, _mm512_set1_epi32(127)), 23));
    const __m512 e = _mm512_mul_ps(y, pow2);
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), e);  // 0 where x < −87 (or NaN)
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
#endif
