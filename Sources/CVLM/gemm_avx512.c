// AVX-512 GEMM micro-kernel: up to 14 rows x 32 columns (28 zmm accumulators + 2 B vectors + 1 broadcast
// of the 32 registers). Per k step: 2 aligned B loads, mr broadcasts (folded into the FMA as {1to16}
// memory operands) and 2*mr FMAs, so the two 512-bit FMA pipes of Zen 4/5 / Skylake-X stay busy.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

#define MR512 14

// Loads/stores of a 32-wide row part under the column masks m0 (cols 0..15) and m1 (cols 16..31).
#define STORE_ROW(i)                                                                   \
    do {                                                                               \
        float *cr = C + (i) * ldc;                                                     \
        if (accumulate) {                                                              \
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, cr));               \
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, cr + 16));          \
        }                                                                              \
        _mm512_mask_storeu_ps(cr, m0, c0[i]);                                          \
        _mm512_mask_storeu_ps(cr + 16, m1, c1[i]);                                     \
    } while (0)

// Row counts known at compile time after inlining, so c0/c1 live in registers.
VLM_INLINE VLM_AVX512 void uk_512(const int mr, int64_t kc, const float *Ap, const float *Bp, float *C, int64_t ldc,
                                  int nr, int accumulate) {
    __m512 c0[MR512], c1[MR512];
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < mr; i++) { c0[i] = _mm512_setzero_ps(); c1[i] = _mm512_setzero_ps(); }
    if (mr <= 4) {
        // Few rows: 2*mr accumulators are too few to hide the 4-cycle FMA latency, so split the k loop
        // into even/odd halves with separate accumulators (summed at the end).
        __m512 d0[MR512], d1[MR512];
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < mr; i++) { d0[i] = _mm512_setzero_ps(); d1[i] = _mm512_setzero_ps(); }
        int64_t k = 0;
        for (; k + 1 < kc; k += 2) {
            __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
            __m512 e0 = _mm512_load_ps(Bp + 32), e1 = _mm512_load_ps(Bp + 48);
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < mr; i++) {
                __m512 a = _mm512_set1_ps(Ap[i]);
                c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
                __m512 a2 = _mm512_set1_ps(Ap[mr + i]);
                d0[i] = _mm512_fmadd_ps(a2, e0, d0[i]);
                d1[i] = _mm512_fmadd_ps(a2, e1, d1[i]);
            }
            Ap += 2 * mr;
            Bp += 64;
        }
        if (k < kc) {
            __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < mr; i++) {
                __m512 a = _mm512_set1_ps(Ap[i]);
                c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
            }
        }
        _Pragma("clang loop unroll(full)")
        for (int i = 0; i < mr; i++) { c0[i] = _mm512_add_ps(c0[i], d0[i]); c1[i] = _mm512_add_ps(c1[i], d1[i]); }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
            _mm_prefetch((const char *)(Bp + 8 * VLM_NR), _MM_HINT_T0);
            _Pragma("clang loop unroll(full)")
            for (int i = 0; i < mr; i++) {
                __m512 a = _mm512_set1_ps(Ap[i]);
                c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
                c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
            }
            Ap += mr;
            Bp += VLM_NR;
        }
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    _Pragma("clang loop unroll(full)")
    for (int i = 0; i < mr; i++) STORE_ROW(i);
}

#define UK(n) \
    static VLM_AVX512 void uk_512_##n(int64_t kc, const float *Ap, const float *Bp, float *C, int64_t ldc, int nr, int acc) { \
        uk_512(n, kc, Ap, Bp, C, ldc, nr, acc); \
    }
UK(1) UK(2) UK(3) UK(4) UK(5) UK(6) UK(7) UK(8) UK(9) UK(10) UK(11) UK(12) UK(13) UK(14)

typedef void (*uk_fn)(int64_t, const float *, const float *, float *, int64_t, int, int);
static const uk_fn uk_table[MR512 + 1] = {
    NULL, uk_512_1, uk_512_2, uk_512_3, uk_512_4, uk_512_5, uk_512_6, uk_512_7,
    uk_512_8, uk_512_9, uk_512_10, uk_512_11, uk_512_12, uk_512_13, uk_512_14,
};

static void ukernel_avx512(int mr, int64_t kc, const float *Ap, const float *Bp, float *C, int64_t ldc, int nr,
                           int accumulate) {
    uk_table[mr](kc, Ap, Bp, C, ldc, nr, accumulate);
}

VLM_AVX512 void vlm_bias_act_avx512(float *x, int64_t n, const float *bias, vlm_activation act) {
    int64_t i = 0;
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        v = act_512(v, act);
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}

const vlm_gemm_kernels vlm_gemm_kernels_avx512 = {
    .mr_max = MR512,
    .ukernel = ukernel_avx512,
    .bias_act = vlm_bias_act_avx512,
};
#else
const vlm_gemm_kernels vlm_gemm_kernels_avx512 = {0};
#endif
