/*
 * lcr_kernels_portable.c — the reference versions of every kernel, in plain C11.
 *
 * These are the definitions the SIMD tables are checked against. Quantization follows ggml's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref operation for operation (fp32 arithmetic,
 * roundf, the same fp16 rounding), so the bytes match ggml and gguf-py's quants module.
 */
/* -Wpsabi (gcc and clang) notes that the 32-byte vectors of lcr_infer_body.h, passed by value,
 * have another ABI with AVX. Those helpers are static (never called across a translation unit),
 * so the ABI cannot differ; gcc reports it at the end of the file, hence file scope. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#include "../lcr_kernels_internal.h"

/* ---- fp16 ---- */

static inline uint32_t lcr_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float lcr_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lcr_fp16_to_fp32(lcr_fp16 h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24, exact in fp32
        float v = (float)mant * 0x1p-24f;
        return lcr_bits_f32(sign | lcr_f32_bits(v));
    }
    if (exp == 31) return lcr_bits_f32(sign | 0x7f800000u | (mant << 13));
    return lcr_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Round to nearest even, as F16C's vcvtps2ph and Arm's fcvtn do (NaNs keep their top payload
 * bits and become quiet, as the hardware does). */
lcr_fp16 lcr_fp32_to_fp16(float f) {
    uint32_t x = lcr_f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) {
        if (x == 0x7f800000u) return (lcr_fp16)(sign | 0x7c00u);
        return (lcr_fp16)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    }
    if (x >= 0x477ff000u) return (lcr_fp16)(sign | 0x7c00u);  // >= 65520 rounds to infinity
    if (x < 0x38800000u) {
        // result is subnormal or zero: adding 0.5 puts the fp16 ulp (2^-24) at the fp32 ulp
        // of 0.5, so the fp32 addition does the round-to-nearest-even for us
        float a = lcr_bits_f32(x) + 0.5f;
        return (lcr_fp16)(sign | (lcr_f32_bits(a) - 0x3f000000u));
    }
    const uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;  // rebias the exponent (127 -> 15) and round half to even
    return (lcr_fp16)(sign | (x >> 13));
}

void lcr_fp16_to_fp32_row(const lcr_fp16 *x, float *y, int64_t n) {
#if defined(__x86_64__)
    if (lcr_isa_supported(LCR_ISA_AVX2)) {
        lcr_fp16_to_fp32_row_f16c(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = lcr_fp16_to_fp32(x[i]);
}

void lcr_fp32_to_fp16_row(const float *x, lcr_fp16 *y, int64_t n) {
#if defined(__x86_64__)
    if (lcr_isa_supported(LCR_ISA_AVX2)) {
        lcr_fp32_to_fp16_row_f16c(x, y, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = lcr_fp32_to_fp16(x[i]);
}

/* ---- quantization (ggml reference semantics) ---- */

void lcr_quantize_row_q8_0_portable(const float *x, lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * LCR_QK;
        float amax = 0.0f;
        for (int j = 0; j < LCR_QK; j++) {
            float v = fabsf(xb[j]);
            amax = amax > v ? amax : v;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = lcr_fp32_to_fp16(d);
        for (int j = 0; j < LCR_QK; j++) y[b].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void lcr_quantize_row_q4_0_portable(const float *x, lcr_block_q4_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * LCR_QK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < LCR_QK; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = lcr_fp32_to_fp16(d);
        for (int j = 0; j < LCR_QK / 2; j++) {
            int q0 = (int8_t)(xb[j] * id + 8.5f);
            int q1 = (int8_t)(xb[j + 16] * id + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void lcr_dequantize_row_q8_0_portable(const lcr_block_q8_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = lcr_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LCR_QK; j++) y[b * LCR_QK + j] = (float)x[b].qs[j] * d;
    }
}

void lcr_dequantize_row_q4_0_portable(const lcr_block_q4_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = lcr_fp16_to_fp32(x[b].d);
        for (int j = 0; j < LCR_QK / 2; j++) {
            y[b * LCR_QK + j] = (float)((x[b].qs[j] & 0x0f) - 8) * d;
            y[b * LCR_QK + j + 16] = (float)((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ---- dot products ---- */

static float dot_q8_0_q8_0_portable(const lcr_block_q8_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t si = 0;
        for (int j = 0; j < LCR_QK; j++) si += (int32_t)x[b].qs[j] * (int32_t)y[b].qs[j];
        s += (float)si * (lcr_fp16_to_fp32(x[b].d) * lcr_fp16_to_fp32(y[b].d));
    }
    return s;
}

static float dot_q4_0_q8_0_portable(const lcr_block_q4_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int32_t si = 0;
        for (int j = 0; j < LCR_QK / 2; j++) {
            si += ((x[b].qs[j] & 0x0f) - 8) * (int32_t)y[b].qs[j];
            si += ((x[b].qs[j] >> 4) - 8) * (int32_t)y[b].qs[j + 16];
        }
        s += (float)si * (lcr_fp16_to_fp32(x[b].d) * lcr_fp16_to_fp32(y[b].d));
    }
    return s;
}

/* ---- quantized GEMM / GEMV ---- */

static void gemm_q8_0_portable(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                               int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    const int64_t nb = k / LCR_QK;
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)scratch;
    for (int64_t j = 0; j < n; j++) lcr_quantize_row_q8_0_portable(x + j * k, xq + j * nb, k);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++)
            y[j * ldy + i] = dot_q8_0_q8_0_portable(w + i * nb, xq + j * nb, k) + (bias ? bias[i] : 0.0f);
}

static void gemm_q4_0_portable(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                               int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch) {
    const int64_t nb = k / LCR_QK;
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)scratch;
    for (int64_t j = 0; j < n; j++) lcr_quantize_row_q8_0_portable(x + j * k, xq + j * nb, k);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++)
            y[j * ldy + i] = dot_q4_0_q8_0_portable(w + i * nb, xq + j * nb, k) + (bias ? bias[i] : 0.0f);
}

/* dx[n, k] (+)= dy[n, m] . W[m, k]: one weight block is dequantized once and added into every row. */
static void gemm_t_q8_0_portable(const lcr_block_q8_0 *w, const float *dy, float *dx, int64_t n, int64_t m,
                                 int64_t k, int64_t ldy, int64_t ldx, int accumulate) {
    const int64_t nb = k / LCR_QK;
    if (!accumulate)
        for (int64_t j = 0; j < n; j++) memset(dx + j * ldx, 0, (size_t)k * sizeof(float));
    float t[LCR_QK];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t b = 0; b < nb; b++) {
            lcr_dequantize_row_q8_0_portable(w + i * nb + b, t, LCR_QK);
            for (int64_t j = 0; j < n; j++) {
                const float g = dy[j * ldy + i];
                float *o = dx + j * ldx + b * LCR_QK;
                for (int l = 0; l < LCR_QK; l++) o[l] += g * t[l];
            }
        }
    }
}

static void gemm_t_q4_0_portable(const lcr_block_q4_0 *w, const float *dy, float *dx, int64_t n, int64_t m,
                                 int64_t k, int64_t ldy, int64_t ldx, int accumulate) {
    const int64_t nb = k / LCR_QK;
    if (!accumulate)
        for (int64_t j = 0; j < n; j++) memset(dx + j * ldx, 0, (size_t)k * sizeof(float));
    float t[LCR_QK];
    for (int64_t i = 0; i < m; i++) {
        for (int64_t b = 0; b < nb; b++) {
            lcr_dequantize_row_q4_0_portable(w + i * nb + b, t, LCR_QK);
            for (int64_t j = 0; j < n; j++) {
                const float g = dy[j * ldy + i];
                float *o = dx + j * ldx + b * LCR_QK;
                for (int l = 0; l < LCR_QK; l++) o[l] += g * t[l];
            }
        }
    }
}

/* ---- fp32 GEMV ---- */

static void sgemv_portable(const float *w, const float *x, float *y, int64_t m, int64_t k, int64_t ldw,
                           float alpha, float beta) {
    for (int64_t i = 0; i < m; i++) {
        const float *r = w + i * ldw;
        float s = 0.0f;
        for (int64_t l = 0; l < k; l++) s += r[l] * x[l];
        // beta == 0 overwrites without reading y (BLAS semantics: y may hold garbage)
        y[i] = beta == 0.0f ? alpha * s : alpha * s + beta * y[i];
    }
}

/* ---- elementwise ---- */

#define LCR_EW_NAME(x) x##_portable
#define LCR_EW_TARGET
#include "lcr_elementwise_body.h"

#define LCR_IN_NAME(x) x##_portable
#define LCR_IN_TARGET
#include "lcr_infer_body.h"

#define LCR_QC_NAME(x) x##_portable
#define LCR_QC_TARGET
#include "lcr_qconv_body.h"

const lcr_kernel_table lcr_kernel_table_portable = {
    .isa = LCR_ISA_PORTABLE,
    .quantize_row_q8_0 = lcr_quantize_row_q8_0_portable,
    .quantize_row_q4_0 = lcr_quantize_row_q4_0_portable,
    .dequantize_row_q8_0 = lcr_dequantize_row_q8_0_portable,
    .dequantize_row_q4_0 = lcr_dequantize_row_q4_0_portable,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_portable,
    .dot_q4_0_q8_0 = dot_q4_0_q8_0_portable,
    .gemm_q8_0 = gemm_q8_0_portable,
    .gemm_q4_0 = gemm_q4_0_portable,
    .gemm_t_q8_0 = gemm_t_q8_0_portable,
    .gemm_t_q4_0 = gemm_t_q4_0_portable,
    .sgemv = sgemv_portable,
    LCR_EW_TABLE_ENTRIES,
    LCR_IN_TABLE_ENTRIES,
    LCR_QC_TABLE_ENTRIES,
};

/* ---- im2col / col2im ---- */

int64_t lcr_conv_out_h(const lcr_conv_geometry *g) {
    return (g->height + 2 * g->pad_h - g->dilation_h * (g->kernel_h - 1) - 1) / g->stride_h + 1;
}

int64_t lcr_conv_out_w(const lcr_conv_geometry *g) {
    return (g->width + 2 * g->pad_w - g->dilation_w * (g->kernel_w - 1) - 1) / g->stride_w + 1;
}

void lcr_im2col(const lcr_conv_geometry *g, const float *img, float *col) {
    const int64_t oh = lcr_conv_out_h(g), ow = lcr_conv_out_w(g);
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t ki = 0; ki < g->kernel_h; ki++)
            for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                float *row = col + ((c * g->kernel_h + ki) * g->kernel_w + kj) * oh * ow;
                for (int64_t oy = 0; oy < oh; oy++) {
                    const int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dilation_h;
                    float *out = row + oy * ow;
                    if (iy < 0 || iy >= g->height) {
                        memset(out, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    const float *in = img + (c * g->height + iy) * g->width;
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t ix = ox * g->stride_w - g->pad_w + kj * g->dilation_w;
                        out[ox] = (ix >= 0 && ix < g->width) ? in[ix] : 0.0f;
                    }
                }
            }
}

void lcr_col2im(const lcr_conv_geometry *g, const float *col, float *img) {
    const int64_t oh = lcr_conv_out_h(g), ow = lcr_conv_out_w(g);
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t ki = 0; ki < g->kernel_h; ki++)
            for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                const float *row = col + ((c * g->kernel_h + ki) * g->kernel_w + kj) * oh * ow;
                for (int64_t oy = 0; oy < oh; oy++) {
                    const int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dilation_h;
                    if (iy < 0 || iy >= g->height) continue;
                    float *out = img + (c * g->height + iy) * g->width;
                    const float *in = row + oy * ow;
                    for (int64_t ox = 0; ox < ow; ox++) {
                        const int64_t ix = ox * g->stride_w - g->pad_w + kj * g->dilation_w;
                        if (ix >= 0 && ix < g->width) out[ix] += in[ox];
                    }
                }
            }
}

/* ---- bandwidth probe ---- */

float lcr_read_bandwidth_probe_portable(const float *x, int64_t n) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += x[i];
        a1 += x[i + 1];
        a2 += x[i + 2];
        a3 += x[i + 3];
    }
    for (; i < n; i++) a0 += x[i];
    return (a0 + a1) + (a2 + a3);
}
