// AVX-512 inner products (see dot.c). A row is read once with 16-float FMAs into two accumulators per row
// (two dependency chains hide the FMA latency), tails with masked loads (masked-off lanes load as 0).
// The gather form scores four rows per pass sharing the query loads, so four independent load streams keep
// four cache misses in flight (rows are scattered over a graph's vector array), and prefetches the first
// lines of the next four rows while it works.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

VLM_INLINE VLM_AVX512 __mmask16 dtail16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

static VLM_AVX512 float dot_512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = dtail16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

VLM_INLINE VLM_AVX512 void prefetch_rows(const float *base, int64_t stride, const int32_t *idx, int64_t count, int64_t n) {
    // The first 256 bytes of each row: the hardware prefetcher follows on from there.
    int64_t lines = n >= 64 ? 4 : (n * 4 + 63) / 64;
    for (int64_t r = 0; r < count; r++) {
        const char *p = (const char *)(base + (int64_t)idx[r] * stride);
        for (int64_t l = 0; l < lines; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
    }
}

static VLM_AVX512 void dot4_512(const float *q, const float *r0, const float *r1, const float *r2, const float *r3,
                                int64_t n, float *out) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 qa = _mm512_loadu_ps(q + i), qb = _mm512_loadu_ps(q + i + 16);
        a0 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(r0 + i), a0);
        a1 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(r1 + i), a1);
        a2 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(r2 + i), a2);
        a3 = _mm512_fmadd_ps(qa, _mm512_loadu_ps(r3 + i), a3);
        b0 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(r0 + i + 16), b0);
        b1 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(r1 + i + 16), b1);
        b2 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(r2 + i + 16), b2);
        b3 = _mm512_fmadd_ps(qb, _mm512_loadu_ps(r3 + i + 16), b3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = dtail16(n - i);
        __m512 qa = _mm512_maskz_loadu_ps(m, q + i);
        a0 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, r0 + i), a0);
        a1 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, r1 + i), a1);
        a2 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, r2 + i), a2);
        a3 = _mm512_fmadd_ps(qa, _mm512_maskz_loadu_ps(m, r3 + i), a3);
    }
    out[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    out[1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    out[2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    out[3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
}

static VLM_AVX512 void gather_512(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count,
                                  int64_t n, float *out) {
    prefetch_rows(base, stride, idx, count < 4 ? count : 4, n);
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        int64_t next = count - (i + 4);
        if (next > 0) prefetch_rows(base, stride, idx + i + 4, next < 4 ? next : 4, n);
        dot4_512(q, base + (int64_t)idx[i] * stride, base + (int64_t)idx[i + 1] * stride, base + (int64_t)idx[i + 2] * stride,
                 base + (int64_t)idx[i + 3] * stride, n, out + i);
    }
    for (; i < count; i++) out[i] = dot_512(q, base + (int64_t)idx[i] * stride, n);
}

const vlm_dot_kernels vlm_dot_kernels_avx512 = {.dot = dot_512, .gather = gather_512};
#else
const vlm_dot_kernels vlm_dot_kernels_avx512 = {0};
#endif
