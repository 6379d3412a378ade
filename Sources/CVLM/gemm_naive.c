// Portable reference GEMM and linear layer, plus weight packing (shared by all ISAs).
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

void vlm_sgemm_naive(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) {
                float a = transA ? A[k * lda + i] : A[i * lda + k];
                float b = transB ? B[j * ldb + k] : B[k * ldb + j];
                acc += a * b;
            }
            // BLAS rule: beta == 0 means C is not read (it may hold NaN/garbage).
            C[i * ldc + j] = beta == 0.0f ? alpha * acc : alpha * acc + beta * C[i * ldc + j];
        }
    }
}

void vlm_linear_naive(const float *X, int64_t M, int64_t ldx, const float *W, int64_t N, int64_t K,
                      const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        for (int64_t n = 0; n < N; n++) {
            const float *w = W + n * K;
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += x[k] * w[k];
            if (bias) acc += bias[n];
            Y[m * ldy + n] = vlm_act_scalar(acc, act);
        }
    }
}

typedef struct { const float *W; vlm_packed_weight *p; } pack_job;

// One panel: transpose a [nn, K] strip of W into K rows of VLM_NR (zero-padded past N), in blocks of 16 k
// so both the reads (W rows) and the writes (panel rows) stay within a few cache lines.
static void pack_panel(void *ctx, int64_t pn, int thread) {
    (void)thread;
    const pack_job *j = ctx;
    int64_t N = j->p->N, K = j->p->K;
    float *dst = j->p->data + (size_t)pn * K * VLM_NR;
    int64_t n0 = pn * VLM_NR;
    int64_t nn = N - n0 < VLM_NR ? N - n0 : VLM_NR;
    if (nn < VLM_NR) memset(dst, 0, (size_t)K * VLM_NR * sizeof(float));
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        int64_t k1 = k0 + 16 < K ? k0 + 16 : K;
        for (int64_t c = 0; c < nn; c++) {
            const float *src = j->W + (n0 + c) * K;
            for (int64_t k = k0; k < k1; k++) dst[k * VLM_NR + c] = src[k];
        }
    }
}

vlm_packed_weight *vlm_pack_weight(const float *W, int64_t N, int64_t K, vlm_weight_dtype dtype) {
    // Only F32 storage exists so far; other dtypes are packed as F32 (same results, more memory).
    (void)dtype;
    if (N <= 0 || K <= 0 || !W) return NULL;
    vlm_packed_weight *p = vlm_aligned_alloc(sizeof *p);
    if (!p) return NULL;
    p->N = N;
    p->K = K;
    p->npanels = (N + VLM_NR - 1) / VLM_NR;
    p->dtype = VLM_WEIGHT_F32;
    size_t floats = (size_t)p->npanels * (size_t)K * VLM_NR;
    p->data = vlm_aligned_alloc(floats * sizeof(float));
    if (!p->data) { vlm_aligned_free(p); return NULL; }
    pack_job j = {.W = W, .p = p};
    // Panels are independent: pack them on the pool (model loading packs ~100 M weights).
    if ((double)N * (double)K < 65536.0) for (int64_t pn = 0; pn < p->npanels; pn++) pack_panel(&j, pn, 0);
    else vlm_parallel_for(p->npanels, pack_panel, &j);
    return p;
}

void vlm_packed_weight_free(vlm_packed_weight *w) {
    if (!w) return;
    vlm_aligned_free(w->data);
    vlm_aligned_free(w);
}

int64_t vlm_packed_weight_rows(const vlm_packed_weight *w) { return w ? w->N : 0; }
int64_t vlm_packed_weight_cols(const vlm_packed_weight *w) { return w ? w->K : 0; }

// Scalar linear on packed panels (the fallback of vlm_linear when no SIMD path is available).
void vlm_linear_packed_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                             vlm_activation act, float *Y, int64_t ldy) {
    int64_t N = W->N, K = W->K;
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        for (int64_t pn = 0; pn < W->npanels; pn++) {
            const float *panel = W->data + (size_t)pn * K * VLM_NR;
            float acc[VLM_NR] = {0};
            for (int64_t k = 0; k < K; k++) {
                float xv = x[k];
                const float *row = panel + k * VLM_NR;
                for (int j = 0; j < VLM_NR; j++) acc[j] += xv * row[j];
            }
            int64_t n0 = pn * VLM_NR;
            for (int j = 0; j < VLM_NR && n0 + j < N; j++) {
                float v = acc[j] + (bias ? bias[n0 + j] : 0.0f);
                Y[m * ldy + n0 + j] = vlm_act_scalar(v, act);
            }
        }
    }
}
