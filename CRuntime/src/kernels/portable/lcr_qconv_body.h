/*
 * lcr_qconv_body.h — the direct quantized products (lcr_kernels.h, "Direct quantized products")
 * in plain C: the reference the SIMD versions are checked against, and the body of every table
 * without its own (compiled per instruction set, qconv_native = 0 there).
 *
 * Included once per kernel file with LCR_QC_NAME(x) (a name-mangling macro) and LCR_QC_TARGET
 * (a function target attribute, possibly empty) defined. Activation blocks are quantized by
 * lcr_quantize_row_q8_0_portable itself, so the codes and scales are ggml's by construction.
 * Float order per block: (sum * d_x) * d_w for the convolution, (sum * d_w) * d_x for the GEMV,
 * as the SIMD versions multiply (they fuse the last multiply with the add).
 */
#ifndef LCR_QC_NAME
#error "define LCR_QC_NAME and LCR_QC_TARGET before including lcr_qconv_body.h"
#endif

#ifndef LCR_QC_CODE
/* Byte of value i of block b at panel slot s (layout in lcr_kernels.h). */
#define LCR_QC_CODE(b, slots, s, i) (((((b) * ((slots) / 16) + (s) / 16) * 8 + (i) / 4) * 16 + (s) % 16) * 4 + (i) % 4)
#endif

LCR_QC_TARGET static void LCR_QC_NAME(qconv_acts)(const lcr_conv_geometry *g, const float *img, int64_t oy0, int64_t oy1,
                                                  void *acts) {
    const int64_t ow = lcr_conv_out_w(g), lanes = lcr_qconv_lanes(ow), slots = (oy1 - oy0) * lanes;
    const int64_t taps = g->kernel_h * g->kernel_w, depth = g->channels * taps, nb = depth / LCR_QK;
    uint8_t *codes = (uint8_t *)acts;
    float *scales = (float *)(codes + slots * depth);
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t x = 0; x < lanes; x++) {
            const int64_t s = (oy - oy0) * lanes + x;
            for (int64_t b = 0; b < nb; b++) {
                float v[LCR_QK];
                for (int i = 0; i < LCR_QK; i++) {
                    const int64_t k = b * LCR_QK + i, c = k / taps, ky = (k % taps) / g->kernel_w, kx = k % g->kernel_w;
                    const int64_t iy = oy * g->stride_h - g->pad_h + ky * g->dilation_h;
                    const int64_t ix = x * g->stride_w - g->pad_w + kx * g->dilation_w;
                    v[i] = (x < ow && iy >= 0 && iy < g->height && ix >= 0 && ix < g->width)
                               ? img[(c * g->height + iy) * g->width + ix] : 0.0f;
                }
                lcr_block_q8_0 q;
                lcr_quantize_row_q8_0_portable(v, &q, LCR_QK);
                for (int i = 0; i < LCR_QK; i++)
                    codes[LCR_QC_CODE(b, slots, s, i)] = (uint8_t)(q.qs[i] + 128);
                scales[b * slots + s] = lcr_fp16_to_fp32(q.d);
            }
        }
}

/* One output value before bias and activation: channel c, panel slot s. */
static inline float LCR_QC_NAME(qconv_value)(const int8_t *wc, const float *ws, const int32_t *wk, int64_t n, int64_t nb,
                                             const uint8_t *codes, const float *as, int64_t slots, int64_t c, int64_t s) {
    float acc = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sum = wk[b * n + c];
        for (int i = 0; i < LCR_QK; i++)
            sum += (int32_t)codes[LCR_QC_CODE(b, slots, s, i)] * (int32_t)wc[(b * n + c) * LCR_QK + i];
        acc += ((float)sum * as[b * slots + s]) * ws[b * n + c];
    }
    return acc;
}

LCR_QC_TARGET static void LCR_QC_NAME(qconv_gemm)(const void *packed, int64_t n, int64_t depth, const void *acts,
                                                  int64_t rows, int64_t ow, const float *bias, float *y, int64_t ldc,
                                                  int act, int pool) {
    const int64_t nb = depth / LCR_QK, lanes = lcr_qconv_lanes(ow), slots = rows * lanes;
    const int8_t *wc = (const int8_t *)packed;
    const float *ws = (const float *)(wc + n * nb * LCR_QK);
    const int32_t *wk = (const int32_t *)(ws + n * nb);
    const uint8_t *codes = (const uint8_t *)acts;
    const float *as = (const float *)(codes + slots * depth);
    for (int64_t c = 0; c < n; c++) {
        const float bc = bias ? bias[c] : 0.0f;
        if (pool) {
            const int64_t pw = ow / 2;
            for (int64_t r = 0; r + 1 < rows; r += 2)
                for (int64_t px = 0; px < pw; px++) {
                    float m = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            const float v = LCR_QC_NAME(qconv_value)(wc, ws, wk, n, nb, codes, as, slots, c,
                                                                     (r + dy) * lanes + 2 * px + dx);
                            m = v > m ? v : m;
                        }
                    float v = m + bc;
                    if (act == LCR_ACT_RELU) v = v > 0.0f ? v : 0.0f;
                    y[c * ldc + (r / 2) * pw + px] = v;
                }
        } else {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t x = 0; x < ow; x++) {
                    float v = LCR_QC_NAME(qconv_value)(wc, ws, wk, n, nb, codes, as, slots, c, r * lanes + x) + bc;
                    if (act == LCR_ACT_RELU) v = v > 0.0f ? v : 0.0f;
                    y[c * ldc + r * ow + x] = v;
                }
        }
    }
}

LCR_QC_TARGET static void LCR_QC_NAME(qgemv)(const void *packed, const float *x, float *y, const float *bias, int64_t rows,
                                             int64_t n, int64_t k, int64_t ldy, int act, void *scratch) {
    const int64_t nb = k / LCR_QK, np = lcr_qgemv_padded(n), nv = np / 16;
    const int8_t *codes = (const int8_t *)packed;
    const float *ws = (const float *)(codes + np * k);
    const int32_t *wk = (const int32_t *)(ws + np * nb);
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)scratch;
    for (int64_t j = 0; j < rows; j++) {
        lcr_quantize_row_q8_0_portable(x + j * k, xq, k);
        for (int64_t i = 0; i < n; i++) {
            const int64_t v = i / 16, lane = i % 16, v0 = v / 8 * 8, gv = (nv - v0) < 8 ? (nv - v0) : 8;
            const int8_t *group = codes + v0 * 16 * k;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                int32_t sum = wk[b * np + i];
                for (int l = 0; l < LCR_QK; l++)
                    sum += (int32_t)(xq[b].qs[l] + 128) * (int32_t)group[(((b * 8 + l / 4) * gv + (v - v0)) * 16 + lane) * 4 + l % 4];
                acc += ((float)sum * ws[b * np + i]) * lcr_fp16_to_fp32(xq[b].d);
            }
            float out = acc + (bias ? bias[i] : 0.0f);
            if (act == LCR_ACT_RELU) out = out > 0.0f ? out : 0.0f;
            y[j * ldy + i] = out;
        }
    }
}

/* One output value before bias and activation: channel c at (oy, ox). */
static inline float LCR_QC_NAME(conv_value)(const lcr_conv_geometry *g, const float *img, const float *w, int64_t c,
                                            int64_t oy, int64_t ox) {
    const int64_t taps = g->kernel_h * g->kernel_w, depth = g->channels * taps;
    float acc = 0.0f;
    for (int64_t k = 0; k < depth; k++) {
        const int64_t ci = k / taps, ky = (k % taps) / g->kernel_w, kx = k % g->kernel_w;
        const int64_t iy = oy - g->pad_h + ky * g->dilation_h, ix = ox - g->pad_w + kx * g->dilation_w;
        if (iy >= 0 && iy < g->height && ix >= 0 && ix < g->width) acc += w[c * depth + k] * img[(ci * g->height + iy) * g->width + ix];
    }
    return acc;
}

LCR_QC_TARGET static void LCR_QC_NAME(conv_f32_direct)(const lcr_conv_geometry *g, const float *img, const float *w,
                                                       const float *bias, int64_t n, float *y, int act, int pool) {
    const int64_t oh = lcr_conv_out_h(g), ow = lcr_conv_out_w(g);
    for (int64_t c = 0; c < n; c++) {
        const float bc = bias ? bias[c] : 0.0f;
        if (pool) {
            const int64_t ph = oh / 2, pw = ow / 2;
            for (int64_t py = 0; py < ph; py++)
                for (int64_t px = 0; px < pw; px++) {
                    float m = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            const float v = LCR_QC_NAME(conv_value)(g, img, w, c, 2 * py + dy, 2 * px + dx);
                            m = v > m ? v : m;
                        }
                    float v = m + bc;
                    if (act == LCR_ACT_RELU) v = v > 0.0f ? v : 0.0f;
                    y[(c * ph + py) * pw + px] = v;
                }
        } else {
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    float v = LCR_QC_NAME(conv_value)(g, img, w, c, oy, ox) + bc;
                    if (act == LCR_ACT_RELU) v = v > 0.0f ? v : 0.0f;
                    y[(c * oh + oy) * ow + ox] = v;
                }
        }
    }
}

#define LCR_QC_TABLE_ENTRIES                                                                          \
    .qconv_native = 0, .qconv_acts = LCR_QC_NAME(qconv_acts), .qconv_gemm = LCR_QC_NAME(qconv_gemm), \
    .qgemv = LCR_QC_NAME(qgemv), .conv_f32_direct = LCR_QC_NAME(conv_f32_direct)
