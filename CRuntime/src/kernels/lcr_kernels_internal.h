/*
 * lcr_kernels_internal.h — shared pieces of the kernel implementations (not API).
 *
 * Each instruction-set file defines one lcr_kernel_table; dispatch.c is the only place that
 * chooses between them. The portable scalar bodies that some tables reuse are written once in
 * portable/lcr_elementwise_body.h and compiled per instruction set under a target attribute.
 */
#ifndef LCR_KERNELS_INTERNAL_H
#define LCR_KERNELS_INTERNAL_H

#include "lcr_kernels.h"

#include <math.h>
#include <string.h>

/* Tables, one per instruction set. Only those the build's architecture has exist. */
extern const lcr_kernel_table lcr_kernel_table_portable;
#if defined(__x86_64__)
extern const lcr_kernel_table lcr_kernel_table_avx2;
extern const lcr_kernel_table lcr_kernel_table_avx512vnni;
float lcr_read_bandwidth_probe_avx2(const float *x, int64_t n);
void lcr_fp16_to_fp32_row_f16c(const lcr_fp16 *x, float *y, int64_t n);
void lcr_fp32_to_fp16_row_f16c(const float *x, lcr_fp16 *y, int64_t n);
void lcr_quantize_row_q8_0_avx2(const float *x, lcr_block_q8_0 *y, int64_t k);
/* The VNNI table's direct quantized products (avx2/lcr_qconv_avx512.c). */
void lcr_qconv_acts_avx512(const lcr_conv_geometry *g, const float *img, int64_t oy0, int64_t oy1, void *acts);
void lcr_qconv_gemm_avx512(const void *packed, int64_t n, int64_t depth, const void *acts, int64_t rows, int64_t ow,
                           const float *bias, float *y, int64_t ldc, int act, int pool);
void lcr_conv_f32_direct_avx512(const lcr_conv_geometry *g, const float *img, const float *w, const float *bias,
                                int64_t n, float *y, int act, int pool);
void lcr_qgemv_avx512(const void *packed, const float *x, float *y, const float *bias, int64_t rows, int64_t n,
                      int64_t k, int64_t ldy, int act, void *scratch);
#endif
#if defined(__aarch64__)
extern const lcr_kernel_table lcr_kernel_table_neon;
extern const lcr_kernel_table lcr_kernel_table_neon_dotprod;
float lcr_read_bandwidth_probe_neon(const float *x, int64_t n);
#endif

float lcr_read_bandwidth_probe_portable(const float *x, int64_t n);

/* Portable quantization pieces other tables reuse (scalar, reference semantics). */
void lcr_quantize_row_q8_0_portable(const float *x, lcr_block_q8_0 *y, int64_t k);
void lcr_quantize_row_q4_0_portable(const float *x, lcr_block_q4_0 *y, int64_t k);
void lcr_dequantize_row_q8_0_portable(const lcr_block_q8_0 *x, float *y, int64_t k);
void lcr_dequantize_row_q4_0_portable(const lcr_block_q4_0 *x, float *y, int64_t k);

/* Cache blocking of the quantized GEMMs: weight rows per panel and input rows per panel.
 * A panel of 64 weight rows at k = 4096 is 64 * 4352 B = 272 KiB, which stays in L2 while
 * every input row of the n panel streams past it. */
#define LCR_GEMM_MB LCR_GEMM_PANEL_ROWS
#define LCR_GEMM_NB 64

/* The first index of the value of largest magnitude in one block (ggml keeps the first on ties). */
static inline float lcr_q4_0_block_max(const float *x, float amax) {
    if (amax == 0.0f) return 0.0f;  // ggml's reference keeps its initial 0.0f (so d = -0.0f)
    for (int j = 0; j < LCR_QK; j++) {
        if (fabsf(x[j]) == amax) return x[j];
    }
    return 0.0f;
}

#endif /* LCR_KERNELS_INTERNAL_H */
