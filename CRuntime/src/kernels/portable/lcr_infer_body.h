/*
 * lcr_infer_body.h — the inference path's epilogues and its small-k product, written once with
 * GCC/Clang vector extensions (8 floats per vector; the compiler lowers them to AVX2, SSE2 or
 * NEON registers) and compiled for each instruction set.
 *
 * Included once per kernel file with LCR_IN_NAME(x) (a name-mangling macro) and LCR_IN_TARGET
 * (a function target attribute, empty for the portable and NEON tables) defined.
 * relu is max(x, 0) written as a bit mask (x > 0 keeps x; NaN and -0 become +0), the same
 * values as the scalar `x > 0 ? x : 0` of the elementwise entries.
 */
#ifndef LCR_IN_NAME
#error "define LCR_IN_NAME and LCR_IN_TARGET before including lcr_infer_body.h"
#endif

typedef float LCR_IN_NAME(v8) __attribute__((vector_size(32)));
typedef int32_t LCR_IN_NAME(i8) __attribute__((vector_size(32)));

#define LCR_IN_V LCR_IN_NAME(v8)
#define LCR_IN_I LCR_IN_NAME(i8)

LCR_IN_TARGET static inline LCR_IN_V LCR_IN_NAME(load8)(const float *p) {
    LCR_IN_V v;
    memcpy(&v, p, sizeof v);
    return v;
}

LCR_IN_TARGET static inline void LCR_IN_NAME(store8)(float *p, LCR_IN_V v) { memcpy(p, &v, sizeof v); }

LCR_IN_TARGET static inline LCR_IN_V LCR_IN_NAME(relu8)(LCR_IN_V v) {
    const LCR_IN_V zero = {0, 0, 0, 0, 0, 0, 0, 0};
    return (LCR_IN_V)((LCR_IN_I)v & (LCR_IN_I)(v > zero));
}

static inline float LCR_IN_NAME(relu1)(float v) { return v > 0.0f ? v : 0.0f; }

LCR_IN_TARGET static void LCR_IN_NAME(bias_act)(float *y, const float *bias, int64_t channels, int64_t spatial,
                                                int act) {
    for (int64_t c = 0; c < channels; c++) {
        float *row = y + c * spatial;
        const float b = bias ? bias[c] : 0.0f;
        const LCR_IN_V bv = {b, b, b, b, b, b, b, b};
        int64_t s = 0;
        if (act == LCR_ACT_RELU) {
            for (; s + 8 <= spatial; s += 8) LCR_IN_NAME(store8)(row + s, LCR_IN_NAME(relu8)(LCR_IN_NAME(load8)(row + s) + bv));
            for (; s < spatial; s++) row[s] = LCR_IN_NAME(relu1)(row[s] + b);
        } else {
            for (; s + 8 <= spatial; s += 8) LCR_IN_NAME(store8)(row + s, LCR_IN_NAME(load8)(row + s) + bv);
            for (; s < spatial; s++) row[s] = row[s] + b;
        }
    }
}

/* 8 x 8 tiles: eight rows of x (positions) are read as vectors, eight channels at a time, and
 * written as eight columns of y; the remainder goes element by element. */
LCR_IN_TARGET static void LCR_IN_NAME(transpose_bias_act)(const float *x, const float *bias, float *y,
                                                          int64_t positions, int64_t channels, int64_t ldx, int act) {
    int64_t c0 = 0;
    for (; c0 + 8 <= channels; c0 += 8) {
        LCR_IN_V bv = {0, 0, 0, 0, 0, 0, 0, 0};
        if (bias) bv = LCR_IN_NAME(load8)(bias + c0);
        int64_t p0 = 0;
        for (; p0 + 8 <= positions; p0 += 8) {
            float t[8][8];
            for (int r = 0; r < 8; r++) {
                LCR_IN_V v = LCR_IN_NAME(load8)(x + (p0 + r) * ldx + c0) + bv;
                if (act == LCR_ACT_RELU) v = LCR_IN_NAME(relu8)(v);
                LCR_IN_NAME(store8)(t[r], v);
            }
            for (int c = 0; c < 8; c++) {
                float *out = y + (c0 + c) * positions + p0;
                for (int r = 0; r < 8; r++) out[r] = t[r][c];
            }
        }
        for (; p0 < positions; p0++)
            for (int c = 0; c < 8; c++) {
                float v = x[p0 * ldx + c0 + c] + (bias ? bias[c0 + c] : 0.0f);
                y[(c0 + c) * positions + p0] = act == LCR_ACT_RELU ? LCR_IN_NAME(relu1)(v) : v;
            }
    }
    for (; c0 < channels; c0++)
        for (int64_t p = 0; p < positions; p++) {
            float v = x[p * ldx + c0] + (bias ? bias[c0] : 0.0f);
            y[c0 * positions + p] = act == LCR_ACT_RELU ? LCR_IN_NAME(relu1)(v) : v;
        }
}

/* Two rows of w by 32 columns of x per tile: eight accumulator vectors, each k step loads four
 * vectors of x and broadcasts two weights. Columns past the last full tile go one at a time. */
LCR_IN_TARGET static void LCR_IN_NAME(sgemm_small_k)(const float *w, const float *x, const float *bias, float *y,
                                                     int64_t m, int64_t k, int64_t p, int64_t ldx, int64_t ldy,
                                                     int act) {
    int64_t i = 0;
    for (; i < m; i += 2) {
        const int rows = i + 1 < m ? 2 : 1;
        const float *w0 = w + i * k, *w1 = w + (i + rows - 1) * k;
        const float b0 = bias ? bias[i] : 0.0f, b1 = bias ? bias[i + rows - 1] : 0.0f;
        float *y0 = y + i * ldy, *y1 = y + (i + rows - 1) * ldy;
        int64_t j = 0;
        for (; j + 32 <= p; j += 32) {
            LCR_IN_V a0 = {b0, b0, b0, b0, b0, b0, b0, b0}, a1 = a0, a2 = a0, a3 = a0;
            LCR_IN_V c0 = {b1, b1, b1, b1, b1, b1, b1, b1}, c1 = c0, c2 = c0, c3 = c0;
            for (int64_t kk = 0; kk < k; kk++) {
                const float *xr = x + kk * ldx + j;
                const LCR_IN_V x0 = LCR_IN_NAME(load8)(xr), x1 = LCR_IN_NAME(load8)(xr + 8);
                const LCR_IN_V x2 = LCR_IN_NAME(load8)(xr + 16), x3 = LCR_IN_NAME(load8)(xr + 24);
                const float u = w0[kk], v = w1[kk];
                const LCR_IN_V uv = {u, u, u, u, u, u, u, u}, vv = {v, v, v, v, v, v, v, v};
                a0 += uv * x0; a1 += uv * x1; a2 += uv * x2; a3 += uv * x3;
                c0 += vv * x0; c1 += vv * x1; c2 += vv * x2; c3 += vv * x3;
            }
            if (act == LCR_ACT_RELU) {
                a0 = LCR_IN_NAME(relu8)(a0); a1 = LCR_IN_NAME(relu8)(a1); a2 = LCR_IN_NAME(relu8)(a2); a3 = LCR_IN_NAME(relu8)(a3);
                c0 = LCR_IN_NAME(relu8)(c0); c1 = LCR_IN_NAME(relu8)(c1); c2 = LCR_IN_NAME(relu8)(c2); c3 = LCR_IN_NAME(relu8)(c3);
            }
            /* The second row is written last, so with one row left (rows == 1, y1 == y0) it holds
             * the same sums as the first. */
            LCR_IN_NAME(store8)(y0 + j, a0); LCR_IN_NAME(store8)(y0 + j + 8, a1);
            LCR_IN_NAME(store8)(y0 + j + 16, a2); LCR_IN_NAME(store8)(y0 + j + 24, a3);
            LCR_IN_NAME(store8)(y1 + j, c0); LCR_IN_NAME(store8)(y1 + j + 8, c1);
            LCR_IN_NAME(store8)(y1 + j + 16, c2); LCR_IN_NAME(store8)(y1 + j + 24, c3);
        }
        for (; j < p; j++) {
            float s0 = b0, s1 = b1;
            for (int64_t kk = 0; kk < k; kk++) {
                s0 += w0[kk] * x[kk * ldx + j];
                s1 += w1[kk] * x[kk * ldx + j];
            }
            y0[j] = act == LCR_ACT_RELU ? LCR_IN_NAME(relu1)(s0) : s0;
            y1[j] = act == LCR_ACT_RELU ? LCR_IN_NAME(relu1)(s1) : s1;
        }
    }
}

#undef LCR_IN_V
#undef LCR_IN_I

#define LCR_IN_TABLE_ENTRIES                                                                      \
    .bias_act = LCR_IN_NAME(bias_act), .transpose_bias_act = LCR_IN_NAME(transpose_bias_act),   \
    .sgemm_small_k = LCR_IN_NAME(sgemm_small_k)
