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

/* Transposes the 8 x 8 block held in r[0..7] (r[i][j] = M[i][j]) in place: r[j][i] = M[i][j].
 * Three rounds of two-source shuffles (unpack pairs, pairs of pairs, halves). */
LCR_IN_TARGET static inline void LCR_IN_NAME(transpose8)(LCR_IN_V r[8]) {
    LCR_IN_V t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* 8 x 8 tiles: eight rows of x (positions) are read as vectors, eight channels at a time,
 * transposed in registers and written as eight row pieces of y; the remainder goes element by
 * element. */
LCR_IN_TARGET static void LCR_IN_NAME(transpose_bias_act)(const float *x, const float *bias, float *y,
                                                          int64_t positions, int64_t channels, int64_t ldx, int act) {
    int64_t c0 = 0;
    for (; c0 + 8 <= channels; c0 += 8) {
        LCR_IN_V bv = {0, 0, 0, 0, 0, 0, 0, 0};
        if (bias) bv = LCR_IN_NAME(load8)(bias + c0);
        int64_t p0 = 0;
        for (; p0 + 8 <= positions; p0 += 8) {
            LCR_IN_V t[8];
            for (int r = 0; r < 8; r++) {
                t[r] = LCR_IN_NAME(load8)(x + (p0 + r) * ldx + c0) + bv;
                if (act == LCR_ACT_RELU) t[r] = LCR_IN_NAME(relu8)(t[r]);
            }
            LCR_IN_NAME(transpose8)(t);
            for (int c = 0; c < 8; c++) LCR_IN_NAME(store8)(y + (c0 + c) * positions + p0, t[c]);
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

/* Sum of the eight lanes, in a fixed order (pairs, then pairs of pairs). */
LCR_IN_TARGET static inline float LCR_IN_NAME(hsum8)(LCR_IN_V v) {
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* C = alpha A . B^T + beta C with both operands read along k where they lie (no packing): tiles
 * of four rows of A by two rows of B keep eight accumulator vectors, and each step of eight k
 * loads four vectors of A and two of B for eight multiply-adds. Rows and columns past the last
 * full tile go in tiles of one row (or one column); k past the last multiple of 8 goes scalar. */
LCR_IN_TARGET static void LCR_IN_NAME(sgemm_nt)(const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                                                int64_t ldc, int64_t m, int64_t n, int64_t k, float alpha, float beta) {
    const int64_t k8 = k / 8 * 8;
    for (int64_t i = 0; i < m; i += 4) {
        const int rows = m - i < 4 ? (int)(m - i) : 4;
        for (int64_t j = 0; j < n; j += 2) {
            const int cols = n - j < 2 ? (int)(n - j) : 2;
            /* Missing rows and columns read the tile's first one again; their sums are dropped. */
            const float *a0 = a + i * lda, *a1 = a + (i + (rows > 1 ? 1 : 0)) * lda;
            const float *a2 = a + (i + (rows > 2 ? 2 : 0)) * lda, *a3 = a + (i + (rows > 3 ? 3 : 0)) * lda;
            const float *b0 = b + j * ldb, *b1 = b + (j + (cols > 1 ? 1 : 0)) * ldb;
            LCR_IN_V s00 = {0, 0, 0, 0, 0, 0, 0, 0}, s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
            for (int64_t l = 0; l < k8; l += 8) {
                const LCR_IN_V x0 = LCR_IN_NAME(load8)(b0 + l), x1 = LCR_IN_NAME(load8)(b1 + l);
                LCR_IN_V r = LCR_IN_NAME(load8)(a0 + l);
                s00 += r * x0; s01 += r * x1;
                r = LCR_IN_NAME(load8)(a1 + l);
                s10 += r * x0; s11 += r * x1;
                r = LCR_IN_NAME(load8)(a2 + l);
                s20 += r * x0; s21 += r * x1;
                r = LCR_IN_NAME(load8)(a3 + l);
                s30 += r * x0; s31 += r * x1;
            }
            float t[4][2] = {{LCR_IN_NAME(hsum8)(s00), LCR_IN_NAME(hsum8)(s01)}, {LCR_IN_NAME(hsum8)(s10), LCR_IN_NAME(hsum8)(s11)},
                             {LCR_IN_NAME(hsum8)(s20), LCR_IN_NAME(hsum8)(s21)}, {LCR_IN_NAME(hsum8)(s30), LCR_IN_NAME(hsum8)(s31)}};
            const float *ar[4] = {a0, a1, a2, a3}, *br[2] = {b0, b1};
            for (int r = 0; r < rows; r++) {
                for (int q = 0; q < cols; q++) {
                    float s = t[r][q];
                    for (int64_t l = k8; l < k; l++) s += ar[r][l] * br[q][l];
                    float *out = c + (i + r) * ldc + j + q;
                    *out = beta == 0.0f ? alpha * s : alpha * s + beta * *out;
                }
            }
        }
    }
}

/* c[i, j] = alpha * sum_l a[l, i] b[l, j] + beta * c[i, j] for a [k, m] (row stride lda), b [k, n]
 * (row stride ldb), c [m, n] (row stride ldc); beta == 0 ignores c's old values. For a short k
 * (a small batch's weight gradient dY^T X): sgemm_small_k's tiles of two rows of c by 32
 * columns, each k step broadcasting the pair a[l, i], a[l, i + 1] against four vectors of b's
 * row l, the sums over l in order. Columns past the last full tile go one at a time. */
LCR_IN_TARGET static void LCR_IN_NAME(sgemm_tn_small_k)(const float *a, int64_t lda, const float *b, int64_t ldb,
                                                        float *c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                                                        float alpha, float beta) {
    const LCR_IN_V al = {alpha, alpha, alpha, alpha, alpha, alpha, alpha, alpha};
    const LCR_IN_V be = {beta, beta, beta, beta, beta, beta, beta, beta};
    for (int64_t i = 0; i < m; i += 2) {
        const int64_t i1 = i + 1 < m ? i + 1 : i;
        float *c0 = c + i * ldc, *c1 = c + i1 * ldc;
        int64_t j = 0;
        for (; j + 32 <= n; j += 32) {
            LCR_IN_V s0 = {0, 0, 0, 0, 0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
            LCR_IN_V t0 = s0, t1 = s0, t2 = s0, t3 = s0;
            for (int64_t l = 0; l < k; l++) {
                const float *br = b + l * ldb + j;
                const LCR_IN_V x0 = LCR_IN_NAME(load8)(br), x1 = LCR_IN_NAME(load8)(br + 8);
                const LCR_IN_V x2 = LCR_IN_NAME(load8)(br + 16), x3 = LCR_IN_NAME(load8)(br + 24);
                const float u = a[l * lda + i], v = a[l * lda + i1];
                const LCR_IN_V uv = {u, u, u, u, u, u, u, u}, vv = {v, v, v, v, v, v, v, v};
                s0 += uv * x0; s1 += uv * x1; s2 += uv * x2; s3 += uv * x3;
                t0 += vv * x0; t1 += vv * x1; t2 += vv * x2; t3 += vv * x3;
            }
            s0 *= al; s1 *= al; s2 *= al; s3 *= al;
            t0 *= al; t1 *= al; t2 *= al; t3 *= al;
            if (beta != 0.0f) {
                /* Both rows' old values are read before either is written: with one row left
                 * (c1 == c0) the second row's sums equal the first's. */
                const LCR_IN_V o0 = LCR_IN_NAME(load8)(c0 + j), o1 = LCR_IN_NAME(load8)(c0 + j + 8);
                const LCR_IN_V o2 = LCR_IN_NAME(load8)(c0 + j + 16), o3 = LCR_IN_NAME(load8)(c0 + j + 24);
                const LCR_IN_V p0 = LCR_IN_NAME(load8)(c1 + j), p1 = LCR_IN_NAME(load8)(c1 + j + 8);
                const LCR_IN_V p2 = LCR_IN_NAME(load8)(c1 + j + 16), p3 = LCR_IN_NAME(load8)(c1 + j + 24);
                s0 += be * o0; s1 += be * o1; s2 += be * o2; s3 += be * o3;
                t0 += be * p0; t1 += be * p1; t2 += be * p2; t3 += be * p3;
            }
            LCR_IN_NAME(store8)(c0 + j, s0); LCR_IN_NAME(store8)(c0 + j + 8, s1);
            LCR_IN_NAME(store8)(c0 + j + 16, s2); LCR_IN_NAME(store8)(c0 + j + 24, s3);
            LCR_IN_NAME(store8)(c1 + j, t0); LCR_IN_NAME(store8)(c1 + j + 8, t1);
            LCR_IN_NAME(store8)(c1 + j + 16, t2); LCR_IN_NAME(store8)(c1 + j + 24, t3);
        }
        for (; j < n; j++) {
            float s = 0.0f, t = 0.0f;
            for (int64_t l = 0; l < k; l++) {
                s += a[l * lda + i] * b[l * ldb + j];
                t += a[l * lda + i1] * b[l * ldb + j];
            }
            const float o0 = c0[j], o1 = c1[j];
            c0[j] = beta == 0.0f ? alpha * s : alpha * s + beta * o0;
            c1[j] = beta == 0.0f ? alpha * t : alpha * t + beta * o1;
        }
    }
}

/* im2row of output rows oy0 ..< oy1 in two passes: im2col of those rows into cols
 * [depth, (oy1 - oy0) * ow] (with stride 1 each output row of a kernel tap is one shifted copy
 * of an input row, zero at the borders; other strides go element by element), then the tiled
 * transpose into rows [(oy1 - oy0) * ow, depth]. */
LCR_IN_TARGET static void LCR_IN_NAME(im2row)(const lcr_conv_geometry *g, const float *img, float *rows, float *cols,
                                              int64_t oy0, int64_t oy1) {
    const int64_t ow = lcr_conv_out_w(g), positions = (oy1 - oy0) * ow;
    const int64_t depth = g->channels * g->kernel_h * g->kernel_w;
    for (int64_t c = 0; c < g->channels; c++)
        for (int64_t ki = 0; ki < g->kernel_h; ki++)
            for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                float *row = cols + ((c * g->kernel_h + ki) * g->kernel_w + kj) * positions;
                const int64_t shift = kj * g->dilation_w - g->pad_w;  // ix = ox * stride_w + shift
                int64_t lo = -shift, hi = g->width - shift;             // stride 1: ox with 0 <= ix < width
                lo = lo < 0 ? 0 : (lo > ow ? ow : lo);
                hi = hi > ow ? ow : (hi < lo ? lo : hi);
                for (int64_t oy = oy0; oy < oy1; oy++) {
                    const int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dilation_h;
                    float *out = row + (oy - oy0) * ow;
                    if (iy < 0 || iy >= g->height) {
                        for (int64_t ox = 0; ox < ow; ox++) out[ox] = 0.0f;
                        continue;
                    }
                    const float *in = img + (c * g->height + iy) * g->width;
                    if (g->stride_w != 1) {
                        for (int64_t ox = 0; ox < ow; ox++) {
                            const int64_t ix = ox * g->stride_w + shift;
                            out[ox] = (ix >= 0 && ix < g->width) ? in[ix] : 0.0f;
                        }
                        continue;
                    }
                    in += shift;
                    for (int64_t ox = 0; ox < lo; ox++) out[ox] = 0.0f;
                    int64_t ox = lo;
                    for (; ox + 8 <= hi; ox += 8) LCR_IN_NAME(store8)(out + ox, LCR_IN_NAME(load8)(in + ox));
                    for (; ox < hi; ox++) out[ox] = in[ox];
                    for (ox = hi; ox < ow; ox++) out[ox] = 0.0f;
                }
            }
    LCR_IN_NAME(transpose_bias_act)(cols, NULL, rows, depth, positions, positions, LCR_ACT_NONE);
}

#undef LCR_IN_V
#undef LCR_IN_I

#define LCR_IN_TABLE_ENTRIES                                                                      \
    .bias_act = LCR_IN_NAME(bias_act), .transpose_bias_act = LCR_IN_NAME(transpose_bias_act),   \
    .sgemm_small_k = LCR_IN_NAME(sgemm_small_k), .im2row = LCR_IN_NAME(im2row),                  \
    .sgemm_nt = LCR_IN_NAME(sgemm_nt), .sgemm_tn_small_k = LCR_IN_NAME(sgemm_tn_small_k)
