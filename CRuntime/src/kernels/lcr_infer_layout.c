/*
 * lcr_infer_layout.c — layout helpers of the inference path (portable C; they move data and
 * compare, so one version serves every instruction set): im2row and 2-D pooling.
 */
#include "lcr_kernels_internal.h"

void lcr_im2row(const lcr_conv_geometry *g, const float *img, float *rows) {
    const int64_t oh = lcr_conv_out_h(g), ow = lcr_conv_out_w(g);
    const int64_t kk = g->kernel_h * g->kernel_w, depth = g->channels * kk;
    for (int64_t oy = 0; oy < oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) {
            float *row = rows + (oy * ow + ox) * depth;
            for (int64_t c = 0; c < g->channels; c++) {
                const float *plane = img + c * g->height * g->width;
                float *out = row + c * kk;
                for (int64_t ki = 0; ki < g->kernel_h; ki++) {
                    const int64_t iy = oy * g->stride_h - g->pad_h + ki * g->dilation_h;
                    for (int64_t kj = 0; kj < g->kernel_w; kj++) {
                        const int64_t ix = ox * g->stride_w - g->pad_w + kj * g->dilation_w;
                        out[ki * g->kernel_w + kj] =
                            (iy >= 0 && iy < g->height && ix >= 0 && ix < g->width) ? plane[iy * g->width + ix] : 0.0f;
                    }
                }
            }
        }
}

/* Max pooling over 2x2 windows with stride 2 and no padding: two input rows per output row,
 * branch-free (relu, when asked, is one more max with 0). */
static void max_pool_2x2(const lcr_pool_geometry *g, const float *x, float *y, int64_t oh, int64_t ow, int act) {
    const float floor_value = act == LCR_ACT_RELU ? 0.0f : -INFINITY;
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = x + c * g->height * g->width;
        float *out = y + c * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++) {
            const float *r0 = plane + 2 * oy * g->width, *r1 = r0 + g->width;
            float *o = out + oy * ow;
            for (int64_t ox = 0; ox < ow; ox++) {
                const float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                const float b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                const float m = a > b ? a : b;
                o[ox] = m > floor_value ? m : floor_value;
            }
        }
    }
}

void lcr_pool2d(const lcr_pool_geometry *g, const float *x, float *y, int is_max, int act) {
    const int64_t oh = (g->height + 2 * g->pad_h - g->kernel_h) / g->stride_h + 1;
    const int64_t ow = (g->width + 2 * g->pad_w - g->kernel_w) / g->stride_w + 1;
    if (is_max && g->kernel_h == 2 && g->kernel_w == 2 && g->stride_h == 2 && g->stride_w == 2 && g->pad_h == 0 &&
        g->pad_w == 0) {
        max_pool_2x2(g, x, y, oh, ow, act);
        return;
    }
    const float area = (float)(g->kernel_h * g->kernel_w);
    for (int64_t c = 0; c < g->channels; c++) {
        const float *plane = x + c * g->height * g->width;
        float *out = y + c * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                const int64_t y0 = oy * g->stride_h - g->pad_h, x0 = ox * g->stride_w - g->pad_w;
                float acc = is_max ? -INFINITY : 0.0f;
                for (int64_t ky = 0; ky < g->kernel_h; ky++) {
                    const int64_t iy = y0 + ky;
                    if (iy < 0 || iy >= g->height) continue;
                    for (int64_t kx = 0; kx < g->kernel_w; kx++) {
                        const int64_t ix = x0 + kx;
                        if (ix < 0 || ix >= g->width) continue;
                        const float v = plane[iy * g->width + ix];
                        if (is_max) {
                            if (v > acc) acc = v;
                        } else {
                            acc += v;
                        }
                    }
                }
                float v = is_max ? acc : acc / area;
                if (act == LCR_ACT_RELU) v = v > 0.0f ? v : 0.0f;
                out[oy * ow + ox] = v;
            }
    }
}
