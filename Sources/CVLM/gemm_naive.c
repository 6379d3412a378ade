// Portable reference GEMM and linear layers (weight packing: pack.c).
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

// Scalar linear on packed panels (the fallback of vlm_linear when no SIMD path is available).
void vlm_linear_packed_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                             vlm_activation act, float *Y, int64_t ldy) {
    int64_t N = W->N, K = W->K;
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        for (int64_t pn = 0; pn < W->npanels; pn++) {
            float acc[VLM_NR] = {0};
            for (int64_t k = 0; k < K; k++) {
                float xv = x[k];
                for (int j = 0; j < VLM_NR; j++) acc[j] += xv * vlm_packed_get(W, pn, k, j);
            }
            int64_t n0 = pn * VLM_NR;
            for (int j = 0; j < VLM_NR && n0 + j < N; j++) {
                float v = acc[j] + (bias ? bias[n0 + j] : 0.0f);
                Y[m * ldy + n0 + j] = vlm_act_scalar(v, act);
            }
        }
    }
}

// Reads element i of a source matrix, widened to float (16-bit sources may be unaligned: memcpy).
static float source_get(const void *W, vlm_source_dtype src, int64_t i) {
    if (src == VLM_SRC_F32) { float f; memcpy(&f, (const char *)W + i * 4, 4); return f; }
    uint16_t h;
    memcpy(&h, (const char *)W + i * 2, 2);
    if (src == VLM_SRC_F16) return vlm_f16_to_f32_scalar(h);
    uint32_t u = (uint32_t)h << 16;  // bf16 is the upper 16 bits of a binary32
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void vlm_linear_naive_ex(const float *X, int64_t M, int64_t ldx, const void *W, vlm_source_dtype src, int64_t N, int64_t K,
                         const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += x[k] * source_get(W, src, n * K + k);
            if (bias) acc += bias[n];
            Y[m * ldy + n] = vlm_act_scalar(acc, act);
        }
    }
}
