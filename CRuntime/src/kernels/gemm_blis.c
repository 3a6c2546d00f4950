/*
 * gemm_blis.c — fp32 GEMM through BLIS's typed API, one thread, in the calling thread.
 *
 * Row-major operands map to BLIS's general strides (row stride = leading dimension, column
 * stride = 1). The stored matrix is passed with the transpose flag, as BLIS expects. A
 * per-call rntm_t pins the call to one thread whatever BLIS_NUM_THREADS says.
 */
#include "lcr_kernels_internal.h"

#include <blis.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

void lcr_sgemm_blis(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &rntm);
    float al = alpha, be = beta;
    bli_sgemm_ex(trans_a ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, trans_b ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 (dim_t)m, (dim_t)n, (dim_t)k, &al, (float *)a, (inc_t)lda, 1, (float *)b, (inc_t)ldb, 1, &be,
                 c, (inc_t)ldc, 1, NULL, &rntm);
}

/*
 * The same product without BLIS's level-3 framework: BLIS's sgemm entry points (conventional
 * and small-matrix paths alike) go through a thread decorator that mallocs and frees its
 * thread data on every call, even for one thread. Here the loops around the micro-kernel are
 * our own (Goto's: NC columns of op(B), KC of k, MC rows of op(A), packed into MR x KC and
 * KC x NR micro-panels) and the arithmetic is BLIS's sgemm micro-kernel for this machine,
 * called through bli_sgemm_ukernel, which handles partial (m < MR, n < NR) tiles itself.
 * The pack buffers are per thread, allocated on a thread's first call and freed when the
 * thread exits: after that a call allocates nothing. The price, measured against
 * lcr_sgemm_blis at -O2 on x86_64 (best of 7 x 20 calls, shared machine): 1.13-1.16x the time
 * on conv-sized products (m 1568 n 64 k 288; the transposed-A gradient 288 x 64 x 1568), 2.6x
 * on a small-m linear (m 8 n 128 k 3136, where BLIS's small-matrix path packs nothing).
 */
enum { PACK_MC = 144, PACK_KC = 256, PACK_NC = 2048 };

typedef struct {
    float *a;  /* PACK_MC (rounded up to MR) x PACK_KC */
    float *b;  /* PACK_KC x PACK_NC (rounded up to NR) */
} pack_buffers;

static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;

static void pack_buffers_free(void *p) {
    pack_buffers *buffers = p;
    free(buffers->a);
    free(buffers->b);
    free(buffers);
}

static void pack_key_create(void) { (void)pthread_key_create(&pack_key, pack_buffers_free); }

static pack_buffers *pack_buffers_get(dim_t mr, dim_t nr) {
    (void)pthread_once(&pack_once, pack_key_create);
    pack_buffers *buffers = pthread_getspecific(pack_key);
    if (buffers) return buffers;
    buffers = calloc(1, sizeof(pack_buffers));
    if (!buffers) return NULL;
    size_t a_bytes = (size_t)((PACK_MC + mr - 1) / mr * mr) * PACK_KC * sizeof(float);
    size_t b_bytes = (size_t)((PACK_NC + nr - 1) / nr * nr) * PACK_KC * sizeof(float);
    void *a = NULL, *b = NULL;
    if (posix_memalign(&a, 64, a_bytes) != 0) a = NULL;
    if (posix_memalign(&b, 64, b_bytes) != 0) b = NULL;
    buffers->a = a;
    buffers->b = b;
    if (!a || !b || pthread_setspecific(pack_key, buffers) != 0) {
        pack_buffers_free(buffers);
        return NULL;
    }
    return buffers;
}

/* Packs `width` lines of a KC-deep panel for the micro-kernel: panel[l * width + i] is line
 * i's element l (l < kc), zero for lines i >= used. Line i's element l sits at origin[i * ld + l]
 * when the lines run along k in memory (k_contiguous), else at origin[l * ld + i]; either way
 * the source is read in its stored order. */
static void pack_panel(float *panel, const float *origin, int64_t ld, int k_contiguous, int64_t width,
                       int64_t used, int64_t kc) {
    if (k_contiguous) {
        for (int64_t i = 0; i < width; i++) {
            const float *src = origin + i * ld;
            if (i < used) for (int64_t l = 0; l < kc; l++) panel[l * width + i] = src[l];
            else for (int64_t l = 0; l < kc; l++) panel[l * width + i] = 0.0f;
        }
    } else {
        for (int64_t l = 0; l < kc; l++) {
            float *line = panel + l * width;
            const float *src = origin + l * ld;
            for (int64_t i = 0; i < used; i++) line[i] = src[i];
            for (int64_t i = used; i < width; i++) line[i] = 0.0f;
        }
    }
}

static void lcr_sgemm_packed(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                             const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                             float *c, int64_t ldc) {
    cntx_t *cntx = bli_gks_query_cntx();
    const dim_t mr = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, cntx);
    const dim_t nr = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, cntx);
    const dim_t packmr = bli_cntx_get_blksz_max_dt(BLIS_FLOAT, BLIS_MR, cntx);
    const dim_t packnr = bli_cntx_get_blksz_max_dt(BLIS_FLOAT, BLIS_NR, cntx);
    pack_buffers *buffers = (packmr == mr && packnr == nr) ? pack_buffers_get(mr, nr) : NULL;
    if (!buffers) {  // no memory for the buffers (or a padded panel format): BLIS's own path
        lcr_sgemm_blis(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    const int64_t mc_max = PACK_MC / mr * mr > 0 ? PACK_MC / mr * mr : mr;
    const int64_t nc_max = PACK_NC / nr * nr > 0 ? PACK_NC / nr * nr : nr;
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    bli_auxinfo_set_schema_a(BLIS_PACKED_ROW_PANELS, &aux);
    bli_auxinfo_set_schema_b(BLIS_PACKED_COL_PANELS, &aux);
    bli_auxinfo_set_is_a(1, &aux);
    bli_auxinfo_set_is_b(1, &aux);
    float al = alpha;
    for (int64_t jc = 0; jc < n; jc += nc_max) {
        const int64_t nc = n - jc < nc_max ? n - jc : nc_max;
        for (int64_t pc = 0; pc < k; pc += PACK_KC) {
            const int64_t kc = k - pc < PACK_KC ? k - pc : PACK_KC;
            float be = pc == 0 ? beta : 1.0f;
            // Pack op(B)[pc.., jc..] into KC x NR panels, zero-padded on the right: op(B)'s
            // columns are B's rows when B is transposed (contiguous along k), else its columns.
            for (int64_t q = 0; q < nc; q += nr) {
                const int64_t cols = nc - q < nr ? nc - q : nr;
                const float *origin = trans_b ? b + (jc + q) * ldb + pc : b + pc * ldb + jc + q;
                pack_panel(buffers->b + (q / nr) * nr * kc, origin, ldb, trans_b, nr, cols, kc);
            }
            for (int64_t ic = 0; ic < m; ic += mc_max) {
                const int64_t mc = m - ic < mc_max ? m - ic : mc_max;
                // Pack op(A)[ic.., pc..] into MR x KC panels, zero-padded below: op(A)'s rows
                // are A's rows when A is not transposed (contiguous along k), else its columns.
                for (int64_t p = 0; p < mc; p += mr) {
                    const int64_t rows = mc - p < mr ? mc - p : mr;
                    const float *origin = trans_a ? a + pc * lda + ic + p : a + (ic + p) * lda + pc;
                    pack_panel(buffers->a + (p / mr) * mr * kc, origin, lda, !trans_a, mr, rows, kc);
                }
                for (int64_t q = 0; q < nc; q += nr) {
                    float *bp = buffers->b + (q / nr) * nr * kc;
                    const int64_t cols = nc - q < nr ? nc - q : nr;
                    for (int64_t p = 0; p < mc; p += mr) {
                        float *ap = buffers->a + (p / mr) * mr * kc;
                        const int64_t rows = mc - p < mr ? mc - p : mr;
                        bli_auxinfo_set_next_a(ap, &aux);
                        bli_auxinfo_set_next_b(bp, &aux);
                        bli_sgemm_ukernel((dim_t)rows, (dim_t)cols, (dim_t)kc, &al, ap, bp, &be,
                                          c + (ic + p) * ldc + jc + q, (inc_t)ldc, 1, &aux, cntx);
                    }
                }
            }
        }
    }
}

/* The largest B (floats) lcr_sgemm gives the table's sgemm_nt: 512 KiB. */
#define LCR_SGEMM_NT_MAX_B (128 * 1024)

void lcr_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc) {
    // One row of A, or a short inner dimension (a first conv layer: k = 1 channel x 3 x 3), is
    // done row by row with GEMVs / AXPYs: as fast as BLIS at these shapes, and allocation-free,
    // where BLIS mallocs and frees its thread info on every call (so a step through BLIS is
    // not allocation-free; the rest goes through lcr_sgemm_packed, which is).
    if (!trans_a && n > 0 && m > 1 && k <= 16) {
        for (int64_t i = 0; i < m; i++) lcr_sgemm(0, trans_b, 1, n, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
        return;
    }
    // A^T B over a short inner dimension (a small batch's weight gradient dW = dY^T X): the
    // table's register tiles, where packing would copy both operands for a product of a few
    // multiply-adds per element of C.
    if (trans_a && !trans_b && n > 0 && m > 0 && k <= 16) {
        lcr_kernels_best()->sgemm_tn_small_k(a, lda, b, ldb, c, ldc, m, n, k, alpha, beta);
        return;
    }
    // A few rows times B^T (a small batch through a linear layer, W stored [out, in]): the
    // table's unpacked tiles, where packing both operands would cost more than the product.
    // Only while B fits a core's L2 (512 KiB): the tiles read B once per four rows, which BLIS's
    // cache blocking does better for a larger weight.
    if (!trans_a && trans_b && m >= 2 && m <= 32 && n > 0 && n * k <= LCR_SGEMM_NT_MAX_B) {
        lcr_kernels_best()->sgemm_nt(a, lda, b, ldb, c, ldc, m, n, k, alpha, beta);
        return;
    }
    if (m == 1 && !trans_a && n > 0) {
        const lcr_kernel_table *t = lcr_kernels_best();
        if (trans_b) {
            // C[0, j] = alpha * sum_l B[j, l] a[l] + beta * C[0, j]: a GEMV over B's rows
            t->sgemv(b, a, c, n, k, ldb, alpha, beta);
        } else {
            // C[0, :] = beta * C[0, :] + sum_l (alpha a[l]) B[l, :]: row axpys, B read in order
            if (beta == 0.0f) memset(c, 0, (size_t)n * sizeof(float));
            else if (beta != 1.0f) t->scale(c, beta, c, n);
            for (int64_t l = 0; l < k; l++) t->axpy(alpha * a[l], b + l * ldb, c, n);
        }
        return;
    }
    lcr_sgemm_packed(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
