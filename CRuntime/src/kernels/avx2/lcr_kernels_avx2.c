/*
 * lcr_kernels_avx2.c — x86-64 kernels: the AVX2+FMA+F16C table and the AVX-512-VNNI table.
 *
 * Each function carries its own target attribute, so this file compiles with the package's
 * common flags and the code only runs after dispatch.c has checked the CPU. The VNNI table is
 * the AVX2 table with its quantized dot products and GEMMs replaced by VPDPBUSD versions
 * (256-bit, AVX512VL), which also have 32 vector registers for a 4x4 output tile.
 *
 * Quantized products: int8 x int8 within a block, exact int32 block sums, then one fp32
 * multiply-add per block with d_w * d_x. Summation order across blocks differs from the
 * portable version (8 lanes per accumulator), so float results agree to rounding only.
 */
#if defined(__x86_64__)
#include "../lcr_kernels_internal.h"

#include <immintrin.h>

#define LCR_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LCR_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline
#define LCR_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define LCR_VNNI_INLINE __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) static inline

/* Full unrolling keeps the tile's accumulators in registers (both gcc and clang honour it). */
#define LCR_UNROLL _Pragma("GCC unroll 8")

/* Blocks ahead the single-column GEMM tile (NR = 1) prefetches in each weight row (32 * 34 B = 1088 B). */
#define LCR_PREFETCH_BLOCKS 32

#define LCR_MIN(a, b) ((a) < (b) ? (a) : (b))

LCR_AVX2_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LCR_AVX2_INLINE float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LCR_AVX2_INLINE float fp16_f32(lcr_fp16 h) { return _cvtsh_ss(h); }

/* ---- fp16 rows (F16C; vcvtps2ph with round-to-nearest-even) ---- */

LCR_AVX2 void lcr_fp16_to_fp32_row_f16c(const lcr_fp16 *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

LCR_AVX2 void lcr_fp32_to_fp16_row_f16c(const float *x, lcr_fp16 *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

/* ---- quantization ---- */

/* roundf (half away from zero) of integral-range values: truncate, then step away from zero
 * when the dropped fraction is >= 0.5. v - trunc(v) is exact in fp32, so this is roundf. */
LCR_AVX2_INLINE __m256i round_half_away(__m256 v) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign_mask));
    __m256 r = _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
    return _mm256_cvttps_epi32(r);
}

static LCR_AVX2 void quantize_row_q8_0_avx2(const float *x, lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * LCR_QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_mask, v0), _mm256_andnot_ps(sign_mask, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign_mask, v2), _mm256_andnot_ps(sign_mask, v3)));
        const float amax = hmax8(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = (lcr_fp16)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m256 mul = _mm256_set1_ps(id);
        __m256i i0 = round_half_away(_mm256_mul_ps(v0, mul)), i1 = round_half_away(_mm256_mul_ps(v1, mul));
        __m256i i2 = round_half_away(_mm256_mul_ps(v2, mul)), i3 = round_half_away(_mm256_mul_ps(v3, mul));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        // packs works within 128-bit lanes: restore element order
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
    }
}

/* The same, for the AVX-512 kernels in lcr_qconv_avx512.c. */
LCR_AVX2 void lcr_quantize_row_q8_0_avx2(const float *x, lcr_block_q8_0 *y, int64_t k) { quantize_row_q8_0_avx2(x, y, k); }

static LCR_AVX2 void quantize_row_q4_0_avx2(const float *x, lcr_block_q4_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * LCR_QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign_mask, v0), _mm256_andnot_ps(sign_mask, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign_mask, v2), _mm256_andnot_ps(sign_mask, v3)));
        const float max = lcr_q4_0_block_max(xb, hmax8(m));
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = (lcr_fp16)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m256 mul = _mm256_set1_ps(id), off = _mm256_set1_ps(8.5f);
        const __m256i fifteen = _mm256_set1_epi32(15);
        // (int8_t)(x*id + 8.5f): the values lie in [0, 17), so truncation to int32 is the same
        __m256i q0 = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v0, mul), off)), fifteen);
        __m256i q1 = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v1, mul), off)), fifteen);
        __m256i q2 = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v2, mul), off)), fifteen);
        __m256i q3 = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v3, mul), off)), fifteen);
        __m256i c0 = _mm256_or_si256(q0, _mm256_slli_epi32(q2, 4));  // elements 0..7 | 16..23
        __m256i c1 = _mm256_or_si256(q1, _mm256_slli_epi32(q3, 4));  // elements 8..15 | 24..31
        __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(c0, c1), 0xD8);
        __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(p16), _mm256_extracti128_si256(p16, 1));
        _mm_storeu_si128((__m128i *)y[b].qs, bytes);
    }
}

static LCR_AVX2 void dequantize_row_q8_0_avx2(const lcr_block_q8_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const __m256 d = _mm256_set1_ps(fp16_f32(x[b].d));
        LCR_UNROLL for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[b].qs + 8 * c)));
            _mm256_storeu_ps(y + b * LCR_QK + 8 * c, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

/* 16 packed nibble bytes -> 32 bytes: elements 0..15 (low nibbles) then 16..31 (high). */
LCR_AVX2_INLINE __m256i q4_0_unpack(const uint8_t *qs) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
    return _mm256_set_m128i(hi, lo);
}

static LCR_AVX2 void dequantize_row_q4_0_avx2(const lcr_block_q4_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const __m256 d = _mm256_set1_ps(fp16_f32(x[b].d));
        __m256i q = _mm256_sub_epi8(q4_0_unpack(x[b].qs), _mm256_set1_epi8(8));
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        float *o = y + b * LCR_QK;
        _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d));
        _mm256_storeu_ps(o + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d));
        _mm256_storeu_ps(o + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d));
        _mm256_storeu_ps(o + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d));
    }
}

/* ---- AVX2 block products ---- */

/* s8 x s8 -> 8 int32 lanes: maddubs takes u8 x s8, so |a| is the unsigned side and a's sign
 * moves onto w. Pair sums are at most 2*128*127 < 32767: no saturation. */
LCR_AVX2_INLINE __m256i mul_s8_avx2(__m256i abs_a, __m256i a, __m256i w) {
    const __m256i p = _mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(w, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static LCR_AVX2 float dot_q8_0_q8_0_avx2(const lcr_block_q8_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)y[b].qs), a1 = _mm256_loadu_si256((const __m256i *)y[b + 1].qs);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)x[b].qs), w1 = _mm256_loadu_si256((const __m256i *)x[b + 1].qs);
        __m256i s0 = mul_s8_avx2(_mm256_abs_epi8(a0), a0, w0), s1 = mul_s8_avx2(_mm256_abs_epi8(a1), a1, w1);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(fp16_f32(x[b].d) * fp16_f32(y[b].d)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s1), _mm256_set1_ps(fp16_f32(x[b + 1].d) * fp16_f32(y[b + 1].d)), acc1);
    }
    for (; b < nb; b++) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)y[b].qs), w0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i s0 = mul_s8_avx2(_mm256_abs_epi8(a0), a0, w0);
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s0), _mm256_set1_ps(fp16_f32(x[b].d) * fp16_f32(y[b].d)), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* Q4_0 nibbles are already unsigned (0..15): maddubs(w, a) then subtract 8 * (pair sums of a),
 * which is maddubs(8, a). Both stay within int16 (|15*127*2| and |8*127*2|). */
LCR_AVX2_INLINE __m256i mul_q4_avx2(__m256i wnib, __m256i a, __m256i a8) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(wnib, a), a8);
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static LCR_AVX2 float dot_q4_0_q8_0_avx2(const lcr_block_q4_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i a = _mm256_loadu_si256((const __m256i *)y[b].qs);
        __m256i s = mul_q4_avx2(q4_0_unpack(x[b].qs), a, _mm256_maddubs_epi16(eight, a));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(fp16_f32(x[b].d) * fp16_f32(y[b].d)), acc);
    }
    return hsum8(acc);
}

/*
 * Register tile for the AVX2 GEMMs: MR weight rows x NR input rows per pass over k (MR <= 4,
 * NR <= 2; the 4x2 tile uses 8 accumulators + 4 activation registers of the 16). Each loaded
 * activation block is reused by MR weight rows and each weight block by NR input rows.
 */
LCR_AVX2_INLINE void store_tile(__m256 acc[4][4], int MR, int NR, float *y, int64_t ldy, int64_t i,
                                const float *bias) {
    LCR_UNROLL for (int j = 0; j < NR; j++)
        LCR_UNROLL for (int r = 0; r < MR; r++) y[j * ldy + i + r] = hsum8(acc[r][j]) + (bias ? bias[i + r] : 0.0f);
}

LCR_AVX2_INLINE void tile_q8_0_avx2(const lcr_block_q8_0 *w, const lcr_block_q8_0 *a, int64_t nb, int MR, int NR,
                                    float *y, int64_t ldy, int64_t i, const float *bias) {
    __m256 acc[4][4];
    LCR_UNROLL for (int r = 0; r < MR; r++)
        LCR_UNROLL for (int j = 0; j < NR; j++) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av[2], aa[2];
        float da[2];
        LCR_UNROLL for (int j = 0; j < NR; j++) {
            av[j] = _mm256_loadu_si256((const __m256i *)a[j * nb + b].qs);
            aa[j] = _mm256_abs_epi8(av[j]);
            da[j] = fp16_f32(a[j * nb + b].d);
        }
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)w[r * nb + b].qs);
            const float dw = fp16_f32(w[r * nb + b].d);
            LCR_UNROLL for (int j = 0; j < NR; j++) {
                __m256i s = mul_s8_avx2(aa[j], av[j], wv);
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * da[j]), acc[r][j]);
            }
        }
    }
    store_tile(acc, MR, NR, y, ldy, i, bias);
}

LCR_AVX2_INLINE void tile_q4_0_avx2(const lcr_block_q4_0 *w, const lcr_block_q8_0 *a, int64_t nb, int MR, int NR,
                                    float *y, int64_t ldy, int64_t i, const float *bias) {
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc[4][4];
    LCR_UNROLL for (int r = 0; r < MR; r++)
        LCR_UNROLL for (int j = 0; j < NR; j++) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av[2], a8[2];
        float da[2];
        LCR_UNROLL for (int j = 0; j < NR; j++) {
            av[j] = _mm256_loadu_si256((const __m256i *)a[j * nb + b].qs);
            a8[j] = _mm256_maddubs_epi16(eight, av[j]);
            da[j] = fp16_f32(a[j * nb + b].d);
        }
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            const __m256i wv = q4_0_unpack(w[r * nb + b].qs);
            const float dw = fp16_f32(w[r * nb + b].d);
            LCR_UNROLL for (int j = 0; j < NR; j++) {
                __m256i s = mul_q4_avx2(wv, av[j], a8[j]);
                acc[r][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * da[j]), acc[r][j]);
            }
        }
    }
    store_tile(acc, MR, NR, y, ldy, i, bias);
}

/* The blocked driver, written once for both weight formats: panels of LCR_GEMM_MB weight rows
 * x LCR_GEMM_NB input rows, register tiles of TMR x TNR inside, with 1-row / 1-column edges. */
#define LCR_GEMM_DRIVER(TILE, WTYPE, TMR, TNR)                                                          \
    do {                                                                                                \
        const int64_t nb = k / LCR_QK;                                                                  \
        const lcr_block_q8_0 *xq = (const lcr_block_q8_0 *)scratch;                                     \
        for (int64_t i0 = 0; i0 < m; i0 += LCR_GEMM_MB) {                                               \
            const int64_t i1 = LCR_MIN(m, i0 + LCR_GEMM_MB);                                            \
            for (int64_t j0 = 0; j0 < n; j0 += LCR_GEMM_NB) {                                           \
                const int64_t j1 = LCR_MIN(n, j0 + LCR_GEMM_NB);                                        \
                int64_t j = j0;                                                                         \
                for (; j + TNR <= j1; j += TNR) {                                                       \
                    int64_t i = i0;                                                                     \
                    for (; i + TMR <= i1; i += TMR)                                                     \
                        TILE(w + i * nb, xq + j * nb, nb, TMR, TNR, y + j * ldy, ldy, i, bias);         \
                    for (; i < i1; i++) TILE(w + i * nb, xq + j * nb, nb, 1, TNR, y + j * ldy, ldy, i, bias); \
                }                                                                                       \
                for (; j < j1; j++) {                                                                   \
                    int64_t i = i0;                                                                     \
                    for (; i + TMR <= i1; i += TMR)                                                     \
                        TILE(w + i * nb, xq + j * nb, nb, TMR, 1, y + j * ldy, ldy, i, bias);           \
                    for (; i < i1; i++) TILE(w + i * nb, xq + j * nb, nb, 1, 1, y + j * ldy, ldy, i, bias); \
                }                                                                                       \
            }                                                                                           \
        }                                                                                               \
    } while (0)

/* ---- GEMV (n == 1): eight weight rows per pass ----
 * Batch 1 streams every weight byte from memory once, so the product has to keep up with
 * memory: 8 rows per pass share each activation block's loads and per-block setup, and keep
 * 8 independent accumulator chains. The activation is quantized once into scratch with its
 * block scales already converted to fp32 (ad[]) and, for VNNI, its correction term (ac[]).
 *
 * The 8 rows of a pass are 8 short streams (one row of Q8_0 at k = 8192 is 8.5 KiB), and the
 * hardware prefetchers start over on every stream and every 4 KiB page, so on their own they
 * keep too few misses in flight to use the memory bandwidth one core has. The next pass's 8
 * rows are one contiguous range, so each block step also prefetches its share of that range
 * into L2 (one 8-row block column's bytes, in 64-byte lines): memory is read one pass ahead
 * as a single sequential stream and the pass itself finds its rows in L2. */
typedef struct {
    const lcr_block_q8_0 *q;  // activation blocks (codes; d unused after preparation)
    const float *d;           // activation block scales, fp32
    const int32_t *c;         // VNNI: -128 * sum of the block's codes (Q8_0 weights)
} lcr_gemv_acts;

LCR_AVX2_INLINE lcr_gemv_acts gemv_prepare_avx2(const float *x, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)scratch;
    quantize_row_q8_0_avx2(x, xq, k);
    float *ad = (float *)(((uintptr_t)(xq + nb) + 63) & ~(uintptr_t)63);
    for (int64_t b = 0; b < nb; b++) ad[b] = fp16_f32(xq[b].d);
    lcr_gemv_acts a = {xq, ad, (const int32_t *)(ad + nb)};
    return a;
}

#define LCR_GEMV_MR 8

/* Prefetch one block step's share of the next pass: `step` bytes starting at p, as the
 * ceil(step / 64) lines that, over consecutive steps, cover the range without gaps. */
LCR_AVX2_INLINE void gemv_prefetch(const char *p, const int step) {
    LCR_UNROLL for (int l = 0; l < (step + 63) / 64; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T1);
}

LCR_AVX2_INLINE void gemv_tile_q8_0_avx2(const lcr_block_q8_0 *w, lcr_gemv_acts a, int64_t nb, const int MR,
                                         float *y, const float *bias, const char *pf) {
    __m256 acc[LCR_GEMV_MR];
    LCR_UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (MR == LCR_GEMV_MR) gemv_prefetch(pf + b * (LCR_GEMV_MR * sizeof *w), LCR_GEMV_MR * sizeof *w);
        const __m256i av = _mm256_loadu_si256((const __m256i *)a.q[b].qs);
        const __m256i aa = _mm256_abs_epi8(av);
        const __m256 da = _mm256_set1_ps(a.d[b]);
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            const lcr_block_q8_0 *blk = w + r * nb + b;
            const __m256i s = mul_s8_avx2(aa, av, _mm256_loadu_si256((const __m256i *)blk->qs));
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)blk->d));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, da), acc[r]);
        }
    }
    LCR_UNROLL for (int r = 0; r < MR; r++) y[r] = hsum8(acc[r]) + (bias ? bias[r] : 0.0f);
}

LCR_AVX2_INLINE void gemv_tile_q4_0_avx2(const lcr_block_q4_0 *w, lcr_gemv_acts a, int64_t nb, const int MR,
                                         float *y, const float *bias, const char *pf) {
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc[LCR_GEMV_MR];
    LCR_UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (MR == LCR_GEMV_MR) gemv_prefetch(pf + b * (LCR_GEMV_MR * sizeof *w), LCR_GEMV_MR * sizeof *w);
        const __m256i av = _mm256_loadu_si256((const __m256i *)a.q[b].qs);
        const __m256i a8 = _mm256_maddubs_epi16(eight, av);
        const __m256 da = _mm256_set1_ps(a.d[b]);
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            const lcr_block_q4_0 *blk = w + r * nb + b;
            const __m256i s = mul_q4_avx2(q4_0_unpack(blk->qs), av, a8);
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)blk->d));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, da), acc[r]);
        }
    }
    LCR_UNROLL for (int r = 0; r < MR; r++) y[r] = hsum8(acc[r]) + (bias ? bias[r] : 0.0f);
}

/* Rows in tiles of 8, then 4, then single rows. An 8-row tile prefetches the next 8 rows when
 * they are all there, else its own rows (already on their way: a few redundant hints, and no
 * address past the end of w); the short tail tiles do not prefetch. */
#define LCR_GEMV_DRIVER(TILE)                                                                           \
    do {                                                                                                \
        int64_t i = 0;                                                                                  \
        for (; i + 8 <= m; i += 8) {                                                                    \
            const int64_t ahead = i + 16 <= m ? i + 8 : i;                                              \
            TILE(w + i * nb, a, nb, 8, y + i, bias ? bias + i : NULL, (const char *)(w + ahead * nb));  \
        }                                                                                               \
        for (; i + 4 <= m; i += 4) TILE(w + i * nb, a, nb, 4, y + i, bias ? bias + i : NULL, NULL);     \
        for (; i < m; i++) TILE(w + i * nb, a, nb, 1, y + i, bias ? bias + i : NULL, NULL);             \
    } while (0)

static LCR_AVX2 void gemv_q8_0_avx2(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                                    int64_t m, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    const lcr_gemv_acts a = gemv_prepare_avx2(x, k, scratch);
    LCR_GEMV_DRIVER(gemv_tile_q8_0_avx2);
}

static LCR_AVX2 void gemv_q4_0_avx2(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                                    int64_t m, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    const lcr_gemv_acts a = gemv_prepare_avx2(x, k, scratch);
    LCR_GEMV_DRIVER(gemv_tile_q4_0_avx2);
}

static LCR_AVX2 void gemm_q8_0_avx2(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                                    int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    if (n == 1) {
        gemv_q8_0_avx2(w, x, y, bias, m, k, scratch);
        return;
    }
    for (int64_t j = 0; j < n; j++) quantize_row_q8_0_avx2(x + j * k, (lcr_block_q8_0 *)scratch + j * (k / LCR_QK), k);
    LCR_GEMM_DRIVER(tile_q8_0_avx2, lcr_block_q8_0, 4, 2);
}

static LCR_AVX2 void gemm_q4_0_avx2(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                                    int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    if (n == 1) {
        gemv_q4_0_avx2(w, x, y, bias, m, k, scratch);
        return;
    }
    for (int64_t j = 0; j < n; j++) quantize_row_q8_0_avx2(x + j * k, (lcr_block_q8_0 *)scratch + j * (k / LCR_QK), k);
    LCR_GEMM_DRIVER(tile_q4_0_avx2, lcr_block_q4_0, 4, 2);
}

/* ---- transposed product: dx[n, k] (+)= dy[n, m] . W[m, k] ----
 * For a pair of dx rows and one 32-wide block column, 8 accumulators stay in registers while
 * every weight row's block is expanded once (its scale folded into the dy coefficient). */
#define LCR_GEMM_T_AVX2(NAME, WTYPE, EXPAND)                                                            \
    static LCR_AVX2 void NAME(const WTYPE *w, const float *dy, float *dx, int64_t n, int64_t m, int64_t k, \
                              int64_t ldy, int64_t ldx, int accumulate) {                               \
        const int64_t nb = k / LCR_QK;                                                                  \
        for (int64_t j = 0; j < n; j += 2) {                                                            \
            const int rows = (j + 1 < n) ? 2 : 1;                                                       \
            for (int64_t b = 0; b < nb; b++) {                                                          \
                __m256 acc[2][4];                                                                       \
                LCR_UNROLL for (int r = 0; r < 2; r++)                                                             \
                    LCR_UNROLL for (int c = 0; c < 4; c++)                                                         \
                        acc[r][c] = (accumulate && r < rows) ? _mm256_loadu_ps(dx + (j + r) * ldx + b * LCR_QK + 8 * c) \
                                                             : _mm256_setzero_ps();                     \
                for (int64_t i = 0; i < m; i++) {                                                       \
                    const WTYPE *blk = w + i * nb + b;                                                  \
                    __m256 v[4];                                                                        \
                    EXPAND(blk, v);                                                                     \
                    const float d = fp16_f32(blk->d);                                                   \
                    const __m256 g0 = _mm256_set1_ps(dy[j * ldy + i] * d);                              \
                    LCR_UNROLL for (int c = 0; c < 4; c++) acc[0][c] = _mm256_fmadd_ps(g0, v[c], acc[0][c]);       \
                    if (rows == 2) {                                                                    \
                        const __m256 g1 = _mm256_set1_ps(dy[(j + 1) * ldy + i] * d);                    \
                        LCR_UNROLL for (int c = 0; c < 4; c++) acc[1][c] = _mm256_fmadd_ps(g1, v[c], acc[1][c]);   \
                    }                                                                                   \
                }                                                                                       \
                for (int r = 0; r < rows; r++)                                                          \
                    LCR_UNROLL for (int c = 0; c < 4; c++) _mm256_storeu_ps(dx + (j + r) * ldx + b * LCR_QK + 8 * c, acc[r][c]); \
            }                                                                                           \
        }                                                                                               \
    }

LCR_AVX2_INLINE void expand_q8_0(const lcr_block_q8_0 *blk, __m256 v[4]) {
    LCR_UNROLL for (int c = 0; c < 4; c++)
        v[c] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk->qs + 8 * c))));
}

LCR_AVX2_INLINE void expand_q4_0(const lcr_block_q4_0 *blk, __m256 v[4]) {
    __m256i q = _mm256_sub_epi8(q4_0_unpack(blk->qs), _mm256_set1_epi8(8));
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

LCR_GEMM_T_AVX2(gemm_t_q8_0_avx2, lcr_block_q8_0, expand_q8_0)
LCR_GEMM_T_AVX2(gemm_t_q4_0_avx2, lcr_block_q4_0, expand_q4_0)

/* ---- fp32 GEMV: four rows per pass, x loaded once for the four ---- */

static LCR_AVX2 void sgemv_avx2(const float *w, const float *x, float *y, int64_t m, int64_t k, int64_t ldw,
                                float alpha, float beta) {
    int64_t i = 0;
    for (; i < m; i += 4) {
        const int rows = (int)LCR_MIN(4, m - i);
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        int64_t l = 0;
        if (rows == 4) {
            for (; l + 8 <= k; l += 8) {
                const __m256 xv = _mm256_loadu_ps(x + l);
                for (int r = 0; r < 4; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + (i + r) * ldw + l), xv, acc[r]);
            }
        } else {
            for (; l + 8 <= k; l += 8) {
                const __m256 xv = _mm256_loadu_ps(x + l);
                for (int r = 0; r < rows; r++) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + (i + r) * ldw + l), xv, acc[r]);
            }
        }
        for (int r = 0; r < rows; r++) {
            float s = hsum8(acc[r]);
            for (int64_t t = l; t < k; t++) s += w[(i + r) * ldw + t] * x[t];
            y[i + r] = beta == 0.0f ? alpha * s : alpha * s + beta * y[i + r];
        }
    }
}

/* ---- channel statistics: the portable two-pass double algorithm with explicit vectors ----
 * The portable body's double accumulations do not vectorise (no reassociation without
 * fast-math), so each value costs a dependent scalar add. Here 16 values per step go to four
 * 4-wide double accumulators (floats widened exactly by vcvtps2pd), for the sum and then for
 * the centred sum of squares; results agree with the portable table to double rounding. */
LCR_AVX2_INLINE double hsum4d(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static LCR_AVX2 void channel_stats_avx2(const float *x, int64_t batch, int64_t channels, int64_t spatial,
                                        float *sum, float *mean, float *var) {
    const double count = (double)(batch * spatial);
    for (int64_t c = 0; c < channels; c++) {
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
        double tail = 0.0;
        for (int64_t b = 0; b < batch; b++) {
            const float *p = x + (b * channels + c) * spatial;
            int64_t i = 0;
            for (; i + 16 <= spatial; i += 16) {
                a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(p + i)));
                a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 4)));
                a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 8)));
                a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(p + i + 12)));
            }
            for (; i < spatial; i++) tail += p[i];
        }
        const double s = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3))) + tail;
        const double mu = count > 0 ? s / count : 0.0;
        if (sum) sum[c] = (float)s;
        if (mean) mean[c] = (float)mu;
        if (!var) continue;
        const __m256d m = _mm256_set1_pd(mu);
        a0 = a1 = a2 = a3 = _mm256_setzero_pd();
        tail = 0.0;
        for (int64_t b = 0; b < batch; b++) {
            const float *p = x + (b * channels + c) * spatial;
            int64_t i = 0;
            for (; i + 16 <= spatial; i += 16) {
                const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + i)), m);
                const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + i + 4)), m);
                const __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + i + 8)), m);
                const __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(p + i + 12)), m);
                a0 = _mm256_fmadd_pd(d0, d0, a0);
                a1 = _mm256_fmadd_pd(d1, d1, a1);
                a2 = _mm256_fmadd_pd(d2, d2, a2);
                a3 = _mm256_fmadd_pd(d3, d3, a3);
            }
            for (; i < spatial; i++) {
                const double d = p[i] - mu;
                tail += d * d;
            }
        }
        const double v = hsum4d(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3))) + tail;
        var[c] = count > 0 ? (float)(v / count) : 0.0f;
    }
}

/* ---- elementwise: the portable bodies compiled for AVX2 (channel_stats above) ---- */

#define LCR_EW_CHANNEL_STATS channel_stats_avx2
#define LCR_EW_NAME(x) x##_avx2
#define LCR_EW_TARGET LCR_AVX2
#include "../portable/lcr_elementwise_body.h"

/* ---- inference epilogues and the small-k product: the vector body compiled for AVX2 ---- */

#define LCR_IN_NAME(x) x##_avx2
#define LCR_IN_TARGET LCR_AVX2
#include "../portable/lcr_infer_body.h"

/* ---- direct quantized products: the portable body compiled for AVX2 (the VNNI table has its own) ---- */

#define LCR_QC_NAME(x) x##_avx2
#define LCR_QC_TARGET LCR_AVX2
#include "../portable/lcr_qconv_body.h"

/* ---- bandwidth probe: 256-bit loads into eight accumulators ----
 * Each 256-byte step also prefetches (T1) the lines 4 KiB ahead: one core then reads 5-13%
 * faster than with the hardware prefetchers alone (measured on AMD EPYC (Zen 4) against the
 * plain loop, alternating; other distances from 1 to 128 KiB, NTA and T0 hints and 512-bit
 * loads were slower), so the probe is the fastest sequential read measured, and the GEMVs
 * that prefetch are not compared with a weaker reader than themselves. The last 4 KiB are
 * read without prefetching past the end. */

#define LCR_PROBE_AHEAD_FLOATS 1024

LCR_AVX2 float lcr_read_bandwidth_probe_avx2(const float *x, int64_t n) {
    __m256 a[8];
    for (int c = 0; c < 8; c++) a[c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 64 + LCR_PROBE_AHEAD_FLOATS <= n; i += 64) {
        for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(x + i + LCR_PROBE_AHEAD_FLOATS) + 64 * l, _MM_HINT_T1);
        for (int c = 0; c < 8; c++) a[c] = _mm256_add_ps(a[c], _mm256_loadu_ps(x + i + 8 * c));
    }
    for (; i + 64 <= n; i += 64)
        for (int c = 0; c < 8; c++) a[c] = _mm256_add_ps(a[c], _mm256_loadu_ps(x + i + 8 * c));
    for (int c = 1; c < 8; c++) a[0] = _mm256_add_ps(a[0], a[c]);
    float s = hsum8(a[0]);
    for (; i < n; i++) s += x[i];
    return s;
}

const lcr_kernel_table lcr_kernel_table_avx2 = {
    .isa = LCR_ISA_AVX2,
    .quantize_row_q8_0 = quantize_row_q8_0_avx2,
    .quantize_row_q4_0 = quantize_row_q4_0_avx2,
    .dequantize_row_q8_0 = dequantize_row_q8_0_avx2,
    .dequantize_row_q4_0 = dequantize_row_q4_0_avx2,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_avx2,
    .dot_q4_0_q8_0 = dot_q4_0_q8_0_avx2,
    .gemm_q8_0 = gemm_q8_0_avx2,
    .gemm_q4_0 = gemm_q4_0_avx2,
    .gemm_t_q8_0 = gemm_t_q8_0_avx2,
    .gemm_t_q4_0 = gemm_t_q4_0_avx2,
    .sgemv = sgemv_avx2,
    LCR_EW_TABLE_ENTRIES,
    LCR_IN_TABLE_ENTRIES,
    LCR_QC_TABLE_ENTRIES,
};

/* ======== AVX-512 VNNI (VPDPBUSD on 256-bit registers) ======== */

/*
 * VPDPBUSD multiplies u8 by s8. Q8_0: the weight side becomes unsigned by w + 128 (an xor
 * with 0x80) and the extra 128 * sum(a) is removed by starting the accumulation at
 * -128 * sum(a) (itself one VPDPBUSD of a with 128s, shared by the tile's weight rows). Q4_0: the nibbles are the unsigned
 * side and the accumulation starts at -8 * sum(a). Every int32 lane stays exact.
 * The 4x4 tile keeps 16 accumulators in ymm0..31.
 */
LCR_VNNI_INLINE void tile_q8_0_vnni(const lcr_block_q8_0 *w, const lcr_block_q8_0 *a, int64_t nb, int MR, int NR,
                                    float *y, int64_t ldy, int64_t i, const float *bias) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256 acc[4][4];
    LCR_UNROLL for (int r = 0; r < MR; r++)
        LCR_UNROLL for (int j = 0; j < NR; j++) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av[4], neg[4];
        __m256 da[4];
        LCR_UNROLL for (int j = 0; j < NR; j++) {
            av[j] = _mm256_loadu_si256((const __m256i *)a[j * nb + b].qs);
            neg[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), flip, av[j]));
            da[j] = _mm256_set1_ps(fp16_f32(a[j * nb + b].d));
        }
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            // GEMV: the weights stream from memory once; fetch ahead so the row streams overlap
            if (NR == 1) _mm_prefetch((const char *)(w + r * nb + b + LCR_PREFETCH_BLOCKS), _MM_HINT_T0);
            const __m256i wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w[r * nb + b].qs), flip);
            const __m256 dw = _mm256_set1_ps(fp16_f32(w[r * nb + b].d));
            LCR_UNROLL for (int j = 0; j < NR; j++) {
                __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(neg[j], wu, av[j]));
                acc[r][j] = _mm256_fmadd_ps(_mm256_mul_ps(s, da[j]), dw, acc[r][j]);
            }
        }
    }
    store_tile(acc, MR, NR, y, ldy, i, bias);
}

LCR_VNNI_INLINE void tile_q4_0_vnni(const lcr_block_q4_0 *w, const lcr_block_q8_0 *a, int64_t nb, int MR, int NR,
                                    float *y, int64_t ldy, int64_t i, const float *bias) {
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc[4][4];
    LCR_UNROLL for (int r = 0; r < MR; r++)
        LCR_UNROLL for (int j = 0; j < NR; j++) acc[r][j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av[4], neg[4];
        __m256 da[4];
        LCR_UNROLL for (int j = 0; j < NR; j++) {
            av[j] = _mm256_loadu_si256((const __m256i *)a[j * nb + b].qs);
            neg[j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, av[j]));
            da[j] = _mm256_set1_ps(fp16_f32(a[j * nb + b].d));
        }
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            const __m256i wv = q4_0_unpack(w[r * nb + b].qs);
            const __m256 dw = _mm256_set1_ps(fp16_f32(w[r * nb + b].d));
            LCR_UNROLL for (int j = 0; j < NR; j++) {
                __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(neg[j], wv, av[j]));
                acc[r][j] = _mm256_fmadd_ps(_mm256_mul_ps(s, da[j]), dw, acc[r][j]);
            }
        }
    }
    store_tile(acc, MR, NR, y, ldy, i, bias);
}

static LCR_VNNI float dot_q8_0_q8_0_vnni(const lcr_block_q8_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    float out;
    tile_q8_0_vnni(x, y, k / LCR_QK, 1, 1, &out, 1, 0, NULL);
    return out;
}

static LCR_VNNI float dot_q4_0_q8_0_vnni(const lcr_block_q4_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    float out;
    tile_q4_0_vnni(x, y, k / LCR_QK, 1, 1, &out, 1, 0, NULL);
    return out;
}

/*
 * Batched path (n >= 4): a repacked panel makes one VPDPBUSD do 4 byte-products for 8 weight
 * rows at once, so the int32 sums of 8 outputs come out in the 8 lanes of one register and the
 * per-block float work (convert, scale by d_w, multiply-add with d_x) is one instruction each
 * per 8 outputs instead of per output.
 *
 * Scratch layout (64-byte aligned inside the caller's buffer):
 *   aq[n][nb][32]  activation codes + 128 (u8)     ad[n][nb]  activation scales (fp32)
 *   panel, per group of 8 weight rows and block b:
 *     wq[8 groups of 4 bytes][8 rows] (256 B, s8)  wd[8] scales (fp32)  wc[8] = -128 * sum(w)
 * Q4_0 weights are repacked to the same s8 layout (nibble - 8), so one micro-kernel serves both.
 */
#define LCR_PANEL_BLOCK_BYTES 320

LCR_VNNI_INLINE void quantize_acts_vnni(const float *x, int64_t n, int64_t nb, uint8_t *aq, float *ad) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t j = 0; j < n; j++)
        for (int64_t b = 0; b < nb; b++) {
            lcr_block_q8_0 t;
            quantize_row_q8_0_avx2(x + (j * nb + b) * LCR_QK, &t, LCR_QK);
            _mm256_storeu_si256((__m256i *)(aq + (j * nb + b) * 32),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)t.qs), flip));
            ad[j * nb + b] = fp16_f32(t.d);
        }
}

/* One group of 8 rows (rows >= valid are zero) for block b: s8 codes in the group layout. */
LCR_VNNI_INLINE void repack_group(uint8_t *dst, const int8_t codes[8][32], const float d[8]) {
    int32_t *wc = (int32_t *)(dst + 288);
    float *wd = (float *)(dst + 256);
    for (int t = 0; t < 8; t++)
        for (int r = 0; r < 8; r++) memcpy(dst + t * 32 + r * 4, &codes[r][4 * t], 4);
    for (int r = 0; r < 8; r++) {
        int32_t s = 0;
        for (int l = 0; l < 32; l++) s += codes[r][l];
        wc[r] = -128 * s;
        wd[r] = d[r];
    }
}

static LCR_VNNI void repack_panel_q8_0(const lcr_block_q8_0 *w, int64_t rows, int64_t nb, uint8_t *panel) {
    for (int64_t g = 0; g * 8 < rows; g++)
        for (int64_t b = 0; b < nb; b++) {
            int8_t codes[8][32];
            float d[8];
            for (int r = 0; r < 8; r++) {
                const int64_t row = g * 8 + r;
                if (row < rows) {
                    memcpy(codes[r], w[row * nb + b].qs, 32);
                    d[r] = fp16_f32(w[row * nb + b].d);
                } else {
                    memset(codes[r], 0, 32);
                    d[r] = 0.0f;
                }
            }
            repack_group(panel + (g * nb + b) * LCR_PANEL_BLOCK_BYTES, codes, d);
        }
}

static LCR_VNNI void repack_panel_q4_0(const lcr_block_q4_0 *w, int64_t rows, int64_t nb, uint8_t *panel) {
    for (int64_t g = 0; g * 8 < rows; g++)
        for (int64_t b = 0; b < nb; b++) {
            int8_t codes[8][32];
            float d[8];
            for (int r = 0; r < 8; r++) {
                const int64_t row = g * 8 + r;
                if (row < rows) {
                    const lcr_block_q4_0 *blk = w + row * nb + b;
                    for (int l = 0; l < 16; l++) {
                        codes[r][l] = (int8_t)((blk->qs[l] & 0x0f) - 8);
                        codes[r][l + 16] = (int8_t)((blk->qs[l] >> 4) - 8);
                    }
                    d[r] = fp16_f32(blk->d);
                } else {
                    memset(codes[r], 0, 32);
                    d[r] = 0.0f;
                }
            }
            repack_group(panel + (g * nb + b) * LCR_PANEL_BLOCK_BYTES, codes, d);
        }
}

/* 8 weight rows (one group) x NR input rows over all blocks. */
LCR_VNNI_INLINE void panel_tile_vnni(const uint8_t *grp, const uint8_t *aq, const float *ad, int64_t nb, int NR,
                                     float *y, int64_t ldy, int64_t i, int valid, const float *bias) {
    __m256 acc[8];
    LCR_UNROLL for (int j = 0; j < NR; j++) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + b * LCR_PANEL_BLOCK_BYTES;
        const __m256i corr = _mm256_loadu_si256((const __m256i *)(blk + 288));
        __m256i s[8];
        LCR_UNROLL for (int j = 0; j < NR; j++) s[j] = corr;
        LCR_UNROLL for (int t = 0; t < 8; t++) {
            const __m256i wt = _mm256_loadu_si256((const __m256i *)(blk + 32 * t));
            LCR_UNROLL for (int j = 0; j < NR; j++) {
                int32_t g4;
                memcpy(&g4, aq + (j * nb + b) * 32 + 4 * t, 4);
                s[j] = _mm256_dpbusd_epi32(s[j], _mm256_set1_epi32(g4), wt);
            }
        }
        const __m256 dw = _mm256_loadu_ps((const float *)(blk + 256));
        LCR_UNROLL for (int j = 0; j < NR; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s[j]), dw), _mm256_set1_ps(ad[j * nb + b]), acc[j]);
    }
    LCR_UNROLL for (int j = 0; j < NR; j++) {
        float *out = y + j * ldy + i;
        if (valid == 8) {
            __m256 v = bias ? _mm256_add_ps(acc[j], _mm256_loadu_ps(bias + i)) : acc[j];
            _mm256_storeu_ps(out, v);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[j]);
            for (int r = 0; r < valid; r++) out[r] = tmp[r] + (bias ? bias[i + r] : 0.0f);
        }
    }
}

static LCR_VNNI void gemm_panel_vnni(const void *w, int is_q4, const float *x, float *y, const float *bias,
                                     int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    const int64_t nb = k / LCR_QK;
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    uint8_t *aq = base;
    float *ad = (float *)(base + n * nb * 32);
    uint8_t *panel = (uint8_t *)(ad + n * nb);
    quantize_acts_vnni(x, n, nb, aq, ad);
    for (int64_t i0 = 0; i0 < m; i0 += LCR_GEMM_PANEL_ROWS) {
        const int64_t rows = LCR_MIN(LCR_GEMM_PANEL_ROWS, m - i0);
        if (is_q4) repack_panel_q4_0((const lcr_block_q4_0 *)w + i0 * nb, rows, nb, panel);
        else repack_panel_q8_0((const lcr_block_q8_0 *)w + i0 * nb, rows, nb, panel);
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
            for (int64_t g = 0; g * 8 < rows; g++)
                panel_tile_vnni(panel + g * nb * LCR_PANEL_BLOCK_BYTES, aq + j * nb * 32, ad + j * nb, nb, 8,
                                y + j * ldy, ldy, i0 + g * 8, (int)LCR_MIN(8, rows - g * 8), bias);
        for (; j < n; j += 4) {
            const int nr = (int)LCR_MIN(4, n - j);
            for (int64_t g = 0; g * 8 < rows; g++) {
                const uint8_t *grp = panel + g * nb * LCR_PANEL_BLOCK_BYTES;
                const int valid = (int)LCR_MIN(8, rows - g * 8);
                float *yo = y + j * ldy;
                const uint8_t *a = aq + j * nb * 32;
                const float *d = ad + j * nb;
                switch (nr) {
                case 4: panel_tile_vnni(grp, a, d, nb, 4, yo, ldy, i0 + g * 8, valid, bias); break;
                case 3: panel_tile_vnni(grp, a, d, nb, 3, yo, ldy, i0 + g * 8, valid, bias); break;
                case 2: panel_tile_vnni(grp, a, d, nb, 2, yo, ldy, i0 + g * 8, valid, bias); break;
                default: panel_tile_vnni(grp, a, d, nb, 1, yo, ldy, i0 + g * 8, valid, bias); break;
                }
            }
        }
    }
}

/*
 * VNNI GEMV (n == 1): 8 weight rows per pass, no repacking. Per row and block: one load, one
 * xor (Q8_0) or nibble unpack (Q4_0), one VPDPBUSD started from the activation block's
 * correction (-128 or -8 times the sum of its codes, in lane 0; the lanes are summed at the
 * end anyway), one convert and one multiply-add with d_w * d_x. The next pass's rows are
 * prefetched into L2 as in the AVX2 GEMV (gemv_prefetch). A 512-bit body (two blocks per
 * register) measured no faster from L2 or from memory on Zen 4, which splits 512-bit
 * operations in two, so the 256-bit body stays; prefetching two passes ahead or with the T2
 * hint measured the same as one pass with T1, and T0 (into L1) slower.
 */
LCR_VNNI_INLINE lcr_gemv_acts gemv_prepare_vnni(const float *x, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    lcr_gemv_acts a = gemv_prepare_avx2(x, k, scratch);
    int32_t *ac = (int32_t *)a.c;
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, _mm256_loadu_si256((const __m256i *)a.q[b].qs));
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        ac[b] = _mm_cvtsi128_si32(h);  // sum of the 32 codes
    }
    return a;
}

/* FLIP: Q8_0 (weights + 128 as the unsigned side, correction -128 * sum(a)); else Q4_0
 * (nibbles as the unsigned side, correction -8 * sum(a)). */
LCR_VNNI_INLINE void gemv_tile_vnni(const void *wp, int is_q4, lcr_gemv_acts a, int64_t nb, const int MR,
                                    float *y, const float *bias, const char *pf) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const lcr_block_q8_0 *w8 = (const lcr_block_q8_0 *)wp;
    const lcr_block_q4_0 *w4 = (const lcr_block_q4_0 *)wp;
    const int step = LCR_GEMV_MR * (int)(is_q4 ? sizeof *w4 : sizeof *w8);
    __m256 acc[LCR_GEMV_MR];
    LCR_UNROLL for (int r = 0; r < MR; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        if (MR == LCR_GEMV_MR) gemv_prefetch(pf + b * step, step);
        const __m256i av = _mm256_loadu_si256((const __m256i *)a.q[b].qs);
        const __m256i corr = _mm256_zextsi128_si256(_mm_cvtsi32_si128(a.c[b] * (is_q4 ? -8 : -128)));
        const __m256 da = _mm256_set1_ps(a.d[b]);
        LCR_UNROLL for (int r = 0; r < MR; r++) {
            __m256i wu;
            lcr_fp16 d;
            if (is_q4) {
                wu = q4_0_unpack(w4[r * nb + b].qs);
                d = w4[r * nb + b].d;
            } else {
                wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w8[r * nb + b].qs), flip);
                d = w8[r * nb + b].d;
            }
            const __m256 s = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(corr, wu, av));
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)d));
            acc[r] = _mm256_fmadd_ps(s, _mm256_mul_ps(dw, da), acc[r]);
        }
    }
    LCR_UNROLL for (int r = 0; r < MR; r++) y[r] = hsum8(acc[r]) + (bias ? bias[r] : 0.0f);
}

LCR_VNNI_INLINE void gemv_tile_q8_0_vnni(const lcr_block_q8_0 *w, lcr_gemv_acts a, int64_t nb, const int MR,
                                         float *y, const float *bias, const char *pf) {
    gemv_tile_vnni(w, 0, a, nb, MR, y, bias, pf);
}

LCR_VNNI_INLINE void gemv_tile_q4_0_vnni(const lcr_block_q4_0 *w, lcr_gemv_acts a, int64_t nb, const int MR,
                                         float *y, const float *bias, const char *pf) {
    gemv_tile_vnni(w, 1, a, nb, MR, y, bias, pf);
}

static LCR_VNNI void gemv_q8_0_vnni(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                                    int64_t m, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    const lcr_gemv_acts a = gemv_prepare_vnni(x, k, scratch);
    LCR_GEMV_DRIVER(gemv_tile_q8_0_vnni);
}

static LCR_VNNI void gemv_q4_0_vnni(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                                    int64_t m, int64_t k, void *scratch) {
    const int64_t nb = k / LCR_QK;
    const lcr_gemv_acts a = gemv_prepare_vnni(x, k, scratch);
    LCR_GEMV_DRIVER(gemv_tile_q4_0_vnni);
}

/* Below 4 input rows (the GEMV) repacking costs as much as the product: use the direct tiles. */
#define LCR_VNNI_PANEL_MIN_N 4

static LCR_VNNI void gemm_q8_0_vnni(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                                    int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    if (n >= LCR_VNNI_PANEL_MIN_N) {
        gemm_panel_vnni(w, 0, x, y, bias, n, m, k, ldy, scratch);
        return;
    }
    if (n == 1) {
        gemv_q8_0_vnni(w, x, y, bias, m, k, scratch);
        return;
    }
    for (int64_t j = 0; j < n; j++) quantize_row_q8_0_avx2(x + j * k, (lcr_block_q8_0 *)scratch + j * (k / LCR_QK), k);
    LCR_GEMM_DRIVER(tile_q8_0_vnni, lcr_block_q8_0, 4, 4);
}

static LCR_VNNI void gemm_q4_0_vnni(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                                    int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    if (n >= LCR_VNNI_PANEL_MIN_N) {
        gemm_panel_vnni(w, 1, x, y, bias, n, m, k, ldy, scratch);
        return;
    }
    if (n == 1) {
        gemv_q4_0_vnni(w, x, y, bias, m, k, scratch);
        return;
    }
    for (int64_t j = 0; j < n; j++) quantize_row_q8_0_avx2(x + j * k, (lcr_block_q8_0 *)scratch + j * (k / LCR_QK), k);
    LCR_GEMM_DRIVER(tile_q4_0_vnni, lcr_block_q4_0, 4, 4);
}

const lcr_kernel_table lcr_kernel_table_avx512vnni = {
    .isa = LCR_ISA_AVX512VNNI,
    .quantize_row_q8_0 = quantize_row_q8_0_avx2,
    .quantize_row_q4_0 = quantize_row_q4_0_avx2,
    .dequantize_row_q8_0 = dequantize_row_q8_0_avx2,
    .dequantize_row_q4_0 = dequantize_row_q4_0_avx2,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_vnni,
    .dot_q4_0_q8_0 = dot_q4_0_q8_0_vnni,
    .gemm_q8_0 = gemm_q8_0_vnni,
    .gemm_q4_0 = gemm_q4_0_vnni,
    .gemm_t_q8_0 = gemm_t_q8_0_avx2,
    .gemm_t_q4_0 = gemm_t_q4_0_avx2,
    .sgemv = sgemv_avx2,
    LCR_EW_TABLE_ENTRIES,
    LCR_IN_TABLE_ENTRIES,
    .qconv_native = 1,
    .qconv_acts = lcr_qconv_acts_avx512,
    .qconv_gemm = lcr_qconv_gemm_avx512,
    .qgemv = lcr_qgemv_avx512,
    .conv_f32_direct = lcr_conv_f32_direct_avx512,
};

#endif /* __x86_64__ */
