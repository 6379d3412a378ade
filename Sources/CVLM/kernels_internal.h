// Private declarations shared by the kernel translation units (not part of the public contract).
#ifndef CVLM_KERNELS_INTERNAL_H
#define CVLM_KERNELS_INTERNAL_H
#include "include/cvlm_kernels.h"
#include <stdint.h>
#include <stddef.h>

// MARK: Packed weights
// Every ISA uses the same panel layout so a weight packed once works whatever path is forced later
// (tests switch ISA after packing): W [N,K] is cut into ceil(N/VLM_NR) panels of VLM_NR output rows;
// panel p stores, for k = 0..K-1, the VLM_NR values W[p*NR + j][k] contiguously (zero-padded past N).
// The AVX2 micro-kernel reads a panel as two 16-wide halves with row stride VLM_NR.
//
// 16-bit storage keeps the same panels with 2-byte elements (one 64-byte cache line per k). F16 rows are in
// column order (VCVTPH2PS widens 16 consecutive halves). BF16 rows interleave the two 16-column halves:
// element 2i holds column i and element 2i+1 column 16+i, so each 32-bit lane holds (col 16+i) << 16 |
// col i and the kernels widen with one shift (lane << 16 = column i as binary32) and one mask (lane &
// 0xFFFF0000 = column 16+i): bf16 is the upper half of a binary32, so both are exact.
#define VLM_NR 32

struct vlm_packed_weight {
    int64_t N, K;
    int64_t npanels;
    vlm_weight_dtype dtype;  // F32, BF16 or F16 (what is actually stored)
    int esize;               // bytes per element: 4 or 2
    void *data;              // npanels * K * VLM_NR elements, 64-byte aligned
};

/// Index of column j (< VLM_NR) within a 16-bit panel row of `dtype`.
static inline int vlm_panel_col16(vlm_weight_dtype dtype, int j) {
    return dtype == VLM_WEIGHT_BF16 ? (j < 16 ? 2 * j : 2 * (j - 16) + 1) : j;
}
/// W(p*NR + j, k) of a packed weight, widened to float (the naive paths' reader).
float vlm_packed_get(const vlm_packed_weight *w, int64_t p, int64_t k, int j);
float vlm_f16_to_f32_scalar(uint16_t h);
uint16_t vlm_f32_to_f16_scalar(float f);
uint16_t vlm_f32_to_bf16_scalar(float f);

// MARK: Thread pool
/// A task body: `task` in [0, ntasks), `thread` in [0, vlm_get_num_threads()) identifies per-thread scratch.
typedef void (*vlm_task_fn)(void *ctx, int64_t task, int thread);
/// Runs fn(ctx, t, thread) for every t; the caller participates. Runs inline when ntasks <= 1, when the
/// pool has one thread, or when called from inside a pool task (no nesting).
void vlm_parallel_for(int64_t ntasks, vlm_task_fn fn, void *ctx);
/// Max useful number of concurrent tasks (= vlm_get_num_threads()).
int vlm_pool_threads(void);

// MARK: Scratch memory
void *vlm_aligned_alloc(size_t bytes);
void vlm_aligned_free(void *p);
/// Per-thread scratch (grown on demand, kept): returns NULL on allocation failure.
float *vlm_scratch(int slot, size_t floats);

// MARK: Scalar helpers (reference definitions)
float vlm_act_scalar(float x, vlm_activation act);

// MARK: GEMM micro-kernels (one set per SIMD ISA)
/// The micro-kernel computes C[0:mr, 0:nr] (+)= A[0:mr, 0:kc] * Bp over kc steps, reading A in place
/// (A(i,k) = A[i * lda + k], so activations need no packing) and B from a packed slice of VLM_NR-float rows
/// (Bp[k * VLM_NR + j], 64-byte aligned). mr <= mr_max, nr <= VLM_NR. accumulate == 0 overwrites C
/// (C is not read).
typedef struct {
    int mr_max;
    void (*ukernel)(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int nr,
                    int accumulate);
    /// The same micro-kernel on a 16-bit panel slice (Bp[k * VLM_NR + j] in the layout of the dtype, see
    /// above; f16 != 0: binary16, else bf16), widening each weight exactly before the identical FMA sequence.
    void (*ukernel16)(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                      int nr, int accumulate, int f16);
    /// x[i] = act(x[i] + bias[i]) for i < n; bias may be NULL.
    void (*bias_act)(float *x, int64_t n, const float *bias, vlm_activation act);
    /// dst[c * ldd + r] = alpha * src[r * lds + c] for r < rows, c < cols (packing a transposed A); NULL: the
    /// driver's scalar loop. Each value is one rounded product either way.
    void (*transpose_scale)(const float *src, int64_t lds, int64_t rows, int64_t cols, float alpha, float *dst,
                            int64_t ldd);
} vlm_gemm_kernels;

extern const vlm_gemm_kernels vlm_gemm_kernels_avx512;
extern const vlm_gemm_kernels vlm_gemm_kernels_avx2;
// 16-bit micro-kernels (gemm16_avx512.c, gemm16_avx2.c), hooked into the kernel sets above.
void vlm_ukernel16_avx512(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                          int nr, int accumulate, int f16);
void vlm_ukernel16_avx2(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                        int nr, int accumulate, int f16);
/// Kernel set of the active ISA, or NULL for the naive path.
const vlm_gemm_kernels *vlm_active_gemm_kernels(void);

/// Single-threaded GEMM with the given kernel set (used inside pool tasks, e.g. attention).
void vlm_sgemm_st(const vlm_gemm_kernels *ks, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// MARK: Row-wise / elementwise kernels (one set per SIMD ISA)
typedef struct {
    void (*layernorm_row)(const float *x, float *y, int64_t n, const float *gamma, const float *beta, float eps);
    void (*rmsnorm_row)(const float *x, float *y, int64_t n, const float *gamma, float eps);
    void (*softmax_row)(float *x, int64_t n);
    void (*activate)(float *x, int64_t n, vlm_activation act);
    /// dz[i] = dy[i] * act'(z[i])
    void (*act_backward)(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act);
    void (*add)(const float *a, const float *b, float *out, int64_t n);
    void (*l2_row)(float *x, int64_t n);
    void (*f16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int64_t n);
    void (*bf16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    void (*f32_to_bf16)(const float *src, uint16_t *dst, int64_t n);
} vlm_ops_kernels;

extern const vlm_ops_kernels vlm_ops_kernels_avx512;
extern const vlm_ops_kernels vlm_ops_kernels_avx2;
/// Kernel set of the active ISA, or NULL for the naive path.
const vlm_ops_kernels *vlm_active_ops_kernels(void);

// MARK: Inner-product kernels (one set per SIMD ISA; dot.c dispatches)
typedef struct {
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*gather)(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count, int64_t n,
                   float *out);
} vlm_dot_kernels;

extern const vlm_dot_kernels vlm_dot_kernels_avx512;
extern const vlm_dot_kernels vlm_dot_kernels_avx2;

// MARK: ISA-specific entry points
void vlm_linear_packed_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                             vlm_activation act, float *Y, int64_t ldy);
#endif
