/*
 * lcr_kernels_neon.c — AArch64 kernels: the NEON table and the NEON + SDOT (dotprod) table.
 *
 * Advanced SIMD is baseline on AArch64, so the NEON table needs no attribute. The dotprod
 * table compiles the quantized products again under a function target attribute (spelled
 * "arch=armv8.2-a+dotprod" for gcc 12, "dotprod" for clang) and runs only when AT_HWCAP has HWCAP_ASIMDDP.
 * Quantization uses vcvtaq_s32_f32 (round half away from zero: exactly roundf) and
 * vcvtq_s32_f32 (truncation), so codes are byte-exact with the portable reference.
 */
#if defined(__aarch64__)
#include "../lcr_kernels_internal.h"

#include <arm_neon.h>

#if defined(__clang__)
#define LCR_DOTPROD_TARGET __attribute__((target("dotprod")))
#else
#define LCR_DOTPROD_TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

static void lcr_quantize_row_q8_0_neon(const float *x, lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int c = 0; c < 8; c++) {
            v[c] = vld1q_f32(x + b * LCR_QK + 4 * c);
            m = vmaxq_f32(m, vabsq_f32(v[c]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = lcr_fp32_to_fp16(d);
        for (int c = 0; c < 8; c += 2) {
            int32x4_t q0 = vcvtaq_s32_f32(vmulq_n_f32(v[c], id));
            int32x4_t q1 = vcvtaq_s32_f32(vmulq_n_f32(v[c + 1], id));
            int16x8_t h = vcombine_s16(vmovn_s32(q0), vmovn_s32(q1));
            vst1_s8(y[b].qs + 4 * c, vmovn_s16(h));
        }
    }
}

static void quantize_row_q4_0_neon(const float *x, lcr_block_q4_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * LCR_QK;
        float32x4_t v[8];
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int c = 0; c < 8; c++) {
            v[c] = vld1q_f32(xb + 4 * c);
            m = vmaxq_f32(m, vabsq_f32(v[c]));
        }
        const float max = lcr_q4_0_block_max(xb, vmaxvq_f32(m));
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = lcr_fp32_to_fp16(d);
        uint8_t q[32];
        for (int c = 0; c < 8; c += 2) {
            // (int8_t)(x*id + 8.5f): values lie in [0, 17), so truncation to int32 is the same
            int32x4_t q0 = vminq_s32(vcvtq_s32_f32(vaddq_f32(vmulq_n_f32(v[c], id), vdupq_n_f32(8.5f))), vdupq_n_s32(15));
            int32x4_t q1 = vminq_s32(vcvtq_s32_f32(vaddq_f32(vmulq_n_f32(v[c + 1], id), vdupq_n_f32(8.5f))), vdupq_n_s32(15));
            vst1_u8(q + 4 * c, vmovn_u16(vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(q0)), vmovn_u32(vreinterpretq_u32_s32(q1)))));
        }
        uint8x16_t lo = vld1q_u8(q), hi = vld1q_u8(q + 16);
        vst1q_u8(y[b].qs, vorrq_u8(lo, vshlq_n_u8(hi, 4)));
    }
}

static void dequantize_row_q8_0_neon(const lcr_block_q8_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = lcr_fp16_to_fp32(x[b].d);
        for (int c = 0; c < 2; c++) {
            int16x8_t lo = vmovl_s8(vld1_s8(x[b].qs + 16 * c)), hi = vmovl_s8(vld1_s8(x[b].qs + 16 * c + 8));
            float *o = y + b * LCR_QK + 16 * c;
            vst1q_f32(o, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d));
            vst1q_f32(o + 4, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo))), d));
            vst1q_f32(o + 8, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d));
            vst1q_f32(o + 12, vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi))), d));
        }
    }
}

/* 16 nibble bytes -> codes - 8 of elements 0..15 (w0) and 16..31 (w1). */
static inline void lcr_neon_q4_unpack(const uint8_t *qs, int8x16_t *w0, int8x16_t *w1) {
    const uint8x16_t raw = vld1q_u8(qs);
    *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
    *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), vdupq_n_s8(8));
}

static inline void lcr_neon_expand(int8x16_t v, float32x4_t out[4]) {
    int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
    out[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
    out[1] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)));
    out[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
    out[3] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)));
}

static void dequantize_row_q4_0_neon(const lcr_block_q4_0 *x, float *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = lcr_fp16_to_fp32(x[b].d);
        int8x16_t w0, w1;
        lcr_neon_q4_unpack(x[b].qs, &w0, &w1);
        float32x4_t f[8];
        lcr_neon_expand(w0, f);
        lcr_neon_expand(w1, f + 4);
        for (int c = 0; c < 8; c++) vst1q_f32(y + b * LCR_QK + 4 * c, vmulq_n_f32(f[c], d));
    }
}

/* dx[n, k] (+)= dy[n, m] . W[m, k], two dx rows per pass with 16 accumulators in registers. */
static void gemm_t_neon(const void *w, int is_q4, const float *dy, float *dx, int64_t n, int64_t m, int64_t k,
                        int64_t ldy, int64_t ldx, int accumulate) {
    const int64_t nb = k / LCR_QK;
    for (int64_t j = 0; j < n; j += 2) {
        const int rows = j + 1 < n ? 2 : 1;
        for (int64_t b = 0; b < nb; b++) {
            float32x4_t acc[2][8];
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 8; c++)
                    acc[r][c] = (accumulate && r < rows) ? vld1q_f32(dx + (j + r) * ldx + b * LCR_QK + 4 * c) : vdupq_n_f32(0.0f);
            for (int64_t i = 0; i < m; i++) {
                int8x16_t w0, w1;
                float d;
                if (is_q4) {
                    const lcr_block_q4_0 *blk = (const lcr_block_q4_0 *)w + i * nb + b;
                    lcr_neon_q4_unpack(blk->qs, &w0, &w1);
                    d = lcr_fp16_to_fp32(blk->d);
                } else {
                    const lcr_block_q8_0 *blk = (const lcr_block_q8_0 *)w + i * nb + b;
                    w0 = vld1q_s8(blk->qs);
                    w1 = vld1q_s8(blk->qs + 16);
                    d = lcr_fp16_to_fp32(blk->d);
                }
                float32x4_t v[8];
                lcr_neon_expand(w0, v);
                lcr_neon_expand(w1, v + 4);
                const float g0 = dy[j * ldy + i] * d;
                for (int c = 0; c < 8; c++) acc[0][c] = vfmaq_n_f32(acc[0][c], v[c], g0);
                if (rows == 2) {
                    const float g1 = dy[(j + 1) * ldy + i] * d;
                    for (int c = 0; c < 8; c++) acc[1][c] = vfmaq_n_f32(acc[1][c], v[c], g1);
                }
            }
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < 8; c++) vst1q_f32(dx + (j + r) * ldx + b * LCR_QK + 4 * c, acc[r][c]);
        }
    }
}

static void gemm_t_q8_0_neon(const lcr_block_q8_0 *w, const float *dy, float *dx, int64_t n, int64_t m, int64_t k,
                             int64_t ldy, int64_t ldx, int accumulate) {
    gemm_t_neon(w, 0, dy, dx, n, m, k, ldy, ldx, accumulate);
}

static void gemm_t_q4_0_neon(const lcr_block_q4_0 *w, const float *dy, float *dx, int64_t n, int64_t m, int64_t k,
                             int64_t ldy, int64_t ldx, int accumulate) {
    gemm_t_neon(w, 1, dy, dx, n, m, k, ldy, ldx, accumulate);
}

static void sgemv_neon(const float *w, const float *x, float *y, int64_t m, int64_t k, int64_t ldw, float alpha,
                       float beta) {
    for (int64_t i = 0; i < m; i += 4) {
        const int rows = m - i < 4 ? (int)(m - i) : 4;
        float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
        int64_t l = 0;
        for (; l + 4 <= k; l += 4) {
            const float32x4_t xv = vld1q_f32(x + l);
            for (int r = 0; r < rows; r++) acc[r] = vfmaq_f32(acc[r], vld1q_f32(w + (i + r) * ldw + l), xv);
        }
        for (int r = 0; r < rows; r++) {
            float s = vaddvq_f32(acc[r]);
            for (int64_t t = l; t < k; t++) s += w[(i + r) * ldw + t] * x[t];
            y[i + r] = beta == 0.0f ? alpha * s : alpha * s + beta * y[i + r];
        }
    }
}

float lcr_read_bandwidth_probe_neon(const float *x, int64_t n) {
    float32x4_t a[8];
    for (int c = 0; c < 8; c++) a[c] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int c = 0; c < 8; c++) a[c] = vaddq_f32(a[c], vld1q_f32(x + i + 4 * c));
    for (int c = 1; c < 8; c++) a[0] = vaddq_f32(a[0], a[c]);
    float s = vaddvq_f32(a[0]);
    for (; i < n; i++) s += x[i];
    return s;
}

/* Elementwise entries: the portable bodies compiled for AArch64 (NEON is baseline). */
#define LCR_EW_NAME(x) x##_neon
#define LCR_EW_TARGET
#include "../portable/lcr_elementwise_body.h"

#define LCR_IN_NAME(x) x##_neon
#define LCR_IN_TARGET
#include "../portable/lcr_infer_body.h"

#define LCR_QC_NAME(x) x##_neon
#define LCR_QC_TARGET
#include "../portable/lcr_qconv_body.h"

/* Quantized products, twice. */
#define LCR_NEON_DOT 0
#define LCR_NN(x) x##_neon
#define LCR_NT
#include "lcr_kernels_neon_body.h"
#undef LCR_NEON_DOT
#undef LCR_NN
#undef LCR_NT

#define LCR_NEON_DOT 1
#define LCR_NN(x) x##_neon_dotprod
#define LCR_NT LCR_DOTPROD_TARGET
#include "lcr_kernels_neon_body.h"

const lcr_kernel_table lcr_kernel_table_neon = {
    .isa = LCR_ISA_NEON,
    .quantize_row_q8_0 = lcr_quantize_row_q8_0_neon,
    .quantize_row_q4_0 = quantize_row_q4_0_neon,
    .dequantize_row_q8_0 = dequantize_row_q8_0_neon,
    .dequantize_row_q4_0 = dequantize_row_q4_0_neon,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_neon,
    .dot_q4_0_q8_0 = dot_q4_0_q8_0_neon,
    .gemm_q8_0 = gemm_q8_0_neon,
    .gemm_q4_0 = gemm_q4_0_neon,
    .gemm_t_q8_0 = gemm_t_q8_0_neon,
    .gemm_t_q4_0 = gemm_t_q4_0_neon,
    .sgemv = sgemv_neon,
    LCR_EW_TABLE_ENTRIES,
    LCR_IN_TABLE_ENTRIES,
    LCR_QC_TABLE_ENTRIES,
};

const lcr_kernel_table lcr_kernel_table_neon_dotprod = {
    .isa = LCR_ISA_NEON_DOTPROD,
    .quantize_row_q8_0 = lcr_quantize_row_q8_0_neon,
    .quantize_row_q4_0 = quantize_row_q4_0_neon,
    .dequantize_row_q8_0 = dequantize_row_q8_0_neon,
    .dequantize_row_q4_0 = dequantize_row_q4_0_neon,
    .dot_q8_0_q8_0 = dot_q8_0_q8_0_neon_dotprod,
    .dot_q4_0_q8_0 = dot_q4_0_q8_0_neon_dotprod,
    .gemm_q8_0 = gemm_q8_0_neon_dotprod,
    .gemm_q4_0 = gemm_q4_0_neon_dotprod,
    .gemm_t_q8_0 = gemm_t_q8_0_neon,
    .gemm_t_q4_0 = gemm_t_q4_0_neon,
    .sgemv = sgemv_neon,
    LCR_EW_TABLE_ENTRIES,
    LCR_IN_TABLE_ENTRIES,
    LCR_QC_TABLE_ENTRIES,
};

#endif /* __aarch64__ */
