// bf16 compute on BF16 weights: the definition (cvlm_kernels.h, vlm_linear_bf16), its naive twin, the AVX512_BF16
// kernel (vdpbf16ps; driver: gemm_lowp.c) and the fallback for CPUs without it.
//
// Why: on CPUs with AVX512_BF16 one vdpbf16ps does 32 multiply-adds per 512-bit register where an fp32 FMA does
// 16, so encoders and prefill (compute-bound) can run up to twice the fp32 peak; PyTorch's bf16 autocast gets its
// speed the same way. BF16 panels are stored in vdpbf16ps's operand layout, k pairs per column (kernels_internal.h),
// so the tiles read the weights in place.
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

const vlm_lowp_kernels *vlm_active_bf16_kernels(void) {
    if (vlm_active_isa() == VLM_ISA_AVX512 && (vlm_cpu_features() & VLM_CPU_AVX512_BF16) && vlm_bf16_kernels_avx512.tile)
        return &vlm_bf16_kernels_avx512;
    return NULL;
}

const char *vlm_bf16_gemm_kernel(void) {
    const vlm_lowp_kernels *ks = vlm_active_bf16_kernels();
    if (ks) return ks->name;
    switch (vlm_active_isa()) {
    case VLM_ISA_AVX512: return "avx512 fp32 FMA on bf16-rounded activations (no AVX512_BF16)";
    case VLM_ISA_AVX2: return "avx2 fp32 FMA on bf16-rounded activations";
    default: return "naive";
    }
}

// MARK: Reference

int vlm_linear_bf16_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                          vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_BF16) return -1;
    if (M <= 0) return 0;
    int64_t K = W->K;
    float *xb = vlm_aligned_alloc((size_t)(K + 1) * sizeof(float));
    if (!xb) return VLM_ERR_NOMEM;
    xb[K] = 0.0f;
    for (int64_t m = 0; m < M; m++) {
        for (int64_t k = 0; k < K; k++) xb[k] = vlm_bf16_round(X[m * ldx + k]);
        for (int64_t n = 0; n < W->N; n++) {
            int64_t p = n / VLM_NR;
            int j = (int)(n % VLM_NR);
            float c = 0.0f;
            for (int64_t k = 0; k < K; k += 2) {
                if (k + 1 < K) c = fmaf(xb[k + 1], vlm_packed_get(W, p, k + 1, j), c);
                c = fmaf(xb[k], vlm_packed_get(W, p, k, j), c);
            }
            if (bias) c = c + bias[n];
            Y[m * ldy + n] = vlm_act_scalar(c, act);
        }
    }
    vlm_aligned_free(xb);
    return 0;
}

// MARK: Entry point

int vlm_linear_bf16(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                    vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_BF16) return -1;
    if (M <= 0) return 0;
    const vlm_lowp_kernels *ks = vlm_active_bf16_kernels();
    if (ks) return vlm_lowp_linear(ks, X, M, ldx, W, bias, act, Y, ldy);
    // No bf16 dot product: round the activations to bf16 (exactly representable in fp32) and run the exact path on
    // the widened weights -- the definition's products, summed by the fp32 kernel.
    int64_t K = W->K;
    float *xr = vlm_scratch(VLM_SLOT_I8A, (size_t)(M * K) + 16);
    if (!xr) return VLM_ERR_NOMEM;
    uint16_t tmp[256];
    for (int64_t m = 0; m < M; m++)
        for (int64_t k0 = 0; k0 < K; k0 += 256) {
            int64_t n = K - k0 < 256 ? K - k0 : 256;
            vlm_f32_to_bf16(X + m * ldx + k0, tmp, n);
            vlm_bf16_to_f32(tmp, xr + m * K + k0, n);
        }
    return vlm_linear_exact(xr, M, K, W, bias, act, Y, ldy);
}

// MARK: Two-operand products (training)

// op(B)ᵀ as an N x K BF16 weight: the panels vlm_linear_bf16's tiles read.
static vlm_packed_weight *pack_operand_b(int transB, int64_t N, int64_t K, const float *B, int64_t ldb) {
    vlm_packed_weight *w = vlm_packed_weight_create(N, K, VLM_WEIGHT_BF16);
    if (!w) return NULL;
    int rc = 0;
    if (!transB) rc = vlm_pack_weight_transposed(w, B, ldb);  // B [K, N]: W(n, k) = B[k, n]
    else if (ldb == K) rc = vlm_pack_weight_rows(w, 0, B, VLM_SRC_F32, N);
    else for (int64_t n = 0; n < N && rc == 0; n++) rc = vlm_pack_weight_rows(w, n, B + n * ldb, VLM_SRC_F32, 1);
    if (rc != 0) { vlm_packed_weight_free(w); return NULL; }
    return w;
}

int vlm_matmul_bf16(int transA, int transB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float *C, int64_t ldc) {
    if (!A || !B || !C || M < 0 || N < 0 || K < 0 || ldc < N || lda < (transA ? M : K) || ldb < (transB ? K : N)) return -1;
    if (M == 0 || N == 0) return 0;
    if (K == 0) {
        for (int64_t m = 0; m < M; m++) memset(C + m * ldc, 0, (size_t)N * sizeof(float));
        return 0;
    }
    vlm_packed_weight *w = pack_operand_b(transB, N, K, B, ldb);
    if (!w) return VLM_ERR_NOMEM;
    const float *X = A;
    int64_t ldx = lda;
    if (transA) {
        // op(A) = Aᵀ row-major: the tiles read activation rows (rounded to bf16 as they are converted).
        float *xt = vlm_scratch(VLM_SLOT_MATMUL_A, (size_t)(M * K) + 16);
        if (!xt) { vlm_packed_weight_free(w); return VLM_ERR_NOMEM; }
        const vlm_gemm_kernels *gk = vlm_active_gemm_kernels();
        if (gk && gk->transpose_scale) gk->transpose_scale(A, lda, K, M, 1.0f, xt, K);
        else
            for (int64_t k = 0; k < K; k++)
                for (int64_t m = 0; m < M; m++) xt[m * K + k] = A[k * lda + m];
        X = xt;
        ldx = K;
    }
    int rc = vlm_linear_bf16(X, M, ldx, w, NULL, VLM_ACT_NONE, C, ldc);
    vlm_packed_weight_free(w);
    return rc;
}

int vlm_matmul_bf16_naive(int transA, int transB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          const float *B, int64_t ldb, float *C, int64_t ldc) {
    if (!A || !B || !C || M < 0 || N < 0 || K < 0 || ldc < N || lda < (transA ? M : K) || ldb < (transB ? K : N)) return -1;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) {
                float a = transA ? A[k * lda + m] : A[m * lda + k], b = transB ? B[n * ldb + k] : B[k * ldb + n];
                acc += (double)vlm_bf16_round(a) * (double)vlm_bf16_round(b);
            }
            C[m * ldc + n] = (float)acc;
        }
    return 0;
}

// MARK: AVX512_BF16 kernel

#if defined(__x86_64__)
#include "simd_math.h"

#define VLM_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c,avx2")))
#define BF16_MR 14
// Bytes ahead of the k pair in use that each tile prefetches (two lines per pair): the first row tile of a panel
// reads it from memory, the others from L2. SmolLM2-1.7B bf16 prefill, 128 tokens, two threads, Zen 5, two rounds:
// none 264.8 / 246.1 tokens/s, 4 KiB 270.0 / 275.0, 8 KiB 263.0 / 273.6 (session 21).
#define BF16_PREFETCH 4096

// Rows of X rounded to bf16 (vcvtne2ps2bf16: nearest even, NaN stays NaN) into dst [rows, kpad], zero-padded.
static VLM_BF16 void convert_rows(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group,
                                  void *dst, float *sa) {
    (void)sa;
    (void)group;
    uint16_t *d = dst;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = X + r * ldx;
        uint16_t *o = d + r * kpad;
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k));
            _mm512_storeu_si512((void *)(o + k), (__m512i)v);
        }
        if (k < K) {
            int rem = (int)(K - k);
            __mmask16 lo = (__mmask16)(rem >= 16 ? 0xFFFF : (1u << rem) - 1);
            __mmask16 hi = (__mmask16)(rem <= 16 ? 0 : (1u << (rem - 16)) - 1);
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + k + 16), _mm512_maskz_loadu_ps(lo, x + k));
            _mm512_mask_storeu_epi16((void *)(o + k), (__mmask32)((1ull << rem) - 1), (__m512i)v);
        }
        for (k = K; k < kpad; k++) o[k] = 0;
    }
}

VLM_INLINE VLM_BF16 void bf16_rows(const int MR, const uint16_t *A, int64_t lda, const unsigned char *B, int64_t kpad,
                                   const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {
    __m512 acc[BF16_MR][2];
    // Fully unrolled over the rows (MR is a constant in each bf16_N), so the 2 MR accumulators stay in registers.
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kpad; k += 2) {
        _mm_prefetch((const char *)(B + k * 64) + BF16_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(B + k * 64) + BF16_PREFETCH + 64, _MM_HINT_T0);
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)(B + k * 64));
        __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(B + k * 64 + 64));
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            int32_t pair;
            memcpy(&pair, A + i * lda + k, 4);
            __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
        }
    }
    // Epilogue in registers: y = act(acc + bias), the same operations as vlm_bias_act_avx512 on stored rows.
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int i = 0; i < MR; i++) store_row_epilogue_512(Y + i * ldy, acc[i][0], acc[i][1], m0, m1, bias, bias0, bias1, act);
}

#define BF16_TILE_FN(MR)                                                                                           \
    static VLM_BF16 void bf16_##MR(const uint16_t *A, int64_t lda, const unsigned char *B, int64_t kpad,            \
                                   const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {         \
        bf16_rows(MR, A, lda, B, kpad, bias, act, Y, ldy, nr);                                                     \
    }
BF16_TILE_FN(1) BF16_TILE_FN(2) BF16_TILE_FN(3) BF16_TILE_FN(4) BF16_TILE_FN(5) BF16_TILE_FN(6) BF16_TILE_FN(7)
BF16_TILE_FN(8) BF16_TILE_FN(9) BF16_TILE_FN(10) BF16_TILE_FN(11) BF16_TILE_FN(12) BF16_TILE_FN(13) BF16_TILE_FN(14)

typedef void (*bf16_fn)(const uint16_t *, int64_t, const unsigned char *, int64_t, const float *, vlm_activation,
                        float *, int64_t, int);
static const bf16_fn bf16_tiles[BF16_MR + 1] = {
    NULL, bf16_1, bf16_2, bf16_3, bf16_4, bf16_5, bf16_6, bf16_7, bf16_8, bf16_9, bf16_10, bf16_11, bf16_12, bf16_13, bf16_14,
};

static void tile_bf16(int mr, const void *A, int64_t lda, const void *B, const int32_t *colsum, const vlm_packed_weight *w,
                      int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y,
                      int64_t ldy, int nr) {
    (void)colsum; (void)w; (void)p; (void)sa;
    if (mr >= 1 && mr <= BF16_MR) bf16_tiles[mr](A, lda, B, kpad, bias, act, Y, ldy, nr);
}

// One k pair of a BF16 panel from two source rows (r1 NULL: K's zero pair partner): dst[(j / 16) * 32 + (j % 16) * 2
// + h] = bf16(r_h[j]) for the panel's `cols` columns, zeros past them -- pack_panel_transposed's scalar loop (pack.c)
// with one vcvtne2ps2bf16 and one vpermw per 16 columns (the weight-gradient products pack ~15 M values a step).
static VLM_BF16 void pack_pair_rows(const float *r0, const float *r1, int cols, uint16_t *dst) {
    // Word 2j of the result takes word j of the converted vector (r0's), word 2j + 1 word 16 + j (r1's).
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int h = 0; h < 2; h++) {
        int n = cols - 16 * h;
        __mmask16 m = (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
        __m512 lo = _mm512_maskz_loadu_ps(m, r0 + 16 * h), hi = r1 ? _mm512_maskz_loadu_ps(m, r1 + 16 * h) : _mm512_setzero_ps();
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        _mm512_storeu_si512((void *)(dst + 32 * h), _mm512_permutexvar_epi16(interleave, v));
    }
}

const vlm_lowp_kernels vlm_bf16_kernels_avx512 = {
    .name = "avx512-bf16 vdpbf16ps 14x32",
    .mr_max = BF16_MR,
    .a_bytes = 2,
    .k_align = 2,
    .b_bytes = 64,
    .quantize_rows = convert_rows,
    .pack_panel = NULL,  // BF16 panels are stored as k pairs (kernels_internal.h)
    .tile = tile_bf16,
    .pack_pair_rows = pack_pair_rows,
};
#else
const vlm_lowp_kernels vlm_bf16_kernels_avx512 = {0};
#endif
