// Dispatching entry points of the row-wise / elementwise ops (GEMMs live in gemm_driver.c).
#include "kernels_internal.h"
#include <math.h>


void vlm_layernorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, const float *beta, float eps) {
    vlm_layernorm_naive(x, y, rows, dim, gamma, beta, eps);
}
void vlm_rmsnorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, float eps) {
    vlm_rmsnorm_naive(x, y, rows, dim, gamma, eps);
}
void vlm_softmax(float *x, int64_t rows, int64_t cols) { vlm_softmax_naive(x, rows, cols); }
void vlm_activate(float *x, int64_t n, vlm_activation act) { vlm_activate_naive(x, n, act); }

void vlm_add(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}
void vlm_add_bias(float *x, const float *bias, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) x[r * cols + c] += bias[c];
}
void vlm_l2_normalize(float *x, int64_t rows, int64_t dim) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        if (ss == 0) continue;
        float inv = (float)(1.0 / sqrt(ss));
        for (int64_t i = 0; i < dim; i++) xr[i] *= inv;
    }
}

void vlm_attention(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                   const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                   float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask) {
    vlm_attention_naive(B, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, out, ldo, scale, causal, key_mask);
}
