// AVX2 row-wise / elementwise kernels (the AVX-512 twins are in ops_avx512.c). Tails use masked
// loads/stores; masked-off lanes load as 0.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"
#include <math.h>
#include <string.h>

VLM_INLINE VLM_AVX2 float hsum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

VLM_INLINE VLM_AVX2 float hmax_256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static VLM_AVX2 float sumsq_256(const float *x, int64_t n, float c) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), vc = _mm256_set1_ps(c);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vc), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vc);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
    }
    for (; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vc), _mm256_castsi256_ps(m));
        a0 = _mm256_fmadd_ps(d, d, a0);
    }
    return hsum_256(_mm256_add_ps(a0, a1));
}

static VLM_AVX2 float sum_256(const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) { a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i)); a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8)); }
    for (; i < n; i += 8) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(x + i, tail_mask_256(n - i)));
    return hsum_256(_mm256_add_ps(a0, a1));
}

static VLM_AVX2 void layernorm_row_256(const float *x, float *y, int64_t n, const float *g, const float *b, float eps) {
    // Two passes, biased variance (torch.nn.LayerNorm).
    float mean = sum_256(x, n) / (float)n;
    float var = sumsq_256(x, n, mean) / (float)n;
    __m256 vm = _mm256_set1_ps(mean), vr = _mm256_set1_ps(1.0f / sqrtf(var + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm), vr);
        if (g) v = _mm256_mul_ps(v, _mm256_maskload_ps(g + i, m));
        if (b) v = _mm256_add_ps(v, _mm256_maskload_ps(b + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

static VLM_AVX2 void rmsnorm_row_256(const float *x, float *y, int64_t n, const float *g, float eps) {
    __m256 vr = _mm256_set1_ps(1.0f / sqrtf(sumsq_256(x, n, 0.0f) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), vr);
        if (g) v = _mm256_mul_ps(v, _mm256_maskload_ps(g + i, m));
        _mm256_maskstore_ps(y + i, m, v);
    }
}

static VLM_AVX2 void softmax_row_256(float *x, int64_t n) {
    __m256 ninf = _mm256_set1_ps(-INFINITY), vmax = ninf;
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
    }
    float mx = hmax_256(vmax);
    if (mx == -INFINITY) {  // fully masked row: zeros (see vlm_softmax)
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 e = _mm256_and_ps(exp_256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)), _mm256_castsi256_ps(m));
        acc = _mm256_add_ps(acc, e);
        _mm256_maskstore_ps(x + i, m, e);
    }
    __m256 inv = _mm256_set1_ps(1.0f / hsum_256(acc));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}

static VLM_AVX2 void activate_256(float *x, int64_t n, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        _mm256_maskstore_ps(x + i, m, act_256(_mm256_maskload_ps(x + i, m), act));
    }
}

static VLM_AVX2 void act_backward_256(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 d = dact_256(_mm256_maskload_ps(z + i, m), act);
        _mm256_maskstore_ps(dz + i, m, _mm256_mul_ps(_mm256_maskload_ps(dy + i, m), d));
    }
}

static VLM_AVX2 void add_256(const float *a, const float *b, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) out[i] = a[i] + b[i];
}

static VLM_AVX2 void l2_row_256(float *x, int64_t n) {
    float ss = sumsq_256(x, n, 0.0f);
    if (ss == 0.0f) return;
    __m256 inv = _mm256_set1_ps(1.0f / sqrtf(ss));
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}

float vlm_f16_to_f32_scalar(uint16_t h);
uint16_t vlm_f32_to_f16_scalar(float f);

static VLM_AVX2 void f16_to_f32_256(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = vlm_f16_to_f32_scalar(src[i]);
}

static VLM_AVX2 void f32_to_f16_256(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = vlm_f32_to_f16_scalar(src[i]);
}

static VLM_AVX2 void bf16_to_f32_256(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; i < n; i++) { uint32_t u = (uint32_t)src[i] << 16; memcpy(dst + i, &u, 4); }
}

static VLM_AVX2 void f32_to_bf16_256(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(src + i));
        __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
        __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7F800000));  // abs is non-negative
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
        __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        r = _mm256_blendv_epi8(r, q, nan);
        // pack 8 x u32 (all < 65536) into 8 x u16
        __m128i lo = _mm256_castsi256_si128(r), hi = _mm256_extracti128_si256(r, 1);
        _mm_storeu_si128((__m128i *)(dst + i), _mm_packus_epi32(lo, hi));
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) dst[i] = (uint16_t)((u >> 16) | 0x40);
        else dst[i] = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
    }
}

const vlm_ops_kernels vlm_ops_kernels_avx2 = {
    .layernorm_row = layernorm_row_256, .rmsnorm_row = rmsnorm_row_256, .softmax_row = softmax_row_256,
    .activate = activate_256, .act_backward = act_backward_256, .add = add_256, .l2_row = l2_row_256,
    .f16_to_f32 = f16_to_f32_256, .f32_to_f16 = f32_to_f16_256,
    .bf16_to_f32 = bf16_to_f32_256, .f32_to_bf16 = f32_to_bf16_256,
};
#else
const vlm_ops_kernels vlm_ops_kernels_avx2 = {0};
#endif
