// AVX2 inner products (see dot.c and dot_avx512.c for the scheme): 8-float FMAs, masked tails.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

VLM_INLINE VLM_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static VLM_AVX2 float dot_256(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask_256(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

VLM_INLINE VLM_AVX2 void prefetch_rows_256(const float *base, int64_t stride, const int32_t *idx, int64_t count, int64_t n) {
    int64_t lines = n >= 64 ? 4 : (n * 4 + 63) / 64;
    for (int64_t r = 0; r < count; r++) {
        const char *p = (const char *)(base + (int64_t)idx[r] * stride);
        for (int64_t l = 0; l < lines; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
    }
}

static VLM_AVX2 void dot4_256(const float *q, const float *r0, const float *r1, const float *r2, const float *r3,
                              int64_t n, float *out) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 qa = _mm256_loadu_ps(q + i), qb = _mm256_loadu_ps(q + i + 8);
        a0 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(r0 + i), a0);
        a1 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(r1 + i), a1);
        a2 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(r2 + i), a2);
        a3 = _mm256_fmadd_ps(qa, _mm256_loadu_ps(r3 + i), a3);
        b0 = _mm256_fmadd_ps(qb, _mm256_loadu_ps(r0 + i + 8), b0);
        b1 = _mm256_fmadd_ps(qb, _mm256_loadu_ps(r1 + i + 8), b1);
        b2 = _mm256_fmadd_ps(qb, _mm256_loadu_ps(r2 + i + 8), b2);
        b3 = _mm256_fmadd_ps(qb, _mm256_loadu_ps(r3 + i + 8), b3);
    }
    for (; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 qa = _mm256_maskload_ps(q + i, m);
        a0 = _mm256_fmadd_ps(qa, _mm256_maskload_ps(r0 + i, m), a0);
        a1 = _mm256_fmadd_ps(qa, _mm256_maskload_ps(r1 + i, m), a1);
        a2 = _mm256_fmadd_ps(qa, _mm256_maskload_ps(r2 + i, m), a2);
        a3 = _mm256_fmadd_ps(qa, _mm256_maskload_ps(r3 + i, m), a3);
    }
    out[0] = hsum8(_mm256_add_ps(a0, b0));
    out[1] = hsum8(_mm256_add_ps(a1, b1));
    out[2] = hsum8(_mm256_add_ps(a2, b2));
    out[3] = hsum8(_mm256_add_ps(a3, b3));
}

static VLM_AVX2 void gather_256(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count,
                                int64_t n, float *out) {
    prefetch_rows_256(base, stride, idx, count < 4 ? count : 4, n);
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        int64_t next = count - (i + 4);
        if (next > 0) prefetch_rows_256(base, stride, idx + i + 4, next < 4 ? next : 4, n);
        dot4_256(q, base + (int64_t)idx[i] * stride, base + (int64_t)idx[i + 1] * stride, base + (int64_t)idx[i + 2] * stride,
                 base + (int64_t)idx[i + 3] * stride, n, out + i);
    }
    for (; i < count; i++) out[i] = dot_256(q, base + (int64_t)idx[i] * stride, n);
}

const vlm_dot_kernels vlm_dot_kernels_avx2 = {.dot = dot_256, .gather = gather_256};
#else
const vlm_dot_kernels vlm_dot_kernels_avx2 = {0};
#endif
