/*
 * lcr_elementwise_body.h — the scalar bodies of the elementwise and reduction entries.
 *
 * Included once per instruction set with LCR_EW_NAME(x) (a name-mangling macro) and
 * LCR_EW_TARGET (a function target attribute, empty for the portable table) defined. The SIMD
 * tables get these bodies compiled for their ISA (the compiler vectorises the simple loops);
 * they are memory-bound and have no hand-written intrinsics.
 */
#ifndef LCR_EW_NAME
#error "define LCR_EW_NAME and LCR_EW_TARGET before including lcr_elementwise_body.h"
#endif

LCR_EW_TARGET static void LCR_EW_NAME(add)(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

LCR_EW_TARGET static void LCR_EW_NAME(mul)(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

LCR_EW_TARGET static void LCR_EW_NAME(scale)(const float *a, float s, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = s * a[i];
}

LCR_EW_TARGET static void LCR_EW_NAME(axpy)(float alpha, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

LCR_EW_TARGET static void LCR_EW_NAME(relu)(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

LCR_EW_TARGET static void LCR_EW_NAME(relu_backward)(const float *x, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

LCR_EW_TARGET static void LCR_EW_NAME(leaky_relu)(const float *x, float slope, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

/* ELU (alpha 1) in float, branch-free so the loops vectorise. For x <= 0, x = k ln2 + r with
 * |r| <= ln2/2 up to the rounding of k (Cody-Waite, two-part ln2), e^r - 1 by its degree-7
 * Taylor polynomial (truncation below 1.5e-8 relative) and e^x - 1 = 2^k (e^r - 1) + (2^k - 1),
 * exact in r when k = 0, so small |x| keep their relative accuracy. x is clamped to [-88, 0]
 * first (e^-88 - 1 is -1 in float, and 2^k stays a normal float or zero), so every
 * intermediate is finite; a positive x or a NaN is passed through by the final select. */
#ifndef LCR_EW_ELU_PARTS
#define LCR_EW_ELU_PARTS
static inline void lcr_elu_parts(float x, float *em, float *scale) {
    float c = x < 0.0f ? (x > -88.0f ? x : -88.0f) : 0.0f;
    /* k = round(c / ln2): adding and subtracting 1.5 * 2^23 rounds to an integer (|k| <= 127). */
    float k = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = (c - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    *em = p * r;
    union { int32_t i; float f; } u;
    u.i = ((int32_t)k + 127) << 23;
    *scale = u.f;
}
#endif

LCR_EW_TARGET static void LCR_EW_NAME(elu)(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float em, s, v = x[i];
        lcr_elu_parts(v, &em, &s);
        float neg = s * em + (s - 1.0f);
        y[i] = (v > 0.0f || v != v) ? v : neg;
    }
}

/* dx (+)= dy * ELU'(x): 1 for x > 0, e^x = 2^k e^r otherwise (NaN for a NaN x). */
LCR_EW_TARGET static void LCR_EW_NAME(elu_backward)(const float *x, const float *dy, float *dx, int64_t n,
                                                    int accumulate) {
    if (accumulate) {
        for (int64_t i = 0; i < n; i++) {
            float em, s, v = x[i];
            lcr_elu_parts(v, &em, &s);
            float d = v > 0.0f ? 1.0f : (v != v ? v : s * (em + 1.0f));
            dx[i] += dy[i] * d;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            float em, s, v = x[i];
            lcr_elu_parts(v, &em, &s);
            float d = v > 0.0f ? 1.0f : (v != v ? v : s * (em + 1.0f));
            dx[i] = dy[i] * d;
        }
    }
}

/* Reductions keep 8 partial sums so the loop vectorises without reassociation flags. */
LCR_EW_TARGET static float LCR_EW_NAME(sum)(const float *x, int64_t n) {
    float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) p[l] += x[i + l];
    float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < n; i++) s += x[i];
    return s;
}

LCR_EW_TARGET static float LCR_EW_NAME(dot)(const float *x, const float *y, int64_t n) {
    float p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) p[l] += x[i + l] * y[i + l];
    float s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

LCR_EW_TARGET static void LCR_EW_NAME(softmax_rows)(const float *x, float *y, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = -INFINITY;
        for (int64_t i = 0; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
        float s = 0.0f;
        for (int64_t i = 0; i < cols; i++) {
            float e = expf(xr[i] - mx);
            yr[i] = e;
            s += e;
        }
        float inv = 1.0f / s;
        for (int64_t i = 0; i < cols; i++) yr[i] *= inv;
    }
}

LCR_EW_TARGET static void LCR_EW_NAME(log_softmax_rows)(const float *x, float *y, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        float mx = -INFINITY;
        for (int64_t i = 0; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
        float s = 0.0f;
        for (int64_t i = 0; i < cols; i++) s += expf(xr[i] - mx);
        float lse = mx + logf(s);
        for (int64_t i = 0; i < cols; i++) yr[i] = xr[i] - lse;
    }
}

/* Two passes (mean, then squared deviations), accumulated in double: batch * spatial can be
 * large and a one-pass E[x^2] - E[x]^2 in float loses the variance of offset data.
 * A table with its own version defines LCR_EW_CHANNEL_STATS (the function's name) first. */
#ifndef LCR_EW_CHANNEL_STATS
#define LCR_EW_CHANNEL_STATS LCR_EW_NAME(channel_stats)
LCR_EW_TARGET static void LCR_EW_NAME(channel_stats)(const float *x, int64_t batch, int64_t channels,
                                                     int64_t spatial, float *sum, float *mean, float *var) {
    const double count = (double)(batch * spatial);
    for (int64_t c = 0; c < channels; c++) {
        double s = 0.0;
        for (int64_t b = 0; b < batch; b++) {
            const float *p = x + (b * channels + c) * spatial;
            for (int64_t i = 0; i < spatial; i++) s += p[i];
        }
        double mu = count > 0 ? s / count : 0.0;
        if (sum) sum[c] = (float)s;
        if (mean) mean[c] = (float)mu;
        if (var) {
            double v = 0.0;
            for (int64_t b = 0; b < batch; b++) {
                const float *p = x + (b * channels + c) * spatial;
                for (int64_t i = 0; i < spatial; i++) {
                    double d = p[i] - mu;
                    v += d * d;
                }
            }
            var[c] = count > 0 ? (float)(v / count) : 0.0f;
        }
    }
}
#endif

#define LCR_EW_TABLE_ENTRIES                                                                     \
    .add = LCR_EW_NAME(add), .mul = LCR_EW_NAME(mul), .scale = LCR_EW_NAME(scale),             \
    .axpy = LCR_EW_NAME(axpy), .relu = LCR_EW_NAME(relu), .relu_backward = LCR_EW_NAME(relu_backward), \
    .leaky_relu = LCR_EW_NAME(leaky_relu), .elu = LCR_EW_NAME(elu),             \
    .elu_backward = LCR_EW_NAME(elu_backward), .sum = LCR_EW_NAME(sum), .dot = LCR_EW_NAME(dot),    \
    .softmax_rows = LCR_EW_NAME(softmax_rows), .log_softmax_rows = LCR_EW_NAME(log_softmax_rows), \
    .channel_stats = LCR_EW_CHANNEL_STATS
