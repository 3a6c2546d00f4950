/*
 * gemm_blis.c — fp32 GEMM through BLIS's typed API, one thread, in the calling thread.
 *
 * Row-major operands map to BLIS's general strides (row stride = leading dimension, column
 * stride = 1). The stored matrix is passed with the transpose flag, as BLIS expects. A
 * per-call rntm_t pins the call to one thread whatever BLIS_NUM_THREADS says.
 */
#include "lcr_kernels_internal.h"

#include <blis.h>

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

void lcr_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
               float *c, int64_t ldc) {
    // One row of A, or a short inner dimension (a first conv layer: k = 1 channel x 3 x 3), is
    // done row by row with GEMVs / AXPYs: as fast as BLIS at these shapes, and allocation-free,
    // where BLIS mallocs and frees its thread info on every call (so a step through BLIS is
    // not allocation-free; Tests/LichenTests/Adaptation/StepAllocationTests).
    if (!trans_a && n > 0 && m > 1 && k <= 16) {
        for (int64_t i = 0; i < m; i++) lcr_sgemm(0, trans_b, 1, n, k, alpha, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
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
    lcr_sgemm_blis(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
