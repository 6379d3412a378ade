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
// 16-bit storage keeps the same panels with 2-byte elements. F16 rows are in column order, one 64-byte line
// per k (VCVTPH2PS widens 16 consecutive halves). BF16 panels are stored as k pairs, the operand layout of
// vdpbf16ps, so the bf16-compute tiles read them in place: K is padded to even (zero row), and pair t = k / 2 is
// 128 bytes, dword i of its first 64 bytes (w[2t+1, i] << 16) | w[2t, i] for columns i = 0..15, of the next 64
// bytes the same for columns 16..31. The fp32 kernels widen with one shift (dword << 16 = the even k, as
// binary32) and one mask (dword & 0xFFFF0000 = the odd k): bf16 is the upper half of a binary32, so both are exact.
#define VLM_NR 32

//
// Quantized panels (I8, I4) are cut along k into groups of `group` (a multiple of 32); group g of panel p is one
// block of `block_bytes` (a multiple of 32), except the last, which holds only its K - (ngroups-1) * group rows
// (I4: rounded up to a multiple of four; the block rounded up to 64 bytes, zero-filled):
//   float scales[VLM_NR]                      s of each output row
//   uint8_t zeros[VLM_NR]                     I4 only: z of each output row
//   codes, one 32-byte (I8) or 16-byte (I4) row per k of the group:
//     I8: int8 q of columns 0..31 in order;
//     I4: the 16 bytes are four 32-bit words; column j sits in word j % 4 at nibble 2 (j / 8) + (j % 8) / 4,
//         i.e. byte 4 (j % 4) + j / 8, low nibble for j % 8 < 4. Broadcast to both 128-bit halves of a
//         256-bit register, one variable shift per lane (vpsrlvd) and an AND give columns 8c..8c+7 in lane
//         order, with no cross-lane shuffles (the weight-only AVX2 GEMV's order, "lane order");
//     I4 in quad order (i4_quads = 1: weights marked for W4A8 compute, vlm_packed_weight_set_compute): rows go
//         in fours, 64 bytes per four k rows; byte 4 (j % 16) + (k % 4) holds column j's code, low nibble for
//         j < 16 -- a 32-bit lane per column with its four k codes in order, the operand vpdpbusd multiplies, so
//         the W4A8 kernel splits the nibbles with one AND and one shift and permutes nothing.
// Panel p starts at p * panel_bytes (a multiple of 32).
struct vlm_packed_weight {
    int64_t N, K;
    int64_t npanels;
    vlm_weight_dtype dtype;  // what is actually stored
    int esize;               // bytes per element: 4 or 2 (F32/BF16/F16); 0 for quantized formats
    int64_t group, ngroups;  // quantized: k per group, groups per row (0 otherwise)
    int64_t block_bytes;     // quantized: bytes of one full group block of a panel
    int64_t panel_bytes;     // quantized: bytes of one panel (full blocks + the last, shorter one)
    void *data;              // F32/BF16/F16: npanels * vlm_panel_k * VLM_NR elements; quantized: the blocks; 64-byte aligned
    int compute;             // vlm_compute_mode: INT8 on I8 routes prefill to vlm_linear_i8, on I4 decode to vlm_linear_w4a8
    int i4_quads;            // I4 codes in quad order (set with compute INT8, gemm_w4a8.c), else lane order
    struct vlm_slab *slab;   // the shared slab holding data (weight_slabs.c), or NULL for its own allocation
};

static inline int vlm_dtype_quantized(vlm_weight_dtype d) { return d == VLM_WEIGHT_I8 || d == VLM_WEIGHT_I4; }
/// Block of group g of panel p of a quantized weight.
static inline const unsigned char *vlm_qblock(const vlm_packed_weight *w, int64_t p, int64_t g) {
    return (const unsigned char *)w->data + (size_t)p * (size_t)w->panel_bytes + (size_t)g * (size_t)w->block_bytes;
}
/// Byte offset of the codes within a block.
static inline int64_t vlm_qcodes_offset(vlm_weight_dtype d) { return d == VLM_WEIGHT_I4 ? 4 * VLM_NR + VLM_NR : 4 * VLM_NR; }
/// Byte of a block's codes holding row i (of its group) of column j, and the nibble's shift (0: low, 4: high), in the
/// weight's I4 order (above).
static inline int64_t vlm_i4_byte_in(int quads, int64_t i, int j, int *shift) {
    if (quads) {
        *shift = j < 16 ? 0 : 4;
        return (i >> 2) * 64 + 4 * (j & 15) + (i & 3);
    }
    *shift = (j % 8) < 4 ? 0 : 4;
    return i * (VLM_NR / 2) + 4 * (j % 4) + j / 8;
}
static inline int64_t vlm_i4_byte(const vlm_packed_weight *w, int64_t i, int j, int *shift) {
    return vlm_i4_byte_in(w->i4_quads, i, j, shift);
}
/// Re-lays an I4 weight's codes into quad order (quads = 1) or back to lane order; no-op for other formats or when
/// already there (gemm_w4a8.c). Returns 0 or VLM_ERR_NOMEM (the weight unchanged).
int vlm_i4_set_order(vlm_packed_weight *w, int quads);
/// Packs rows c0..c1 (absolute output rows inside panel pn) of a quantized weight from float rows:
/// row(c) returns a pointer to K floats of row c (quant.c).
void vlm_quant_pack_rows(vlm_packed_weight *w, int64_t pn, int64_t c0, int64_t c1, const float *rows, int64_t ldrows);
/// Dequantized W(p*NR + j, k) (quant.c), exactly s * (float)(q - z).
float vlm_quant_get(const vlm_packed_weight *w, int64_t p, int64_t k, int j);
/// dst[kk * VLM_NR + j] = W(p*NR + j, k0 + kk) dequantized, kk < kc (the portable version of the kernels' hook).
void vlm_quant_dequant_slice_naive(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst);
/// Group sums of activations: xs[m * ngroups + g] = sum of X[m, k] over group g (the I4 zero-point term).
void vlm_quant_xsum(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, float *xs);

/// Rows of k a 16-bit or fp32 panel stores: K, padded to even for BF16 (k pairs).
static inline int64_t vlm_panel_k(const vlm_packed_weight *w) {
    return w->dtype == VLM_WEIGHT_BF16 ? (w->K + 1) / 2 * 2 : w->K;
}
/// Element index of W(p*NR + j, k) within its 16-bit panel (F16: k-major rows; BF16: k pairs, see above).
static inline int64_t vlm_panel_index16(vlm_weight_dtype dtype, int64_t k, int j) {
    if (dtype == VLM_WEIGHT_BF16) return (k >> 1) * (2 * VLM_NR) + (j >> 4) * 32 + (j & 15) * 2 + (k & 1);
    return k * VLM_NR + j;
}
/// W(p*NR + j, k) of a packed weight, widened to float (the naive paths' reader).
float vlm_packed_get(const vlm_packed_weight *w, int64_t p, int64_t k, int j);
float vlm_f16_to_f32_scalar(uint16_t h);
uint16_t vlm_f32_to_f16_scalar(float f);
uint16_t vlm_f32_to_bf16_scalar(float f);
/// x rounded to the nearest bf16 (ties to even), as a float: the references' rounding of bf16 operands.
static inline float vlm_bf16_round(float x) {
    union { uint32_t u; float f; } r = { .u = (uint32_t)vlm_f32_to_bf16_scalar(x) << 16 };
    return r.f;
}

// MARK: Thread pool
/// A task body: `task` in [0, ntasks), `thread` in [0, vlm_get_num_threads()) identifies per-thread scratch.
typedef void (*vlm_task_fn)(void *ctx, int64_t task, int thread);
/// Runs fn(ctx, t, thread) for every t; the caller participates. Runs inline when ntasks <= 1, when the
/// pool has one thread, or when called from inside a pool task (no nesting).
void vlm_parallel_for(int64_t ntasks, vlm_task_fn fn, void *ctx);
/// Max useful number of concurrent tasks (= vlm_get_num_threads()).
int vlm_pool_threads(void);
/// Start of range i of n when splitting `total` units (column panels) into tasks the pool hands out in order. With
/// at least two units per task: total * (1 - (1 - i/n)^2), so sizes fall linearly from about 2 total / n to nearly
/// nothing and the last tasks to run are the smallest, so the threads finish together (with equal ranges a 2-thread
/// prefill waited ~8% of its time at the end of each product: perf, SmolLM2-1.7B int8, Zen 4; gemm_lowp.c uses it,
/// while the fp32 driver measured no difference). Otherwise equal ranges. The split never changes results: every
/// output is computed by one task over the same k order.
static inline int64_t vlm_split_bound(int64_t i, int64_t n, int64_t total) {
    if (total < 2 * n) return total * i / n;
    int64_t r = n - i;
    return total - total * r * r / (n * n);
}

// MARK: Weight slabs (weight_slabs.c)
typedef struct vlm_slab vlm_slab;
/// bytes (64-byte aligned) for a packed weight of a reduced-precision format: carved from a shared huge-page slab
/// when 64 KB <= bytes < 4 MB (*slab set), else vlm_aligned_alloc (*slab = NULL). NULL on failure.
void *vlm_slab_alloc(size_t bytes, vlm_slab **slab);
/// Frees what vlm_slab_alloc returned (the slab goes with its last weight).
void vlm_slab_free(void *p, vlm_slab *slab);

// MARK: Scratch memory (vlm_aligned_alloc / vlm_aligned_free: cvlm_kernels.h)
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
    /// Quantized panels (I8/I4): dst[kk * VLM_NR + j] = W(p*NR + j, k0 + kk) dequantized exactly, kk < kc.
    void (*qdequant)(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst);
    /// Fused group GEMV on quantized panels p0..p1 for M <= VLM_QGEMV_MAX_M rows: Y[m, n] = act(sum_g s_g (
    /// sum_{k in g} x_k q_k - z_g xs[m, g]) + bias) (xs: vlm_quant_xsum, I4 only). NULL: dequantize + ukernel.
    void (*qgemv)(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                  int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy);
    /// dst[c * ldd + r] = alpha * src[r * lds + c] for r < rows, c < cols (packing a transposed A); NULL: the
    /// driver's scalar loop. Each value is one rounded product either way.
    void (*transpose_scale)(const float *src, int64_t lds, int64_t rows, int64_t cols, float alpha, float *dst,
                            int64_t ldd);
    /// As ukernel with A column-major: A(i, k) at A[k * lda + i] (a transposed operand read in place, e.g. dZ
    /// in dW = dZᵀX), the same FMA sequence, so results are bit-identical to transposing first. NULL: the
    /// driver transposes A (transpose_scale) and runs ukernel.
    void (*ukernel_cm)(int mr, int64_t kc, const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int nr,
                       int accumulate);
} vlm_gemm_kernels;

extern const vlm_gemm_kernels vlm_gemm_kernels_avx512;
extern const vlm_gemm_kernels vlm_gemm_kernels_avx2;
// 16-bit micro-kernels (gemm16_avx512.c, gemm16_avx2.c), hooked into the kernel sets above.
void vlm_ukernel16_avx512(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                          int nr, int accumulate, int f16);
void vlm_ukernel16_avx2(int mr, int64_t kc, const float *A, int64_t lda, const uint16_t *Bp, float *C, int64_t ldc,
                        int nr, int accumulate, int f16);
/// Quantized-panel kernels (quant_avx2.c); the AVX-512 set uses them for I4 (a 512-bit int4 decode GEMV measured
/// slower on Zen 4: 79 vs 112 tokens/s, int8 equal; Benchmarks/RESULTS.md) and vlm_qgemv_avx512 for I8 (on Zen 5's
/// full-width units it streams int8 ~1.3x faster; session 23).
void vlm_qdequant_avx2(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst);
void vlm_qgemv_avx2(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                    int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy);
/// The AVX-512 decode GEMV of I8 weights (quant_avx512.c); other formats go to vlm_qgemv_avx2.
void vlm_qgemv_avx512(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                      int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy);
void vlm_bias_act_avx2(float *x, int64_t n, const float *bias, vlm_activation act);
/// Kernel set of the active ISA, or NULL for the naive path.
const vlm_gemm_kernels *vlm_active_gemm_kernels(void);

/// Single-threaded GEMM with the given kernel set (used inside pool tasks, e.g. attention).
int vlm_sgemm_st(const vlm_gemm_kernels *ks, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
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

// MARK: Few-query attention kernels (attention_decode.c drives them: decode steps, grouped query heads)
/// Keys [*lo, *hi) that query t (of Tq, against Tk keys) may see: its explicit range when given, else the causal
/// bound t + (Tk - Tq) when causal, else every key; clipped to [0, Tk).
static inline void vlm_attn_key_range(int64_t t, int64_t Tq, int64_t Tk, int causal, const int64_t *key_begin,
                                      const int64_t *key_end, int64_t *lo, int64_t *hi) {
    int64_t a = 0, b = Tk;
    if (key_begin && key_end) {
        a = key_begin[t];
        b = key_end[t];
    } else if (causal) {
        b = t + (Tk - Tq) + 1;
    }
    *lo = a < 0 ? 0 : a;
    *hi = b > Tk ? Tk : b;
}

typedef struct {
    /// s[r * lds + j] = scale * (q[r] . k_j) for r < rows, j < nk: q[r] points at D floats, key j at k + j * ldk.
    void (*scores)(int rows, const float *const *q, const float *k, int64_t ldk, int64_t nk, int64_t D, float scale,
                   float *s, int64_t lds);
    /// The largest of x[0..n) (NaN entries ignored; -inf when n <= 0 or every entry is -inf or NaN).
    float (*row_max)(const float *x, int64_t n);
    /// x[i] = exp(x[i] - m) for i < n (-inf entries give exactly 0); returns their sum.
    float (*exp_sum)(float *x, int64_t n, float m);
    /// o[r * ldo + d] = sum_j p[r * ldp + j] * v[j * ldv + d] for r < rows, d < D (o overwritten).
    void (*weighted_sum)(int rows, const float *p, int64_t ldp, const float *v, int64_t ldv, int64_t nk, int64_t D,
                         float *o, int64_t ldo);
    /// scores and weighted_sum over bf16 keys / values (a bf16 KV cache): the same arithmetic on the rows widened to
    /// fp32, so the same numbers as the fp32 kernels on the widened rows.
    void (*scores_bf16)(int rows, const float *const *q, const uint16_t *k, int64_t ldk, int64_t nk, int64_t D,
                        float scale, float *s, int64_t lds);
    void (*weighted_sum_bf16)(int rows, const float *p, int64_t ldp, const uint16_t *v, int64_t ldv, int64_t nk,
                              int64_t D, float *o, int64_t ldo);
} vlm_attn_kernels;

extern const vlm_attn_kernels vlm_attn_kernels_avx512;
extern const vlm_attn_kernels vlm_attn_kernels_avx2;
/// The set for the active ISA, or NULL (naive paths).
const vlm_attn_kernels *vlm_active_attn_kernels(void);
/// The double-precision reference behind every attention entry point (attention_naive.c): query head h reads
/// key/value head h / (H / KVH), at k + (b * Tk + s) * ldk + (h / (H / KVH)) * hs (hs: the key/value head stride,
/// D for token-major rows); explicit ranges when given, else causal / every key.
/// bf16 != 0: the definition of vlm_attention_bf16 (q, k, v rounded to bf16, P rounded after the softmax).
void vlm_attention_naive_general(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                                 int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t hs, float *out,
                                 int64_t ldo, float scale, int causal, const int64_t *key_begin,
                                 const int64_t *key_end, const uint8_t *key_mask, int bf16);
/// The AVX512_BF16 attention (attention_bf16.c); callers check vlm_attention_bf16_available() first.
int vlm_attention_bf16_run(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                           int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t hs, float *out,
                           int64_t ldo, float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                           const uint8_t *key_mask);
/// Query rows per key/value head up to which attention takes the few-query path.
#define VLM_ATTN_FEW_ROWS 16
/// Few-query attention (attention_decode.c): query head h reads key/value head h / (H / KVH). Keys are split into
/// chunks of a fixed size (independent of the thread count, so results are too), scored, exponentiated and summed
/// per chunk, and the chunks are merged by their maxima (split-K softmax). k and v are fp32, or bf16 when kv16 != 0
/// (strides in elements either way). Returns 0 or VLM_ERR_NOMEM.
int vlm_attention_few_queries(const vlm_attn_kernels *ak, int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk,
                              int64_t D, const float *q, int64_t ldq, const void *k, int64_t ldk, const void *v,
                              int64_t ldv, int64_t hs, int kv16, float *out, int64_t ldo, float scale, int causal,
                              const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask);

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
/// Scratch slots: 0/1 run_block, 2 attention, 3 dequantized panel slices, 4/5 shared sgemm operands,
/// 6 activation group sums.
#define VLM_SLOT_QSLICE 3
#define VLM_SLOT_QXSUM 6

// MARK: Reduced-precision compute kernels (int8: gemm_i8*.c, bf16: gemm_bf16.c; driver: gemm_lowp.c)
/// Activations are converted per call into the kernel's format, padded along k to kpad = K rounded up to k_align
/// (zeros); int8 groups are multiples of 32, so a k pair or quad never straddles a group. An int8 panel's weights are
/// re-laid out once per task into per-thread scratch; bf16 panels are read as stored.
typedef struct {
    const char *name;
    int mr_max;        // rows per tile
    int a_bytes;       // bytes per converted activation: 2 (int16 AVX2, bf16) or 1 (u8 = q + 128, VNNI)
    int k_align;       // kpad multiple: 4 (int8) or 2 (bf16 pairs)
    int b_bytes;       // scratch bytes per padded k of one 32-column panel
    /// Rows of X converted as the definition says (int8: sa [rows, ceil(K / group)], the scales per token and group;
    /// bf16: sa and group unused) into dst [rows, kpad] in the kernel's activation format.
    void (*quantize_rows)(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group, void *dst,
                          float *sa);
    /// Panel p of W into the kernel's layout; colsum [ngroups * VLM_NR] (sum of codes per group and column) when
    /// the kernel needs it. NULL: the stored panel is the kernel's layout (kpad * b_bytes bytes per panel).
    void (*pack_panel)(const vlm_packed_weight *w, int64_t p, int64_t kpad, void *dst, int32_t *colsum);
    /// Y[0:mr, 0:nr] (Y, bias at the panel's first column) for mr <= mr_max rows of converted A (stride lda
    /// elements) against a packed panel; int8: sa [mr, w->ngroups] of those rows.
    void (*tile)(int mr, const void *A, int64_t lda, const void *B, const int32_t *colsum, const vlm_packed_weight *w,
                 int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y, int64_t ldy,
                 int nr);
    /// Optional: `tile` for a panel's first row tile that also writes the panel in the kernel's layout into B (and
    /// colsum) as it reads the stored weights, so the weights stream from memory while it computes; the other row
    /// tiles then read B. NULL: pack_panel (or the stored panel when that is NULL too), then tile.
    void (*tile_pack)(int mr, const void *A, int64_t lda, void *B, int32_t *colsum, const vlm_packed_weight *w,
                      int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y,
                      int64_t ldy, int nr);
    /// Optional (bf16): one k pair of a BF16 panel from two float rows of a transposed source, columns past `cols`
    /// zero, r1 NULL for K's zero pair partner (vlm_pack_weight_transposed). NULL: the scalar loop.
    void (*pack_pair_rows)(const float *r0, const float *r1, int cols, uint16_t *dst);
} vlm_lowp_kernels;
/// The active ISA's bf16 kernel set when the CPU runs vdpbf16ps (AVX-512 with AVX512_BF16), else NULL.
const vlm_lowp_kernels *vlm_active_bf16_kernels(void);
/// Runs W (any dtype the kernel set reads) against X through `ks`: Y [M, N]. Returns 0 or VLM_ERR_NOMEM.
int vlm_lowp_linear(const vlm_lowp_kernels *ks, const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W,
                    const float *bias, vlm_activation act, float *Y, int64_t ldy);
/// vlm_linear without the compute-mode routing: fp32 compute on the weights as stored (widened or dequantized).
int vlm_linear_exact(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                     vlm_activation act, float *Y, int64_t ldy);
extern const vlm_lowp_kernels vlm_bf16_kernels_avx512;
extern const vlm_lowp_kernels vlm_i8_kernels_avx2;
extern const vlm_lowp_kernels vlm_i8_kernels_vnni;
extern const vlm_lowp_kernels vlm_i8_kernels_vnni_vbmi;
/// The AVX2 activation quantizer (gemm_i8_avx2.c): int16 values (u8 == 0), or u8 = q + 128 (u8 == 1).
void vlm_i8_quantize_rows_avx2(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group, void *dst,
                               float *sa, int u8);
/// Scratch slot of the converted activations (caller thread).
#define VLM_SLOT_I8A 7
/// vlm_matmul_bf16's transposed A operand.
#define VLM_SLOT_MATMUL_A 8
#endif
