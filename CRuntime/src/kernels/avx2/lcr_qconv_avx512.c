/*
 * lcr_qconv_avx512.c — the VNNI table's direct quantized products (layouts in lcr_kernels.h,
 * "Direct quantized products"), on 512-bit registers.
 *
 * qconv_acts: 16 output positions of one output row per vector. For each weight-order value
 * (c, ky, kx) one masked load reads the 16 input values (padding and lanes past the row come
 * in as zeros, masked lanes are never read), so the im2row row is never written in f32: the
 * 32 vectors of a block give 16 blocks' amax at once, then d = amax / 127, id = 1 / d, codes
 * roundf(x * id) (ggml's operations, so the bytes are quantize_row_q8_0's), packed four codes
 * per dword lane (+128) with two packs and one byte shuffle.
 *
 * qconv_gemm: positions in lanes, channels broadcast. A tile is 6 output channels x 2 position
 * vectors (the same 16 columns of two output rows, so a fused 2 x 2 max pool finishes in
 * registers): per block and group of four values, two activation loads feed 12 VPDPBUSD whose
 * weight dwords come as embedded broadcasts; each block's 12 int32 sums (started at the
 * weights' -128 * sum correction) are converted, scaled by d_x (a vector) and d_w (a
 * broadcast) and added into 12 f32 accumulators. 26 of the 32 zmm registers.
 *
 * qgemv: channels in lanes, the activation dword broadcast: up to 8 vectors of 16 channels per
 * pass over the row (8 int32 sums, 8 f32 accumulators); weights stream in the packed order.
 *
 * Departure from a GEMM with positions as rows (activations broadcast, 16 channels per vector):
 * for the convolution that layout needs the output transposed back to NCHW and the pooling as
 * a separate pass; with positions in lanes the output is NCHW as it leaves the registers.
 */
#if defined(__x86_64__)
#include "../lcr_kernels_internal.h"

#include <immintrin.h>

#define LCR_Z __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define LCR_Z_INLINE __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) static inline
#define LCR_UNROLL _Pragma("GCC unroll 8")

/* roundf (half away from zero) for |v| < 2^23: |v| + 0.5 rounded toward zero never passes an
 * integer the exact sum does not reach (integers are representable there), so truncating it
 * gives floor(|v| + 0.5), which is roundf's magnitude. */
LCR_Z_INLINE __m512i round_half_away_512(__m512 v) {
    const __m512i h = _mm512_ternarylogic_epi32(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u),
                                                _mm512_castps_si512(_mm512_set1_ps(0.5f)), 0xEA);  // (v & sign) | 0.5
    return _mm512_cvttps_epi32(_mm512_add_round_ps(v, _mm512_castsi512_ps(h), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}

/* One block of 32 values for 16 positions, read through masked loads twice (once for the
 * amax, once for the codes) rather than kept: 32 vectors do not fit beside the rest, and
 * stores cost more than loads. Writes 8 dword vectors of codes + 128 and the scales. */
LCR_Z_INLINE void quantize_block16(uintptr_t corner, const int32_t *offset, const uint8_t *tap, const __mmask16 *mask,
                                   uint8_t *dst, float *scale) {
#define LCR_QC_LOAD(i) _mm512_maskz_loadu_ps(mask[tap[i]], (const void *)(corner + (uintptr_t)((int64_t)offset[i] * 4)))
    const __m512 zero = _mm512_setzero_ps();
    // four independent max chains, so the reduction is not one 32-long dependency
    __m512 m[4] = {zero, zero, zero, zero};
    LCR_UNROLL for (int i = 0; i < 32; i++) m[i & 3] = _mm512_max_ps(m[i & 3], _mm512_abs_ps(LCR_QC_LOAD(i)));
    const __m512 amax = _mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3]));
    const __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
    const __mmask16 nonzero = _mm512_cmp_ps_mask(d, zero, _CMP_NEQ_OQ);
    const __m512 id = _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(1.0f), d);
    _mm512_storeu_ps(scale, _mm512_cvtph_ps(_mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    // packs work per 128-bit lane: lane L holds codes 0..3 of elements 4L..4L+3; the shuffle
    // turns that 4 x 4 byte block around so each element's four codes form its dword
    const __m512i transpose = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    LCR_UNROLL for (int t = 0; t < 8; t++) {
        const __m512i q0 = round_half_away_512(_mm512_mul_ps(LCR_QC_LOAD(4 * t), id));
        const __m512i q1 = round_half_away_512(_mm512_mul_ps(LCR_QC_LOAD(4 * t + 1), id));
        const __m512i q2 = round_half_away_512(_mm512_mul_ps(LCR_QC_LOAD(4 * t + 2), id));
        const __m512i q3 = round_half_away_512(_mm512_mul_ps(LCR_QC_LOAD(4 * t + 3), id));
        const __m512i p = _mm512_packs_epi16(_mm512_packs_epi32(q0, q1), _mm512_packs_epi32(q2, q3));
        _mm512_storeu_si512(dst + 64 * t, _mm512_xor_si512(_mm512_shuffle_epi8(p, transpose), flip));
    }
#undef LCR_QC_LOAD
}

/* Lanes lo ..< hi of 16 set (empty when hi <= lo). */
static inline __mmask16 lane_range(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

/* The direct kernels take kernels up to this wide (their column masks sit in a stack array). */
#define LCR_QC_MAX_KW 16

LCR_Z void lcr_qconv_acts_avx512(const lcr_conv_geometry *g, const float *img, int64_t oy0, int64_t oy1, void *acts) {
    const int64_t ow = lcr_conv_out_w(g), lanes = lcr_qconv_lanes(ow), slots = (oy1 - oy0) * lanes;
    const int64_t kh = g->kernel_h, kw = g->kernel_w, depth = g->channels * kh * kw, nb = depth / LCR_QK;
    const int64_t H = g->height, W = g->width;
    uint8_t *codes = (uint8_t *)acts;
    float *scales = (float *)(codes + slots * depth);
    // Per weight-order value k: its input offset from the window's corner and its tap (ky, kx),
    // made once per call in the panel's tail (lcr_qconv_acts_bytes counts it).
    int32_t *tap_offset = (int32_t *)(scales + nb * slots);
    uint8_t *tap = (uint8_t *)(tap_offset + depth);
    int64_t k = 0;
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t ky = 0; ky < kh; ky++)
            for (int64_t kx = 0; kx < kw; kx++, k++) {
                tap_offset[k] = (int32_t)((c * H + ky * g->dilation_h) * W + kx * g->dilation_w);
                tap[k] = (uint8_t)(ky * kw + kx);
            }
    __mmask16 colmask[LCR_QC_MAX_KW], mask[LCR_QC_MAX_KW * LCR_QC_MAX_KW];
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t x0 = 0; x0 < lanes; x0 += 16) {
            const int64_t s0 = (oy - oy0) * lanes + x0, valid = ow - x0 < 16 ? ow - x0 : 16;
            for (int64_t kx = 0; kx < kw; kx++) {
                const int64_t ix0 = x0 + kx * g->dilation_w - g->pad_w;  // stride_w == 1
                colmask[kx] = lane_range(-ix0, W - ix0 < valid ? W - ix0 : valid);
            }
            const int64_t iy0 = oy * g->stride_h - g->pad_h;
            for (int64_t ky = 0; ky < kh; ky++) {
                const int64_t iy = iy0 + ky * g->dilation_h;
                for (int64_t kx = 0; kx < kw; kx++) mask[ky * kw + kx] = (iy >= 0 && iy < H) ? colmask[kx] : 0;
            }
            // The window's corner (row iy0, column x0 - pad_w) may lie outside the image; every
            // lane read through it is inside (masked-off lanes are not read).
            const uintptr_t corner = (uintptr_t)img + (uintptr_t)((iy0 * W + x0 - g->pad_w) * 4);
            for (int64_t b = 0; b < nb; b++)
                quantize_block16(corner, tap_offset + b * LCR_QK, tap + b * LCR_QK, mask,
                                 codes + (b * (slots / 16) + s0 / 16) * 512, scales + b * slots + s0);
        }
}

#define LCR_QC_TILE_C 6

/* C channels (from c0) x V position vectors (slots s0 and s1 = the same columns one output row
 * down). Weights are [nb][n][...], so the tile's channels sit at fixed offsets in each block. */
LCR_Z_INLINE void qconv_tile(const int8_t *wc, const float *ws, const int32_t *wk, int64_t n, int64_t nb, const int C,
                             const int V, const uint8_t *codes, const float *as, int64_t slots, int64_t s0, int64_t s1,
                             __m512 acc[LCR_QC_TILE_C][2]) {
    LCR_UNROLL for (int c = 0; c < C; c++)
        LCR_UNROLL for (int v = 0; v < V; v++) acc[c][v] = _mm512_setzero_ps();
    const int64_t vectors = slots / 16;
    for (int64_t b = 0; b < nb; b++) {
        __m512i s[LCR_QC_TILE_C][2];
        LCR_UNROLL for (int c = 0; c < C; c++) {
            const __m512i k = _mm512_set1_epi32(wk[b * n + c]);
            LCR_UNROLL for (int v = 0; v < V; v++) s[c][v] = k;
        }
        const uint8_t *p0 = codes + (b * vectors + s0 / 16) * 512, *p1 = codes + (b * vectors + s1 / 16) * 512;
        const int8_t *wb = wc + b * n * LCR_QK;
        LCR_UNROLL for (int t = 0; t < 8; t++) {
            const __m512i a0 = _mm512_loadu_si512(p0 + 64 * t);
            const __m512i a1 = V == 2 ? _mm512_loadu_si512(p1 + 64 * t) : a0;
            LCR_UNROLL for (int c = 0; c < C; c++) {
                int32_t w4;
                memcpy(&w4, wb + c * LCR_QK + 4 * t, 4);
                const __m512i w = _mm512_set1_epi32(w4);
                s[c][0] = _mm512_dpbusd_epi32(s[c][0], a0, w);
                if (V == 2) s[c][1] = _mm512_dpbusd_epi32(s[c][1], a1, w);
            }
        }
        const __m512 d0 = _mm512_loadu_ps(as + b * slots + s0);
        const __m512 d1 = V == 2 ? _mm512_loadu_ps(as + b * slots + s1) : d0;
        LCR_UNROLL for (int c = 0; c < C; c++) {
            const __m512 dw = _mm512_set1_ps(ws[b * n + c]);
            acc[c][0] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[c][0]), d0), dw, acc[c][0]);
            if (V == 2) acc[c][1] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[c][1]), d1), dw, acc[c][1]);
        }
    }
}

LCR_Z_INLINE __m512 bias_act_512(__m512 x, float b, int act) {
    x = _mm512_add_ps(x, _mm512_set1_ps(b));
    return act == LCR_ACT_RELU ? _mm512_max_ps(x, _mm512_setzero_ps()) : x;
}

LCR_Z void lcr_qconv_gemm_avx512(const void *packed, int64_t n, int64_t depth, const void *acts, int64_t rows, int64_t ow,
                                 const float *bias, float *y, int64_t ldc, int act, int pool) {
    const int64_t nb = depth / LCR_QK, lanes = lcr_qconv_lanes(ow), slots = rows * lanes, pw = ow / 2;
    const int8_t *wc = (const int8_t *)packed;
    const float *ws = (const float *)(wc + n * nb * LCR_QK);
    const int32_t *wk = (const int32_t *)(ws + n * nb);
    const uint8_t *codes = (const uint8_t *)acts;
    const float *as = (const float *)(codes + slots * depth);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    // Row pairs outside, channel tiles inside: a pair's panel (2 x depth x 16 bytes per 16
    // columns) stays in L1 while every channel tile reads it, and the packed weights are small.
    for (int64_t r = 0; r < rows; r += 2) {
        const int V = r + 1 < rows ? 2 : 1;
        if (pool && V == 1) break;  // an odd last row has no pooling partner
        for (int64_t c0 = 0; c0 < n; c0 += LCR_QC_TILE_C) {
            const int C = (int)(n - c0 < LCR_QC_TILE_C ? n - c0 : LCR_QC_TILE_C);
            const int8_t *wcc = wc + c0 * LCR_QK;
            const float *wsc = ws + c0;
            const int32_t *wkc = wk + c0;
            for (int64_t x0 = 0; x0 < lanes; x0 += 16) {
                const int64_t s0 = r * lanes + x0, s1 = s0 + lanes;
                __m512 acc[LCR_QC_TILE_C][2];
#define LCR_QC_CASE(CC)                                                                                   \
    case CC:                                                                                             \
        if (V == 2) qconv_tile(wcc, wsc, wkc, n, nb, CC, 2, codes, as, slots, s0, s1, acc);              \
        else qconv_tile(wcc, wsc, wkc, n, nb, CC, 1, codes, as, slots, s0, s1, acc);                     \
        break;
                switch (C) {
                    LCR_QC_CASE(6)
                    LCR_QC_CASE(5)
                    LCR_QC_CASE(4)
                    LCR_QC_CASE(3)
                    LCR_QC_CASE(2)
                    default: LCR_QC_CASE(1)
                }
#undef LCR_QC_CASE
                if (pool) {
                    const int64_t count = pw - x0 / 2 < 8 ? pw - x0 / 2 : 8;
                    if (count <= 0) continue;
                    const __mmask16 m = (__mmask16)((1u << count) - 1u);
                    for (int c = 0; c < C; c++) {
                        const __m512 rowmax = _mm512_max_ps(acc[c][0], acc[c][1]);
                        __m512 p = _mm512_max_ps(_mm512_permutexvar_ps(even, rowmax), _mm512_permutexvar_ps(odd, rowmax));
                        p = bias_act_512(p, bias ? bias[c0 + c] : 0.0f, act);
                        _mm512_mask_storeu_ps(y + (c0 + c) * ldc + (r / 2) * pw + x0 / 2, m, p);
                    }
                } else {
                    const int64_t count = ow - x0 < 16 ? ow - x0 : 16;
                    const __mmask16 m = (__mmask16)((1u << count) - 1u);
                    for (int c = 0; c < C; c++)
                        for (int v = 0; v < V; v++)
                            _mm512_mask_storeu_ps(y + (c0 + c) * ldc + (r + v) * ow + x0, m,
                                                  bias_act_512(acc[c][v], bias ? bias[c0 + c] : 0.0f, act));
                }
            }
        }
    }
}

/* One group of GV vectors of 16 channels over all blocks of one activation row. */
LCR_Z_INLINE void qgemv_group(const int8_t *gc, const float *ws, const int32_t *wk, int64_t np, int64_t nb, const int GV,
                              const uint8_t *aq, const float *ad, __m512 acc[8]) {
    LCR_UNROLL for (int v = 0; v < GV; v++) acc[v] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i s[8];
        LCR_UNROLL for (int v = 0; v < GV; v++) s[v] = _mm512_loadu_si512(wk + b * np + 16 * v);
        const int8_t *wb = gc + b * 8 * GV * 64;
        LCR_UNROLL for (int t = 0; t < 8; t++) {
            int32_t a4;
            memcpy(&a4, aq + b * LCR_QK + 4 * t, 4);
            const __m512i a = _mm512_set1_epi32(a4);
            LCR_UNROLL for (int v = 0; v < GV; v++)
                s[v] = _mm512_dpbusd_epi32(s[v], a, _mm512_loadu_si512(wb + (t * GV + v) * 64));
        }
        const __m512 da = _mm512_set1_ps(ad[b]);
        LCR_UNROLL for (int v = 0; v < GV; v++)
            acc[v] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[v]), _mm512_loadu_ps(ws + b * np + 16 * v)), da, acc[v]);
    }
}

LCR_Z void lcr_qgemv_avx512(const void *packed, const float *x, float *y, const float *bias, int64_t rows, int64_t n,
                            int64_t k, int64_t ldy, int act, void *scratch) {
    const int64_t nb = k / LCR_QK, np = lcr_qgemv_padded(n), nv = np / 16;
    const int8_t *codes = (const int8_t *)packed;
    const float *ws = (const float *)(codes + np * k);
    const int32_t *wk = (const int32_t *)(ws + np * nb);
    uint8_t *aq = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *ad = (float *)(aq + k);
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)(ad + nb);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t j = 0; j < rows; j++) {
        lcr_quantize_row_q8_0_avx2(x + j * k, xq, k);
        for (int64_t b = 0; b < nb; b++) {
            _mm256_storeu_si256((__m256i *)(aq + b * LCR_QK),
                                _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)xq[b].qs), flip));
            ad[b] = _cvtsh_ss(xq[b].d);
        }
        for (int64_t v0 = 0; v0 < nv; v0 += 8) {
            const int gv = (int)(nv - v0 < 8 ? nv - v0 : 8);
            const int8_t *gc = codes + v0 * 16 * k;
            __m512 acc[8];
            switch (gv) {
            case 8: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 8, aq, ad, acc); break;
            case 7: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 7, aq, ad, acc); break;
            case 6: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 6, aq, ad, acc); break;
            case 5: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 5, aq, ad, acc); break;
            case 4: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 4, aq, ad, acc); break;
            case 3: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 3, aq, ad, acc); break;
            case 2: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 2, aq, ad, acc); break;
            default: qgemv_group(gc, ws + v0 * 16, wk + v0 * 16, np, nb, 1, aq, ad, acc); break;
            }
            for (int v = 0; v < gv; v++) {
                const int64_t c = (v0 + v) * 16;
                const int64_t count = n - c < 16 ? n - c : 16;
                const __mmask16 m = (__mmask16)((1u << count) - 1u);
                __m512 o = acc[v];
                if (bias) o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(m, bias + c));
                if (act == LCR_ACT_RELU) o = _mm512_max_ps(o, _mm512_setzero_ps());
                _mm512_mask_storeu_ps(y + j * ldy + c, m, o);
            }
        }
    }
}

/*
 * conv_f32_direct: an f32 convolution with few input values per output (the shipped CNN's
 * conv1: one input channel, 3 x 3) read straight from the NCHW image. A pass covers 4 output
 * channels x 2 output rows x 32 columns (16 accumulators): per weight tap, 4 masked loads of the
 * shifted input rows (padding comes in as zeros) feed 16 FMAs with the taps' weights broadcast.
 * The taps are one flat loop over a table made per row pair (offsets and masks), so the
 * accumulators stay in registers for the whole pass. With the pool fused, the two rows and the
 * column pairs are reduced in registers, so neither im2col columns nor the full-size output exist.
 */
#define LCR_CF_MAX_DEPTH 64

LCR_Z_INLINE void conv_f32_pass(const float *w, int64_t depth, const int CC, const uintptr_t *row0, int64_t W,
                                const __mmask16 (*mask)[4], __m512 out[4][2][2]) {
    __m512 acc[4][2][2];
    LCR_UNROLL for (int cc = 0; cc < CC; cc++)
        LCR_UNROLL for (int r = 0; r < 2; r++)
            LCR_UNROLL for (int ch = 0; ch < 2; ch++) acc[cc][r][ch] = _mm512_setzero_ps();
    for (int64_t k = 0; k < depth; k++) {
        // masked-off lanes are not read, so the addresses may lie outside the image
        const uintptr_t a = row0[k];
        const __m512 v00 = _mm512_maskz_loadu_ps(mask[k][0], (const void *)a);
        const __m512 v01 = _mm512_maskz_loadu_ps(mask[k][1], (const void *)(a + 64));
        const __m512 v10 = _mm512_maskz_loadu_ps(mask[k][2], (const void *)(a + (uintptr_t)(W * 4)));
        const __m512 v11 = _mm512_maskz_loadu_ps(mask[k][3], (const void *)(a + (uintptr_t)(W * 4) + 64));
        LCR_UNROLL for (int cc = 0; cc < CC; cc++) {
            const __m512 wv = _mm512_set1_ps(w[cc * depth + k]);
            acc[cc][0][0] = _mm512_fmadd_ps(wv, v00, acc[cc][0][0]);
            acc[cc][0][1] = _mm512_fmadd_ps(wv, v01, acc[cc][0][1]);
            acc[cc][1][0] = _mm512_fmadd_ps(wv, v10, acc[cc][1][0]);
            acc[cc][1][1] = _mm512_fmadd_ps(wv, v11, acc[cc][1][1]);
        }
    }
    LCR_UNROLL for (int cc = 0; cc < CC; cc++)
        LCR_UNROLL for (int r = 0; r < 2; r++)
            LCR_UNROLL for (int ch = 0; ch < 2; ch++) out[cc][r][ch] = acc[cc][r][ch];
}

LCR_Z void lcr_conv_f32_direct_avx512(const lcr_conv_geometry *g, const float *img, const float *w, const float *bias,
                                      int64_t n, float *y, int act, int pool) {
    const int64_t oh = lcr_conv_out_h(g), ow = lcr_conv_out_w(g), kh = g->kernel_h, kw = g->kernel_w, H = g->height, W = g->width;
    const int64_t depth = g->channels * kh * kw, ph = oh / 2, pw = ow / 2;
    const int64_t end = pool ? ph * 2 : oh;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
    __mmask16 colmask[LCR_QC_MAX_KW][2];
    __mmask16 mask[LCR_CF_MAX_DEPTH][4];  // per tap: row 0 columns 0..15, 16..31, row 1 likewise
    uintptr_t row0[LCR_CF_MAX_DEPTH];
    for (int64_t x0 = 0; x0 < ow; x0 += 32) {
        for (int64_t kx = 0; kx < kw; kx++)
            for (int ch = 0; ch < 2; ch++) {
                const int64_t xc = x0 + 16 * ch, ix0 = xc - g->pad_w + kx * g->dilation_w;
                colmask[kx][ch] = lane_range(-ix0, W - ix0 < ow - xc ? W - ix0 : ow - xc);
            }
        for (int64_t oy = 0; oy < end; oy += 2) {
            int64_t k = 0;
            for (int64_t ci = 0; ci < g->channels; ci++)
                for (int64_t ky = 0; ky < kh; ky++) {
                    const int64_t iy0 = oy - g->pad_h + ky * g->dilation_h, iy1 = iy0 + 1;
                    const __mmask16 in0 = (iy0 >= 0 && iy0 < H) ? 0xffff : 0, in1 = (iy1 >= 0 && iy1 < H) ? 0xffff : 0;
                    for (int64_t kx = 0; kx < kw; kx++, k++) {
                        row0[k] = (uintptr_t)img + (uintptr_t)(((ci * H + iy0) * W + x0 - g->pad_w + kx * g->dilation_w) * 4);
                        mask[k][0] = colmask[kx][0] & in0;
                        mask[k][1] = colmask[kx][1] & in0;
                        mask[k][2] = colmask[kx][0] & in1;
                        mask[k][3] = colmask[kx][1] & in1;
                    }
                }
            for (int64_t c0 = 0; c0 < n; c0 += 4) {
                const int CC = (int)(n - c0 < 4 ? n - c0 : 4);
                const float *wc = w + c0 * depth;
                __m512 acc[4][2][2];
                switch (CC) {
                case 4: conv_f32_pass(wc, depth, 4, row0, W, mask, acc); break;
                case 3: conv_f32_pass(wc, depth, 3, row0, W, mask, acc); break;
                case 2: conv_f32_pass(wc, depth, 2, row0, W, mask, acc); break;
                default: conv_f32_pass(wc, depth, 1, row0, W, mask, acc); break;
                }
                for (int cc = 0; cc < CC; cc++) {
                    const float b = bias ? bias[c0 + cc] : 0.0f;
                    for (int ch = 0; ch < 2; ch++) {
                        const int64_t xc = x0 + 16 * ch;
                        if (pool) {
                            const int64_t count = pw - xc / 2 < 8 ? pw - xc / 2 : 8;
                            if (count <= 0) continue;
                            const __m512 rowmax = _mm512_max_ps(acc[cc][0][ch], acc[cc][1][ch]);
                            const __m512 p = _mm512_max_ps(_mm512_permutexvar_ps(even, rowmax), _mm512_permutexvar_ps(odd, rowmax));
                            _mm512_mask_storeu_ps(y + ((c0 + cc) * ph + oy / 2) * pw + xc / 2, (__mmask16)((1u << count) - 1u),
                                                  bias_act_512(p, b, act));
                        } else {
                            const int64_t count = ow - xc < 16 ? ow - xc : 16;
                            if (count <= 0) continue;
                            const __mmask16 m = (__mmask16)((1u << count) - 1u);
                            for (int r = 0; r < 2 && oy + r < oh; r++)
                                _mm512_mask_storeu_ps(y + ((c0 + cc) * oh + oy + r) * ow + xc, m, bias_act_512(acc[cc][r][ch], b, act));
                        }
                    }
                }
            }
        }
    }
}

#endif /* __x86_64__ */
