// AVX-512 GEMM micro-kernel: up to 14 rows x 32 columns (28 zmm accumulators + 2 B vectors + 1 broadcast
// of the 32 registers). Per k step: 2 aligned B loads, mr broadcasts and 2*mr FMAs, so the two 512-bit
// FMA pipes of Zen 4/5 / Skylake-X stay busy.
//
// Why inline assembly: SwiftPM compiles C at -O0 in debug builds (all tests, and the models' tests), where
// intrinsics code keeps every accumulator in memory and runs ~60x slower. The k loop is written in asm so
// debug and release builds run the same, full-speed instructions; the code around it is plain C.
#include "kernels_internal.h"
#if defined(__x86_64__)
#include "simd_math.h"

#define MR512 14

// One row of the k step: broadcast A(row, k) and FMA it into the row's two accumulators (r0, r1).
// `.if` drops rows >= mr at assembly time, so one template serves every tile height.
#define ROW(idx, addr, r0, r1)                                   \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vbroadcastss " addr ", %%zmm30\n\t"                         \
    "vfmadd231ps %%zmm28, %%zmm30, %%zmm" #r0 "\n\t"             \
    "vfmadd231ps %%zmm29, %%zmm30, %%zmm" #r1 "\n\t"             \
    ".endif\n\t"
#define ZERO(idx, r0, r1)                                        \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vpxord %%zmm" #r0 ", %%zmm" #r0 ", %%zmm" #r0 "\n\t"        \
    "vpxord %%zmm" #r1 ", %%zmm" #r1 ", %%zmm" #r1 "\n\t"        \
    ".endif\n\t"
#define SAVE(idx, r0, r1, off0, off1)                            \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vmovaps %%zmm" #r0 ", " #off0 "(%[acc])\n\t"                \
    "vmovaps %%zmm" #r1 ", " #off1 "(%[acc])\n\t"                \
    ".endif\n\t"

#define ZMM_CLOBBERS                                                                                        \
    "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11",     \
    "zmm12", "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22",     \
    "zmm23", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "zmm30", "zmm31"

// acc[i*32 + j] = sum_k A(i, k) * Bp[k*32 + j] for i < MR_ (5..14 rows). Row i of A lives at
// a0 + i*lda: rows 0-3 off a0, 4-7 off a1 = a0 + 4 lda, 8-11 off a2, 12-13 off a3 (x86 scales 1, 2; 3 via lda3).
// B loads are a parameter (LOAD: one k row of the panel into zmm28/zmm29, STEP: bytes per k row, PRE: set-up
// before the loop) so the f32 and the 16-bit panels run the same FMA sequence (gemm16 section below).
// The 14 rows of one k step, A read at OFF (a string: "" or a byte offset such as "4") from each row's address.
#define ROWS_BIG(OFF)                                                                                    \
    ROW(0, OFF "(%[a0])", 0, 1) ROW(1, OFF "(%[a0],%[lda],1)", 2, 3)                                     \
    ROW(2, OFF "(%[a0],%[lda],2)", 4, 5) ROW(3, OFF "(%[a0],%[lda3],1)", 6, 7)                           \
    ROW(4, OFF "(%[a1])", 8, 9) ROW(5, OFF "(%[a1],%[lda],1)", 10, 11)                                   \
    ROW(6, OFF "(%[a1],%[lda],2)", 12, 13) ROW(7, OFF "(%[a1],%[lda3],1)", 14, 15)                       \
    ROW(8, OFF "(%[a2])", 16, 17) ROW(9, OFF "(%[a2],%[lda],1)", 18, 19)                                 \
    ROW(10, OFF "(%[a2],%[lda],2)", 20, 21) ROW(11, OFF "(%[a2],%[lda3],1)", 22, 23)                     \
    ROW(12, OFF "(%[a3])", 24, 25) ROW(13, OFF "(%[a3],%[lda],1)", 26, 27)
#define ZEROS_BIG                                                                                        \
    ZERO(0, 0, 1) ZERO(1, 2, 3) ZERO(2, 4, 5) ZERO(3, 6, 7) ZERO(4, 8, 9) ZERO(5, 10, 11)                \
    ZERO(6, 12, 13) ZERO(7, 14, 15) ZERO(8, 16, 17) ZERO(9, 18, 19) ZERO(10, 20, 21)                     \
    ZERO(11, 22, 23) ZERO(12, 24, 25) ZERO(13, 26, 27)
#define SAVES_BIG                                                                                        \
    SAVE(0, 0, 1, 0, 64) SAVE(1, 2, 3, 128, 192) SAVE(2, 4, 5, 256, 320) SAVE(3, 6, 7, 384, 448)         \
    SAVE(4, 8, 9, 512, 576) SAVE(5, 10, 11, 640, 704) SAVE(6, 12, 13, 768, 832)                          \
    SAVE(7, 14, 15, 896, 960) SAVE(8, 16, 17, 1024, 1088) SAVE(9, 18, 19, 1152, 1216)                    \
    SAVE(10, 20, 21, 1280, 1344) SAVE(11, 22, 23, 1408, 1472) SAVE(12, 24, 25, 1536, 1600)               \
    SAVE(13, 26, 27, 1664, 1728)
#define KERNEL_BIG(MR_, kc, A, lda, Bp, acc) KERNEL_BIG_B(MR_, kc, A, lda, Bp, acc, "", LOAD_F32_0, "$128")
#define LOAD_F32_0 "vmovaps (%[b]), %%zmm28\n\t" "vmovaps 64(%[b]), %%zmm29\n\t"
#define LOAD_F32_1 "vmovaps 128(%[b]), %%zmm26\n\t" "vmovaps 192(%[b]), %%zmm27\n\t"
#define ADVANCE_BIG(BYTES) "add " BYTES ", %[a0]\n\t" "add " BYTES ", %[a1]\n\t" "add " BYTES ", %[a2]\n\t" "add " BYTES ", %[a3]\n\t"
#define KERNEL_BIG_B(MR_, kc, A, lda, Bp, acc, PRE, LOAD, STEP)                                           \
    KERNEL_BIG_LOOP(MR_, A, lda, Bp, acc, (kc), 0, PRE,                                                  \
                    LOAD "prefetcht0 1024(%[b])\n\t" ROWS_BIG("") "add " STEP ", %[b]\n\t" ADVANCE_BIG("$4"), "")
// The loop of the big kernels: BODY `count` times (A rows at a0..a3, B at b), then TAIL (which may test `odd` and
// jump to 3f), then the accumulators to acc.
#define KERNEL_BIG_LOOP(MR_, A, lda, Bp, acc, COUNT, ODD, PRE, BODY, TAIL)                                \
    do {                                                                                                 \
        uintptr_t a0 = (uintptr_t)(A), ldb_ = (uintptr_t)(lda) * 4;                                      \
        uintptr_t a1 = a0 + 4 * ldb_, a2 = a0 + 8 * ldb_, a3 = a0 + 12 * ldb_, lda3 = 3 * ldb_;          \
        uintptr_t b_ = (uintptr_t)(Bp);                                                                  \
        int64_t k_ = (COUNT), odd_ = (ODD);                                                              \
        __asm__ volatile(                                                                                \
            PRE                                                                                          \
            ZEROS_BIG                                                                                    \
            "test %[k], %[k]\n\t"                                                                        \
            "jle 2f\n\t"                                                                                 \
            ".p2align 5\n"                                                                               \
            "1:\n\t"                                                                                     \
            BODY                                                                                         \
            "dec %[k]\n\t"                                                                               \
            "jnz 1b\n"                                                                                   \
            "2:\n\t"                                                                                     \
            TAIL                                                                                         \
            "3:\n\t"                                                                                     \
            SAVES_BIG                                                                                    \
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [b] "+r"(b_), [k] "+r"(k_)     \
            : [lda] "r"(ldb_), [lda3] "r"(lda3), [odd] "r"(odd_), [acc] "r"(acc), [mr] "i"(MR_)          \
            : "memory", "cc", ZMM_CLOBBERS);                                                             \
    } while (0)

// 1..4 rows: 2*mr accumulators cannot hide the 4-cycle FMA latency, so even and odd k steps go to two
// accumulator sets (zmm0-7 and zmm8-15), summed at the end. Rows at a0 + i*lda.
#define ROW2(idx, addr, addr_odd, r0, r1, s0, s1)                \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vbroadcastss " addr ", %%zmm30\n\t"                         \
    "vfmadd231ps %%zmm28, %%zmm30, %%zmm" #r0 "\n\t"             \
    "vfmadd231ps %%zmm29, %%zmm30, %%zmm" #r1 "\n\t"             \
    "vbroadcastss " addr_odd ", %%zmm31\n\t"                     \
    "vfmadd231ps %%zmm26, %%zmm31, %%zmm" #s0 "\n\t"             \
    "vfmadd231ps %%zmm27, %%zmm31, %%zmm" #s1 "\n\t"             \
    ".endif\n\t"
#define MERGE(idx, r0, r1, s0, s1)                               \
    ".if " #idx " < %c[mr]\n\t"                                  \
    "vaddps %%zmm" #s0 ", %%zmm" #r0 ", %%zmm" #r0 "\n\t"        \
    "vaddps %%zmm" #s1 ", %%zmm" #r1 ", %%zmm" #r1 "\n\t"        \
    ".endif\n\t"

// LOAD0 / LOAD1: k row into zmm28/29, k+1 row into zmm26/27; STEP2: bytes per two k rows.
#define KERNEL_SMALL(MR_, kc, A, lda, Bp, acc) \
    KERNEL_SMALL_B(MR_, kc, A, lda, Bp, acc, "", LOAD_F32_0, LOAD_F32_1, "$256", "prefetcht0 1024(%[b])\n\t")
#define KERNEL_SMALL_B(MR_, kc, A, lda, Bp, acc, PRE, LOAD0, LOAD1, STEP2, PF) \
    KERNEL_SMALL_GEN(MR_, kc, A, lda, Bp, acc, PRE, LOAD0, LOAD1, STEP2, PF, ROWS2_RM, "add $8, %[a0]\n\t", ROWS1_RM)
// Row i of A at a0 + i*lda (row-major); the odd k step 4 bytes further.
#define ROWS2_RM                                                                                         \
    ROW2(0, "(%[a0])", "4(%[a0])", 0, 1, 8, 9)                                                           \
    ROW2(1, "(%[a0],%[lda],1)", "4(%[a0],%[lda],1)", 2, 3, 10, 11)                                       \
    ROW2(2, "(%[a0],%[lda],2)", "4(%[a0],%[lda],2)", 4, 5, 12, 13)                                       \
    ROW2(3, "(%[a0],%[lda3],1)", "4(%[a0],%[lda3],1)", 6, 7, 14, 15)
#define ROWS1_RM                                                                                         \
    ROW(0, "(%[a0])", 0, 1) ROW(1, "(%[a0],%[lda],1)", 2, 3)                                             \
    ROW(2, "(%[a0],%[lda],2)", 4, 5) ROW(3, "(%[a0],%[lda3],1)", 6, 7)
// The small kernels' loop: ROWS2 (an even and an odd k step into the two accumulator sets) `kc / 2` times with
// ADVANCE, then ROWS1 for an odd kc, the sets merged.
#define KERNEL_SMALL_GEN(MR_, kc, A, lda, Bp, acc, PRE, LOAD0, LOAD1, STEP2, PF, ROWS2, ADVANCE, ROWS1)     \
    do {                                                                                                 \
        uintptr_t a0 = (uintptr_t)(A), ldb_ = (uintptr_t)(lda) * 4, lda3 = 3 * ldb_;                      \
        uintptr_t b_ = (uintptr_t)(Bp);                                                                  \
        int64_t pairs = (kc) / 2, odd = (kc) & 1;                                                        \
        __asm__ volatile(                                                                                \
            PRE                                                                                          \
            ZERO(0, 0, 1) ZERO(1, 2, 3) ZERO(2, 4, 5) ZERO(3, 6, 7)                                      \
            ZERO(0, 8, 9) ZERO(1, 10, 11) ZERO(2, 12, 13) ZERO(3, 14, 15)                                \
            "test %[k], %[k]\n\t"                                                                        \
            "jle 2f\n\t"                                                                                 \
            ".p2align 5\n"                                                                               \
            "1:\n\t"                                                                                     \
            LOAD0 LOAD1 PF                                                                               \
            ROWS2                                                                                        \
            "add " STEP2 ", %[b]\n\t"                                                                    \
            ADVANCE                                                                                      \
            "dec %[k]\n\t"                                                                               \
            "jnz 1b\n"                                                                                   \
            "2:\n\t"                                                                                     \
            "test %[odd], %[odd]\n\t"                                                                    \
            "jz 3f\n\t"                                                                                  \
            LOAD0                                                                                        \
            ROWS1                                                                                        \
            "3:\n\t"                                                                                     \
            MERGE(0, 0, 1, 8, 9) MERGE(1, 2, 3, 10, 11) MERGE(2, 4, 5, 12, 13) MERGE(3, 6, 7, 14, 15)    \
            SAVE(0, 0, 1, 0, 64) SAVE(1, 2, 3, 128, 192) SAVE(2, 4, 5, 256, 320) SAVE(3, 6, 7, 384, 448) \
            : [a0] "+r"(a0), [b] "+r"(b_), [k] "+r"(pairs)                                               \
            : [lda] "r"(ldb_), [lda3] "r"(lda3), [odd] "r"(odd), [acc] "r"(acc), [mr] "i"(MR_)           \
            : "memory", "cc", ZMM_CLOBBERS);                                                             \
    } while (0)

// C[0:mr, 0:nr] (+)= acc, under column masks (cols 0..15, 16..31).
static VLM_AVX512 void store_tile(const float *acc, int mr, float *C, int64_t ldc, int nr, int accumulate) {
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *cr = C + i * ldc;
        __m512 c0 = _mm512_load_ps(acc + i * 32), c1 = _mm512_load_ps(acc + i * 32 + 16);
        if (accumulate) {
            c0 = _mm512_add_ps(c0, _mm512_maskz_loadu_ps(m0, cr));
            c1 = _mm512_add_ps(c1, _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0);
        _mm512_mask_storeu_ps(cr + 16, m1, c1);
    }
}

// uk_512_n (row-major A) and ukcm_512_n (column-major A, below): one tile of n rows.
#define UK_GEN(name, n, KERNEL)                                                                          \
    static VLM_AVX512 void name##n(int64_t kc, const float *A, int64_t lda, const float *Bp, float *C,    \
                                   int64_t ldc, int nr, int accumulate) {                                 \
        float acc[MR512 * 32] __attribute__((aligned(64)));                                              \
        KERNEL(n, kc, A, lda, Bp, acc);                                                                  \
        store_tile(acc, n, C, ldc, nr, accumulate);                                                      \
    }
#define UK(n, KERNEL) UK_GEN(uk_512_, n, KERNEL)
UK(1, KERNEL_SMALL) UK(2, KERNEL_SMALL) UK(3, KERNEL_SMALL) UK(4, KERNEL_SMALL)
UK(5, KERNEL_BIG) UK(6, KERNEL_BIG) UK(7, KERNEL_BIG) UK(8, KERNEL_BIG) UK(9, KERNEL_BIG)
UK(10, KERNEL_BIG) UK(11, KERNEL_BIG) UK(12, KERNEL_BIG) UK(13, KERNEL_BIG) UK(14, KERNEL_BIG)

typedef void (*uk_fn)(int64_t, const float *, int64_t, const float *, float *, int64_t, int, int);
static const uk_fn uk_table[MR512 + 1] = {
    NULL, uk_512_1, uk_512_2, uk_512_3, uk_512_4, uk_512_5, uk_512_6, uk_512_7,
    uk_512_8, uk_512_9, uk_512_10, uk_512_11, uk_512_12, uk_512_13, uk_512_14,
};

static void ukernel_avx512(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                           int nr, int accumulate) {
    uk_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate);
}

// MARK: Column-major A (transA read in place, gemm_driver.c's a_cm)
// A(i, k) at A + k * lda + i: a k step's rows are consecutive floats, and the next k step is lda further. The same
// FMA sequence as the kernels above (bit-identical to multiplying the transposed copy, which a training step's
// dW = dZᵀX no longer makes: its transpose was ~8% of a scenes-VLM step).
#define ROWS_CM                                                                                          \
    ROW(0, "(%[a0])", 0, 1) ROW(1, "4(%[a0])", 2, 3) ROW(2, "8(%[a0])", 4, 5) ROW(3, "12(%[a0])", 6, 7)  \
    ROW(4, "16(%[a0])", 8, 9) ROW(5, "20(%[a0])", 10, 11) ROW(6, "24(%[a0])", 12, 13)                    \
    ROW(7, "28(%[a0])", 14, 15) ROW(8, "32(%[a0])", 16, 17) ROW(9, "36(%[a0])", 18, 19)                  \
    ROW(10, "40(%[a0])", 20, 21) ROW(11, "44(%[a0])", 22, 23) ROW(12, "48(%[a0])", 24, 25)               \
    ROW(13, "52(%[a0])", 26, 27)
#define KERNEL_BIG_CM(MR_, kc, A, lda, Bp, acc)                                                          \
    KERNEL_BIG_LOOP(MR_, A, lda, Bp, acc, (kc), 0, "",                                                   \
                    LOAD_F32_0 "prefetcht0 1024(%[b])\n\t" ROWS_CM "add $128, %[b]\n\t" "add %[lda], %[a0]\n\t", "")
// 1..4 rows: even k steps at a0, odd ones at a0 + lda, two accumulator sets as KERNEL_SMALL.
#define ROWS2_CM                                                                                         \
    ROW2(0, "(%[a0])", "(%[a0],%[lda],1)", 0, 1, 8, 9) ROW2(1, "4(%[a0])", "4(%[a0],%[lda],1)", 2, 3, 10, 11) \
    ROW2(2, "8(%[a0])", "8(%[a0],%[lda],1)", 4, 5, 12, 13) ROW2(3, "12(%[a0])", "12(%[a0],%[lda],1)", 6, 7, 14, 15)
#define ROWS1_CM ROW(0, "(%[a0])", 0, 1) ROW(1, "4(%[a0])", 2, 3) ROW(2, "8(%[a0])", 4, 5) ROW(3, "12(%[a0])", 6, 7)
#define KERNEL_SMALL_CM(MR_, kc, A, lda, Bp, acc)                                                        \
    KERNEL_SMALL_GEN(MR_, kc, A, lda, Bp, acc, "", LOAD_F32_0, LOAD_F32_1, "$256", "prefetcht0 1024(%[b])\n\t", \
                     ROWS2_CM, "lea (%[a0],%[lda],2), %[a0]\n\t", ROWS1_CM)

#define UKCM(n, KERNEL) UK_GEN(ukcm_512_, n, KERNEL)
UKCM(1, KERNEL_SMALL_CM) UKCM(2, KERNEL_SMALL_CM) UKCM(3, KERNEL_SMALL_CM) UKCM(4, KERNEL_SMALL_CM)
UKCM(5, KERNEL_BIG_CM) UKCM(6, KERNEL_BIG_CM) UKCM(7, KERNEL_BIG_CM) UKCM(8, KERNEL_BIG_CM) UKCM(9, KERNEL_BIG_CM)
UKCM(10, KERNEL_BIG_CM) UKCM(11, KERNEL_BIG_CM) UKCM(12, KERNEL_BIG_CM) UKCM(13, KERNEL_BIG_CM) UKCM(14, KERNEL_BIG_CM)

static const uk_fn ukcm_table[MR512 + 1] = {
    NULL, ukcm_512_1, ukcm_512_2, ukcm_512_3, ukcm_512_4, ukcm_512_5, ukcm_512_6, ukcm_512_7,
    ukcm_512_8, ukcm_512_9, ukcm_512_10, ukcm_512_11, ukcm_512_12, ukcm_512_13, ukcm_512_14,
};

static void ukernel_cm_avx512(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                              int nr, int accumulate) {
    ukcm_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate);
}

// MARK: 16-bit panels
// The kernels above with the B loads replaced by exact widenings (kernels_internal.h has the layouts):
//   bf16: k pairs; a 32-bit lane holds (w[k+1, c] << 16) | w[k, c]; bf16 is the upper 16 bits of a binary32, so
//         lane << 16 is the even k and lane & 0xFFFF0000 the odd one, exactly (mask 0xFFFF0000 built in PRE:
//         all-ones << 16, in zmm31 for the big kernel and zmm25, unused there, for the small one). The big
//         kernel steps a pair at a time (KERNEL_BIG_PAIRS) with the FMA order of one k at a time.
//   f16:  VCVTPH2PS widens 16 consecutive halves exactly (every binary16 is a binary32).
// One 64-byte line per k instead of two: half the bytes for the memory-bound small-M case.
#define PRE_MASK(r) "vpternlogd $0xff, %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t" "vpslld $16, %%zmm" #r ", %%zmm" #r "\n\t"
// k pair at b: the even k's columns 0..15 / 16..31 into r0 / r1 (shift), the odd k's (mask m).
#define LOAD_BF16_EVEN(r0, r1) "vpslld $16, (%[b]), %%zmm" #r0 "\n\t" "vpslld $16, 64(%[b]), %%zmm" #r1 "\n\t"
#define LOAD_BF16_ODD(r0, r1, m) \
    "vpandd (%[b]), %%zmm" #m ", %%zmm" #r0 "\n\t" "vpandd 64(%[b]), %%zmm" #m ", %%zmm" #r1 "\n\t"
#define LOAD_F16(off0, off1, r0, r1) "vcvtph2ps " #off0 "(%[b]), %%zmm" #r0 "\n\t" "vcvtph2ps " #off1 "(%[b]), %%zmm" #r1 "\n\t"

#ifndef PF16_DIST
#define PF16_DIST "8192"
#endif
// Both lines of the two k rows an iteration consumes (the f32 kernel prefetches one of four and leaves the
// rest to the hardware prefetcher; the 16-bit GEMV streams faster, so it asks for all of them), 128 k rows
// ahead: measured on Zen 5 for a 4096 x 11008 bf16 GEMV, 1024 B ahead gives 41 GB/s, 4096 B 46 GB/s,
// 8192 B 51-53 GB/s, 16384 B 49 GB/s. Prefetches past the panel touch the next one (harmless).
#define PF16_SMALL "prefetcht0 " PF16_DIST "(%[b])\n\t" "prefetcht0 " PF16_DIST "+64(%[b])\n\t"
// KERNEL_BIG_B over k pairs: the even k (LOAD_EVEN into zmm28/29, A at +0), then the odd k (LOAD_ODD, A at +4),
// then a last even k when kc is odd (its pair's odd half is the zero padding row, never used).
#define KERNEL_BIG_PAIRS(MR_, kc, A, lda, Bp, acc, PRE, LOAD_EVEN, LOAD_ODD)                             \
    KERNEL_BIG_LOOP(MR_, A, lda, Bp, acc, (kc) / 2, (kc) & 1, PRE,                                       \
                    LOAD_EVEN "prefetcht0 1024(%[b])\n\t" ROWS_BIG("")                                     \
                    LOAD_ODD "prefetcht0 1088(%[b])\n\t" ROWS_BIG("4") "add $128, %[b]\n\t" ADVANCE_BIG("$8"), \
                    "test %[odd], %[odd]\n\t" "jz 3f\n\t" LOAD_EVEN ROWS_BIG(""))
#define KBIG_BF16(n, kc, A, lda, Bp, acc) \
    KERNEL_BIG_PAIRS(n, kc, A, lda, Bp, acc, PRE_MASK(31), LOAD_BF16_EVEN(28, 29), LOAD_BF16_ODD(28, 29, 31))
#define KBIG_F16(n, kc, A, lda, Bp, acc) KERNEL_BIG_B(n, kc, A, lda, Bp, acc, "", LOAD_F16(0, 32, 28, 29), "$64")
#define KSMALL_BF16(n, kc, A, lda, Bp, acc) \
    KERNEL_SMALL_B(n, kc, A, lda, Bp, acc, PRE_MASK(25), LOAD_BF16_EVEN(28, 29), LOAD_BF16_ODD(26, 27, 25), "$128", PF16_SMALL)
#define KSMALL_F16(n, kc, A, lda, Bp, acc) \
    KERNEL_SMALL_B(n, kc, A, lda, Bp, acc, "", LOAD_F16(0, 32, 28, 29), LOAD_F16(64, 96, 26, 27), "$128", PF16_SMALL)

#define UK16(n, KB, KH)                                                                                 \
    static VLM_AVX512 void uk16_512_##n(int64_t kc, const float *A, int64_t lda, const uint16_t *Bp,     \
                                        float *C, int64_t ldc, int nr, int accumulate, int f16) {        \
        float acc[MR512 * 32] __attribute__((aligned(64)));                                              \
        if (f16) KH(n, kc, A, lda, Bp, acc);                                                             \
        else KB(n, kc, A, lda, Bp, acc);                                                                 \
        store_tile(acc, n, C, ldc, nr, accumulate);                                                      \
    }
UK16(1, KSMALL_BF16, KSMALL_F16) UK16(2, KSMALL_BF16, KSMALL_F16) UK16(3, KSMALL_BF16, KSMALL_F16)
UK16(4, KSMALL_BF16, KSMALL_F16) UK16(5, KBIG_BF16, KBIG_F16) UK16(6, KBIG_BF16, KBIG_F16)
UK16(7, KBIG_BF16, KBIG_F16) UK16(8, KBIG_BF16, KBIG_F16) UK16(9, KBIG_BF16, KBIG_F16)
UK16(10, KBIG_BF16, KBIG_F16) UK16(11, KBIG_BF16, KBIG_F16) UK16(12, KBIG_BF16, KBIG_F16)
UK16(13, KBIG_BF16, KBIG_F16) UK16(14, KBIG_BF16, KBIG_F16)

typedef void (*uk16_fn)(int64_t, const float *, int64_t, const uint16_t *, float *, int64_t, int, int, int);
static const uk16_fn uk16_table[MR512 + 1] = {
    NULL, uk16_512_1, uk16_512_2, uk16_512_3, uk16_512_4, uk16_512_5, uk16_512_6, uk16_512_7,
    uk16_512_8, uk16_512_9, uk16_512_10, uk16_512_11, uk16_512_12, uk16_512_13, uk16_512_14,
};

void vlm_ukernel16_avx512(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                          int nr, int accumulate, int f16) {
    uk16_table[mr](kc, A, lda, Bp, C, ldc, nr, accumulate, f16);
}

VLM_AVX512 void vlm_bias_act_avx512(float *x, int64_t n, const float *bias, vlm_activation act) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
        v = act_512(v, act);
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}

// 16 x 16 tiles through registers (unpack -> 4x4 shuffles -> 128-bit lane shuffles), edges under masks:
// ~5x the scalar tile loop on the dW = dZᵀX transposes of a training step.
static VLM_AVX512 void transpose_scale_512(const float *src, int64_t lds, int64_t rows, int64_t cols, float alpha,
                                           float *dst, int64_t ldd) {
    __m512 va = _mm512_set1_ps(alpha);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        int nrow = (int)(rows - r0 < 16 ? rows - r0 : 16);
        __mmask16 rmask = (__mmask16)(nrow == 16 ? 0xFFFF : (1u << nrow) - 1);
        for (int64_t c0 = 0; c0 < cols; c0 += 16) {
            int ncol = (int)(cols - c0 < 16 ? cols - c0 : 16);
            __mmask16 cmask = (__mmask16)(ncol == 16 ? 0xFFFF : (1u << ncol) - 1);
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nrow ? _mm512_maskz_loadu_ps(cmask, src + (r0 + i) * lds + c0) : _mm512_setzero_ps();
            // t[2i], t[2i+1]: rows 2i, 2i+1 interleaved per 128-bit lane.
            for (int i = 0; i < 8; i++) {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            // r[4g + j], lane L: column 4L + j of rows 4g .. 4g+3.
            for (int g = 0; g < 4; g++) {
                r[4 * g + 0] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0x44);
                r[4 * g + 1] = _mm512_shuffle_ps(t[4 * g + 0], t[4 * g + 2], 0xEE);
                r[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
                r[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
            }
            // Column 4L + j = lane L of r[j], r[4 + j], r[8 + j], r[12 + j].
            for (int q = 0; q < 4; q++) {
                __m512 ulo = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44), uhi = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xEE);
                __m512 wlo = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44), whi = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xEE);
                __m512 out[4] = {
                    _mm512_shuffle_f32x4(ulo, wlo, 0x88), _mm512_shuffle_f32x4(ulo, wlo, 0xDD),
                    _mm512_shuffle_f32x4(uhi, whi, 0x88), _mm512_shuffle_f32x4(uhi, whi, 0xDD),
                };
                for (int l = 0; l < 4; l++) {
                    int c = 4 * l + q;
                    if (c < ncol) _mm512_mask_storeu_ps(dst + (c0 + c) * ldd + r0, rmask, _mm512_mul_ps(out[l], va));
                }
            }
        }
    }
}

const vlm_gemm_kernels vlm_gemm_kernels_avx512 = {
    .mr_max = MR512,
    .transpose_scale = transpose_scale_512,
    .ukernel = ukernel_avx512,
    .ukernel_cm = ukernel_cm_avx512,
    .ukernel16 = vlm_ukernel16_avx512,
    .bias_act = vlm_bias_act_avx512,
    // Quantized panels: dequantized by the AVX2 kernel (quant_avx2.c); the I8 decode GEMV in AVX-512 (quant_avx512.c).
    .qdequant = vlm_qdequant_avx2,
    .qgemv = vlm_qgemv_avx512,
};
#else
const vlm_gemm_kernels vlm_gemm_kernels_avx512 = {0};
void vlm_ukernel16_avx512(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                          int nr, int accumulate, int f16) {
    (void)mr; (void)kc; (void)A; (void)lda; (void)Bp; (void)C; (void)ldc; (void)nr; (void)accumulate; (void)f16;
}
#endif
