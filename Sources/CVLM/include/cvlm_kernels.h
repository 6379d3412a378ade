// Numeric kernels. Every fast kernel has a `_naive` twin with the same contract that the tests compare
// against on odd shapes. The un-suffixed entry point dispatches at run time on the CPU's features
// (vlm_cpu_isa) and runs on the kernel thread pool (vlm_set_num_threads).
//
// Conventions: row-major, float32 compute, leading dimensions in elements, sizes as int64_t.
//
// Threading: kernels split large calls across a persistent pool (vlm_set_num_threads); small calls run
// inline on the caller. Every kernel may be called from any thread, concurrently: while one call owns
// the pool, concurrent calls run single-threaded on their own threads. Scratch memory is per thread.
// Accuracy: the fast paths agree with the naive twins to float rounding (GEMMs: ~sqrt(K) * eps relative
// to sum |a b|; transcendental functions: ~1e-6 relative; conversions: bit-exact).
#ifndef CVLM_KERNELS_H
#define CVLM_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Returned by kernels that could not allocate scratch memory (their output is then incomplete).
#define VLM_ERR_NOMEM (-2)

// MARK: CPU features, dispatch and threads

typedef enum {
    VLM_ISA_NAIVE = 0,   // portable C, the reference
    VLM_ISA_AVX2 = 1,    // AVX2 + FMA
    VLM_ISA_AVX512 = 2,  // AVX-512 F/BW/DQ/VL
} vlm_isa;

/// CPU features as a set (bits of vlm_cpu_features()), each present only when the OS also saves the register
/// state it needs (XGETBV): AVX-512 and AMX features are absent on a CPU that has them but an OS that does not
/// enable them. The dispatching kernels choose their path per format from these bits (vlm_weight_format_kernel).
typedef enum {
    VLM_CPU_AVX2 = 1 << 0,
    VLM_CPU_FMA = 1 << 1,
    VLM_CPU_F16C = 1 << 2,
    VLM_CPU_AVX512F = 1 << 3,
    VLM_CPU_AVX512BW = 1 << 4,
    VLM_CPU_AVX512VL = 1 << 5,
    VLM_CPU_AVX512DQ = 1 << 6,
    VLM_CPU_AVX512_BF16 = 1 << 7,
    VLM_CPU_AVX512_VNNI = 1 << 8,
    VLM_CPU_AVX_VNNI = 1 << 9,
    VLM_CPU_AMX_TILE = 1 << 10,
    VLM_CPU_AMX_BF16 = 1 << 11,
    VLM_CPU_AMX_INT8 = 1 << 12,
    VLM_CPU_AVX512_VBMI = 1 << 13,
} vlm_cpu_feature;
#define VLM_CPU_FEATURE_COUNT 14
/// The features of this CPU and OS (CPUID + XGETBV), computed once, less those hidden by vlm_hide_cpu_features.
uint64_t vlm_cpu_features(void);
/// Reports the features in `mask` as absent from now on (0 shows all again), so tests can run the kernel variants a
/// feature selects (e.g. int8 VNNI without VBMI) on a CPU that has it. Does not change the ISA (vlm_force_isa does).
/// Returns the previous mask.
uint64_t vlm_hide_cpu_features(uint64_t mask);
/// Name of one feature bit ("avx2", "avx512_vnni", ...), or NULL if `feature` is not a single known bit.
const char *vlm_cpu_feature_name(uint64_t feature);

/// The best ISA this CPU and OS support (CPUID + XGETBV), computed once.
vlm_isa vlm_cpu_isa(void);
/// The ISA the dispatching kernels use now: min(cpu, forced). Tests force lower paths.
vlm_isa vlm_active_isa(void);
/// Force a path (clamped to what the CPU supports). Returns the ISA actually in force.
vlm_isa vlm_force_isa(vlm_isa isa);
/// Human-readable name of an ISA ("naive", "avx2", "avx512").
const char *vlm_isa_name(vlm_isa isa);

/// Number of threads the kernels use (default: online CPUs). n <= 0 restores the default.
void vlm_set_num_threads(int n);
/// Memory as the kernels allocate packed weights: 64-byte aligned; 4 MB and more start on a 2 MB boundary with
/// transparent huge pages asked for (Linux; VLM_HUGE_PAGES=none keeps 4 KB pages). NULL on failure; free with
/// vlm_aligned_free.
void *vlm_aligned_alloc(size_t bytes);
void vlm_aligned_free(void *p);
int vlm_get_num_threads(void);
/// Runs fn(ctx, task) for task in [0, ntasks) on the kernel pool, the caller taking part (inline when called
/// from inside a pool task). For callers outside C (Swift's per-row loops), so they share the kernels' threads
/// instead of a second pool competing with the kernels' spinning workers for the same cores.
void vlm_parallel_run(int64_t ntasks, void (*fn)(void *ctx, int64_t task), void *ctx);
/// Makes the C allocator (glibc) keep blocks of up to 64 MiB in its heap instead of mapping and unmapping each one:
/// activations of large batches (ViT-L/14 at batch 8: 34 MB per MLP layer) are then reused instead of being
/// page-faulted and zeroed again on every layer (measured: +22% images/s there). Process-wide, so executables call it
/// once at start (the `vlm` CLI and server do); a library user may. Memory freed at the top of the heap is returned
/// once 128 MiB are free. Returns 0, or -1 where the allocator has no such settings.
int vlm_keep_large_buffers(void);
/// Names the calling thread (truncated to 15 bytes; what ps, top and gdb show).
void vlm_set_current_thread_name(const char *name);

// MARK: GEMM

/// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.  op(X) = X or X^T (trans != 0).
/// A is [M,K] (or [K,M] if transA), B is [K,N] (or [N,K] if transB). Returns 0, or VLM_ERR_NOMEM (C incomplete).
int vlm_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void vlm_sgemm_naive(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// MARK: Linear layers with packed weights

/// Storage of a packed weight. 16-bit storage halves the bytes a GEMV streams; the kernels widen each weight to
/// float32 exactly (bf16 is the upper 16 bits of a binary32; every binary16 is a binary32) and run the same fp32
/// FMAs, so a 16-bit weight gives bit-for-bit the result of the F32 weight holding the widened values.
/// I8 and I4 are weight-only group-wise quantized formats (activations stay float32): along k, each run of
/// `group` weights of one output row shares a float32 scale s (I4: and an integer zero point z), and
/// w = s * (q - z). I8: symmetric, q in [-127, 127], z = 0. I4: asymmetric, q and z in [0, 15] -- the
/// representation GPTQ/AWQ/compressed-tensors 4-bit checkpoints use, so they can later be loaded without
/// re-rounding. Quantizing rounds to nearest (ties to even) exactly as vlm_quantize_naive.
typedef enum { VLM_WEIGHT_F32 = 0, VLM_WEIGHT_BF16 = 1, VLM_WEIGHT_I8 = 2, VLM_WEIGHT_F16 = 3, VLM_WEIGHT_I4 = 4 } vlm_weight_dtype;

/// Default group size of the quantized formats (weights along k per scale).
#define VLM_QUANT_GROUP_DEFAULT 128

/// Descriptor of a packed-weight format: how the panels are laid out and computed.
typedef struct {
    vlm_weight_dtype dtype;
    const char *name;          // "f32", "bf16", "f16", "i8", "i4"
    int bits;                  // bits per stored weight
    int panel_rows;            // output rows per panel (VLM_NR = 32), k-major inside a panel
    int grouped;               // 1: k in groups, one scale (and zero point) per output row and group
    int scale_bits;            // 32: float32 scales; 0: none
    int zero_point;            // 1: integer zero point per output row and group
    const char *layout;        // the panel layout in words
    const char *activations;   // how activations enter the kernel
    const char *epilogue;      // what runs after the accumulation
} vlm_weight_format;
/// The descriptor of `dtype`, or NULL for an unknown value.
const vlm_weight_format *vlm_weight_format_info(vlm_weight_dtype dtype);
/// The kernel the active ISA runs for `dtype` with M activation rows ("avx2 fp32 FMA 6x16", "naive", ...).
const char *vlm_weight_format_kernel(vlm_weight_dtype dtype, int64_t M);

/// Reference group-wise quantizer of W [N, K] (row-major float32) into q [N, K], scales [N, G] and (bits 4)
/// zeros [N, G], G = ceil(K / group); the last group of a row may be shorter. Per row and group of values w:
///   bits 8: a = max |w|;  s = a / 127 (s = 1 if a == 0);  q = clamp(rint(w / s), -127, 127);  z = 0.
///   bits 4: lo = min(0, min w), hi = max(0, max w);  s = (hi - lo) / 15 (s = 1 if hi == lo);
///           z = clamp(rint(-lo / s), 0, 15);  q = clamp(rint(w / s) + z, 0, 15).
/// rint rounds to nearest, ties to even (torch.round). Dequantized: w' = s * (float)(q - z).
/// Returns 0, or -1 on bad arguments (bits not 4 or 8, group < 1, NULL pointers; zeros may be NULL for 8).
int vlm_quantize_naive(const float *W, int64_t N, int64_t K, int bits, int64_t group, int8_t *q, float *scales,
                       uint8_t *zeros);

/// Element type of a source matrix handed to the packing functions (e.g. a safetensors mapping). 16-bit
/// sources may be unaligned (safetensors offsets are arbitrary).
typedef enum { VLM_SRC_F32 = 0, VLM_SRC_BF16 = 1, VLM_SRC_F16 = 2 } vlm_source_dtype;

/// Activation fused into the GEMM epilogue (after the bias).
typedef enum {
    VLM_ACT_NONE = 0,
    VLM_ACT_GELU = 1,        // exact: 0.5 x (1 + erf(x / sqrt 2))  (torch.nn.functional.gelu)
    VLM_ACT_GELU_TANH = 2,   // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  ("gelu_new", "gelu_pytorch_tanh")
    VLM_ACT_QUICK_GELU = 3,  // x * sigmoid(1.702 x)  (CLIP's original)
    VLM_ACT_SILU = 4,        // x * sigmoid(x)
    VLM_ACT_RELU = 5,
} vlm_activation;

/// Opaque weight of a linear layer, packed once at load into 32-row panels (K-major). The layout is the
/// same for every ISA, so a weight stays valid when vlm_force_isa changes the path. Read-only after
/// packing: one packed weight may be used by concurrent calls.
typedef struct vlm_packed_weight vlm_packed_weight;

/// Pack W: [N, K] row-major (PyTorch nn.Linear layout, out x in). Returns NULL on allocation failure.
/// dtype BF16/F16 rounds each value to nearest even; I8/I4 quantize with the default group size.
vlm_packed_weight *vlm_pack_weight(const float *W, int64_t N, int64_t K, vlm_weight_dtype dtype);
/// Pack W: [N, K] of element type `src` into `storage` (F32, BF16, F16, I8 or I4). Same-type 16-bit
/// sources are copied bit for bit, widening is exact, narrowing rounds to nearest even (NaN stays NaN).
/// Returns NULL on bad arguments or allocation failure.
vlm_packed_weight *vlm_pack_weight_ex(const void *W, vlm_source_dtype src, int64_t N, int64_t K, vlm_weight_dtype storage);
/// As vlm_packed_weight_create with the group size of the quantized formats (a multiple of 32 in [32, 4096];
/// ignored by F32/BF16/F16). Returns NULL on bad arguments or allocation failure.
vlm_packed_weight *vlm_packed_weight_create_grouped(int64_t N, int64_t K, vlm_weight_dtype storage, int64_t group);
/// Group size of a quantized weight (0 for F32/BF16/F16).
int64_t vlm_packed_weight_group(const vlm_packed_weight *w);
/// An unfilled packed weight of N x K (only the zero padding past row N is initialised): fill it with
/// vlm_pack_weight_rows, e.g. q|k|v or gate|up straight from the checkpoint without an fp32 copy.
vlm_packed_weight *vlm_packed_weight_create(int64_t N, int64_t K, vlm_weight_dtype storage);
/// Packs `rows` source rows W: [rows, K] (element type `src`) as rows row0 ..< row0 + rows of w. Any row0
/// (panels may straddle sources). Returns 0, -1 on bad arguments or VLM_ERR_NOMEM. Every row must be packed once before
/// w is used; calls on one weight must not run concurrently.
int vlm_pack_weight_rows(vlm_packed_weight *w, int64_t row0, const void *W, vlm_source_dtype src, int64_t rows);
/// Stores rows row0 ..< row0 + rows of an I8/I4 weight from codes quantized elsewhere (a GPTQ, AWQ or
/// compressed-tensors checkpoint), without re-rounding: q [rows, K] (I8: any int8; I4: 0..15), scales
/// [rows, G] and, for I4, zeros [rows, G] (G = ceil(K / group) of w; any uint8, e.g. 16 from a GPTQ v1
/// zero stored as 15), so that W(row, k) = scales[., k / group] * (q - zeros[., k / group]) exactly.
/// Returns 0, or -1 on bad arguments (float storage, rows out of range, an I4 code outside 0..15).
int vlm_pack_quantized_rows(vlm_packed_weight *w, int64_t row0, const int8_t *q, const float *scales,
                            const uint8_t *zeros, int64_t rows);
/// Packs all of w (F32 or BF16 storage) as the transpose of B: [K, N] float32 with row stride ldb >= N, i.e.
/// W(n, k) = B[k * ldb + n] (BF16: rounded to nearest even), with no transposed copy of B. Returns 0, or -1 on bad
/// arguments.
int vlm_pack_weight_transposed(vlm_packed_weight *w, const float *B, int64_t ldb);
void vlm_packed_weight_free(vlm_packed_weight *w);
int64_t vlm_packed_weight_rows(const vlm_packed_weight *w);  // N
int64_t vlm_packed_weight_cols(const vlm_packed_weight *w);  // K
vlm_weight_dtype vlm_packed_weight_dtype(const vlm_packed_weight *w);
/// Bytes of packed data (ceil(N/32)*32 * K * element size; quantized: codes, scales and zero points).
int64_t vlm_packed_weight_bytes(const vlm_packed_weight *w);
/// 1 when the weight's data sits in a shared huge-page slab (reduced-precision formats of 64 KB to 4 MB, unless
/// VLM_HUGE_PAGES=none), 0 when in an allocation of its own.
int vlm_packed_weight_in_slab(const vlm_packed_weight *w);
/// dst[0:K] = row n of W widened (or dequantized) to float32 (an embedding lookup on a table packed for a
/// tied LM head).
/// n out of range leaves dst untouched and returns -1, else 0.
int vlm_packed_weight_get_row(const vlm_packed_weight *w, int64_t n, float *dst);

/// Y[M,N] = act(X[M,K] * W^T + bias).  X row stride ldx >= K, Y row stride ldy >= N; bias may be NULL.
/// X is read in place (no copy); Y must not overlap X. Returns 0, or VLM_ERR_NOMEM if scratch memory could not
/// be allocated (Y is then incomplete).
/// Quantized W: up to VLM_QGEMV_MAX_M rows run a fused group GEMV (sum x q per group in fp32, then scaled);
/// more rows dequantize each panel slice to fp32 (exactly s * (q - z)) and run the fp32 micro-kernel, so
/// their results equal those of an F32 weight holding the dequantized values, bit for bit.
#define VLM_QGEMV_MAX_M 4
int vlm_linear(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                vlm_activation act, float *Y, int64_t ldy);
/// Reference: W unpacked [N,K].
void vlm_linear_naive(const float *X, int64_t M, int64_t ldx, const float *W, int64_t N, int64_t K,
                      const float *bias, vlm_activation act, float *Y, int64_t ldy);
/// Reference with an unpacked W [N,K] of element type `src`, widened element by element.
void vlm_linear_naive_ex(const float *X, int64_t M, int64_t ldx, const void *W, vlm_source_dtype src, int64_t N, int64_t K,
                         const float *bias, vlm_activation act, float *Y, int64_t ldy);

// MARK: int8 compute (W8A8: int8 weights x dynamic int8 activations per token and group, int32 accumulation)
//
/// On an I8 weight (symmetric, scale s[n, g] per output row and group of `group` k), activations are quantized
/// per row (token) and per group of the weight's k at call time (the group's own scale, so an outlier channel --
/// the large activations of a few channels that real decoders carry -- coarsens only its group), and the products
/// are summed exactly in int32 per group:
///   row m, group g:  a = max over k in g of |x[m, k]|;  sa[m, g] = a / 127;
///           q[m, k] = clamp(rint(x[m, k] * (127 / a)), -127, 127)
///           (a == 0: sa = 0, q = 0; a group holding NaN or an infinity: sa = NaN, so the row's outputs are NaN);
///   acc[m, n, g] = sum over k in group g of q[m, k] * w[n, k]                       (int32, exact)
///   C[m, n] = fma over g = 0, 1, ... of (s[n, g], (float)acc[m, n, g] * sa[m, g], C)   (product rounded; C from 0)
///   Y[m, n] = act(C[m, n] + bias[n])
/// Every ISA computes these same integers and float operations, so a SIMD path equals vlm_linear_i8_naive bit for
/// bit without activation (with one, up to the activation functions' own SIMD-vs-scalar difference).
/// Error against the fp32 product with the dequantized weights: |x_k - sa q_k| <= sa / 2 per activation, so
/// |Y - Y_weight_only| <= sum_g (sa[m, g] / 2) * sum over k in g of |w'[n, k]| (w' = s q, the dequantized weight)
/// plus float rounding.
/// Kernels: AVX2 widens both operands to int16 and multiplies pairs with vpmaddwd (exact: no saturation, unlike
/// vpmaddubsw, whose u8 x s8 pair sums reach 2 * 255 * 127 > 32767); AVX512-VNNI runs vpdpbusd on u8 = q + 128
/// and subtracts 128 * sum_k w per group (exact integer compensation). Chosen by CPU features at run time.
/// M below this many rows keeps the weight-only path in vlm_linear (decode GEMV) even on an int8-compute weight.
#define VLM_I8_GEMM_MIN_M 16
/// How vlm_linear computes on a packed weight: exactly in fp32 on the weights as stored (the default), int8 compute
/// (I8 weights, vlm_linear_i8) or bf16 compute (BF16 weights, vlm_linear_bf16) from the mode's minimum rows.
typedef enum { VLM_COMPUTE_WEIGHT_ONLY = 0, VLM_COMPUTE_INT8 = 1, VLM_COMPUTE_BF16 = 2 } vlm_compute_mode;
/// Marks a weight for reduced-precision compute in vlm_linear: INT8 on an I8 weight (M >= VLM_I8_GEMM_MIN_M), INT8 on
/// an I4 weight (W4A8 decode, M <= VLM_QGEMV_MAX_M: vlm_linear_w4a8), BF16 on a BF16 weight (M >=
/// VLM_BF16_GEMM_MIN_M), WEIGHT_ONLY on any. Set at load, before the weight is shared: on an I4 weight the mode
/// re-lays the codes in place (INT8: the W4A8 kernel's order; WEIGHT_ONLY: the weight-only GEMV's), one pass.
/// Returns 0, -1 when the mode does not fit the weight's storage, or VLM_ERR_NOMEM (the mode is then unchanged).
int vlm_packed_weight_set_compute(vlm_packed_weight *w, vlm_compute_mode mode);
vlm_compute_mode vlm_packed_weight_compute(const vlm_packed_weight *w);
/// Y[M, N] = the definition above, for any M >= 1 (whatever the weight's compute mode). Returns 0, -1 when W is
/// not I8, or VLM_ERR_NOMEM (Y incomplete).
int vlm_linear_i8(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                  vlm_activation act, float *Y, int64_t ldy);
/// The reference (scalar integers, fmaf, vlm_act_scalar). Same return values.
int vlm_linear_i8_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                        vlm_activation act, float *Y, int64_t ldy);
/// The activation quantizer of the definition: q [M, K] (row stride ldq), sa [M, ceil(K / group)].
void vlm_quantize_rows_i8_naive(const float *X, int64_t M, int64_t ldx, int64_t K, int64_t group, int8_t *q, int64_t ldq,
                                float *sa);
/// The int8-compute kernel the CPU runs ("avx2 int8 vpmaddwd 6x16", "avx512-vnni int8 vpdpbusd 8x32", "naive").
const char *vlm_i8_gemm_kernel(void);

// MARK: W4A8 decode (int4 weights x int8 activations in blocks of 32)
//
/// On an I4 weight (codes c in 0..15, zero point z[n, g] and scale s[n, g] per output row and group of `group` k),
/// activations are quantized at call time in blocks of 32 k (llama.cpp's Q8_0 scheme: each block's own range, so an
/// outlier costs only its block), and the products are summed exactly in int32 per block:
///   row m, block b:  a = max |x[m, k]| over the block;  d[m, b] = a / 127;  q[m, k] = clamp(rint(x * (127 / a)),
///                    -127, 127);  xs[m, b] = sum of q over the block  (a == 0: d = 0, q = 0; NaN or an infinity in
///                    the block: d = NaN, so the row's outputs are NaN);
///   i[m, n, b] = sum over k in b of q[m, k] * c[n, k]                               (int32, exact)
///   G = fma over the blocks b of group g of (d[m, b], (float)(i - z[n, g] * xs[m, b]), G)   (G starts at 0)
///   C[m, n] = fma over g of (s[n, g], G, C)                                         (C starts at 0)
///   Y[m, n] = act(C + bias[n])
/// The SIMD kernel computes these same integers and float operations, so it equals vlm_linear_w4a8_naive bit for bit
/// without activation. Error against the weight-only int4 product: |x_k - d q_k| <= d / 2 per activation.
/// Runs the AVX512-VNNI + VBMI kernel when the CPU has both and the AVX-512 path is active, else the naive twin
/// (correct, slow: callers mark weights INT8 only where vlm_w4a8_fast_available()). Returns 0, -1 when W is not
/// I4, or VLM_ERR_NOMEM (Y incomplete).
int vlm_linear_w4a8(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                    vlm_activation act, float *Y, int64_t ldy);
/// The reference (scalar integers, fmaf, vlm_act_scalar). Same return values.
int vlm_linear_w4a8_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                          vlm_activation act, float *Y, int64_t ldy);
/// 1 when vlm_linear_w4a8 runs its SIMD kernel on this CPU and forced ISA.
int vlm_w4a8_fast_available(void);
/// The W4A8 kernel the CPU runs ("avx512-vnni+vbmi int4 x int8 vpdpbusd GEMV" or "naive").
const char *vlm_w4a8_kernel(void);

// MARK: bf16 compute (bf16 weights x activations rounded to bf16, fp32 accumulation)
//
/// On a BF16 weight w, activations are rounded to bf16 at call time and the exact products summed in fp32 over
/// k pairs, as AVX512_BF16's vdpbf16ps defines it:
///   xb[m, k] = bf16(x[m, k])  (round to nearest even; NaN stays NaN; K odd: a zero pair partner)
///   C = 0; for t = 0, 1, ...:  C = C + xb[2t+1] w[2t+1];  C = C + xb[2t] w[2t]   (each product exact, sum rounded)
///   Y[m, n] = act(C + bias[n])
/// The product of two bf16 values is exact in fp32, so the only roundings are those of the activations (relative
/// 2^-8, half a bf16 ulp) and of the running sum: |Y - Y_fp32| <= 2^-8 sum_k |x w| plus fp32 accumulation error. Hardware may
/// flush denormal operands and sums to zero and order the two products of a pair differently; paths are therefore
/// compared with a tolerance of the accumulation's rounding, not bit for bit. Kernels: vdpbf16ps on CPUs with
/// AVX512_BF16 (chosen at run time); elsewhere the rounded activations run the exact fp32 path on the widened
/// weights (the same products, fp32 FMAs in the fp32 kernel's order): the same numbers, without the speed.
#define VLM_BF16_GEMM_MIN_M 16
/// Y[M, N] = the definition above, for any M >= 1. Returns 0, -1 when W is not BF16, or VLM_ERR_NOMEM.
int vlm_linear_bf16(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                    vlm_activation act, float *Y, int64_t ldy);
/// The reference (scalar, the pair order above, fmaf, vlm_act_scalar). Same return values.
int vlm_linear_bf16_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                          vlm_activation act, float *Y, int64_t ldy);
/// C[M, N] = op(A) op(B) with both operands rounded to bf16 and the products summed in fp32, in the pair order of
/// vlm_linear_bf16 (op(A) is its X, op(B)ᵀ its weight): a matrix product of two activations or of an activation and
/// a weight that changes every step (training's forward, input- and weight-gradient products). op(A) = A [M, K]
/// (lda >= K) or, transA, Aᵀ with A [K, M] (lda >= M); op(B) = B [K, N] (ldb >= N) or, transB, Bᵀ with B [N, K]
/// (ldb >= K). C row stride ldc >= N. Returns 0, -1 on bad arguments, or VLM_ERR_NOMEM.
int vlm_matmul_bf16(int transA, int transB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float *C, int64_t ldc);
/// Its reference: each entry sum_k bf16(a) bf16(b) in double precision, rounded once.
int vlm_matmul_bf16_naive(int transA, int transB, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                          const float *B, int64_t ldb, float *C, int64_t ldc);
/// The bf16-compute kernel the CPU runs ("avx512-bf16 vdpbf16ps 14x32", or the fallback's name).
const char *vlm_bf16_gemm_kernel(void);

// MARK: Row-wise and elementwise ops

/// y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * gamma + beta   (biased variance, like torch.nn.LayerNorm).
/// x may alias y. gamma/beta may be NULL (then 1/0).
void vlm_layernorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, const float *beta, float eps);
void vlm_layernorm_naive(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, const float *beta, float eps);

/// y[r,:] = x[r,:] / sqrt(mean(x^2) + eps) * gamma   (Llama RMSNorm; gamma may be NULL).
void vlm_rmsnorm(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, float eps);
void vlm_rmsnorm_naive(const float *x, float *y, int64_t rows, int64_t dim, const float *gamma, float eps);

/// In place, numerically stable softmax over each row of x[rows, cols]. A row that is entirely -inf
/// becomes zeros (torch would produce NaN), matching vlm_attention's fully masked rows.
void vlm_softmax(float *x, int64_t rows, int64_t cols);
void vlm_softmax_naive(float *x, int64_t rows, int64_t cols);

/// In place activation on n elements.
void vlm_activate(float *x, int64_t n, vlm_activation act);
void vlm_activate_naive(float *x, int64_t n, vlm_activation act);
/// Backward of vlm_activate: dz[i] = dy[i] * act'(z[i]) with z the pre-activation (dz may alias dy).
void vlm_activation_backward(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act);
void vlm_activation_backward_naive(const float *dy, const float *z, float *dz, int64_t n, vlm_activation act);
/// act'(z) in double (the reference the SIMD derivatives are tested against).
float vlm_act_derivative_scalar(float z, vlm_activation act);

/// out = a + b (out may alias a or b).
void vlm_add(const float *a, const float *b, float *out, int64_t n);
void vlm_add_naive(const float *a, const float *b, float *out, int64_t n);
/// Rows of x[rows, cols] += bias[cols].
void vlm_add_bias(float *x, const float *bias, int64_t rows, int64_t cols);
void vlm_add_bias_naive(float *x, const float *bias, int64_t rows, int64_t cols);
/// Each row of x[rows, dim] divided by its L2 norm (rows of zeros stay zero).
void vlm_l2_normalize(float *x, int64_t rows, int64_t dim);
void vlm_l2_normalize_naive(float *x, int64_t rows, int64_t dim);

// MARK: Attention

/// Scaled dot-product attention over B batches and H heads of size D, reading heads in place from
/// token-major rows (as produced by a linear layer):
///   q(b,t,h,d) = q[(b*Tq + t)*ldq + h*D + d],  k(b,s,h,d) = k[(b*Tk + s)*ldk + h*D + d],  same for v,
///   out(b,t,h,d) = out[(b*Tq + t)*ldo + h*D + d].
/// scores = scale * q.k; causal != 0 masks s > t + (Tk - Tq) (so decode with a KV cache works);
/// key_mask, if not NULL, is [B, Tk] with 0 for padded keys that must not be attended.
/// A row whose keys are all masked gets zeros. Returns 0, or VLM_ERR_NOMEM (out incomplete).
int vlm_attention(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                   const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                   float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask);
void vlm_attention_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                         const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                         float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask);
/// As vlm_attention with an explicit key range per query instead of the causal flag: query t (of every batch)
/// attends keys s with key_begin[t] <= s < key_end[t] (and key_mask, if not NULL). key_begin/key_end: [Tq].
/// Expresses causal, sliding-window, prefix-LM and bidirectional masks; only the keys of each query block's
/// ranges are scored. A query with an empty range gets zeros. Returns 0, or VLM_ERR_NOMEM.
int vlm_attention_ranged(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                          const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                          float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                          const uint8_t *key_mask);
void vlm_attention_ranged_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                                const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                                float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                                const uint8_t *key_mask);

/// Grouped-query (and multi-query) attention: as vlm_attention_ranged with KVH key/value heads shared by groups of
/// H / KVH consecutive query heads (repeat_kv): query head h reads key/value head h / (H / KVH), at column
/// (h / (H / KVH)) * D of the k and v rows. key_begin/key_end may be NULL (every key). Decode steps and short
/// continuations (H / KVH * Tq <= 16 rows per key/value head) read each key and value row once for the whole group.
/// Returns 0, -1 when H is not a multiple of KVH, or VLM_ERR_NOMEM (out incomplete).
int vlm_attention_gqa(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                      const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                      float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                      const uint8_t *key_mask);
void vlm_attention_gqa_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                             const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                             float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                             const uint8_t *key_mask);

/// bf16 attention: as vlm_attention_gqa (ranges when given, else `causal`), with the two products on bf16 operands
/// summed in fp32: S = scale * bf16(Q) bf16(K)^T, P = softmax(S) rounded to bf16, O = P bf16(V) -- on CPUs with
/// AVX512_BF16 (vlm_attention_bf16_available). Elsewhere, and for calls with few query rows per key/value head
/// (decode steps), it is the fp32 attention. Returns 0, -1 when H is not a multiple of KVH, or VLM_ERR_NOMEM.
int vlm_attention_bf16(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                       const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                       float *out, int64_t ldo, float scale, int causal, const int64_t *key_begin,
                       const int64_t *key_end, const uint8_t *key_mask);
/// Its definition, in double precision on the rounded operands (P rounded to bf16 after the softmax).
void vlm_attention_bf16_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                              int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, float *out,
                              int64_t ldo, float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                              const uint8_t *key_mask);
/// 1 when vlm_attention_bf16 computes in bf16 on the active path (AVX-512 with AVX512_BF16), else 0.
int vlm_attention_bf16_available(void);

/// The general form behind the entries above, for keys and values that are not token-major rows: key/value head g
/// of position s of sequence b is read at k + (b * Tk + s) * ldk + g * kv_head_stride (likewise v). A KV cache
/// kept head-major ([KVH, capacity, D]: ldk = ldv = D, kv_head_stride = capacity * D) is read in place, each
/// head's keys one contiguous run; kv_head_stride = D is the token-major layout of vlm_attention_gqa. Explicit
/// ranges when key_begin/key_end are given, else `causal`; bf16 != 0 as vlm_attention_bf16, else fp32.
/// Returns 0, -1 when H is not a multiple of KVH, or VLM_ERR_NOMEM (out incomplete).
int vlm_attention_strided(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                          int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t kv_head_stride,
                          float *out, int64_t ldo, float scale, int causal, const int64_t *key_begin,
                          const int64_t *key_end, const uint8_t *key_mask, int bf16);
/// Its double-precision reference.
void vlm_attention_strided_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                                 int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                                 int64_t kv_head_stride, float *out, int64_t ldo, float scale, int causal,
                                 const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask, int bf16);

/// vlm_attention_strided over bf16 keys and values (a bf16 KV cache; strides in elements): the result is
/// vlm_attention_strided's on the rows widened to fp32 (exact). Decode steps (H / KVH * Tq <= 16 rows per key/value
/// head) read the bf16 rows in place, bit for bit what the fp32 path gives on the widened rows; longer calls widen
/// the rows into fp32 scratch first. Returns 0, -1 when H is not a multiple of KVH, or VLM_ERR_NOMEM.
int vlm_attention_strided_kv16(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                               int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v, int64_t ldv,
                               int64_t kv_head_stride, float *out, int64_t ldo, float scale, int causal,
                               const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask, int bf16);
/// Its reference: the rows widened by vlm_bf16_to_f32_naive, then vlm_attention_strided_naive. Returns 0, -1 or
/// VLM_ERR_NOMEM as above.
int vlm_attention_strided_kv16_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                                     const float *q, int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v,
                                     int64_t ldv, int64_t kv_head_stride, float *out, int64_t ldo, float scale,
                                     int causal, const int64_t *key_begin, const int64_t *key_end,
                                     const uint8_t *key_mask, int bf16);

// MARK: Inner products for vector search

/// a . b over n floats (any alignment). Float accumulation in several SIMD lanes: agrees with the naive
/// twin (double accumulation) to ~(n/8 + 16) eps relative to sum |a_i b_i|. n <= 0 gives 0.
float vlm_dot(const float *a, const float *b, int64_t n);
float vlm_dot_naive(const float *a, const float *b, int64_t n);
/// out[i] = q . row(idx[i]) for i < count, where row(j) = base + j * stride (n floats each): one query against
/// rows scattered over a matrix, as HNSW scores a node's neighbours. Rows go four at a time (four load
/// streams in flight) with the next rows prefetched. Runs on the calling thread (no pool).
void vlm_dot_gather(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count, int64_t n,
                    float *out);
void vlm_dot_gather_naive(const float *q, const float *base, int64_t stride, const int32_t *idx, int64_t count,
                          int64_t n, float *out);

// MARK: Conversions

/// IEEE half -> float (exact), bf16 -> float (exact), float -> half / bf16 (round to nearest even,
/// overflow to infinity, subnormals kept). NaNs stay NaNs; the SIMD paths may set the quiet bit of a
/// signalling NaN (F16C does), the naive widening keeps the payload bits as they are.
void vlm_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
void vlm_bf16_to_f32(const uint16_t *src, float *dst, int64_t n);
void vlm_f32_to_f16(const float *src, uint16_t *dst, int64_t n);
void vlm_f32_to_bf16(const float *src, uint16_t *dst, int64_t n);
void vlm_f16_to_f32_naive(const uint16_t *src, float *dst, int64_t n);
void vlm_bf16_to_f32_naive(const uint16_t *src, float *dst, int64_t n);
void vlm_f32_to_f16_naive(const float *src, uint16_t *dst, int64_t n);
void vlm_f32_to_bf16_naive(const float *src, uint16_t *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
