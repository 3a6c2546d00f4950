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
    .leaky_relu = LCR_EW_NAME(leaky_relu), .sum = LCR_EW_NAME(sum), .dot = LCR_EW_NAME(dot),    \
    .softmax_rows = LCR_EW_NAME(softmax_rows), .log_softmax_rows = LCR_EW_NAME(log_softmax_rows), \
    .channel_stats = LCR_EW_CHANNEL_STATS
