// The gated activations of the feed-forward layers (`Vector.siluMul`, `Vector.geluTanhMul`) on 16 AVX-512 lanes,
// chosen at run time with the other AVX-512 kernels. Each element takes the Swift expression's operations in the
// same order (no contraction into fused multiply-adds), so the results are bitwise the 8-lane Swift loop's (tested).
#include "CKernels.h"
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx2,fma,avx512f")))
#define INLINE __attribute__((always_inline)) static inline
#include "Exp16.h"

AVX512 long kvkit_silu_mul_avx512(float *gate, const float *up, long n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
        // g * u / (1 + simdExp(-g)); -g flips the sign bit, as Swift's prefix minus does
        const __m512 e = exp16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32((int)0x80000000u))));
        _mm512_storeu_ps(gate + i, _mm512_div_ps(_mm512_mul_ps(g, u), _mm512_add_ps(one, e)));
    }
    return i;
}

AVX512 long kvkit_gelu_tanh_mul_avx512(float *gate, const float *up, long n, float c) {
    const __m512 one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(0.044715f), cv = _mm512_set1_ps(c);
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
        // g * u / (1 + simdExp(c * (g + 0.044715 * g * g * g)))
        const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(k, g), g), g);
        const __m512 e = exp16(_mm512_mul_ps(cv, _mm512_add_ps(g, cube)));
        _mm512_storeu_ps(gate + i, _mm512_div_ps(_mm512_mul_ps(g, u), _mm512_add_ps(one, e)));
    }
    return i;
}

#else
long kvkit_silu_mul_avx512(float *gate, const float *up, long n) {
    (void)gate; (void)up; (void)n;
    __builtin_trap();  // kvkit_has_avx512vnni() is 0 here: never called
}
long kvkit_gelu_tanh_mul_avx512(float *gate, const float *up, long n, float c) {
    (void)gate; (void)up; (void)n; (void)c;
    __builtin_trap();
}
#endif
