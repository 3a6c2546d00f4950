/*
 * lcr_qconv_pack.c — weight packing of the direct quantized products (layouts in lcr_kernels.h,
 * "Direct quantized products"). Made once at load, the same for every instruction set, so it is
 * plain C. Codes are copied (Q4_0: expanded to nibble - 8) and scales converted from fp16 to
 * f32 exactly: no value changes.
 */
#include "lcr_kernels_internal.h"

/* The 32 signed codes and the f32 scale of block b of weight row `row`. */
static void weight_block(const void *w, int is_q4, int64_t nb, int64_t row, int64_t b, int8_t codes[32], float *d) {
    if (is_q4) {
        const lcr_block_q4_0 *blk = (const lcr_block_q4_0 *)w + row * nb + b;
        for (int l = 0; l < 16; l++) {
            codes[l] = (int8_t)((blk->qs[l] & 0x0f) - 8);
            codes[l + 16] = (int8_t)((blk->qs[l] >> 4) - 8);
        }
        *d = lcr_fp16_to_fp32(blk->d);
    } else {
        const lcr_block_q8_0 *blk = (const lcr_block_q8_0 *)w + row * nb + b;
        memcpy(codes, blk->qs, 32);
        *d = lcr_fp16_to_fp32(blk->d);
    }
}

static int32_t code_correction(const int8_t codes[32]) {
    int32_t s = 0;
    for (int l = 0; l < 32; l++) s += codes[l];
    return -128 * s;
}

void lcr_qconv_pack_weights(const void *w, int is_q4, int64_t n, int64_t depth, void *packed) {
    const int64_t nb = depth / LCR_QK;
    int8_t *codes = (int8_t *)packed;
    float *scales = (float *)(codes + n * nb * 32);
    int32_t *corr = (int32_t *)(scales + n * nb);
    for (int64_t c = 0; c < n; c++)
        for (int64_t b = 0; b < nb; b++) {
            int8_t q[32];
            float d;
            weight_block(w, is_q4, nb, c, b, q, &d);
            memcpy(codes + (b * n + c) * 32, q, 32);
            scales[b * n + c] = d;
            corr[b * n + c] = code_correction(q);
        }
}

void lcr_qgemv_pack_weights(const void *w, int is_q4, int64_t n, int64_t k, void *packed) {
    const int64_t nb = k / LCR_QK, np = lcr_qgemv_padded(n), nv = np / 16;
    int8_t *codes = (int8_t *)packed;
    float *scales = (float *)(codes + np * k);
    int32_t *corr = (int32_t *)(scales + np * nb);
    memset(packed, 0, lcr_qgemv_weights_bytes(n, k));
    for (int64_t g = 0; g * 8 < nv; g++) {
        const int64_t v0 = 8 * g, gv = (nv - v0) < 8 ? (nv - v0) : 8;
        int8_t *group = codes + v0 * 16 * k;
        for (int64_t v = v0; v < v0 + gv; v++)
            for (int64_t lane = 0; lane < 16; lane++) {
                const int64_t c = v * 16 + lane;
                if (c >= n) continue;
                for (int64_t b = 0; b < nb; b++) {
                    int8_t q[32];
                    float d;
                    weight_block(w, is_q4, nb, c, b, q, &d);
                    for (int t = 0; t < 8; t++)
                        memcpy(group + (((b * 8 + t) * gv + (v - v0)) * 16 + lane) * 4, q + 4 * t, 4);
                    scales[b * np + c] = d;
                    corr[b * np + c] = code_correction(q);
                }
            }
    }
}
