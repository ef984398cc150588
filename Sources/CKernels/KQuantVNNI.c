// The K-quant products of prefill and decode on AVX-512 VNNI, chosen at run time by CPUID. Swift cannot compile
// one function for another CPU than the rest of the module (no per-function target attribute), so these are
// C functions with clang's `target` attribute: the binary stays an AVX2 (or baseline) build and takes these
// only where `kvkit_has_avx512vnni()` says the CPU has the instructions (as llama.cpp's GGML_CPU_ALL_VARIANTS
// picks a backend per CPU). Each (row, super-block) integer sum is exact and the float steps that follow are the portable kernel's, operation for operation, so results are bitwise what the
// AVX2 and portable kernels give.
//
// Per 64 values and activation row: one `vpmaddubsw` (unsigned weight codes × signed activation codes, byte
// pairs into Int16: at most 2 · 63 · 127, no saturation) and one `vpdpwssd` (× the sub-block scales, pairs
// into the Int32 accumulator) on 512-bit lanes, against AVX2's `vpmaddubsw` + `vpmaddwd` + `vpaddd` per 32.
#include "CKernels.h"
// The float steps below are `rowK`'s, operation for operation: no contraction into fused multiply-adds.
#pragma clang fp contract(off)
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

int kvkit_has_avx512vnni(void) {
    const char *force = getenv("KVKIT_KERNELS");
    if (force && strcmp(force, "avx2") == 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512vnni");
}

#define VNNI512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

static inline uint32_t load32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/// Q4_K / Q5_K's twelve packed bytes of 6-bit scales and minimums as 8 + 8 bytes (llama.cpp's `get_scale_min_k4`).
static inline void scales_mins(const uint8_t *p, uint64_t *sc, uint64_t *mn) {
    const uint32_t m1 = 0x3F3F3F3F, m2 = 0x0F0F0F0F, m3 = 0x03030303;
    uint32_t u0 = load32(p), u1 = load32(p + 4), u2 = load32(p + 8);
    *sc = (uint64_t)(u0 & m1) | (uint64_t)((u2 & m2) | (((u0 >> 6) & m3) << 4)) << 32;
    *mn = (uint64_t)(u1 & m1) | (uint64_t)(((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4)) << 32;
}

/// `vpermw` indices: lane k of vector j takes word 2j + k / 16 (Q4_K / Q5_K: two 32-value sub-blocks per vector)
/// or 4j + k / 8 (Q6_K: four 16-value halves per vector). Constant tables: built on the stack per super-block, a
/// 64-byte load from 32 two-byte stores misses store forwarding (decode ran at 60 % of the AVX2 kernel's speed).
static const int16_t spread45[4][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};
static const int16_t spread6[4][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

/// Vector j of the scale words `words` spread by `table` (`vpermw`).
VNNI512 static inline __m512i spread(__m512i words, const int16_t table[4][32], int j) {
    return _mm512_permutexvar_epi16(_mm512_load_si512(table[j]), words);
}

VNNI512 static inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

/// acc + Σ pairs of a · b (`vpdpwssd`). Inline assembly: LLVM splits the intrinsic back into `vpmaddwd` +
/// `vpaddd` (measured: no `vpdpwssd` left in the kernel, and prefill 5–10 % slower).
VNNI512 static inline __m512i dpwssd(__m512i acc, __m512i a, __m512i b) {
    __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
}

/// Σ_k sv[k] · (codes[k] · x[64k …]) over a super-block's four 64-value vectors.
VNNI512 static inline __m512i stationary(const __m512i c[4], const __m512i sv[4], const int8_t *x, __m512i acc) {
    for (int k = 0; k < 4; k++) acc = dpwssd(acc, _mm512_maddubs_epi16(c[k], _mm512_load_si512(x + 64 * k)), sv[k]);
    return acc;
}

/// Lane k = the sum of the lanes of vector k (four rows' totals: two rounds of interleave-and-add, then the
/// 128-bit quarters added).
VNNI512 static inline __m128i totals512(__m512i a, __m512i b, __m512i c, __m512i d) {
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    __m512i abcd = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(abcd), _mm512_extracti64x4_epi64(abcd, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}
VNNI512 static inline __m128i totals256(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
    __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
    __m256i abcd = _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
    return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

/// The four rows' Q8_K steps at super-block sb.
static inline __m128 steps(const float *xs, long supers) { return _mm_setr_ps(xs[0], xs[supers], xs[2 * supers], xs[3 * supers]); }

/// acc + Float(S) · (w · dx): `rowK`'s float step on four lanes, in the same order (no fused multiply-add).
static inline __m128 step(__m128 acc, __m128i s, __m128 w, __m128 dx) { return _mm_add_ps(acc, _mm_mul_ps(_mm_cvtepi32_ps(s), _mm_mul_ps(w, dx))); }

VNNI512 static inline float half(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return _cvtsh_ss(h); }

/// The codes of a Q4_K / Q5_K super-block at p as four 64-value vectors (sub-blocks 2k and 2k + 1 in vector k).
VNNI512 static inline void codes45k(const uint8_t *p, int five, __m512i c[4]) {
    const __m256i nibble = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    const __m256i hb = five ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(p + (five ? 48 : 16) + 32 * k));
        __m256i lo = _mm256_and_si256(q, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), nibble);
        if (five) {
            __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * k))), b1 = _mm256_set1_epi8((char)(1 << (2 * k + 1)));
            lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b0), b0), sixteen));
            hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, b1), b1), sixteen));
        }
        c[k] = join(lo, hi);
    }
}

/// A Q4_K / Q5_K super-block's scales as vectors of Int16 words (vector k: sub-block 2k's scale in its low 256
/// bits, 2k + 1's in the high), and its minimums repeated per 16-value code sum (lane i: min_{i/2}).
VNNI512 static inline __m256i scales45k(const uint8_t *p, __m512i sv[4]) {
    uint64_t sc, mn;
    scales_mins(p + 4, &sc, &mn);
    const __m512i sw = _mm512_zextsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    for (int k = 0; k < 4; k++) sv[k] = spread(sw, spread45, k);
    const __m128i m8 = _mm_cvtsi64_si128((long long)mn);
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
}

/// The codes of a Q6_K super-block at p as four 64-value vectors (values 64k …< 64k + 64 in vector k).
VNNI512 static inline void codes6k(const uint8_t *p, __m512i c[4]) {
    const __m256i low = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi8(0x30);
    for (int n = 0; n < 2; n++) {
        const uint8_t *ql = p + 64 * n, *qh = p + 128 + 32 * n;
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32)),
                h = _mm256_loadu_si256((const __m256i *)qh);
        c[2 * n] = join(
            _mm256_or_si256(_mm256_and_si256(l0, low), _mm256_and_si256(_mm256_slli_epi16(h, 4), high)),
            _mm256_or_si256(_mm256_and_si256(l1, low), _mm256_and_si256(_mm256_slli_epi16(h, 2), high)));
        c[2 * n + 1] = join(
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), _mm256_and_si256(h, high)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low), _mm256_and_si256(_mm256_srli_epi16(h, 2), high)));
    }
}

/// A Q6_K super-block's sixteen int8 scales (one per 16 values) as Int16 words, and spread per vector (vector k:
/// the scales of values 64k …< 64k + 64).
VNNI512 static inline __m256i scales6k(const uint8_t *p, __m512i sv[4]) {
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
    for (int k = 0; k < 4; k++) sv[k] = spread(_mm512_zextsi256_si512(s16), spread6, k);
    return s16;
}

/// The codes' −32 through the 16-value code sums b: −32 · Σ_i scale_i · Σ x-code, a Q6_K row's starting sum.
VNNI512 static inline __m512i offset6k(__m256i s16, const int16_t *b) {
    const __m256i m = _mm256_madd_epi16(s16, _mm256_loadu_si256((const __m256i *)b));
    return _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(m, 5)));
}

/// Σ_j min_j · Σ x-code over sub-block j, in 8 Int32 lanes, for the 16-value code sums b.
VNNI512 static inline __m256i mins45k(__m256i mw, const int16_t *b) { return _mm256_madd_epi16(mw, _mm256_loadu_si256((const __m256i *)b)); }

VNNI512 void kvkit_q45k_groups_avx512vnni(
    const void *row, int five, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups,
    float *acc, long sb0, long sb1) {
    const long bytes = five ? 176 : 144, bstride = supers * 16;
    for (long sb = sb0; sb < sb1; sb++) {
        const uint8_t *p = (const uint8_t *)row + sb * bytes;
        __m512i c[4], sv[4];
        codes45k(p, five, c);
        const __m256i mw = scales45k(p, sv);
        const __m128 dw = _mm_set1_ps(half(p)), mwf = _mm_set1_ps(half(p + 2));
        for (long g = 0; g < groups; g++) {
            const long t = 4 * g;
            const int8_t *x = codes + t * count + sb * 256;
            const int16_t *b = bsums + (t * supers + sb) * 16;
            const __m512i z = _mm512_setzero_si512();
            const __m128i s = totals512(
                stationary(c, sv, x, z), stationary(c, sv, x + count, z), stationary(c, sv, x + 2 * count, z), stationary(c, sv, x + 3 * count, z));
            const __m128i m = totals256(mins45k(mw, b), mins45k(mw, b + bstride), mins45k(mw, b + 2 * bstride), mins45k(mw, b + 3 * bstride));
            const __m128 dx = steps(scales + t * supers + sb, supers);
            _mm_storeu_ps(acc + 4 * g, step(_mm_loadu_ps(acc + 4 * g), s, dw, dx));
            _mm_storeu_ps(acc + 4 * (groups + g), step(_mm_loadu_ps(acc + 4 * (groups + g)), m, mwf, dx));
        }
    }
}

VNNI512 void kvkit_q6k_groups_avx512vnni(
    const void *row, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups, float *acc,
    long sb0, long sb1) {
    const long bstride = supers * 16;
    for (long sb = sb0; sb < sb1; sb++) {
        const uint8_t *p = (const uint8_t *)row + sb * 210;
        __m512i c[4], sv[4];
        codes6k(p, c);
        const __m256i s16 = scales6k(p, sv);
        const __m128 d = _mm_set1_ps(half(p + 208));
        for (long g = 0; g < groups; g++) {
            const long t = 4 * g;
            const int8_t *x = codes + t * count + sb * 256;
            const int16_t *b = bsums + (t * supers + sb) * 16;
            const __m128i s = totals512(
                stationary(c, sv, x, offset6k(s16, b)), stationary(c, sv, x + count, offset6k(s16, b + bstride)),
                stationary(c, sv, x + 2 * count, offset6k(s16, b + 2 * bstride)), stationary(c, sv, x + 3 * count, offset6k(s16, b + 3 * bstride)));
            _mm_storeu_ps(acc + 4 * g, step(_mm_loadu_ps(acc + 4 * g), s, d, steps(scales + t * supers + sb, supers)));
        }
    }
}

/// Four rows' Float16 values at byte `at` of their super-blocks p[0…3].
VNNI512 static inline __m128 halves4(const uint8_t *const p[4], int at) {
    return _mm_setr_ps(half(p[0] + at), half(p[1] + at), half(p[2] + at), half(p[3] + at));
}

// Software prefetch 4 KiB ahead of the weight stream: Qwen 1.5B decode at 16 tokens 33–37 → 36–43 tok/s (4
// alternating rounds, 96 steps; 1 KiB: no gain, 8 KiB: as 4 KiB).
#define PREFETCH 4096
VNNI512 void kvkit_k_rows4_avx512vnni(
    int type, const void *row, long rowBytes, const int8_t *x, const float *xscales, const int16_t *bsums, long supers, float *out) {
    const int q6 = type == 2, five = type == 1;
    const long bytes = q6 ? 210 : five ? 176 : 144;
    // One row after another, every super-block (the weights stream in order, as the prefetcher likes: four rows
    // interleaved per super-block ran at half the speed), each super-block's sums kept as vectors; then per
    // super-block the four rows' totals and the float steps.
    __m512i sums[4 * supers];  // on the stack (a heap buffer per call cost a third of decode): 9 KiB at 8,960 inputs
    __m256i mins[4 * supers];
    for (int r = 0; r < 4; r++) {
        for (long sb = 0; sb < supers; sb++) {
            const uint8_t *p = (const uint8_t *)row + r * rowBytes + sb * bytes;
            for (int k = 0; k < 4; k++) _mm_prefetch((const char *)p + PREFETCH + 64 * k, _MM_HINT_T0);
            const int16_t *b = bsums + sb * 16;
            __m512i c[4], sv[4];
            if (q6) {
                codes6k(p, c);
                sums[r * supers + sb] = stationary(c, sv, x + sb * 256, offset6k(scales6k(p, sv), b));
            } else {
                codes45k(p, five, c);
                mins[r * supers + sb] = mins45k(scales45k(p, sv), b);
                sums[r * supers + sb] = stationary(c, sv, x + sb * 256, _mm512_setzero_si512());
            }
        }
    }
    __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
    for (long sb = 0; sb < supers; sb++) {
        const uint8_t *p[4];
        for (int r = 0; r < 4; r++) p[r] = (const uint8_t *)row + r * rowBytes + sb * bytes;
        const __m128 dx = _mm_set1_ps(xscales[sb]);
        acc = step(acc, totals512(sums[sb], sums[supers + sb], sums[2 * supers + sb], sums[3 * supers + sb]), halves4(p, q6 ? 208 : 0), dx);
        if (!q6) accm = step(accm, totals256(mins[sb], mins[supers + sb], mins[2 * supers + sb], mins[3 * supers + sb]), halves4(p, 2), dx);
    }
    _mm_storeu_ps(out, _mm_sub_ps(acc, accm));
}

/// Stores the transpose of the 16 × 16 dwords in r (row i: r[i]) as 16 vectors at dst + 64 · c bytes (vector c: dword c
/// of every row): unpacks of dwords and quadwords within 128-bit lanes, then two rounds of lane shuffles.
VNNI512 static inline void transpose16(__m512i r[16], uint8_t *dst) {
    __m512i t[16];
    for (int i = 0; i < 8; i++) { t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]); t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]); }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
            t[8 * i + 4 + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + 4 + j], 0xDD);
        }
    }
    for (int j = 0; j < 8; j++) {
        _mm512_store_si512(dst + 64 * j, _mm512_shuffle_i32x4(t[j], t[8 + j], 0x88));
        _mm512_store_si512(dst + 64 * (j + 8), _mm512_shuffle_i32x4(t[j], t[8 + j], 0xDD));
    }
}

/// 32-value blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; type 0–4) of 16 consecutive weight rows (fewer at the end
/// of the matrix: the rest zero) repacked for `kvkit_block_gemm_avx512vnni`: per block 16 vectors, vector k
/// holding in lane r row r's values 2k and 2k + 1 as two Int16 (a type's offset −8 / −16 applied), and the
/// rows' steps d (and minimums m for Q4_1 / Q5_1) per block as 16 floats. Each row's block is unpacked with vector
/// operations into a 16 × 32 Int16 tile that `transpose16` turns into the block's 16 vectors (4× the scalar repack).
VNNI512 void kvkit_block_panel(int type, const void *rows, long rowBytes, long nrows, long blocks, int16_t *panel, float *d, float *m) {
    static const int bytes[5] = {18, 20, 22, 24, 34};
    const int bb = bytes[type], hasMin = type == 1 || type == 3, five = type == 2 || type == 3;
    const int bias = type == 0 ? 8 : type == 2 ? 16 : 0;
    memset(d, 0, (size_t)blocks * 16 * sizeof(float));
    if (m) memset(m, 0, (size_t)blocks * 16 * sizeof(float));
    int16_t tile[16][32] __attribute__((aligned(64)));
    memset(tile, 0, sizeof tile);  // a partial panel's missing rows: values 0
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(0x10);
    const __m512i vbias = _mm512_set1_epi16((short)bias);
    for (long b = 0; b < blocks; b++) {
        for (long r = 0; r < nrows; r++) {
            const uint8_t *q = (const uint8_t *)rows + r * rowBytes + b * bb;
            d[b * 16 + r] = half(q);
            if (hasMin && m) m[b * 16 + r] = half(q + 2);
            __m512i v;
            if (type == 4) {
                v = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(q + 2)));
            } else {
                const uint8_t *qs = q + (hasMin ? 4 : 2) + (five ? 4 : 0);
                const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
                // Bytes 0–15: the low nibbles (values 0–15), 16–31: the high ones (values 16–31).
                __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4);
                if (five) w = _mm256_or_si256(w, _mm256_maskz_mov_epi8((__mmask32)load32(q + (hasMin ? 4 : 2)), sixteen));
                v = _mm512_sub_epi16(_mm512_cvtepu8_epi16(w), vbias);
            }
            _mm512_store_si512(tile[r], v);
        }
        // Vector k of the block: the 16 rows' value pairs 2k, 2k + 1.
        int16_t *dst = panel + b * 512;
        __m512i rr[16];
        for (int r = 0; r < 16; r++) rr[r] = _mm512_load_si512(tile[r]);
        transpose16(rr, (uint8_t *)dst);
    }
}

/// acc + Σ pairs of w · (the Int16 pair at x, broadcast): `vpdpwssd` with a broadcast memory operand.
VNNI512 static inline __m512i dpwssd_bcast(__m512i acc, __m512i w, const void *x) {
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)x));
    return acc;
}

/// y[t · ystride + r] for t < rows and r < valid: a 16-row panel against activation rows of 16-bit codes (row t's
/// codes at x + t · count, its per-block steps at xscales + t · blocks and float sums at xsums + t · blocks): per
/// block the exact Int32 sums of the 16 weight rows in 16 lanes (`vpdpwssd`, no reduction), then
/// acc += Float(S) · (d · dx) (and + m · Σx for a type with minimums), blocks in order. Each activation row is
/// computed on its own (four at a time share the weight loads), so a row's result does not depend on the others.
/// `kvkit_block_gemm_avx512vnni` takes groups of 8 rows from interleaved codes and the rest here.
VNNI512 static void blockRows(
    const int16_t *panel, const float *d, const float *m, const int16_t *x, long count, const float *xscales, const float *xsums,
    long blocks, long rows, float *y, long ystride, long valid) {
    const __mmask16 keep = (__mmask16)((1u << valid) - 1);
    long t = 0;
    for (; t + 4 <= rows; t += 4) {
        __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
        const int16_t *x0 = x + t * count, *x1 = x0 + count, *x2 = x1 + count, *x3 = x2 + count;
        for (long b = 0; b < blocks; b++) {
            const int16_t *w = panel + b * 512;
            __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
            for (int k = 0; k < 16; k++) {
                const __m512i wk = _mm512_load_si512(w + 32 * k);
                a0 = dpwssd_bcast(a0, wk, x0 + 32 * b + 2 * k);
                a1 = dpwssd_bcast(a1, wk, x1 + 32 * b + 2 * k);
                a2 = dpwssd_bcast(a2, wk, x2 + 32 * b + 2 * k);
                a3 = dpwssd_bcast(a3, wk, x3 + 32 * b + 2 * k);
            }
            const __m512 db = _mm512_loadu_ps(d + 16 * b);
            const float *xs = xscales + t * blocks + b;
            f0 = _mm512_add_ps(f0, _mm512_mul_ps(_mm512_cvtepi32_ps(a0), _mm512_mul_ps(db, _mm512_set1_ps(xs[0]))));
            f1 = _mm512_add_ps(f1, _mm512_mul_ps(_mm512_cvtepi32_ps(a1), _mm512_mul_ps(db, _mm512_set1_ps(xs[blocks]))));
            f2 = _mm512_add_ps(f2, _mm512_mul_ps(_mm512_cvtepi32_ps(a2), _mm512_mul_ps(db, _mm512_set1_ps(xs[2 * blocks]))));
            f3 = _mm512_add_ps(f3, _mm512_mul_ps(_mm512_cvtepi32_ps(a3), _mm512_mul_ps(db, _mm512_set1_ps(xs[3 * blocks]))));
            if (m) {
                const __m512 mb = _mm512_loadu_ps(m + 16 * b);
                const float *sx = xsums + t * blocks + b;
                f0 = _mm512_add_ps(f0, _mm512_mul_ps(mb, _mm512_set1_ps(sx[0])));
                f1 = _mm512_add_ps(f1, _mm512_mul_ps(mb, _mm512_set1_ps(sx[blocks])));
                f2 = _mm512_add_ps(f2, _mm512_mul_ps(mb, _mm512_set1_ps(sx[2 * blocks])));
                f3 = _mm512_add_ps(f3, _mm512_mul_ps(mb, _mm512_set1_ps(sx[3 * blocks])));
            }
        }
        _mm512_mask_storeu_ps(y + t * ystride, keep, f0);
        _mm512_mask_storeu_ps(y + (t + 1) * ystride, keep, f1);
        _mm512_mask_storeu_ps(y + (t + 2) * ystride, keep, f2);
        _mm512_mask_storeu_ps(y + (t + 3) * ystride, keep, f3);
    }
    for (; t < rows; t++) {  // the same steps, one row
        __m512 f = _mm512_setzero_ps();
        const int16_t *xr = x + t * count;
        for (long b = 0; b < blocks; b++) {
            const int16_t *w = panel + b * 512;
            __m512i a = _mm512_setzero_si512();
            for (int k = 0; k < 16; k++) a = dpwssd_bcast(a, _mm512_load_si512(w + 32 * k), xr + 32 * b + 2 * k);
            f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(_mm512_loadu_ps(d + 16 * b), _mm512_set1_ps(xscales[t * blocks + b]))));
            if (m) f = _mm512_add_ps(f, _mm512_mul_ps(_mm512_loadu_ps(m + 16 * b), _mm512_set1_ps(xsums[t * blocks + b])));
        }
        _mm512_mask_storeu_ps(y + t * ystride, keep, f);
    }
}

VNNI512 void kvkit_codes_interleave(const int16_t *x, long count, long rows, int32_t *xi) {
    const long groups = rows / 8, pairs = count / 2;
    for (long G = 0; G < groups; G++) {
        int32_t *dst = xi + G * pairs * 8;
        for (int k = 0; k < 8; k++) {
            const int16_t *src = x + (8 * G + k) * count;
            for (long p = 0; p < pairs; p++) memcpy(dst + p * 8 + k, src + 2 * p, 4);
        }
    }
}

/// `blockRows` for groups of 8 activation rows read from `kvkit_codes_interleave`'s layout: one pointer and constant
/// offsets address the 8 rows' broadcasts (with 8 row pointers the compiler spent more instructions on addresses
/// than on products), and 8 independent `vpdpwssd` chains cover its latency (4 were latency-bound). Each row's
/// steps are `blockRows`' in the same order: bitwise the same results (tested), 1.1–1.2× the products per second.
VNNI512 void kvkit_block_gemm_avx512vnni(
    const int16_t *panel, const float *d, const float *m, const int16_t *x, const int32_t *xi, long count, const float *xscales,
    const float *xsums, long blocks, long rows, float *y, long ystride, long valid) {
    const __mmask16 keep = (__mmask16)((1u << valid) - 1);
    long t = 0;
    for (; t + 8 <= rows; t += 8) {
        __m512 f[8];
        for (int k = 0; k < 8; k++) f[k] = _mm512_setzero_ps();
        const int32_t *xg = xi + (t / 8) * (count / 2) * 8;
        for (long b = 0; b < blocks; b++) {
            const int16_t *w = panel + b * 512;
            const int32_t *xb = xg + b * 128;
            __m512i a[8];
            for (int k = 0; k < 8; k++) a[k] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
            for (int p = 0; p < 16; p++) {
                const __m512i wk = _mm512_load_si512(w + 32 * p);
#pragma clang loop unroll(full)
                for (int k = 0; k < 8; k++) a[k] = dpwssd_bcast(a[k], wk, xb + p * 8 + k);
            }
            const __m512 db = _mm512_loadu_ps(d + 16 * b);
#pragma clang loop unroll(full)
            for (int k = 0; k < 8; k++)
                f[k] = _mm512_add_ps(f[k], _mm512_mul_ps(_mm512_cvtepi32_ps(a[k]), _mm512_mul_ps(db, _mm512_set1_ps(xscales[(t + k) * blocks + b]))));
            if (m) {
                const __m512 mb = _mm512_loadu_ps(m + 16 * b);
#pragma clang loop unroll(full)
                for (int k = 0; k < 8; k++) f[k] = _mm512_add_ps(f[k], _mm512_mul_ps(mb, _mm512_set1_ps(xsums[(t + k) * blocks + b])));
            }
        }
        for (int k = 0; k < 8; k++) _mm512_mask_storeu_ps(y + (t + k) * ystride, keep, f[k]);
    }
    if (t < rows) blockRows(panel, d, m, x + t * count, count, xscales + t * blocks, xsums + t * blocks, blocks, rows - t, y + t * ystride, ystride, valid);
}

/// Q4_K / Q5_K / Q6_K (type 0–2) rows repacked for `kvkit_kquant_gemm_avx512vnni`, 16 rows per panel (fewer at
/// the end: the rest zero). Per super-block: 64 vectors of codes (vector g, lane r: row r's values 4g … 4g + 3 as
/// unsigned bytes), the integer scales as Int32 per row (8 per super-block for Q4_K / Q5_K, one per 32 values; 16
/// for Q6_K, one per 16), the minimums (Q4_K / Q5_K) or the scales again (Q6_K, for its −32) as Int16 pairs per
/// row (4 or 8 vectors: lane r holds row r's terms 2i and 2i + 1), and d and dmin per row as floats.
/// Sizes per super-block: codes 4,096 bytes, scales 16 · 4 · (8 | 16), pairs 64 · (4 | 8) bytes, d and dmin 2 · 64.
/// Each row's codes, scales and minimums are unpacked with vector shifts and masks into tiles that `transpose16`
/// turns into the panel (6× the scalar repack, which was ~8 % of a 1.5B prefill).
VNNI512 void kvkit_kquant_panel(
    int type, const void *rows, long rowBytes, long nrows, long supers, uint8_t *codes, int32_t *scales, int16_t *pairs, float *d, float *dmin) {
    const int q6 = type == 2, five = type == 1, ns = q6 ? 16 : 8;
    const long bytes = q6 ? 210 : five ? 176 : 144;
    memset(d, 0, (size_t)supers * 16 * 4);
    memset(dmin, 0, (size_t)supers * 16 * 4);
    // Per super-block, row r's 256 codes, integer scales (as Int32) and minimum pairs (as Int16 pairs) in tiles that
    // are transposed into the panel; a partial panel's missing rows stay 0.
    uint8_t vv[16][256] __attribute__((aligned(64)));
    int32_t sct[16][16] __attribute__((aligned(64))), prt[16][16] __attribute__((aligned(64))), tmp[16][16] __attribute__((aligned(64)));
    memset(vv, 0, sizeof vv); memset(sct, 0, sizeof sct); memset(prt, 0, sizeof prt);
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10), b45 = _mm256_set1_epi8(0x30);
    for (long sb = 0; sb < supers; sb++) {
        for (long r = 0; r < nrows; r++) {
            const uint8_t *p = (const uint8_t *)rows + r * rowBytes + sb * bytes;
            uint8_t *v = vv[r];
            if (q6) {
                for (int n = 0; n < 2; n++) {
                    const uint8_t *ql = p + 64 * n, *qh = p + 128 + 32 * n;
                    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
                    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
                    // Two high bits per value: bits 0–1 of qh for values 0–31, 2–3 for 32–63, 4–5 and 6–7 for the rest.
                    _mm256_store_si256((__m256i *)(v + 128 * n), _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), b45)));
                    _mm256_store_si256((__m256i *)(v + 128 * n + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), b45)));
                    _mm256_store_si256((__m256i *)(v + 128 * n + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, b45)));
                    _mm256_store_si256((__m256i *)(v + 128 * n + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(h, 2), b45)));
                }
                const __m128i s16 = _mm_loadu_si128((const __m128i *)(p + 192));
                _mm512_store_si512(sct[r], _mm512_cvtepi8_epi32(s16));
                _mm256_store_si256((__m256i *)prt[r], _mm256_cvtepi8_epi16(s16));
                d[sb * 16 + r] = half(p + 208);
            } else {
                uint64_t s8, m8;
                scales_mins(p + 4, &s8, &m8);
                _mm256_store_si256((__m256i *)sct[r], _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)s8)));
                _mm_store_si128((__m128i *)prt[r], _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m8)));
                const uint8_t *qs = p + (five ? 48 : 16);
                const __m256i h = five ? _mm256_loadu_si256((const __m256i *)(p + 16)) : _mm256_setzero_si256();
                for (int n = 0; n < 4; n++) {
                    const __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 32 * n));
                    __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
                    if (five) {
                        // Bit j of qh[i] as 16 for sub-block j = 2n (lo) and 2n + 1 (hi).
                        const int j = 2 * n;
                        const __m256i hj = j <= 4 ? _mm256_slli_epi16(h, 4 - j) : _mm256_srli_epi16(h, j - 4);
                        const __m256i hk = j + 1 <= 4 ? _mm256_slli_epi16(h, 3 - j) : _mm256_srli_epi16(h, j - 3);
                        lo = _mm256_or_si256(lo, _mm256_and_si256(hj, b4));
                        hi = _mm256_or_si256(hi, _mm256_and_si256(hk, b4));
                    }
                    _mm256_store_si256((__m256i *)(v + 64 * n), lo);
                    _mm256_store_si256((__m256i *)(v + 64 * n + 32), hi);
                }
                d[sb * 16 + r] = half(p);
                dmin[sb * 16 + r] = half(p + 2);
            }
        }
        // Vector g of the panel: the 16 rows' values 4g … 4g + 3; vector i of the scales (pairs): the rows' scale i (pair i).
        uint8_t *c = codes + sb * 4096;
        __m512i rr[16];
        for (int q = 0; q < 4; q++) {
            for (int r = 0; r < 16; r++) rr[r] = _mm512_load_si512(vv[r] + 64 * q);
            transpose16(rr, c + q * 1024);
        }
        for (int r = 0; r < 16; r++) rr[r] = _mm512_load_si512(sct[r]);
        transpose16(rr, (uint8_t *)tmp);
        memcpy(scales + sb * ns * 16, tmp, (size_t)ns * 64);
        for (int r = 0; r < 16; r++) rr[r] = _mm512_load_si512(prt[r]);
        transpose16(rr, (uint8_t *)tmp);
        memcpy(pairs + sb * (ns / 2) * 32, tmp, (size_t)(ns / 2) * 64);
    }
}

/// acc + Σ quads of unsigned w bytes · (the four signed bytes at x, broadcast) (`vpdpbusd`, inline assembly as
/// `dpwssd` above).
VNNI512 static inline __m512i dpbusd_bcast(__m512i acc, __m512i w, const int8_t *x) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)x));
    return acc;
}

/// A super-block's minimum (Q6_K: −32) terms of one activation row: Σ_i term_i · (code sum of the values term i
/// covers), the panel's Int16 term pairs against broadcast pairs of code sums — Q4_K / Q5_K the 8 sums of 32 values
/// (`kvkit_q8k_interleave`'s sums32 row, 4 pairs), Q6_K the 16 sums of 16 values (bsums' row, 8 pairs). Exact.
VNNI512 static inline __attribute__((always_inline)) __m512i minTerms(int q6, const int16_t *pairs, long sb, const int16_t *sums) {
    const int np = q6 ? 8 : 4;
    __m512i msum = _mm512_setzero_si512();
    for (int i = 0; i < np; i++) msum = dpwssd_bcast(msum, _mm512_load_si512(pairs + (sb * np + i) * 32), sums + 2 * i);
    return msum;
}

/// One row t of the activations against the panel (the rows after the last group of 8): `kquant8`'s steps.
VNNI512 static void kquantRow(
    int q6, const uint8_t *codes, const int32_t *scales, const int16_t *pairs, const float *d, const float *dmin, const int8_t *x,
    long count, const float *xscales, const int16_t *bsums, const int16_t *sums32, long supers, long t, float *y, long ystride, __mmask16 keep) {
    const int ns = q6 ? 16 : 8, per = 256 / ns;
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    for (long sb = 0; sb < supers; sb++) {
        const uint8_t *c = codes + sb * 4096;
        __m512i isum = _mm512_setzero_si512();
        for (int i = 0; i < ns; i++) {
            __m512i sub = _mm512_setzero_si512();
            for (int g = 0; g < per / 4; g++)
                sub = dpbusd_bcast(sub, _mm512_load_si512(c + (i * (per / 4) + g) * 64), x + t * count + sb * 256 + i * per + 4 * g);
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(sub, _mm512_load_si512(scales + (sb * ns + i) * 16)));
        }
        const __m512 dv = _mm512_loadu_ps(d + sb * 16), mv = _mm512_loadu_ps(dmin + sb * 16);
        const __m512i msum = minTerms(q6, pairs, sb, q6 ? bsums + (t * supers + sb) * 16 : sums32 + (t * supers + sb) * 8);
        const __m512 dx = _mm512_set1_ps(xscales[t * supers + sb]);
        if (q6) {
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum, _mm512_slli_epi32(msum, 5))), _mm512_mul_ps(dv, dx)));
        } else {
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dv, dx)));
            accm = _mm512_add_ps(accm, _mm512_mul_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(mv, dx)));
        }
    }
    _mm512_mask_storeu_ps(y + t * ystride, keep, _mm512_sub_ps(acc, accm));
}

/// One row of Q8_K activation codes (`IntKernels.ActivationsK.quantize`'s steps, bitwise): per 256 values the first
/// value of largest magnitude m (a NaN never wins, as in the scalar loop's `v > amax`), inv = −127 / m, step 1 / inv,
/// codes min(127, (x · inv + 1.5 · 2²³) − 1.5 · 2²³) (a multiply, then adds: no fused multiply-add), and the code
/// sums of every 16 values. All-zero blocks get step 0 and codes 0.
VNNI512 void kvkit_q8k_quantize_avx512(const float *x, long supers, int8_t *codes, float *scales, int16_t *bsums) {
    const __m512 magic = _mm512_set1_ps(12582912.0f), top = _mm512_set1_ps(127.0f);
    for (long s = 0; s < supers; s++) {
        const float *src = x + s * 256;
        __m512 amax = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) amax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * k)), amax);  // NaN: keeps amax
        const float a = _mm512_reduce_max_ps(amax);
        if (!(a > 0)) {
            memset(codes + s * 256, 0, 256);
            memset(bsums + s * 16, 0, 32);
            scales[s] = 0;
            continue;
        }
        float m = 0;
        for (int k = 0; k < 16; k++) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * k)), _mm512_set1_ps(a), _CMP_EQ_OQ);
            if (hit) { m = src[16 * k + __builtin_ctz(hit)]; break; }
        }
        const float inv = -127.0f / m;
        scales[s] = 1.0f / inv;
        const __m512 vinv = _mm512_set1_ps(inv);
        for (int k = 0; k < 16; k++) {
            const __m512 q = _mm512_min_ps(_mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(src + 16 * k), vinv), magic), magic), top);
            const __m512i qi = _mm512_cvtps_epi32(q);
            _mm_storeu_si128((__m128i *)(codes + s * 256 + 16 * k), _mm512_cvtepi32_epi8(qi));
            bsums[s * 16 + k] = (int16_t)_mm512_reduce_add_epi32(qi);
        }
    }
}

/// Rows 8G … 8G + 7 of Q8_K activations (codes at x + t · count) interleaved for `kvkit_kquant_gemm_avx512vnni`:
/// xi[((G · supers + sb) · 64 + q) · 8 + k] is row 8G + k's four codes 4q … 4q + 3 of super-block sb (one pointer
/// and constant offsets address a group's 8 broadcasts), and sums32[(t · supers + sb) · 8 + j] the sum of row t's
/// 32 codes of sub-block j (two adjacent 16-value sums, ≤ 32 · 128 in magnitude). Rows past the last full group of 8
/// are not interleaved (the kernel reads them from x).
VNNI512 void kvkit_q8k_interleave(const int8_t *x, long count, const int16_t *bsums, long supers, long rows, int32_t *xi, int16_t *sums32) {
    const long groups = rows / 8;
    for (long G = 0; G < groups; G++) {
        for (long sb = 0; sb < supers; sb++) {
            int32_t *dst = xi + (G * supers + sb) * 512;
            for (int k = 0; k < 8; k++) {
                const int8_t *src = x + (8 * G + k) * count + sb * 256;
                for (int q = 0; q < 64; q++) dst[q * 8 + k] = (int32_t)load32((const uint8_t *)src + 4 * q);
            }
        }
    }
    for (long t = 0; t < rows; t++) {
        for (long sb = 0; sb < supers; sb++) {
            const int16_t *b = bsums + (t * supers + sb) * 16;
            for (int j = 0; j < 8; j++) sums32[(t * supers + sb) * 8 + j] = (int16_t)(b[2 * j] + b[2 * j + 1]);
        }
    }
}

/// Rows t … t + 7 against the panel, their codes from `kvkit_q8k_interleave`'s layout (xg: the group's), weights
/// loaded once for the 8: fully unrolled super-blocks with one pointer and constant offsets for the 8 broadcasts
/// (with 8 row pointers the compiler spent more instructions on addresses and spills than on products), and the
/// Q4_K / Q5_K minimum terms in a pass of their own (separate accumulators: the same steps in the same order) so
/// the main loop's 26 vectors stay in registers. 1.25–1.35× `kquantRow`'s products per second on 8 rows.
VNNI512 static inline __attribute__((always_inline)) void kquant8(
    int q6, const uint8_t *codes, const int32_t *scales, const int16_t *pairs, const float *d, const float *dmin, const int32_t *xg,
    const float *xscales, const int16_t *bsums, const int16_t *sums32, long supers, long t, float *y, long ystride, __mmask16 keep) {
    const int ns = q6 ? 16 : 8, per = 256 / ns;
    __m512 acc[8], accm[8];
    for (int k = 0; k < 8; k++) acc[k] = accm[k] = _mm512_setzero_ps();
    for (long sb = 0; sb < supers; sb++) {
        const uint8_t *c = codes + sb * 4096;
        const int32_t *xq = xg + sb * 512;
        __m512i isum[8];
        for (int k = 0; k < 8; k++) isum[k] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int i = 0; i < ns; i++) {
            __m512i sub[8];
            for (int k = 0; k < 8; k++) sub[k] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
            for (int g = 0; g < per / 4; g++) {
                const int q = i * (per / 4) + g;
                const __m512i w = _mm512_load_si512(c + q * 64);
#pragma clang loop unroll(full)
                for (int k = 0; k < 8; k++) sub[k] = dpbusd_bcast(sub[k], w, (const int8_t *)(xq + q * 8 + k));
            }
            const __m512i scale = _mm512_load_si512(scales + (sb * ns + i) * 16);
            for (int k = 0; k < 8; k++) isum[k] = _mm512_add_epi32(isum[k], _mm512_mullo_epi32(sub[k], scale));
        }
        const __m512 dv = _mm512_loadu_ps(d + sb * 16);
#pragma clang loop unroll(full)
        for (int k = 0; k < 8; k++) {
            const __m512 dx = _mm512_set1_ps(xscales[(t + k) * supers + sb]);
            if (q6) {
                const __m512i msum = minTerms(1, pairs, sb, bsums + ((t + k) * supers + sb) * 16);
                acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[k], _mm512_slli_epi32(msum, 5))), _mm512_mul_ps(dv, dx)));
            } else {
                acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(_mm512_cvtepi32_ps(isum[k]), _mm512_mul_ps(dv, dx)));
            }
        }
    }
    // Q4_K / Q5_K: the minimum terms in a pass of their own (their accumulators are separate, so the same steps in
    // the same order; the main loop then keeps its registers for the codes).
    if (!q6) {
        for (long sb = 0; sb < supers; sb++) {
            const __m512 mv = _mm512_loadu_ps(dmin + sb * 16);
#pragma clang loop unroll(full)
            for (int k = 0; k < 8; k++) {
                const __m512i msum = minTerms(0, pairs, sb, sums32 + ((t + k) * supers + sb) * 8);
                const __m512 dx = _mm512_set1_ps(xscales[(t + k) * supers + sb]);
                accm[k] = _mm512_add_ps(accm[k], _mm512_mul_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(mv, dx)));
            }
        }
    }
    for (int k = 0; k < 8; k++) _mm512_mask_storeu_ps(y + (t + k) * ystride, keep, _mm512_sub_ps(acc[k], accm[k]));
}

/// A K-quant panel (`kvkit_kquant_panel`) against `rows` rows of Q8_K activations (codes at x + t · count, steps at
/// xscales + t · supers, 16-value code sums at bsums + t · supers · 16) into y[t · ystride + r], r < valid: lanes are
/// the 16 weight rows, so no horizontal sums. Per sub-block the exact `vpdpbusd` sums times the row's integer
/// scale (`vpmulld`), per super-block the minimum (Q6_K: −32) terms as `vpdpwssd` of the panel's pairs with the
/// activations' code sums; then per super-block acc += Float(S) · (d · dx) and accm += Float(M) · (dmin · dx), and
/// acc − accm at the end: the exact integers and the float steps of decode's `rowK`, lane for lane, so each
/// result is bitwise decode's (tested). Each activation row is computed on its own (eight at a time share the
/// weight loads, with the same steps as one alone).
VNNI512 void kvkit_kquant_gemm_avx512vnni(
    int type, const uint8_t *codes, const int32_t *scales, const int16_t *pairs, const float *d, const float *dmin, const int8_t *x,
    const int32_t *xi, const int16_t *sums32, long count, const float *xscales, const int16_t *bsums, long supers, long rows, float *y, long ystride, long valid) {
    const int q6 = type == 2;
    const __mmask16 keep = (__mmask16)((1u << valid) - 1);
    long t = 0;
    if (q6) {  // q6 a constant in each call, so each inlined copy of `kquant8` is specialised
        for (; t + 8 <= rows; t += 8) kquant8(1, codes, scales, pairs, d, dmin, xi + (t / 8) * supers * 512, xscales, bsums, sums32, supers, t, y, ystride, keep);
    } else {
        for (; t + 8 <= rows; t += 8) kquant8(0, codes, scales, pairs, d, dmin, xi + (t / 8) * supers * 512, xscales, bsums, sums32, supers, t, y, ystride, keep);
    }
    for (; t < rows; t++) kquantRow(q6, codes, scales, pairs, d, dmin, x, count, xscales, bsums, sums32, supers, t, y, ystride, keep);
}

/// Decode of one Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 weight row (type 0–4) against `rows` rows of 16-bit activation
/// codes (row t: codes x + t · count, steps and sums at t · nb): the AVX2 `IntKernels.dot` / `dot1`, two blocks per
/// 512-bit step, each block's codes unpacked once for every row. Those sum even blocks into one 8-lane accumulator
/// and odd blocks into another; here the low half of one register is the first and the high half the second, so
/// every lane takes the same exact Int32 sum and the same fused multiply-add in the same order (bitwise), and a
/// row's result does not depend on the rows beside it. The caller finishes as `dot1` does: acc8[8t ..] = acc.0 +
/// acc.1 (its `.sum()` stays Swift's), off2[2t ..] = (off.0, off.1).
VNNI512 static inline __attribute__((always_inline)) void block_codes2(
    int type, int at, int five, const uint8_t *q0, const uint8_t *q1, __m512i *c0, __m512i *c1) {
    if (type == 4) {
        *c0 = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)(q1 + 2)), _mm_loadu_si128((const __m128i *)(q0 + 2))));
        *c1 = _mm512_cvtepi8_epi16(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)(q1 + 18)), _mm_loadu_si128((const __m128i *)(q0 + 18))));
        return;
    }
    __m512i w = _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_loadu_si128((const __m128i *)(q1 + at)), _mm_loadu_si128((const __m128i *)(q0 + at))));
    *c0 = _mm512_and_si512(w, _mm512_set1_epi16(0x0F));
    *c1 = _mm512_srli_epi16(w, 4);
    if (five) {
        const __m512i sixteen = _mm512_set1_epi16(16);
        uint32_t h0 = load32(q0 + at - 4), h1 = load32(q1 + at - 4);
        *c0 = _mm512_or_si512(*c0, _mm512_maskz_mov_epi16((h0 & 0xFFFF) | (h1 << 16), sixteen));
        *c1 = _mm512_or_si512(*c1, _mm512_maskz_mov_epi16((h0 >> 16) | (h1 & 0xFFFF0000u), sixteen));
    }
}

VNNI512 static inline __attribute__((always_inline)) void block_codes1(int type, int at, int five, const uint8_t *q, __m256i *c0, __m256i *c1) {
    if (type == 4) {
        *c0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 2)));
        *c1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(q + 18)));
        return;
    }
    __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(q + at)));
    *c0 = _mm256_and_si256(w, _mm256_set1_epi16(0x0F));
    *c1 = _mm256_srli_epi16(w, 4);
    if (five) {
        uint32_t h = load32(q + at - 4);
        *c0 = _mm256_or_si256(*c0, _mm256_maskz_mov_epi16((__mmask16)(h & 0xFFFF), _mm256_set1_epi16(16)));
        *c1 = _mm256_or_si256(*c1, _mm256_maskz_mov_epi16((__mmask16)(h >> 16), _mm256_set1_epi16(16)));
    }
}

/// The exact Int32 sums of blocks b (low half) and b + 1 (high half) against one activation row (x0: block b's
/// 32 codes, block b + 1's after them), as floats; `one_sum` the same for one block on 256 bits.
VNNI512 static inline __attribute__((always_inline)) __m512 pair_sum(__m512i c0, __m512i c1, const int16_t *x0) {
    const int16_t *x1 = x0 + 32;
    __m512i a0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)x0)), _mm256_load_si256((const __m256i *)x1), 1);
    __m512i a1 =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_load_si256((const __m256i *)(x0 + 16))), _mm256_load_si256((const __m256i *)(x1 + 16)), 1);
    return _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_madd_epi16(c0, a0), _mm512_madd_epi16(c1, a1)));
}

VNNI512 static inline __attribute__((always_inline)) __m256 one_sum(__m256i c0, __m256i c1, const int16_t *xb) {
    return _mm256_cvtepi32_ps(
        _mm256_add_epi32(_mm256_madd_epi16(c0, _mm256_load_si256((const __m256i *)xb)), _mm256_madd_epi16(c1, _mm256_load_si256((const __m256i *)(xb + 16)))));
}

/// d0 in the low eight lanes, d1 in the high eight.
VNNI512 static inline __attribute__((always_inline)) __m512 pair_scale(float d0, float d1) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(d0)), _mm256_castps_pd(_mm256_set1_ps(d1)), 1));
}

VNNI512 void kvkit_block_dot_avx512(
    int type, const void *row, long nb, long rows, const int16_t *x, long count, const float *scales, const float *sums,
    const int32_t *codeSums, float *acc8, float *off2) {
    static const int bytes[5] = {18, 20, 22, 24, 34};
    const int bb = bytes[type], hasMin = type == 1 || type == 3, five = type == 2 || type == 3;
    const int at = (hasMin ? 4 : 2) + (five ? 4 : 0);
    const float bias = type == 0 ? 8.0f : type == 2 ? 16.0f : 0.0f;
    const uint8_t *r = (const uint8_t *)row;
    if (rows == 1) {  // decode: the accumulators in registers (through memory, each step waited on a store)
        __m512 acc = _mm512_setzero_ps();
        float off0 = 0, off1 = 0;
        long b = 0;
        for (; b + 1 < nb; b += 2) {
            const uint8_t *q0 = r + b * bb, *q1 = q0 + bb;
            __m512i c0, c1;
            block_codes2(type, at, five, q0, q1, &c0, &c1);
            const float d0 = half(q0) * scales[b], d1 = half(q1) * scales[b + 1];
            acc = _mm512_fmadd_ps(pair_sum(c0, c1, x + b * 32), pair_scale(d0, d1), acc);
            if (hasMin) {
                off0 += half(q0 + 2) * sums[b];
                off1 += half(q1 + 2) * sums[b + 1];
            } else if (bias != 0) {
                off0 -= bias * d0 * (float)codeSums[b];
                off1 -= bias * d1 * (float)codeSums[b + 1];
            }
        }
        __m256 a0 = _mm512_castps512_ps256(acc), a1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        if (b < nb) {
            const uint8_t *q = r + b * bb;
            __m256i c0, c1;
            block_codes1(type, at, five, q, &c0, &c1);
            const float d = half(q) * scales[b];
            a0 = _mm256_fmadd_ps(one_sum(c0, c1, x + b * 32), _mm256_set1_ps(d), a0);
            if (hasMin) off0 += half(q + 2) * sums[b];
            else if (bias != 0) off0 -= bias * d * (float)codeSums[b];
        }
        _mm256_storeu_ps(acc8, _mm256_add_ps(a0, a1));
        off2[0] = off0;
        off2[1] = off1;
        return;
    }
    for (long t = 0; t < rows; t++) {
        _mm512_storeu_ps(acc8 + 16 * t, _mm512_setzero_ps());  // [acc.0 | acc.1] per row while summing
        off2[2 * t] = 0;
        off2[2 * t + 1] = 0;
    }
    long b = 0;
    for (; b + 1 < nb; b += 2) {
        const uint8_t *q0 = r + b * bb, *q1 = q0 + bb;
        __m512i c0, c1;
        block_codes2(type, at, five, q0, q1, &c0, &c1);
        const float dw0 = half(q0), dw1 = half(q1), mw0 = hasMin ? half(q0 + 2) : 0, mw1 = hasMin ? half(q1 + 2) : 0;
        for (long t = 0; t < rows; t++) {
            const long i = t * nb + b;
            const float d0 = dw0 * scales[i], d1 = dw1 * scales[i + 1];
            _mm512_storeu_ps(acc8 + 16 * t, _mm512_fmadd_ps(pair_sum(c0, c1, x + t * count + b * 32), pair_scale(d0, d1), _mm512_loadu_ps(acc8 + 16 * t)));
            if (hasMin) {
                off2[2 * t] += mw0 * sums[i];
                off2[2 * t + 1] += mw1 * sums[i + 1];
            } else if (bias != 0) {
                off2[2 * t] -= bias * d0 * (float)codeSums[i];
                off2[2 * t + 1] -= bias * d1 * (float)codeSums[i + 1];
            }
        }
    }
    const uint8_t *q = r + b * bb;
    __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
    const int tail = b < nb;  // the last, even block: into the first accumulator alone
    if (tail) block_codes1(type, at, five, q, &c0, &c1);
    for (long t = 0; t < rows; t++) {
        __m256 a0 = _mm256_loadu_ps(acc8 + 16 * t), a1 = _mm256_loadu_ps(acc8 + 16 * t + 8);
        if (tail) {
            const long i = t * nb + b;
            const float d = half(q) * scales[i];
            a0 = _mm256_fmadd_ps(one_sum(c0, c1, x + t * count + b * 32), _mm256_set1_ps(d), a0);
            if (hasMin) off2[2 * t] += half(q + 2) * sums[i];
            else if (bias != 0) off2[2 * t] -= bias * d * (float)codeSums[i];
        }
        _mm256_storeu_ps(acc8 + 8 * t, _mm256_add_ps(a0, a1));  // rows in order: 8t + 8 ≤ 16t read already
    }
}

#else
int kvkit_has_avx512vnni(void) { return 0; }
void kvkit_q45k_groups_avx512vnni(
    const void *row, int five, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups,
    float *acc, long sb0, long sb1) { abort(); }
void kvkit_q6k_groups_avx512vnni(
    const void *row, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups, float *acc,
    long sb0, long sb1) { abort(); }
void kvkit_k_rows4_avx512vnni(
    int type, const void *row, long rowBytes, const int8_t *x, const float *xscales, const int16_t *bsums, long supers,
    float *out) { abort(); }
void kvkit_block_panel(int type, const void *rows, long rowBytes, long nrows, long blocks, int16_t *panel, float *d, float *m) { abort(); }
void kvkit_kquant_panel(
    int type, const void *rows, long rowBytes, long nrows, long supers, uint8_t *codes, int32_t *scales, int16_t *pairs, float *d, float *dmin) { abort(); }
void kvkit_q8k_interleave(const int8_t *x, long count, const int16_t *bsums, long supers, long rows, int32_t *xi, int16_t *sums32) { abort(); }
void kvkit_q8k_quantize_avx512(const float *x, long supers, int8_t *codes, float *scales, int16_t *bsums) { abort(); }
void kvkit_kquant_gemm_avx512vnni(
    int type, const uint8_t *codes, const int32_t *scales, const int16_t *pairs, const float *d, const float *dmin, const int8_t *x,
    const int32_t *xi, const int16_t *sums32, long count, const float *xscales, const int16_t *bsums, long supers, long rows, float *y,
    long ystride, long valid) { abort(); }
void kvkit_codes_interleave(const int16_t *x, long count, long rows, int32_t *xi) { abort(); }
void kvkit_block_gemm_avx512vnni(
    const int16_t *panel, const float *d, const float *m, const int16_t *x, const int32_t *xi, long count, const float *xscales,
    const float *xsums, long blocks, long rows, float *y, long ystride, long valid) { abort(); }
void kvkit_block_dot_avx512(
    int type, const void *row, long nb, long rows, const int16_t *x, long count, const float *scales, const float *sums,
    const int32_t *codeSums, float *acc8, float *off2) {
    (void)type; (void)row; (void)nb; (void)rows; (void)x; (void)count; (void)scales; (void)sums; (void)codeSums; (void)acc8; (void)off2;
    __builtin_trap();
}
#endif
