// AVX2 GEMM micro-kernel: up to 6 rows x 16 columns (12 ymm accumulators + 2 B + 1 broadcast of 16
// registers). A 32-wide packed panel is processed as two 16-column halves (B row stride VLM_NR).
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

#define MR256 6

// The k loop is inline assembly for the same reason as the AVX-512 kernel (gemm_avx512.c): SwiftPM's
// debug builds compile C at -O0, where intrinsics code is ~50x slower. A's addressing is a parameter
// (ROWS_RM / ROWS_CM below). B rows are VLM_NR floats apart (128 bytes); one call handles a 16-column half
// of a panel.
#define ROW256(idx, addr, r0, r1)                                \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vbroadcastss " addr ", %%ymm14\n\t"                         \
    "vfmadd231ps %%ymm12, %%ymm14, %%ymm" #r0 "\n\t"             \
    "vfmadd231ps %%ymm13, %%ymm14, %%ymm" #r1 "\n\t"             \
    ".endif\n\t"
#define ZERO256(idx, r0, r1)                                     \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vxorps %%ymm" #r0 ", %%ymm" #r0 ", %%ymm" #r0 "\n\t"        \
    "vxorps %%ymm" #r1 ", %%ymm" #r1 ", %%ymm" #r1 "\n\t"        \
    ".endif\n\t"
#define SAVE256(idx, r0, r1, off0, off1)                         \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vmovaps %%ymm" #r0 ", " #off0 "(%[acc])\n\t"                \
    "vmovaps %%ymm" #r1 ", " #off1 "(%[acc])\n\t"                \
    ".endif\n\t"

// acc[i*16 + j] = sum_k A(i, k) * Bp[k*VLM_NR + j], i < MR_, j < 16.
// B loads are a parameter (LOAD: one k row of the half panel into ymm12/ymm13, STEP: bytes per k row, PRE:
// set-up before the loop) so the 16-bit panels (below) run the same FMA sequence as f32.
#define KERNEL256(MR_, kc, A, lda, Bp, acc) \
    KERNEL256_B(MR_, kc, A, lda, Bp, acc, "", "vmovaps (%[b]), %%ymm12\n\t" "vmovaps 32(%[b]), %%ymm13\n\t", "$128")
// Row-major A: row i of a k step at a0 + i*lda (rows 0-3 off a0 with scales 1, 2 and lda3; rows 4-5 off a1 =
// a0 + 4 lda); a k step advances both by one float.
#define ROWS_RM ROWS_RM_AT("")
// The same rows with A read OFF bytes further (a string: "4" is the next k).
#define ROWS_RM_AT(OFF)                                                                                  \
    ROW256(0, OFF "(%[a0])", 0, 1) ROW256(1, OFF "(%[a0],%[lda],1)", 2, 3)                               \
    ROW256(2, OFF "(%[a0],%[lda],2)", 4, 5) ROW256(3, OFF "(%[a0],%[lda3],1)", 6, 7)                     \
    ROW256(4, OFF "(%[a1])", 8, 9) ROW256(5, OFF "(%[a1],%[lda],1)", 10, 11)
#define ADVANCE_RM "add $4, %[a0]\n\t" "add $4, %[a1]\n\t"
// Column-major A (A(i, k) at A[k * lda + i]): the six rows of a k step are consecutive floats, and a k step
// advances by lda. Same accumulators and FMA order, so the result equals transposing A first.
#define ROWS_CM                                                                                          \
    ROW256(0, "(%[a0])", 0, 1) ROW256(1, "4(%[a0])", 2, 3) ROW256(2, "8(%[a0])", 4, 5)                 \
    ROW256(3, "12(%[a0])", 6, 7) ROW256(4, "16(%[a0])", 8, 9) ROW256(5, "20(%[a0])", 10, 11)
#define ADVANCE_CM "add %[lda], %[a0]\n\t"
#define ZEROS256 ZERO256(0, 0, 1) ZERO256(1, 2, 3) ZERO256(2, 4, 5) ZERO256(3, 6, 7) ZERO256(4, 8, 9) ZERO256(5, 10, 11)
#define SAVES256                                                                                         \
    SAVE256(0, 0, 1, 0, 32) SAVE256(1, 2, 3, 64, 96) SAVE256(2, 4, 5, 128, 160)                          \
    SAVE256(3, 6, 7, 192, 224) SAVE256(4, 8, 9, 256, 288) SAVE256(5, 10, 11, 320, 352)
#define YMM_CLOBBERS                                                                                     \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",     \
    "xmm12", "xmm13", "xmm14", "xmm15"
#define KERNEL256_B(MR_, kc, A, lda, Bp, acc, PRE, LOAD, STEP) \
    KERNEL256_X(MR_, kc, A, lda, Bp, acc, PRE, LOAD, STEP, ROWS_RM, ADVANCE_RM)
#define KERNEL256_X(MR_, kc, A, lda, Bp, acc, PRE, LOAD, STEP, ROWS, ADVANCE)                          \
    do {                                                                                                 \
        uintptr_t a0 = (uintptr_t)(A), ldb_ = (uintptr_t)(lda) * 4;                                      \
        uintptr_t a1 = a0 + 4 * ldb_, lda3 = 3 * ldb_;                                                   \
        uintptr_t b_ = (uintptr_t)(Bp);                                                                  \
        int64_t k_ = (kc);                                                                               \
        __asm__ volatile(                                                                                \
            PRE                                                                                          \
            ZEROS256                                                                                     \
            "test %[k], %[k]\n\t"                                                                        \
            "jle 2f\n\t"                                                                                 \
            ".p2align 5\n"                                                                               \
            "1:\n\t"                                                                                     \
            LOAD                                                                                         \
            ROWS                                                                                         \
            "add " STEP ", %[b]\n\t"                                                                     \
            ADVANCE                                                                                      \
            "dec %[k]\n\t"                                                                               \
            "jnz 1b\n"                                                                                   \
            "2:\n\t"                                                                                     \
            SAVES256                                                                                     \
            : [a0] "+r"(a0), [a1] "+r"(a1), [b] "+r"(b_), [k] "+r"(k_)                                   \
            : [lda] "r"(ldb_), [lda3] "r"(lda3), [acc] "r"(acc), [mr] "i"(MR_)                           \
            : "memory", "cc", YMM_CLOBBERS);                                                             \
    } while (0)

#define KERNEL256_CM(MR_, kc, A, lda, Bp, acc) \
    KERNEL256_X(MR_, kc, A, lda, Bp, acc, "", "vmovaps (%[b]), %%ymm12\n\t" "vmovaps 32(%[b]), %%ymm13\n\t", "$128", ROWS_CM, ADVANCE_CM)

// C[0:mr, 0:nr] (+)= acc (16 columns per row), nr <= 16.
static VLM_AVX2 void store_half(const float *acc, int mr, float *C, int64_t ldc, int nr, int accumulate) {
    __m256i m0 = tail_mask_256(nr), m1 = tail_mask_256(nr - 8);
    for (int i = 0; i < mr; i++) {
        float *cr = C + i * ldc;
        __m256 c0 = _mm256_load_ps(acc + i * 16), c1 = _mm256_load_ps(acc + i * 16 + 8);
        if (nr >= 16) {
            if (accumulate) {
                c0 = _mm256_add_ps(c0, _mm256_loadu_ps(cr));
                c1 = _mm256_add_ps(c1, _mm256_loadu_ps(cr + 8));
            }
            _mm256_storeu_ps(cr, c0);
            _mm256_storeu_ps(cr + 8, c1);
        } else {
            if (accumulate) {
                c0 = _mm256_add_ps(c0, _mm256_maskload_ps(cr, m0));
                c1 = _mm256_add_ps(c1, _mm256_maskload_ps(cr + 8, m1));
            }
            _mm256_maskstore_ps(cr, m0, c0);
            _mm256_maskstore_ps(cr + 8, m1, c1);
        }
    }
}

// uk_256_n (row-major A) and ukcm_256_n (column-major A): n rows, both 16-column halves of a panel.
#define UK_GEN(name, KERNEL, n)                                                                          \
    static VLM_AVX2 void name##n(int64_t kc, const float *A, int64_t lda, const float *Bp, float *C,       \
                                 int64_t ldc, int nr, int accumulate) {                                   \
        float acc[MR256 * 16] __attribute__((aligned(32)));                                              \
        KERNEL(n, kc, A, lda, Bp, acc);                                                                  \
        store_half(acc, n, C, ldc, nr < 16 ? nr : 16, accumulate);                                       \
        if (nr > 16) {                                                                                   \
            KERNEL(n, kc, A, lda, Bp + 16, acc);                                                         \
            store_half(acc, n, C + 16, ldc, nr - 16, accumulate);                                        \
        }                                                                                                \
    }
#define UK(n) UK_GEN(uk_256_, KERNEL256, n)
#define UKCM(n) UK_GEN(ukcm_256_, KERNEL256_CM, n)
UK(1) UK(2) UK(3) UK(4) UK(5) UK(6)
UKCM(1) UKCM(2) UKCM(3) UKCM(4) UKCM(5) UKCM(6)

typedef void (*uk_fn)(int64_t, const float *, int64_t, const float *, float *, int64_t, int, int);
static const uk_fn uk_table[MR256 + 1] = {NULL, uk_256_1, uk_256_2, uk_256_3, uk_256_4, uk_256_5, uk_256_6};

static void ukernel_avx2(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int nr,
                         int accumulate) {
    uk_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate);
}

static const uk_fn ukcm_table[MR256 + 1] = {NULL, ukcm_256_1, ukcm_256_2, ukcm_256_3, ukcm_256_4, ukcm_256_5, ukcm_256_6};

static void ukernel_cm_avx2(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                            int nr, int accumulate) {
    ukcm_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate);
}

// MARK: 16-bit panels (layouts: kernels_internal.h)
// f16: VCVTPH2PS widens 8 consecutive halves exactly; half h of the panel row starts at byte 32 h.
// bf16: k pairs of 128 bytes; lane i of the 32 bytes at 32 q is (w[k+1, c] << 16) | w[k, c] for column c = 8 q + i,
// so a 16-column half h is the pair's bytes 64 h .. 64 h + 63. bf16 is the upper half of a binary32: lane << 16 is
// the even k, lane & 0xFFFF0000 the odd one (mask in ymm15, unused by the kernel), both exact. The kernel steps a
// pair at a time with the FMA order of one k at a time; an odd kc ends with the last pair's even k.
#define PRE_MASK256 "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t" "vpslld $16, %%ymm15, %%ymm15\n\t"
#define LOAD_BF16_EVEN                                                                                   \
    "vmovdqu (%[b]), %%ymm12\n\t" "vpslld $16, %%ymm12, %%ymm12\n\t"                                     \
    "vmovdqu 32(%[b]), %%ymm13\n\t" "vpslld $16, %%ymm13, %%ymm13\n\t"
#define LOAD_BF16_ODD "vpand (%[b]), %%ymm15, %%ymm12\n\t" "vpand 32(%[b]), %%ymm15, %%ymm13\n\t"
#define LOAD_F16 "vcvtph2ps (%[b]), %%ymm12\n\t" "vcvtph2ps 16(%[b]), %%ymm13\n\t"
#define KERNEL256_BF16_PAIRS(MR_, kc, A, lda, Bp, acc)                                                   \
    do {                                                                                                 \
        uintptr_t a0 = (uintptr_t)(A), ldb_ = (uintptr_t)(lda) * 4;                                      \
        uintptr_t a1 = a0 + 4 * ldb_, lda3 = 3 * ldb_;                                                   \
        uintptr_t b_ = (uintptr_t)(Bp);                                                                  \
        int64_t pairs = (kc) / 2, odd = (kc) & 1;                                                        \
        __asm__ volatile(                                                                                \
            PRE_MASK256                                                                                  \
            ZEROS256                                                                                     \
            "test %[k], %[k]\n\t"                                                                        \
            "jle 2f\n\t"                                                                                 \
            ".p2align 5\n"                                                                               \
            "1:\n\t"                                                                                     \
            LOAD_BF16_EVEN                                                                               \
            ROWS_RM_AT("")                                                                               \
            LOAD_BF16_ODD                                                                                \
            ROWS_RM_AT("4")                                                                              \
            "add $128, %[b]\n\t"                                                                         \
            "add $8, %[a0]\n\t" "add $8, %[a1]\n\t"                                                      \
            "dec %[k]\n\t"                                                                               \
            "jnz 1b\n"                                                                                   \
            "2:\n\t"                                                                                     \
            "test %[odd], %[odd]\n\t"                                                                    \
            "jz 3f\n\t"                                                                                  \
            LOAD_BF16_EVEN                                                                               \
            ROWS_RM_AT("")                                                                               \
            "3:\n\t"                                                                                     \
            SAVES256                                                                                     \
            : [a0] "+r"(a0), [a1] "+r"(a1), [b] "+r"(b_), [k] "+r"(pairs)                                \
            : [lda] "r"(ldb_), [lda3] "r"(lda3), [odd] "r"(odd), [acc] "r"(acc), [mr] "i"(MR_)           \
            : "memory", "cc", YMM_CLOBBERS);                                                             \
    } while (0)

#define UK16(n)                                                                                          \
    static VLM_AVX2 void uk16_256_##n(int64_t kc, const float *A, int64_t lda, const uint16_t *Bp,       \
                                      float *C, int64_t ldc, int nr, int accumulate, int f16) {          \
        float acc[MR256 * 16] __attribute__((aligned(32)));                                              \
        if (f16) KERNEL256_B(n, kc, A, lda, Bp, acc, "", LOAD_F16, "$64");                               \
        else KERNEL256_BF16_PAIRS(n, kc, A, lda, Bp, acc);                                               \
        store_half(acc, n, C, ldc, nr < 16 ? nr : 16, accumulate);                                       \
        if (nr > 16) {                                                                                   \
            if (f16) KERNEL256_B(n, kc, A, lda, Bp + 16, acc, "", LOAD_F16, "$64");                      \
            else KERNEL256_BF16_PAIRS(n, kc, A, lda, Bp + 32, acc);                                      \
            store_half(acc, n, C + 16, ldc, nr - 16, accumulate);                                        \
        }                                                                                                \
    }
UK16(1) UK16(2) UK16(3) UK16(4) UK16(5) UK16(6)

typedef void (*uk16_fn)(int64_t, const float *, int64_t, const uint16_t *, float *, int64_t, int, int, int);
static const uk16_fn uk16_table[MR256 + 1] = {NULL, uk16_256_1, uk16_256_2, uk16_256_3, uk16_256_4, uk16_256_5, uk16_256_6};

void vlm_ukernel16_avx2(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                        int nr, int accumulate, int f16) {
    uk16_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate, f16);
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

// 8 x 8 tiles through registers (unpack -> 4x4 shuffles -> 128-bit lane swaps), edges under masks. The scalar
// tile loop it replaces was ~11% of a generative training step (the dW = dZᵀX and attention-backward
// transposes; perf record of `vlm train vlm`, Zen 3).
static VLM_AVX2 void transpose_scale_256(const float *src, int64_t lds, int64_t rows, int64_t cols, float alpha,
                                         float *dst, int64_t ldd) {
    __m256 va = _mm256_set1_ps(alpha);
    for (int64_t r0 = 0; r0 < rows; r0 += 8) {
        int nrow = (int)(rows - r0 < 8 ? rows - r0 : 8);
        __m256i rmask = tail_mask_256(nrow);
        for (int64_t c0 = 0; c0 < cols; c0 += 8) {
            int ncol = (int)(cols - c0 < 8 ? cols - c0 : 8);
            __m256i cmask = tail_mask_256(ncol);
            __m256 r[8], t[8], s[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < nrow ? _mm256_maskload_ps(src + (r0 + i) * lds + c0, cmask) : _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            // s[4g + j], 128-bit lane L: column 4L + j of rows 4g .. 4g+3.
            for (int g = 0; g < 2; g++) {
                s[4 * g + 0] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0x44);
                s[4 * g + 1] = _mm256_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0xEE);
                s[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
                s[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
            }
            for (int j = 0; j < 4; j++) {
                // Column j: low lanes of s[j] (rows 0-3) and s[4 + j] (rows 4-7); column 4 + j: the high lanes.
                if (j < ncol)
                    _mm256_maskstore_ps(dst + (c0 + j) * ldd + r0, rmask,
                                        _mm256_mul_ps(_mm256_permute2f128_ps(s[j], s[4 + j], 0x20), va));
                if (4 + j < ncol)
                    _mm256_maskstore_ps(dst + (c0 + 4 + j) * ldd + r0, rmask,
                                        _mm256_mul_ps(_mm256_permute2f128_ps(s[j], s[4 + j], 0x31), va));
            }
        }
    }
}

const vlm_gemm_kernels vlm_gemm_kernels_avx2 = {
    .mr_max = MR256,
    .transpose_scale = transpose_scale_256,
    .ukernel_cm = ukernel_cm_avx2,
    .ukernel = ukernel_avx2,
    .ukernel16 = vlm_ukernel16_avx2,
    .bias_act = vlm_bias_act_avx2,
    // Quantized panels: the AVX2 kernels (quant_avx2.c) until AVX-512/VNNI ones exist.
    .qdequant = vlm_qdequant_avx2,
    .qgemv = vlm_qgemv_avx2,
};
#else
const vlm_gemm_kernels vlm_gemm_kernels_avx2 = {0};
void vlm_ukernel16_avx2(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                        int nr, int accumulate, int f16) {
    (void)mr; (void)kc; (void)A; (void)lda; (void)Bp; (void)C; (void)ldc; (void)nr; (void)accumulate; (void)f16;
}
#endif
