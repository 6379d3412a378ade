// Portable reference row-wise and elementwise ops. Reductions accumulate in double so the references are
// more accurate than any float fast path they are compared with.
#include "kernels_internal.h"
#include <math.h>

float vlm_act_scalar(float x, vlm_activation act) {
    double d = x;
    switch (act) {
    case VLM_ACT_NONE: return x;
    // torch.nn.functional.gelu (approximate='none'): 0.5 x (1 + erf(x / sqrt 2)), written as
    // 0.5 x erfc(-x / sqrt 2) because 1 + erf cancels catastrophically for x < -5 even in double.
    case VLM_ACT_GELU: return (float)(0.5 * d * erfc(-d * 0.70710678118654752440));
    // torch gelu(approximate='tanh') / HF gelu_new: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
    // 0.5 (1 + tanh u) == 1 / (1 + exp(-2u)), which avoids the same cancellation.
    case VLM_ACT_GELU_TANH:
        return (float)(d / (1.0 + exp(-2.0 * 0.79788456080286535588 * (d + 0.044715 * d * d * d))));
    // CLIP's QuickGELU: x * sigmoid(1.702 x).
    case VLM_ACT_QUICK_GELU: return (float)(d / (1.0 + exp(-1.702 * d)));
    case VLM_ACT_SILU: return (float)(d / (1.0 + exp(-d)));
    // torch.relu propagates NaN; x > 0 ? x : 0 would turn NaN into 0.
    case VLM_ACT_RELU: return x < 0.0f ? 0.0f : x;
    }
    return x;
}

float vlm_act_derivative_scalar(float zf, vlm_activation act) {
    double z = zf;
    switch (act) {
    case VLM_ACT_NONE: return 1.0f;
    case VLM_ACT_RELU: return zf > 0.0f ? 1.0f : 0.0f;
    // d/dz [z Phi(z)] = Phi(z) + z phi(z)
    case VLM_ACT_GELU:
        return (float)(0.5 * erfc(-z * 0.70710678118654752440) + z * exp(-0.5 * z * z) * 0.39894228040143267794);
    case VLM_ACT_GELU_TANH: {
        double k = 0.79788456080286535588, t = tanh(k * (z + 0.044715 * z * z * z));
        return (float)(0.5 * (1 + t) + 0.5 * z * (1 - t * t) * k * (1 + 3 * 0.044715 * z * z));
    }
    // d/dz [z sigmoid(c z)] = s + c z s (1 - s)
    case VLM_ACT_QUICK_GELU: { double s = 1 / (1 + exp(-1.702 * z)); return (float)(s + 1.702 * z * s * (1 - s)); }
    case VLM_ACT_SILU: { double s = 1 / (1 + exp(-z)); return (float)(s + z * s * (1 - s)); }
    }
    return 1.0f;
}

void vlm_activation_backward_naive(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act) {
    for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * vlm_act_derivative_scalar(z[i], act);
}

void vlm_activate_naive(float *x, int64_t n, vlm_activation act) {
    if (act == VLM_ACT_NONE) return;
    for (int64_t i = 0; i < n; i++) x[i] = vlm_act_scalar(x[i], act);
}

void vlm_layernorm_naive(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, const float *beta, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double mean = 0;
        for (int64_t i = 0; i < dim; i++) mean += xr[i];
        mean /= (double)dim;
        // torch.nn.LayerNorm uses the biased variance (divide by dim, not dim - 1).
        double var = 0;
        for (int64_t i = 0; i < dim; i++) { double d = xr[i] - mean; var += d * d; }
        var /= (double)dim;
        double rstd = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < dim; i++) {
            double v = (xr[i] - mean) * rstd;
            if (gamma) v *= gamma[i];
            if (beta) v += beta[i];
            yr[i] = (float)v;
        }
    }
}

void vlm_rmsnorm_naive(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        double rinv = 1.0 / sqrt(ss / (double)dim + (double)eps);
        for (int64_t i = 0; i < dim; i++) {
            double v = xr[i] * rinv;
            if (gamma) v *= gamma[i];
            yr[i] = (float)v;
        }
    }
}

void vlm_softmax_naive(float *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        float mx = -INFINITY;
        for (int64_t i = 0; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
        if (mx == -INFINITY) {  // every entry -inf: no finite reference point; define the row as zeros
            for (int64_t i = 0; i < cols; i++) xr[i] = 0.0f;
            continue;
        }
        double sum = 0;
        for (int64_t i = 0; i < cols; i++) sum += exp((double)xr[i] - mx);
        for (int64_t i = 0; i < cols; i++) xr[i] = (float)(exp((double)xr[i] - mx) / sum);
    }
}

void vlm_add_naive(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void vlm_add_bias_naive(float *x, const float *bias, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) x[r * cols + c] += bias[c];
}

void vlm_l2_normalize_naive(float *x, int64_t rows, int64_t dim) {
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        if (ss == 0) continue;  // a zero row has no direction: leave it zero (torch F.normalize clamps eps)
        double inv = 1.0 / sqrt(ss);
        for (int64_t i = 0; i < dim; i++) xr[i] = (float)(xr[i] * inv);
    }
}
