/*
 * lcr_kernels.h — Lichen's compute kernels (internal to Lichen; robot binaries use lichen.h).
 *
 * Every kernel family exists as a portable C version and a SIMD version (AVX2+FMA on x86-64,
 * NEON on aarch64, NEON+dotprod where the CPU has it). Dispatch happens in one place:
 * lcr_kernels_for(isa) returns the table of one instruction set, lcr_kernels_best() the
 * fastest the running CPU supports (chosen once, at first call, from CPUID / AT_HWCAP).
 *
 * Conventions
 * - Matrices are row-major. "W[m, k]" is m rows of k values; quantized rows hold k/32 blocks.
 * - Block formats are byte for byte ggml's: Q8_0 = { fp16 d; int8 qs[32] } (34 bytes),
 *   Q4_0 = { fp16 d; uint8 qs[16] } (18 bytes, low nibbles are values 0..15, high 16..31).
 * - k must be a multiple of LCR_QK (32) for every quantized kernel. Callers (Swift) validate
 *   shapes, buffer sizes and alignment before calling: these functions trust their arguments.
 * - No kernel allocates. Scratch, where needed, is caller-provided and its size is given by a
 *   *_scratch_bytes() helper.
 * - Results of SIMD and portable versions agree exactly on integer parts (quantized codes,
 *   int32 block sums) and to float rounding on float sums (summation order differs).
 */
#ifndef LCR_KERNELS_H
#define LCR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LCR_QK 32
#define LCR_Q8_0_BLOCK_BYTES 34
#define LCR_Q4_0_BLOCK_BYTES 18

typedef uint16_t lcr_fp16;

typedef struct {
    lcr_fp16 d;
    int8_t qs[LCR_QK];
} lcr_block_q8_0;

typedef struct {
    lcr_fp16 d;
    uint8_t qs[LCR_QK / 2];
} lcr_block_q4_0;

_Static_assert(sizeof(lcr_block_q8_0) == LCR_Q8_0_BLOCK_BYTES, "Q8_0 block must be 34 bytes (ggml)");
_Static_assert(sizeof(lcr_block_q4_0) == LCR_Q4_0_BLOCK_BYTES, "Q4_0 block must be 18 bytes (ggml)");

/// Instruction sets a kernel table can be built for.
typedef enum {
    LCR_ISA_PORTABLE = 0,
    LCR_ISA_AVX2 = 1,          // x86-64 AVX2 + FMA + F16C
    LCR_ISA_NEON = 2,          // aarch64 Advanced SIMD
    LCR_ISA_NEON_DOTPROD = 3,  // aarch64 Advanced SIMD + SDOT (FEAT_DotProd)
    LCR_ISA_AVX512VNNI = 4,    // x86-64 AVX2 table with AVX-512 VL/BW + VNNI quantized kernels
    LCR_ISA_COUNT = 5
} lcr_isa;

/// Name of an instruction set ("portable", "avx2", "neon", "neon-dotprod", "avx512vnni"); "unknown" otherwise.
const char *lcr_isa_name(lcr_isa isa);
/// 1 if the running CPU (and this build) supports `isa`, else 0.
int lcr_isa_supported(lcr_isa isa);
/// The fastest supported instruction set.
lcr_isa lcr_isa_best(void);

/* ---- fp16 (IEEE binary16), bit-exact with ggml / numpy: round to nearest even ---- */
float lcr_fp16_to_fp32(lcr_fp16 h);
lcr_fp16 lcr_fp32_to_fp16(float f);
void lcr_fp16_to_fp32_row(const lcr_fp16 *x, float *y, int64_t n);
void lcr_fp32_to_fp16_row(const float *x, lcr_fp16 *y, int64_t n);

struct lcr_conv_geometry_s;  // lcr_conv_geometry, below

/*
 * One instruction set's kernels. Every pointer is non-NULL in a table returned by
 * lcr_kernels_for(); a family without a hand-written SIMD body uses the portable body
 * compiled for that instruction set (stated per entry).
 */
typedef struct lcr_kernel_table {
    lcr_isa isa;

    /* -- block quantization (k % 32 == 0); byte-exact with ggml's reference rows -- */
    /// Q8_0: d = max|x|/127, q = roundf(x/d) (half away from zero), d stored as fp16.
    void (*quantize_row_q8_0)(const float *x, lcr_block_q8_0 *y, int64_t k);
    /// Q4_0: d = m/-8 where m is the value of largest magnitude, q = min(15, trunc(x/d + 8.5)).
    void (*quantize_row_q4_0)(const float *x, lcr_block_q4_0 *y, int64_t k);
    void (*dequantize_row_q8_0)(const lcr_block_q8_0 *x, float *y, int64_t k);
    void (*dequantize_row_q4_0)(const lcr_block_q4_0 *x, float *y, int64_t k);

    /* -- quantized dot products, int32 accumulation within a block -- */
    /// sum over blocks b of d_x[b]*d_y[b] * sum_i x_q[b,i]*y_q[b,i]
    float (*dot_q8_0_q8_0)(const lcr_block_q8_0 *x, const lcr_block_q8_0 *y, int64_t k);
    /// Q4_0 weights (values q-8) times Q8_0 activations.
    float (*dot_q4_0_q8_0)(const lcr_block_q4_0 *x, const lcr_block_q8_0 *y, int64_t k);

    /*
     * -- quantized matrix x vector / matrix x matrix --
     * y[n, m] = x[n, k] . W[m, k]^T (+ bias[m] if bias != NULL), x fp32 quantized on the fly
     * per row to Q8_0 (byte-exact codes and scales) into `scratch`, which holds at least
     * lcr_gemm_q_scratch_bytes(n, m, k) bytes at any alignment (tables may also repack a
     * panel of weight rows there). ldy is the row stride of y in floats (>= m). n == 1 is
     * the GEMV. x rows are contiguous (row stride k).
     */
    void (*gemm_q8_0)(const lcr_block_q8_0 *w, const float *x, float *y, const float *bias,
                      int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch);
    void (*gemm_q4_0)(const lcr_block_q4_0 *w, const float *x, float *y, const float *bias,
                      int64_t n, int64_t m, int64_t k, int64_t ldy, void *scratch);

    /*
     * -- transposed product for backprop through a frozen quantized weight --
     * dx[n, k] (+)= dy[n, m] . W[m, k]; accumulate != 0 adds to dx, else overwrites.
     * ldy / ldx are row strides in floats. No scratch.
     */
    void (*gemm_t_q8_0)(const lcr_block_q8_0 *w, const float *dy, float *dx,
                        int64_t n, int64_t m, int64_t k, int64_t ldy, int64_t ldx, int accumulate);
    void (*gemm_t_q4_0)(const lcr_block_q4_0 *w, const float *dy, float *dx,
                        int64_t n, int64_t m, int64_t k, int64_t ldy, int64_t ldx, int accumulate);

    /* -- fp32 matrix x vector (the batch-1 path; BLIS's gemm is slow at m = 1) --
     * y[m] = alpha * W[m, k] . x[k] + beta * y[m], W row stride ldw floats. */
    void (*sgemv)(const float *w, const float *x, float *y, int64_t m, int64_t k, int64_t ldw,
                  float alpha, float beta);

    /* -- elementwise and reductions (SIMD table: the portable body compiled for the ISA) -- */
    void (*add)(const float *a, const float *b, float *y, int64_t n);          // y = a + b
    void (*mul)(const float *a, const float *b, float *y, int64_t n);          // y = a * b
    void (*scale)(const float *a, float s, float *y, int64_t n);               // y = s * a
    void (*axpy)(float alpha, const float *x, float *y, int64_t n);            // y += alpha * x
    void (*relu)(const float *x, float *y, int64_t n);                        // y = max(x, 0)
    void (*relu_backward)(const float *x, const float *dy, float *dx, int64_t n); // dx = x > 0 ? dy : 0
    void (*leaky_relu)(const float *x, float slope, float *y, int64_t n);
    /// y = x > 0 ? x : e^x - 1 (ELU, alpha 1; NaN passes through), in float (see the body).
    void (*elu)(const float *x, float *y, int64_t n);
    /// dx = dy * (x > 0 ? 1 : e^x), or dx += that when accumulate != 0.
    void (*elu_backward)(const float *x, const float *dy, float *dx, int64_t n, int accumulate);
    float (*sum)(const float *x, int64_t n);
    float (*dot)(const float *x, const float *y, int64_t n);
    /// Row-wise softmax / log-softmax over rows of `cols` values (max-subtracted).
    void (*softmax_rows)(const float *x, float *y, int64_t rows, int64_t cols);
    void (*log_softmax_rows)(const float *x, float *y, int64_t rows, int64_t cols);
    /// Per-channel statistics of x[batch, channels, spatial] (NCHW flattened; spatial = H*W):
    /// sum[c], mean[c] and biased variance var[c] over batch*spatial values (any output may be NULL).
    void (*channel_stats)(const float *x, int64_t batch, int64_t channels, int64_t spatial,
                          float *sum, float *mean, float *var);

    /* -- inference epilogues and small products (lcr_infer_body.h, compiled for each ISA with
     *    GCC/Clang vector extensions; act: LCR_ACT_NONE or LCR_ACT_RELU) -- */
    /// y[c, s] = act(y[c, s] + bias[c]) for y [channels, spatial]; bias may be NULL.
    void (*bias_act)(float *y, const float *bias, int64_t channels, int64_t spatial, int act);
    /// y[c, p] = act(x[p, c] + bias[c]): x [positions, channels] (row stride ldx floats) to
    /// y [channels, positions] (NCHW); bias may be NULL.
    void (*transpose_bias_act)(const float *x, const float *bias, float *y, int64_t positions,
                               int64_t channels, int64_t ldx, int act);
    /// y[i, j] = act(bias[i] + sum_k w[i, k] * x[k, j]) for w [m, k], x [k, p] (row stride ldx),
    /// y [m, p] (row stride ldy); bias may be NULL. Register tiles of 32 columns; meant for small
    /// k (a convolution with few input channels), where a packing GEMM spends more than it saves.
    void (*sgemm_small_k)(const float *w, const float *x, const float *bias, float *y, int64_t m,
                          int64_t k, int64_t p, int64_t ldx, int64_t ldy, int act);
    /// c[i, j] = alpha * sum_l a[i, l] b[j, l] + beta * c[i, j] for a [m, k] (row stride lda),
    /// b [n, k] (row stride ldb), c [m, n] (row stride ldc); beta == 0 ignores c's old values.
    /// Both operands are read along k where they lie, with no packing: for the few rows of a
    /// small batch (lcr_sgemm takes it for 2 <= m <= 32), where packing both operands costs more
    /// than the product.
    void (*sgemm_nt)(const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                     int64_t m, int64_t n, int64_t k, float alpha, float beta);
    /// c[i, j] = alpha * sum_l a[l, i] b[l, j] + beta * c[i, j] for a [k, m] (row stride lda),
    /// b [k, n] (row stride ldb), c [m, n] (row stride ldc); beta == 0 ignores c's old values.
    /// Register tiles of two rows by 32 columns, no packing: for a short k (lcr_sgemm takes it
    /// for k <= 16, a small batch's weight gradient dY^T X).
    void (*sgemm_tn_small_k)(const float *a, int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                             int64_t m, int64_t n, int64_t k, float alpha, float beta);
    /// The im2row rows of output rows oy0 ..< oy1: rows [(oy1 - oy0) * ow, c * kh * kw], the
    /// same values as rows oy0 * ow ..< oy1 * ow of lcr_im2row's result, through `cols`
    /// (scratch of as many floats): im2col with vector row copies, then 8 x 8 register transposes.
    void (*im2row)(const struct lcr_conv_geometry_s *g, const float *img, float *rows, float *cols,
                   int64_t oy0, int64_t oy1);

    /* -- direct quantized convolution and packed GEMV (layouts below, "Direct quantized
     *    products"); qconv_native says whether these three are this table's own SIMD code
     *    (1) or the portable body compiled for it (0): the inference path prefers them only
     *    when native, and keeps the im2row + gemm path otherwise -- */
    int qconv_native;
    /// The activation panel of output rows oy0 ..< oy1 of a convolution with stride_w == 1 and
    /// kernel_h, kernel_w <= 16,
    /// quantized straight from the NCHW image: every position's im2row row (lcr_im2row's order)
    /// as Q8_0 blocks byte-exact with quantize_row_q8_0, stored as lcr_qconv_acts_bytes says.
    void (*qconv_acts)(const struct lcr_conv_geometry_s *g, const float *img, int64_t oy0, int64_t oy1, void *acts);
    /// y = act(bias + W . x) over a panel from qconv_acts of `rows` output rows of width ow, for
    /// n output channels of packed weights (lcr_qconv_pack_weights) with `depth` values each.
    /// pool == 0: y[c * ldc + r * ow + x]; pool != 0 (rows even): 2 x 2 stride-2 max pooling
    /// fused, y[c * ldc + (r / 2) * (ow / 2) + x / 2] (an odd last column is dropped, as a
    /// 2 x 2 pool without padding drops it). bias may be NULL.
    void (*qconv_gemm)(const void *packed, int64_t n, int64_t depth, const void *acts, int64_t rows, int64_t ow,
                       const float *bias, float *y, int64_t ldc, int act, int pool);
    /// y[j, i] = act(bias[i] + sum over blocks of d_w d_x (w . q8_0(x[j]))) for rows j < rows of
    /// x [rows, k] (row stride k) against packed weights (lcr_qgemv_pack_weights) of n outputs;
    /// y row stride ldy. scratch: lcr_qgemv_scratch_bytes(k) bytes, any alignment.
    void (*qgemv)(const void *packed, const float *x, float *y, const float *bias, int64_t rows, int64_t n,
                  int64_t k, int64_t ldy, int act, void *scratch);
    /// y = act(bias + conv(img)) for an f32 convolution with stride 1 and one group, weights
    /// [n, c * kh * kw] in im2row order, read straight from the NCHW image (no im2col), output
    /// NCHW planes of oh * ow values; pool != 0 fuses the 2 x 2 stride-2 max pool as qconv_gemm
    /// does (planes of (oh / 2) * (ow / 2)). kernel_w <= 16, c * kh * kw <= 64. bias may be
    /// NULL. Under the same qconv_native flag.
    void (*conv_f32_direct)(const struct lcr_conv_geometry_s *g, const float *img, const float *w, const float *bias,
                            int64_t n, float *y, int act, int pool);
} lcr_kernel_table;

/// The table for `isa`, or NULL when the CPU or this build does not support it.
const lcr_kernel_table *lcr_kernels_for(lcr_isa isa);
/// The table of lcr_isa_best().
const lcr_kernel_table *lcr_kernels_best(void);

/// Bytes of one Q8_0 / Q4_0 row of k values (k % 32 == 0).
static inline size_t lcr_q8_0_row_bytes(int64_t k) { return (size_t)(k / LCR_QK) * LCR_Q8_0_BLOCK_BYTES; }
static inline size_t lcr_q4_0_row_bytes(int64_t k) { return (size_t)(k / LCR_QK) * LCR_Q4_0_BLOCK_BYTES; }

/// Panel of weight rows a table may repack into GEMM scratch (multiple of 8).
#define LCR_GEMM_PANEL_ROWS 64
/// Scratch bytes every table's gemm_q8_0 / gemm_q4_0 needs for n input rows, m weight rows, k
/// values per row (k % 32 == 0): activations as 32 codes + an fp32 scale per block (36 bytes,
/// more than a 34-byte Q8_0 block), a repacked panel of up to 64 weight rows (320 bytes per
/// 8 rows and block), and 64 bytes of alignment slack.
static inline size_t lcr_gemm_q_scratch_bytes(int64_t n, int64_t m, int64_t k) {
    const size_t nb = (size_t)(k / LCR_QK);
    const size_t rows = m < LCR_GEMM_PANEL_ROWS ? (size_t)((m + 7) & ~(int64_t)7) : LCR_GEMM_PANEL_ROWS;
    return (size_t)n * nb * 36 + rows / 8 * nb * 320 + 64;
}

/* ---- fp32 GEMM through BLIS (single-threaded, serial in the calling thread) ----
 * C[m, n] = alpha * op(A) . op(B) + beta * C, row-major, leading dimensions in floats.
 * op(A) is [m, k]: A is [m, k] (trans_a = 0) or [k, m] (trans_a = 1); likewise op(B) [k, n].
 * m == 1 with trans_a == 0 goes to the table's sgemv (BLIS's gemm is slow for one row). */
void lcr_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc);
/// The same product always through BLIS (no GEMV shortcut): the benchmark baseline.
void lcr_sgemm_blis(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc);

/* ---- im2col / col2im (NCHW, one image; groups are handled by the caller) ----
 * col has shape [c * kh * kw, oh * ow] with oh = (h + 2*ph - dh*(kh-1) - 1)/sh + 1 (likewise ow).
 * col2im accumulates col back into img (img must be zeroed by the caller first if wanted). */
typedef struct lcr_conv_geometry_s {
    int64_t channels, height, width;      // input image
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
    int64_t dilation_h, dilation_w;
} lcr_conv_geometry;

int64_t lcr_conv_out_h(const lcr_conv_geometry *g);
int64_t lcr_conv_out_w(const lcr_conv_geometry *g);
void lcr_im2col(const lcr_conv_geometry *g, const float *img, float *col);
void lcr_col2im(const lcr_conv_geometry *g, const float *col, float *img);
/* conv1d is conv2d with height 1, kernel_h 1, stride_h 1, pad_h 0, dilation_h 1. */

/* ---- inference layout helpers (portable C, not per ISA) ---- */

#define LCR_ACT_NONE 0
#define LCR_ACT_RELU 1

/* im2row: the transpose of im2col. rows has shape [oh * ow, c * kh * kw]: row p holds the
 * window of output position p in the weight row order (c, ki, kj), zero where it reads padding. */
void lcr_im2row(const lcr_conv_geometry *g, const float *img, float *rows);

/* 2-D pooling of one NCHW image x [channels, height, width] into y [channels, oh, ow] with
 * oh = (height + 2*pad_h - kernel_h)/stride_h + 1 (likewise ow): max (is_max != 0; padding is
 * -infinity) or average (padding counts as zero, every window divides by kh * kw), then act. */
typedef struct {
    int64_t channels, height, width;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;
} lcr_pool_geometry;

void lcr_pool2d(const lcr_pool_geometry *g, const float *x, float *y, int is_max, int act);

/* ---- Direct quantized products (Q8_0 / Q4_0 weights x Q8_0 activations, VPDPBUSD-shaped) ----
 *
 * Both products multiply unsigned activation codes (Q8_0 code + 128) by signed weight codes, four
 * byte products per int32 lane, and start each block's int32 sum at the weight correction
 * -128 * (sum of the block's weight codes), so the block sum is exactly sum(w * a). Weight blocks
 * keep their codes (Q4_0: nibble - 8) and their fp16 scale (as the exact f32 value): packing
 * never requantizes. Per block the sum is scaled by d_x and d_w and added in f32.
 *
 * Convolution panel (qconv_acts -> qconv_gemm): positions in lanes. Output row r of the panel
 * has lcr_qconv_lanes(ow) slots (ow rounded up to 16; slot r * lanes + x is position x of that
 * row, slots past ow hold code 128 and scale 0). For depth = nb * 32 values per position:
 *   codes  uint32 [nb][slots / 16][8][16]  for block b, slots 16j ..< 16j + 16, the dwords of
 *                                          codes 4t .. 4t + 3 (+128, byte i = value 4t + i)
 *   scales float  [nb][slots]              the block's fp16 scale, as f32
 * Convolution weights (lcr_qconv_pack_weights), channels broadcast against those lanes:
 *   codes int8 [nb][n][32], then scales float [nb][n], then corrections int32 [nb][n].
 *
 * Packed GEMV weights (lcr_qgemv_pack_weights): channels in lanes, n padded to np (multiple of
 * 16, padding channels zero), vectors of 16 channels taken in groups of up to 8 (group g:
 * vectors 8g ..< min(8g + 8, np / 16), gv of them):
 *   codes int8: group g at byte 8g * 16 * k, inside it [nb][8][gv][16][4] (channel lanes of 4 codes)
 *   then scales float [nb][np], then corrections int32 [nb][np].
 */
static inline int64_t lcr_qconv_lanes(int64_t ow) { return (ow + 15) / 16 * 16; }
/// Bytes of a panel of `rows` output rows, with room after it for a table of depth * 5 bytes
/// that qconv_acts may build there.
static inline size_t lcr_qconv_acts_bytes(int64_t rows, int64_t ow, int64_t depth) {
    const size_t slots = (size_t)(rows * lcr_qconv_lanes(ow));
    return slots * (size_t)depth + slots * (size_t)(depth / LCR_QK) * 4 + (size_t)depth * 5;
}
static inline size_t lcr_qconv_weights_bytes(int64_t n, int64_t depth) { return (size_t)(n * (depth / LCR_QK)) * 40; }
static inline int64_t lcr_qgemv_padded(int64_t n) { return (n + 15) / 16 * 16; }
static inline size_t lcr_qgemv_weights_bytes(int64_t n, int64_t k) {
    return (size_t)(lcr_qgemv_padded(n) * k) + (size_t)(lcr_qgemv_padded(n) * (k / LCR_QK)) * 8;
}
/// Activation codes (+128) and f32 scales of one row, and alignment slack.
static inline size_t lcr_qgemv_scratch_bytes(int64_t k) { return (size_t)k + (size_t)(k / LCR_QK) * 4 + (size_t)k / LCR_QK * 34 + 128; }

/// Packs Q8_0 (is_q4 == 0) or Q4_0 weight rows [n, depth] (depth % 32 == 0) for qconv_gemm.
void lcr_qconv_pack_weights(const void *w, int is_q4, int64_t n, int64_t depth, void *packed);
/// Packs Q8_0 / Q4_0 weight rows [n, k] for qgemv.
void lcr_qgemv_pack_weights(const void *w, int is_q4, int64_t n, int64_t k, void *packed);

/* ---- memory bandwidth probe (benchmarks) ----
 * Reads n floats with the widest loads the ISA has and returns their sum (so nothing is
 * optimised away). */
float lcr_read_bandwidth_probe(const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* LCR_KERNELS_H */
