// AVX-512 row-wise / elementwise kernels (single row or chunk; ops.c splits rows across threads).
// Reductions use several float accumulators; the naive twins accumulate in double.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"
#include <math.h>

VLM_INLINE VLM_AVX512 __mmask16 tail16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

static VLM_AVX512 float sum_512(const float *x, int64_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) { a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i)); a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16)); }
    for (; i < n; i += 16) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(tail16(n - i), x + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// Sum of (x - c)^2.
static VLM_AVX512 float sumsq_512(const float *x, int64_t n, float c) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), vc = _mm512_set1_ps(c);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vc), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vc);
        a0 = _mm512_fmadd_ps(d0, d0, a0);
        a1 = _mm512_fmadd_ps(d1, d1, a1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vc);
        a0 = _mm512_fmadd_ps(d, d, a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static VLM_AVX512 void layernorm_row_512(const float *x, float *y, int64_t n, const float *g, const float *b, float eps) {
    // Two passes (mean, then centred sum of squares): stable, and LayerNorm's biased variance (divide by n).
    float mean = sum_512(x, n) / (float)n;
    float var = sumsq_512(x, n, mean) / (float)n;
    __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(1.0f / sqrtf(var + eps));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm), vr);
        if (g) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, g + i));
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static VLM_AVX512 void rmsnorm_row_512(const float *x, float *y, int64_t n, const float *g, float eps) {
    __m512 vr = _mm512_set1_ps(1.0f / sqrtf(sumsq_512(x, n, 0.0f) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vr);
        if (g) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static VLM_AVX512 void softmax_row_512(float *x, int64_t n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail16(n - i), x + i));
    float mx = _mm512_reduce_max_ps(vmax);
    if (mx == -INFINITY) {  // fully masked row: zeros (see vlm_softmax)
        for (int64_t i = 0; i < n; i += 16) _mm512_mask_storeu_ps(x + i, tail16(n - i), _mm512_setzero_ps());
        return;
    }
    __m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 e = exp_512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm));
        e = _mm512_maskz_mov_ps(m, e);
        acc = _mm512_add_ps(acc, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

static VLM_AVX512 void activate_512(float *x, int64_t n, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, act_512(_mm512_maskz_loadu_ps(m, x + i), act));
    }
}

static VLM_AVX512 void act_backward_512(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 d = dact_512(_mm512_maskz_loadu_ps(m, z + i), act);
        _mm512_mask_storeu_ps(dz + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), d));
    }
}

static VLM_AVX512 void add_512(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

static VLM_AVX512 void l2_row_512(float *x, int64_t n) {
    float ss = sumsq_512(x, n, 0.0f);
    if (ss == 0.0f) return;
    __m512 inv = _mm512_set1_ps(1.0f / sqrtf(ss));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

// F16C conversion is exact (including subnormals) and rounds to nearest even on the way down.
static VLM_AVX512 void f16_to_f32_512(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(h));
    }
}

static VLM_AVX512 void f32_to_f16_512(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

static VLM_AVX512 void bf16_to_f32_512(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
}

// Integer rounding trick rather than VCVTNEPS2BF16, which flushes subnormals to zero.
static VLM_AVX512 void f32_to_bf16_512(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, src + i));
        __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF));
        __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7F800000));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
        __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
        r = _mm512_mask_mov_epi32(r, nan, q);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
    }
}

const vlm_ops_kernels vlm_ops_kernels_avx512 = {
    .layernorm_row = layernorm_row_512, .rmsnorm_row = rmsnorm_row_512, .softmax_row = softmax_row_512,
    .activate = activate_512, .act_backward = act_backward_512, .add = add_512, .l2_row = l2_row_512,
    .f16_to_f32 = f16_to_f32_512, .f32_to_f16 = f32_to_f16_512,
    .bf16_to_f32 = bf16_to_f32_512, .f32_to_bf16 = f32_to_bf16_512,
};
#else
const vlm_ops_kernels vlm_ops_kernels_avx512 = {0};
#endif
