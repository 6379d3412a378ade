// Inner products for vector search (HNSW distance computations): naive references and run-time dispatch to
// the AVX-512 / AVX2 kernels (dot_avx512.c, dot_avx2.c). Single-threaded by design: graph search parallelises
// over queries, and one call scores at most a few dozen rows.
#include "kernels_internal.h"

static const vlm_dot_kernels *active_dot_kernels(void) {
    switch (vlm_active_isa()) {
    case VLM_ISA_AVX512: return &vlm_dot_kernels_avx512;
    case VLM_ISA_AVX2: return &vlm_dot_kernels_avx2;
    default: return NULL;
    }
}

float vlm_dot_naive(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return (float)s;
}

void vlm_dot_gather_naive(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count,
                          int64_t n, float *out) {
    for (int64_t i = 0; i < count; i++) out[i] = vlm_dot_naive(q, base + (int64_t)idx[i] * stride, n);
}

float vlm_dot(const float *a, const float *b, int64_t n) {
    const vlm_dot_kernels *ks = active_dot_kernels();
    if (!ks || n <= 0) return n <= 0 ? 0.0f : vlm_dot_naive(a, b, n);
    return ks->dot(a, b, n);
}

void vlm_dot_gather(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count, int64_t n,
                    float *out) {
    if (count <= 0) return;
    const vlm_dot_kernels *ks = active_dot_kernels();
    if (!ks || n <= 0) {
        if (n <= 0) { for (int64_t i = 0; i < count; i++) out[i] = 0; return; }
        vlm_dot_gather_naive(q, base, stride, idx, count, n, out);
        return;
    }
    ks->gather(q, base, stride, idx, count, n, out);
}
