// AVX2 GEMM micro-kernel: up to 6 rows x 16 columns (12 ymm accumulators + 2 B + 1 broadcast of 16
// registers). A 32-wide packed panel is processed as two 16-column halves (B row stride VLM_NR).
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

#define MR256 6

VLM_INLINE VLM_AVX2 void uk_256_half(const int mr, int64_t kc, const float *Ap, const float *Bp, float *C,
                                     int64_t ldc, int nr, int accumulate) {
    __m256 c0[MR256], c1[MR256];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < mr; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < mr; i++) {
            __m256 a = _mm256_broadcast_ss(Ap + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
        Ap += mr;
        Bp += VLM_NR;
    }
    if (nr >= 16) {
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < mr; i++) {
            float *cr = C + i * ldc;
            if (accumulate) {
                c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(cr));
                c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, c0[i]);
            _mm256_storeu_ps(cr + 8, c1[i]);
        }
    } else {
        __m256i m0 = tail_mask_256(nr), m1 = tail_mask_256(nr - 8);
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < mr; i++) {
            float *cr = C + i * ldc;
            if (accumulate) {
                c0[i] = _mm256_add_ps(c0[i], _mm256_maskload_ps(cr, m0));
                c1[i] = _mm256_add_ps(c1[i], _mm256_maskload_ps(cr + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, c0[i]);
            _mm256_maskstore_ps(cr + 8, m1, c1[i]);
        }
    }
}

#define UK(n) \
    static VLM_AVX2 void uk_256_##n(int64_t kc, const float *Ap, const float *Bp, float *C, int64_t ldc, int nr, int acc) { \
        uk_256_half(n, kc, Ap, Bp, C, ldc, nr, acc); \
        if (nr > 16) uk_256_half(n, kc, Ap, Bp + 16, C + 16, ldc, nr - 16, acc); \
    }
UK(1) UK(2) UK(3) UK(4) UK(5) UK(6)

typedef void (*uk_fn)(int64_t, const float *, const float *, float *, int64_t, int, int);
static const uk_fn uk_table[MR256 + 1] = {NULL, uk_256_1, uk_256_2, uk_256_3, uk_256_4, uk_256_5, uk_256_6};

static void ukernel_avx2(int mr, int64_t kc, const float *Ap, const float *Bp, float *C, int64_t ldc, int nr,
                         int accumulate) {
    uk_table[mr](kc, Ap, Bp, C, ldc, nr, accumulate);
}

VLM_AVX2 void vlm_bias_act_avx2(float *x, int64_t n, const float *bias, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 v = _mm256_maskload_ps(x + i, m);
        if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + i, m));
        v = act_256(v, act);
        _mm256_maskstore_ps(x + i, m, v);
    }
}

const vlm_gemm_kernels vlm_gemm_kernels_avx2 = {
    .mr_max = MR256,
    .ukernel = ukernel_avx2,
    .bias_act = vlm_bias_act_avx2,
};
#else
const vlm_gemm_kernels vlm_gemm_kernels_avx2 = {0};
#endif
