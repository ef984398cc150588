#ifndef KVKIT_CKERNELS_H
#define KVKIT_CKERNELS_H
#include <stdint.h>

/// 1 when the CPU runs the AVX-512 VNNI kernels below (AVX-512 F, BW, VL and VNNI), else 0 (any other CPU or
/// architecture; KVKIT_KERNELS=avx2 in the environment also gives 0, to time or test the AVX2 kernels alone).
int kvkit_has_avx512vnni(void);

/// One Q4_K (five = 0) or Q5_K (five = 1) weight row against rows 0 ..< 4 · groups of Q8_K activations,
/// super-blocks sb0 ..< sb1, added to the accumulators of `IntKernels.groupsK`: acc[4g + k] += Float(S) · (d · dx)
/// and acc[4 (groups + g) + k] += Float(M) · (dmin · dx) for row 4g + k, with S and M the super-block's exact
/// integer sum and minimum term and dx the row's Q8_K step. Row t's codes start at codes + t · count, its steps at
/// scales + t · supers, its 16-value code sums at bsums + t · supers · 16.
void kvkit_q45k_groups_avx512vnni(
    const void *row, int five, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups,
    float *acc, long sb0, long sb1);

/// The same for a Q6_K row (S: Σ_i scale_i · Σ (code − 32) · x-code over its sixteen 16-value halves; no minimum terms).
void kvkit_q6k_groups_avx512vnni(
    const void *row, const int8_t *codes, const float *scales, const int16_t *bsums, long count, long supers, long groups, float *acc,
    long sb0, long sb1);
/// Decode: four consecutive weight rows (row, row + rowBytes, …) of type 0 (Q4_K), 1 (Q5_K) or 2 (Q6_K) against one
/// row of Q8_K activations (codes x, steps xscales, code sums bsums), every super-block: out[r] as
/// `IntKernels.rowsK` computes it (per super-block the four rows' exact sums, then its float steps).
void kvkit_k_rows4_avx512vnni(
    int type, const void *row, long rowBytes, const int8_t *x, const float *xscales, const int16_t *bsums, long supers,
    float *out);
/// Prefill of the 32-value block types (type 0–4: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0): `kvkit_block_panel` repacks 16
/// weight rows (panel: blocks · 512 Int16, 64-byte aligned; d, m: blocks · 16 floats; m may be NULL), then
/// `kvkit_block_gemm_avx512vnni` multiplies it by `rows` rows of 16-bit activation codes into y (see KQuantVNNI.c),
/// groups of 8 rows from the codes `kvkit_codes_interleave` wrote once per call (xi: (rows / 8) · 8 · count / 2
/// Int32, 64-byte aligned), the rest from x.
void kvkit_block_panel(int type, const void *rows, long rowBytes, long nrows, long blocks, int16_t *panel, float *d, float *m);
void kvkit_codes_interleave(const int16_t *x, long count, long rows, int32_t *xi);
void kvkit_block_gemm_avx512vnni(
    const int16_t *panel, const float *d, const float *m, const int16_t *x, const int32_t *xi, long count, const float *xscales,
    const float *xsums, long blocks, long rows, float *y, long ystride, long valid);
/// Prefill of K-quant matrices (type 0–2: Q4_K, Q5_K, Q6_K) where rows need not equal decode's bit for bit:
/// `kvkit_kquant_panel` repacks 16 weight rows (see KQuantVNNI.c for the buffer sizes), then
/// `kvkit_kquant_gemm_avx512vnni` multiplies them by `rows` rows of Q8_K activations into y.
void kvkit_kquant_panel(
    int type, const void *rows, long rowBytes, long nrows, long supers, uint8_t *codes, int32_t *scales, int16_t *pairs, float *d, float *dmin);
/// One row of Q8_K activation codes on AVX-512: bitwise `IntKernels.ActivationsK.quantize`'s portable steps.
void kvkit_q8k_quantize_avx512(const float *x, long supers, int8_t *codes, float *scales, int16_t *bsums);
/// Groups of 8 rows read `kvkit_q8k_interleave`'s codes (xi: (rows / 8) · 8 · count / 4 Int32, 64-byte aligned),
/// the rest read x; every row's minimum terms read its 32-value code sums (sums32: rows · supers · 8 Int16).
void kvkit_q8k_interleave(const int8_t *x, long count, const int16_t *bsums, long supers, long rows, int32_t *xi, int16_t *sums32);
void kvkit_kquant_gemm_avx512vnni(
    int type, const uint8_t *codes, const int32_t *scales, const int16_t *pairs, const float *d, const float *dmin, const int8_t *x,
    const int32_t *xi, const int16_t *sums32, long count, const float *xscales, const int16_t *bsums, long supers, long rows, float *y,
    long ystride, long valid);
/// Decode of one Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 row (type 0–4) against `rows` rows of 16-bit activation codes,
/// bitwise `IntKernels.dot` / `dot1` of the AVX2 build: per row its two accumulators' sum (8 floats at acc8 + 8t;
/// acc8 holds 16 · rows floats) and its two offsets (off2 + 2t).
void kvkit_block_dot_avx512(
    int type, const void *row, long nb, long rows, const int16_t *x, long count, const float *scales, const float *sums,
    const int32_t *codeSums, float *acc8, float *off2);
/// Attention's prefill products on AVX-512 F (Attention512.c; taken where `kvkit_has_avx512vnni()` is 1): scores
/// S[r · ldS + j] = Σ_d Q[r · hd + d] · KT[d · ldk + j] (keys transposed), and O[r · hd + c] += Σ_j P[r · ldP + j] ·
/// V[j · hd + c] (hd a multiple of 64). Each row's result depends on that row alone (fixed order of summation).
void kvkit_attn_scores_avx512(const float *Q, long R, long hd, const float *KT, long ldk, long n, float *S, long ldS);
void kvkit_attn_pv_avx512(const float *P, long ldP, long R, long n, const float *V, long hd, float *O);
/// The softmax step of `expShiftSum` (PagedAttention.swift) on 16 lanes: s[j] = simdExp(s[j] − shift) for the
/// largest multiple of 8 of n, each 8-value chunk added in order to the 8 lanes at acc8; returns how many were done.
/// Bitwise the Swift loop (`simdExp`'s operations, no fused multiply-adds).
long kvkit_exp_shift_sum_avx512(float *s, long n, float shift, float *acc8);
/// `Vector.siluMul` / `Vector.geluTanhMul` (c: −2·√(2/π)) on 16 lanes for the largest multiple of 16 of n; returns how
/// many were done (the Swift loop does the rest). Bitwise the Swift expressions.
long kvkit_silu_mul_avx512(float *gate, const float *up, long n);
long kvkit_gelu_tanh_mul_avx512(float *gate, const float *up, long n, float c);
/// K [n][hd] transposed into KT [hd][ldk] at column `at` (KT[d · ldk + at + j] = K[j · hd + d]), 16 × 16 at a time.
void kvkit_transpose_keys_avx512(const float *K, long n, long hd, float *KT, long ldk, long at);
#endif
