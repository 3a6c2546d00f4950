/*
 * lcr_kernels_neon_body.h — the quantized NEON kernels, written once and compiled twice by
 * lcr_kernels_neon.c: with LCR_NEON_DOT 0 (widening multiplies, any AArch64 core) and with
 * LCR_NEON_DOT 1 (SDOT, FEAT_DotProd, under a function target attribute).
 * Needs LCR_NN(name) (name mangling), LCR_NT (target attribute or empty), LCR_NEON_DOT.
 */

/* Exact int32 sum of 32 int8 products, in 4 lanes. Codes are within [-127, 127] (Q8_0) and
 * [-8, 7] (Q4_0), so two products per int16 lane in the widening path cannot overflow. */
LCR_NT static inline int32x4_t LCR_NN(block_dot)(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1) {
#if LCR_NEON_DOT
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
#else
    int16x8_t p0 = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p0 = vmlal_s8(p0, vget_high_s8(a0), vget_high_s8(b0));
    int16x8_t p1 = vmull_s8(vget_low_s8(a1), vget_low_s8(b1));
    p1 = vmlal_s8(p1, vget_high_s8(a1), vget_high_s8(b1));
    return vpadalq_s16(vpaddlq_s16(p0), p1);
#endif
}

LCR_NT static float LCR_NN(dot_q8_0_q8_0)(const lcr_block_q8_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        int32x4_t s = LCR_NN(block_dot)(vld1q_s8(x[b].qs), vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs), vld1q_s8(y[b].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), lcr_fp16_to_fp32(x[b].d) * lcr_fp16_to_fp32(y[b].d));
    }
    return vaddvq_f32(acc);
}

LCR_NT static float LCR_NN(dot_q4_0_q8_0)(const lcr_block_q4_0 *x, const lcr_block_q8_0 *y, int64_t k) {
    const int64_t nb = k / LCR_QK;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t w0, w1;
        lcr_neon_q4_unpack(x[b].qs, &w0, &w1);
        int32x4_t s = LCR_NN(block_dot)(w0, w1, vld1q_s8(y[b].qs), vld1q_s8(y[b].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(s), lcr_fp16_to_fp32(x[b].d) * lcr_fp16_to_fp32(y[b].d));
    }
    return vaddvq_f32(acc);
}

/* Register tile: MR (<= 4) weight rows x NR (<= 2) input rows per pass over k. */
LCR_NT static inline void LCR_NN(tile)(const void *wv, int is_q4, const lcr_block_q8_0 *a, int64_t nb, int MR, int NR,
                                       float *y, int64_t ldy, int64_t i, const float *bias) {
    float32x4_t acc[4][2];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        int8x16_t a0[2], a1[2];
        float da[2];
        for (int j = 0; j < NR; j++) {
            a0[j] = vld1q_s8(a[j * nb + b].qs);
            a1[j] = vld1q_s8(a[j * nb + b].qs + 16);
            da[j] = lcr_fp16_to_fp32(a[j * nb + b].d);
        }
        for (int r = 0; r < MR; r++) {
            int8x16_t w0, w1;
            float dw;
            if (is_q4) {
                const lcr_block_q4_0 *blk = (const lcr_block_q4_0 *)wv + r * nb + b;
                lcr_neon_q4_unpack(blk->qs, &w0, &w1);
                dw = lcr_fp16_to_fp32(blk->d);
            } else {
                const lcr_block_q8_0 *blk = (const lcr_block_q8_0 *)wv + r * nb + b;
                w0 = vld1q_s8(blk->qs);
                w1 = vld1q_s8(blk->qs + 16);
                dw = lcr_fp16_to_fp32(blk->d);
            }
            for (int j = 0; j < NR; j++)
                acc[r][j] = vfmaq_n_f32(acc[r][j], vcvtq_f32_s32(LCR_NN(block_dot)(w0, w1, a0[j], a1[j])), dw * da[j]);
        }
    }
    for (int j = 0; j < NR; j++)
        for (int r = 0; r < MR; r++) y[j * ldy + i + r] = vaddvq_f32(acc[r][j]) + (bias ? bias[i + r] : 0.0f);
}

LCR_NT static void LCR_NN(gemm)(const void *w, int is_q4, const float *x, float *y, const float *bias, int64_t n,
                                int64_t m, int64_t k, int64_t ldy, void *scratch) {
    const int64_t nb = k / LCR_QK;
    lcr_block_q8_0 *xq = (lcr_block_q8_0 *)scratch;
    for (int64_t j = 0; j < n; j++) lcr_quantize_row_q8_0_neon(x + j * k, xq + j * nb, k);
    const size_t wrow = is_q4 ? sizeof(lcr_block_q4_0) * (size_t)nb : sizeof(lcr_block_q8_0) * (size_t)nb;
    for (int64_t i0 = 0; i0 < m; i0 += LCR_GEMM_MB) {
        const int64_t i1 = i0 + LCR_GEMM_MB < m ? i0 + LCR_GEMM_MB : m;
        for (int64_t j0 = 0; j0 < n; j0 += LCR_GEMM_NB) {
            const int64_t j1 = j0 + LCR_GEMM_NB < n ? j0 + LCR_GEMM_NB : n;
            for (int64_t j = j0; j < j1; j += 2) {
                const int nr = j + 1 < j1 ? 2 : 1;
                int64_t i = i0;
                for (; i + 4 <= i1; i += 4) {
                    const void *wr = (const char *)w + (size_t)i * wrow;
                    if (nr == 2) LCR_NN(tile)(wr, is_q4, xq + j * nb, nb, 4, 2, y + j * ldy, ldy, i, bias);
                    else LCR_NN(tile)(wr, is_q4, xq + j * nb, nb, 4, 1, y + j * ldy, ldy, i, bias);
                }
                for (; i < i1; i++) {
                    const void *wr = (const char *)w + (size_t)i * wrow;
                    if (nr == 2) LCR_NN(tile)(wr, is_q4, xq + j * nb, nb, 1, 2, y + j * ldy, ldy, i, bias);
                    else LCR_NN(tile)(wr, is_q4, xq + j * nb, nb, 1, 1, y + j * ldy, ldy, i, bias);
                }
            }
        }
    }
}

LCR_NT static void LCR_NN(gemm_q8_0)(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias, int64_t n,
                                     int64_t m, int64_t k, int64_t ldy, void *scratch) {
    LCR_NN(gemm)(w, 0, x, y, bias, n, m, k, ldy, scratch);
}

LCR_NT static void LCR_NN(gemm_q4_0)(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias, int64_t n,
                                     int64_t m, int64_t k, int64_t ldy, void *scratch) {
    LCR_NN(gemm)(w, 1, x, y, bias, n, m, k, ldy, scratch);
}
