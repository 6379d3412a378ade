// AVX-512 decode GEMV of the I8 format (weight-only: fp32 activations; layout: kernels_internal.h). I4 weights take
// the AVX2 kernel (quant_avx2.c) or, with --precision int4, the W4A8 kernel (gemm_w4a8.c).
//
// Why: the AVX2 GEMV widens 8 codes per vector, so on a CPU with 512-bit units it spends twice the instructions
// per byte it needs, and on two Zen 5 cores it streamed int8 weights at 62-66 GB/s while the memory gave 80+ (int8
// decode of SmolLM2 at 64-74% of the roofline in those minutes). Here one sign-extending load and one conversion
// widen 16 codes. The arithmetic is the AVX2 kernel's: per group, sum_k x_k q_k in fp32, then acc += s * sum.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

#ifndef QGEMV512_PREFETCH
#define QGEMV512_PREFETCH 8192  // bytes ahead: the W4A8 kernel's distance (gemm_w4a8.c)
#endif

// Codes of k row `row` (32 columns) as two vectors of 16 floats (exact: |q| <= 127).
VLM_INLINE VLM_AVX512 void i8_row_512(const unsigned char *row, __m512 *w0, __m512 *w1) {
    *w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)row)));
    *w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(row + 16))));
}

// MR rows (1..4, a constant after inlining) over panels p0..p1. Per group, U sets of accumulators alternate over k
// (U = 4 / MR, at least 1) so that 8 FMA chains are in flight whatever MR is; they are added at the group's end.
VLM_INLINE VLM_AVX512 void qgemv_i8_rows_512(const int MR, const float *X, int64_t ldx, const vlm_packed_weight *w,
                                             int64_t p0, int64_t p1, const float *bias, vlm_activation act, float *Y,
                                             int64_t ldy) {
    enum { U_MAX = 4 };
    const int U = MR >= 4 ? 1 : 4 / MR;
    for (int64_t p = p0; p < p1; p++) {
        __m512 C[VLM_QGEMV_MAX_M][2];
        for (int m = 0; m < MR; m++) C[m][0] = C[m][1] = _mm512_setzero_ps();
        for (int64_t g = 0; g < w->ngroups; g++) {
            const unsigned char *blk = vlm_qblock(w, p, g), *codes = blk + vlm_qcodes_offset(VLM_WEIGHT_I8);
            int64_t k0 = g * w->group, len = w->K - k0 < w->group ? w->K - k0 : w->group;
            __m512 G[U_MAX][VLM_QGEMV_MAX_M][2];
            for (int u = 0; u < U; u++)
                for (int m = 0; m < MR; m++) G[u][m][0] = G[u][m][1] = _mm512_setzero_ps();
            int64_t i = 0;
            for (; i + U <= len; i += U) {
                // One prefetch per 64 bytes of codes (two k rows).
                if (U == 1) { if ((i & 1) == 0) _mm_prefetch((const char *)(codes + i * VLM_NR) + QGEMV512_PREFETCH, _MM_HINT_T0); }
                else for (int u = 0; u < U; u += 2) _mm_prefetch((const char *)(codes + (i + u) * VLM_NR) + QGEMV512_PREFETCH, _MM_HINT_T0);
                for (int u = 0; u < U; u++) {
                    __m512 w0, w1;
                    i8_row_512(codes + (i + u) * VLM_NR, &w0, &w1);
                    for (int m = 0; m < MR; m++) {
                        __m512 xb = _mm512_set1_ps(X[m * ldx + k0 + i + u]);
                        G[u][m][0] = _mm512_fmadd_ps(xb, w0, G[u][m][0]);
                        G[u][m][1] = _mm512_fmadd_ps(xb, w1, G[u][m][1]);
                    }
                }
            }
            for (; i < len; i++) {
                __m512 w0, w1;
                i8_row_512(codes + i * VLM_NR, &w0, &w1);
                for (int m = 0; m < MR; m++) {
                    __m512 xb = _mm512_set1_ps(X[m * ldx + k0 + i]);
                    G[0][m][0] = _mm512_fmadd_ps(xb, w0, G[0][m][0]);
                    G[0][m][1] = _mm512_fmadd_ps(xb, w1, G[0][m][1]);
                }
            }
            __m512 s0 = _mm512_loadu_ps((const float *)blk), s1 = _mm512_loadu_ps((const float *)blk + 16);
            for (int m = 0; m < MR; m++) {
                __m512 a0 = G[0][m][0], a1 = G[0][m][1];
                for (int u = 1; u < U; u++) { a0 = _mm512_add_ps(a0, G[u][m][0]); a1 = _mm512_add_ps(a1, G[u][m][1]); }
                C[m][0] = _mm512_fmadd_ps(s0, a0, C[m][0]);
                C[m][1] = _mm512_fmadd_ps(s1, a1, C[m][1]);
            }
        }
        store_panel_512(MR, C, Y, ldy, p * VLM_NR, w->N, bias, act);
    }
}

#define QGEMV512_FN(MR)                                                                                           \
    static VLM_AVX512 void qgemv_i8_512_##MR(const float *X, int64_t ldx, const vlm_packed_weight *w, int64_t p0, \
                                             int64_t p1, const float *bias, vlm_activation act, float *Y,         \
                                             int64_t ldy) {                                                       \
        qgemv_i8_rows_512(MR, X, ldx, w, p0, p1, bias, act, Y, ldy);                                              \
    }
QGEMV512_FN(1) QGEMV512_FN(2) QGEMV512_FN(3) QGEMV512_FN(4)

void vlm_qgemv_avx512(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                      int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    if (M < 1 || M > VLM_QGEMV_MAX_M) return;
    if (w->dtype != VLM_WEIGHT_I8) {
        vlm_qgemv_avx2(X, M, ldx, w, xs, p0, p1, bias, act, Y, ldy);
        return;
    }
    switch (M) {
    case 1: qgemv_i8_512_1(X, ldx, w, p0, p1, bias, act, Y, ldy); break;
    case 2: qgemv_i8_512_2(X, ldx, w, p0, p1, bias, act, Y, ldy); break;
    case 3: qgemv_i8_512_3(X, ldx, w, p0, p1, bias, act, Y, ldy); break;
    default: qgemv_i8_512_4(X, ldx, w, p0, p1, bias, act, Y, ldy); break;
    }
}
#else
void vlm_qgemv_avx512(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                      int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    (void)X; (void)M; (void)ldx; (void)w; (void)xs; (void)p0; (void)p1; (void)bias; (void)act; (void)Y; (void)ldy;
}
#endif
