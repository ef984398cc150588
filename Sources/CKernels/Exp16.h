// `exp16`: `simdExp` (Vector.swift) on 16 AVX-512 lanes, shared by the C files that must give the Swift code's bits.
// Include after `AVX512` and `INLINE` are defined and under `#pragma clang fp contract(off)`.
#ifndef KVKIT_EXP16_H
#define KVKIT_EXP16_H

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

#endif
