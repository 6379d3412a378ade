// Blocked GEMM driver shared by the SIMD paths (BLIS-style loops around a register-blocked micro-kernel).
//
// Loop nest per task (a task owns a range of rows and a range of VLM_NR-wide column panels):
//   for each block of <= MC rows:
//     for each chunk of PCHUNK panels:    the C block (MC x PCHUNK*NR) stays in L2 over the K blocks
//       for each K block of <= KC:        the A block (MC x KC) stays in L2
//         for each column panel:          B slice (KC x NR = 32 KiB) stays in L1 across all row tiles
//           for each <= MR-row tile:      micro-kernel; bias + activation after the last K block
// A (activations) is read in place; it is copied only for transA or alpha != 1 (sgemm). Weights of
// linear layers are pre-packed (vlm_pack_weight); sgemm packs B slices on the fly.
#include "kernels_internal.h"
#include <stdatomic.h>
#include <string.h>

#ifndef KC
#define KC 256
#endif
// BF16 panels are stored as k pairs: a K block must start on a pair.
_Static_assert(KC % 2 == 0, "KC must be even");
// Rows per block: a ViT-L/14 image (257 rows) is one block, so a task streams each weight slice from memory
// once, not once per half (224 rows: 6% slower per L/14 layer with weights from memory).
#ifndef MC_MAX
#define MC_MAX 320
#endif
#ifndef PCHUNK
#define PCHUNK 4
#endif
// Row tiles per weight slice from which the next slice is prefetched while they run (run_block). Fewer tiles give
// the prefetches too little time to hide behind: at 4 (ViT-B/32, one image: 50 rows) they cost 4-8% per layer, at 8
// (100 rows) they gain 3-7%, at 19 (ViT-L/14: 257 rows) 10-14%.
#define PF_MIN_TILES 6
// Below this many flops a call runs on the caller's thread: waking the pool costs a few microseconds.
#define PARALLEL_MIN_FLOPS 400000.0
// Work per task at least this (so scheduling costs stay small) ...
#define TASK_MIN_FLOPS 1000000.0
// ... and up to this many tasks per thread, so a thread that gets descheduled on a busy machine only
// delays a small share of the work (tasks are taken dynamically).
#define TASKS_PER_THREAD 4

const vlm_gemm_kernels *vlm_active_gemm_kernels(void) {
    switch (vlm_active_isa()) {
    case VLM_ISA_AVX512: return &vlm_gemm_kernels_avx512;
    case VLM_ISA_AVX2: return &vlm_gemm_kernels_avx2;
    default: return NULL;
    }
}

typedef struct {
    const vlm_gemm_kernels *ks;
    int64_t M, N, K;
    const float *A; int64_t lda; int transA; float alpha;
    int a_cm;  // transA read in place by the column-major micro-kernel (ks->ukernel_cm), alpha == 1
    // B source: pre-packed weight, or raw B (packed per K block)
    const vlm_packed_weight *W;
    const float *B; int64_t ldb; int transB;
    float *C; int64_t ldc; float beta;
    const float *bias; vlm_activation act;
    // task grid: nm row chunks x nn panel chunks
    int64_t npanels, nm, nn;
    _Atomic int failed;  // a task could not allocate its scratch (the call returns VLM_ERR_NOMEM)
} gemm_job;

// Copies alpha * op(A)[r0:r0+rows, 0:K] into a row-major rows x K buffer (rows ldd >= K apart).
static void copy_a_rows(const gemm_job *j, int64_t r0, int64_t rows, float *dst, int64_t ldd) {
    float alpha = j->alpha;
    int64_t K = j->K;
    if (!j->transA && alpha == 1.0f) {
        // A plain copy (aliased rows): memcpy moves 64 bytes per instruction where this generic file's loop moves 16.
        for (int64_t i = 0; i < rows; i++) memcpy(dst + i * ldd, j->A + (r0 + i) * j->lda, (size_t)K * sizeof(float));
    } else if (!j->transA) {
        for (int64_t i = 0; i < rows; i++) {
            const float *src = j->A + (r0 + i) * j->lda;
            for (int64_t k = 0; k < K; k++) dst[i * ldd + k] = alpha * src[k];
        }
    } else if (j->ks->transpose_scale) {
        j->ks->transpose_scale(j->A + r0, j->lda, K, rows, alpha, dst, ldd);
    } else {
        // Transpose in 8x8-ish tiles so both the reads and the writes stay within a few cache lines.
        for (int64_t k0 = 0; k0 < K; k0 += 8)
            for (int64_t i0 = 0; i0 < rows; i0 += 8)
                for (int64_t k = k0; k < k0 + 8 && k < K; k++) {
                    const float *src = j->A + k * j->lda + r0;
                    for (int64_t i = i0; i < i0 + 8 && i < rows; i++) dst[i * ldd + k] = alpha * src[i];
                }
    }
}

// Packs op(B)[k0:k0+kc, n0:n0+nr] into a zero-padded kc x VLM_NR slice.
static void pack_b_slice(const gemm_job *j, int64_t k0, int64_t kc, int64_t n0, int64_t nr, float *dst) {
    if (!j->transB) {
        for (int64_t k = 0; k < kc; k++) {
            const float *src = j->B + (k0 + k) * j->ldb + n0;
            float *d = dst + k * VLM_NR;
            memcpy(d, src, (size_t)nr * sizeof(float));
            for (int64_t c = nr; c < VLM_NR; c++) d[c] = 0.0f;
        }
    } else {
        if (nr < VLM_NR) memset(dst, 0, (size_t)kc * VLM_NR * sizeof(float));
        // Keys in attention (S = Q Kᵀ): a transposed B of every head, per call; the SIMD transpose where there is one
        // (the scalar loop's strided stores were ~2% of a ViT-L/14 image). Times 1: the same values.
        if (j->ks->transpose_scale) {
            j->ks->transpose_scale(j->B + n0 * j->ldb + k0, j->ldb, nr, kc, 1.0f, dst, VLM_NR);
            return;
        }
        for (int64_t c = 0; c < nr; c++) {
            const float *src = j->B + (n0 + c) * j->ldb + k0;
            for (int64_t k = 0; k < kc; k++) dst[k * VLM_NR + c] = src[k];
        }
    }
}

// Rows of the whole problem (a single row tile streams A once: no copy is worth it).
static inline int64_t rows_total_of(const gemm_job *j) { return j->M > j->ks->mr_max ? j->M : 1; }

// Rows a multiple of 2 KiB apart (K = 512, 1024, 2048 ... read in place) put a tile's rows into one set of the
// 8-way L1 and evict each other (fp32 at K = 2048 / 8192 ran at 82% of its K = 768 speed): such A is copied to
// rows one cache line longer. A copy changes no value, so results stay bit for bit the same.
static inline int a_aliased(const gemm_job *j) {
    return !j->transA && !j->a_cm && rows_total_of(j) > 1 && (j->lda * (int64_t)sizeof(float)) % 2048 == 0;
}
// The row stride of a copy of A: one cache line longer where K itself is a multiple of 2 KiB.
static inline int64_t a_copy_ld(int64_t K) { return K % 512 == 0 ? K + 16 : K; }

static void run_block(const gemm_job *j, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
    const vlm_gemm_kernels *ks = j->ks;
    int mr_max = ks->mr_max;
    // A is copied where it is transposed, scaled or aliased (a_aliased); pack_a_once copies it once per call instead.
    int copy_a = (j->transA && !j->a_cm) || j->alpha != 1.0f || a_aliased(j);
    int64_t ldcopy = a_copy_ld(j->K);
    int64_t rows_total = m1 - m0;
    int64_t nmb = (rows_total + MC_MAX - 1) / MC_MAX;
    int64_t mb_rows = (rows_total + nmb - 1) / nmb;
    float *abuf = copy_a ? vlm_scratch(0, (size_t)mb_rows * ldcopy + 64) : NULL;
    int quant = j->W && vlm_dtype_quantized(j->W->dtype);
    // A single row tile (decode, short text) uses each B slice once: it is streamed, not reused, so
    // K is not blocked and every weight panel is read in one sequential sweep (prefetcher-friendly).
    // Decided on the whole problem's M, never on this task's share of it: K blocking changes the order in
    // which partial sums are rounded, and results must not depend on the thread count.
    int64_t kcb = j->M <= mr_max && j->W ? j->K : KC;
    // Raw B is packed per slice; quantized panels are dequantized per slice (exactly, so the result is the
    // fp32 GEMM of the dequantized weight).
    float *bpack = !j->W ? vlm_scratch(1, (size_t)KC * VLM_NR + 64)
                 : quant ? vlm_scratch(VLM_SLOT_QSLICE, (size_t)kcb * VLM_NR + 64) : NULL;
    if ((copy_a && !abuf) || ((!j->W || quant) && !bpack)) {
        atomic_store(&((gemm_job *)j)->failed, 1);
        return;
    }
    for (int64_t mb = m0; mb < m1; mb += mb_rows) {
        int64_t rows = m1 - mb < mb_rows ? m1 - mb : mb_rows;
        // Split the rows into tiles of near-equal height <= mr_max (50 rows -> 13+13+12+12, not 14+14+14+8).
        int64_t ntiles = (rows + mr_max - 1) / mr_max;
        int64_t base = rows / ntiles, extra = rows % ntiles;
        // Column-major A: row r of op(A) is column r of the stored matrix, k steps are rows (stride lda).
        const float *a = j->a_cm ? j->A + mb : j->A + mb * j->lda;
        int64_t lda = j->lda;
        if (copy_a) { copy_a_rows(j, mb, rows, abuf, ldcopy); a = abuf; lda = ldcopy; }
        // Panels in chunks so the C block being accumulated over the K blocks (rows x PCHUNK*NR) stays in L2.
        for (int64_t pc = p0; pc < p1; pc += PCHUNK) {
            int64_t pc1 = pc + PCHUNK < p1 ? pc + PCHUNK : p1;
            for (int64_t kb = 0; kb < j->K; kb += kcb) {
                int64_t kc = j->K - kb < kcb ? j->K - kb : kcb;
                int first = kb == 0, last = kb + kc == j->K;
                for (int64_t p = pc; p < pc1; p++) {
                    int64_t n0 = p * VLM_NR;
                    int nr = (int)(j->N - n0 < VLM_NR ? j->N - n0 : VLM_NR);
                    const float *bp = NULL;
                    const uint16_t *bp16 = NULL;
                    // kb is a multiple of KC (even), so the BF16 pair layout's slice starts at the same offset.
                    size_t off = ((size_t)p * (size_t)(j->W ? vlm_panel_k(j->W) : j->K) + (size_t)kb) * VLM_NR;
                    if (!j->W) { pack_b_slice(j, kb, kc, n0, nr, bpack); bp = bpack; }
                    else if (quant) { ks->qdequant(j->W, p, kb, kc, bpack); bp = bpack; }
                    else if (j->W->dtype == VLM_WEIGHT_F32) bp = (const float *)j->W->data + off;
                    else bp16 = (const uint16_t *)j->W->data + off;
                    int f16 = j->W && j->W->dtype == VLM_WEIGHT_F16;
                    // The weight slice this loop reads next, asked into L2 a share per tile while this one's
                    // tiles run: slices come from memory (an L/14 layer's weights are 50 MB), and the hardware
                    // prefetchers alone left the first tile of each slice waiting on it (with the one-block rows of
                    // MC_MAX, an L/14 layer's projections took 10-14% less time: Benchmarks/layer_gemm.c).
                    const char *next = NULL;
                    int64_t next_lines = 0, asked = 0;
                    if (j->W && !quant && ntiles >= PF_MIN_TILES) {
                        int64_t np = p + 1, nkb = kb;
                        if (np >= pc1) { np = pc; nkb = kb + kcb; if (nkb >= j->K) { np = pc1; nkb = 0; } }
                        if (np < p1) {
                            int64_t nkc = j->K - nkb < kcb ? j->K - nkb : kcb;
                            size_t at = ((size_t)np * (size_t)vlm_panel_k(j->W) + (size_t)nkb) * VLM_NR;
                            next = (const char *)j->W->data + at * (size_t)j->W->esize;
                            next_lines = (nkc * VLM_NR * j->W->esize + 63) / 64;
                        }
                    }
                    int64_t r = 0;
                    for (int64_t t = 0; t < ntiles; t++) {
                        for (int64_t upto = next_lines * (t + 1) / ntiles; asked < upto; asked++)
                            __builtin_prefetch(next + asked * 64, 0, 2);
                        int mr = (int)(base + (t < extra));
                        float *c = j->C + (mb + r) * j->ldc + n0;
                        int accumulate = !first;
                        if (first && j->beta != 0.0f) {
                            // BLAS: C = alpha AB + beta C; scale once, then accumulate (beta == 0 never reads C).
                            if (j->beta != 1.0f)
                                for (int i = 0; i < mr; i++)
                                    for (int q = 0; q < nr; q++) c[i * j->ldc + q] *= j->beta;
                            accumulate = 1;
                        }
                        // 16-bit panels: same tiles, same FMA order, weights widened exactly in the kernel.
                        if (bp16) ks->ukernel16(mr, kc, a + r * lda + kb, lda, bp16, c, j->ldc, nr, accumulate, f16);
                        else if (j->a_cm) ks->ukernel_cm(mr, kc, a + r + kb * lda, lda, bp, c, j->ldc, nr, accumulate);
                        else ks->ukernel(mr, kc, a + r * lda + kb, lda, bp, c, j->ldc, nr, accumulate);
                        if (last && (j->bias || j->act != VLM_ACT_NONE))
                            for (int i = 0; i < mr; i++)
                                ks->bias_act(c + i * j->ldc, nr, j->bias ? j->bias + n0 : NULL, j->act);
                        r += mr;
                    }
                }
            }
        }
    }
}

static void gemm_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const gemm_job *j = ctx;
    int64_t im = task / j->nn, in = task % j->nn;
    int64_t m0 = j->M * im / j->nm, m1 = j->M * (im + 1) / j->nm;
    int64_t p0 = j->npanels * in / j->nn, p1 = j->npanels * (in + 1) / j->nn;
    if (m1 > m0 && p1 > p0) run_block(j, m0, m1, p0, p1);
}

// Task grid: split column panels first (each task streams its own share of the weights), rows only when
// there are too few panels for the wanted number of tasks.
static void plan_and_run(gemm_job *j, int parallel) {
    j->npanels = (j->N + VLM_NR - 1) / VLM_NR;
    int64_t T = parallel ? vlm_pool_threads() : 1;
    double flops = 2.0 * (double)j->M * (double)j->N * (double)j->K;
    if (flops < PARALLEL_MIN_FLOPS) T = 1;
    if (T <= 1) {
        j->nm = j->nn = 1;
        run_block(j, 0, j->M, 0, j->npanels);
        return;
    }
    int64_t want = T * TASKS_PER_THREAD;
    int64_t by_size = (int64_t)(flops / TASK_MIN_FLOPS);
    if (want > by_size) want = by_size;
    if (want < T) want = T;
    int64_t mtiles = (j->M + j->ks->mr_max - 1) / j->ks->mr_max;
    j->nn = j->npanels < want ? j->npanels : want;
    j->nm = (want + j->nn - 1) / j->nn;
    if (j->nm > mtiles) j->nm = mtiles;
    vlm_parallel_for(j->nm * j->nn, gemm_task, j);
}

// MARK: Quantized weights, few rows: fused group GEMV over panel ranges

typedef struct {
    const vlm_gemm_kernels *ks;
    const float *X; int64_t M, ldx;
    const vlm_packed_weight *W; const float *xs;
    const float *bias; vlm_activation act;
    float *Y; int64_t ldy;
    int64_t ntasks;
} qgemv_job;

static void qgemv_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    const qgemv_job *j = ctx;
    int64_t np = j->W->npanels, p0 = np * t / j->ntasks, p1 = np * (t + 1) / j->ntasks;
    if (p1 > p0) j->ks->qgemv(j->X, j->M, j->ldx, j->W, j->xs, p0, p1, j->bias, j->act, j->Y, j->ldy);
}

static int qgemv_run(const vlm_gemm_kernels *ks, const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W,
                     const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    float *xs = NULL;
    if (W->dtype == VLM_WEIGHT_I4) {
        xs = vlm_scratch(VLM_SLOT_QXSUM, (size_t)(M * W->ngroups) + 16);
        if (!xs) return VLM_ERR_NOMEM;
        vlm_quant_xsum(X, M, ldx, W, xs);
    }
    qgemv_job j = { .ks = ks, .X = X, .M = M, .ldx = ldx, .W = W, .xs = xs, .bias = bias, .act = act, .Y = Y, .ldy = ldy };
    double flops = 2.0 * (double)M * (double)W->N * (double)W->K;
    int64_t T = flops < PARALLEL_MIN_FLOPS ? 1 : vlm_pool_threads();
    // Panels are split into contiguous ranges, several per thread (taken dynamically).
    j.ntasks = T <= 1 ? 1 : T * TASKS_PER_THREAD;
    if (j.ntasks > W->npanels) j.ntasks = W->npanels;
    if (j.ntasks <= 1) qgemv_task(&j, 0, 0);
    else vlm_parallel_for(j.ntasks, qgemv_task, &j);
    return 0;
}

int vlm_linear(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
               vlm_activation act, float *Y, int64_t ldy) {
    if (!W || M <= 0) return 0;
    // Reduced-precision compute (vlm_packed_weight_set_compute) for prefill/encoder shapes on every ISA; fewer rows
    // (decode) are bandwidth-bound and keep the exact path on the same weights.
    if (W->compute == VLM_COMPUTE_INT8 && W->dtype == VLM_WEIGHT_I8 && M >= VLM_I8_GEMM_MIN_M)
        return vlm_linear_i8(X, M, ldx, W, bias, act, Y, ldy);
    // int4 weights marked int8-compute: decode rows take the W4A8 GEMV; prefill dequantizes to fp32 as before.
    if (W->compute == VLM_COMPUTE_INT8 && W->dtype == VLM_WEIGHT_I4 && M <= VLM_QGEMV_MAX_M)
        return vlm_linear_w4a8(X, M, ldx, W, bias, act, Y, ldy);
    if (W->compute == VLM_COMPUTE_BF16 && M >= VLM_BF16_GEMM_MIN_M) return vlm_linear_bf16(X, M, ldx, W, bias, act, Y, ldy);
    return vlm_linear_exact(X, M, ldx, W, bias, act, Y, ldy);
}

// MARK: Whole-operand packing for sgemm
//
// Why: per-task packing repeats work. A task packs its B slices once per row block (M / MC_MAX times), and
// a transposed A is copied by every task sharing its rows (one per panel chunk): in a training step's
// dW = dZᵀX (transA, K = batch x tokens) that redundant transpose was ~24% of the step. Packing each operand
// once per call, on the pool, into the layouts run_block already reads (row-major A; B as a packed weight)
// keeps every tile, K block and FMA order as before, so results are bit-identical.

typedef struct { const gemm_job *j; float *dst; int64_t chunk, ldd; } pack_a_job;

// Rows [task*chunk, ...) of alpha * op(A) into dst (row-major M x K).
static void pack_a_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const pack_a_job *pj = ctx;
    const gemm_job *j = pj->j;
    int64_t r0 = task * pj->chunk, r1 = r0 + pj->chunk < j->M ? r0 + pj->chunk : j->M;
    if (r1 > r0) copy_a_rows(j, r0, r1 - r0, pj->dst + r0 * pj->ldd, pj->ldd);
}

typedef struct { const gemm_job *j; float *dst; } pack_b_job;

// Panel p of op(B) (all of K) into dst + p*K*NR, the packed-weight layout (kernels_internal.h).
static void pack_b_task(void *ctx, int64_t p, int thread) {
    (void)thread;
    const pack_b_job *pj = ctx;
    const gemm_job *j = pj->j;
    int64_t n0 = p * VLM_NR;
    int nr = (int)(j->N - n0 < VLM_NR ? j->N - n0 : VLM_NR);
    pack_b_slice(j, 0, j->K, n0, nr, pj->dst + p * j->K * VLM_NR);
}

// Shared (caller-thread) scratch slots for whole operands; 0/1 are run_block's, 2 is attention's.
#define SLOT_SHARED_A 4
#define SLOT_SHARED_B 5
// Larger operands keep per-task packing rather than pin more scratch memory for the life of the thread.
#define SHARED_PACK_MAX_FLOATS (16.0 * 1024 * 1024)

// alpha * op(A) into a row-major copy (rows a_copy_ld apart) on the caller's shared scratch, once for every task;
// the job then reads it in place. Larger operands, or no memory for the copy, keep per-task copies.
static void pack_a_once(gemm_job *j, int par) {
    if ((double)j->M * (double)j->K > SHARED_PACK_MAX_FLOATS) return;
    int64_t ldd = a_copy_ld(j->K);
    float *abuf = vlm_scratch(SLOT_SHARED_A, (size_t)j->M * (size_t)ldd + 64);
    if (!abuf) return;
    int64_t chunk = 64, ntasks = (j->M + chunk - 1) / chunk;
    pack_a_job pj = { .j = j, .dst = abuf, .chunk = chunk, .ldd = ldd };
    if (par) vlm_parallel_for(ntasks, pack_a_task, &pj);
    else for (int64_t t = 0; t < ntasks; t++) pack_a_task(&pj, t, 0);
    j->A = abuf; j->lda = ldd; j->transA = 0; j->alpha = 1.0f;
}

static int sgemm_common(const vlm_gemm_kernels *ks, int parallel, int transA, int transB, int64_t M, int64_t N,
                         int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                         float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0 || alpha == 0.0f) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t q = 0; q < N; q++) C[i * ldc + q] = beta == 0.0f ? 0.0f : beta * C[i * ldc + q];
        return 0;
    }
    gemm_job j = {
        .ks = ks, .M = M, .N = N, .K = K, .A = A, .lda = lda, .transA = transA, .alpha = alpha,
        .B = B, .ldb = ldb, .transB = transB, .C = C, .ldc = ldc, .beta = beta, .act = VLM_ACT_NONE,
    };
    int par = parallel && 2.0 * (double)M * (double)N * (double)K >= PARALLEL_MIN_FLOPS;
    int64_t npanels = (N + VLM_NR - 1) / VLM_NR;
    // A transposed with alpha 1 is read in place where the ISA has a column-major micro-kernel: the
    // transpose copy it saves streams all of dZ through memory in every weight gradient (~8% of a step).
    if (transA && alpha == 1.0f && ks->ukernel_cm) j.a_cm = 1;
    // A is worth packing once whenever it would be copied (transA / alpha / aliased) by more than one task or block.
    else if ((transA || alpha != 1.0f || a_aliased(&j)) && (par || M > MC_MAX)) pack_a_once(&j, par);
    // B is re-packed per row block unless packed once; only a single row tile uses each slice just once, and
    // that case keeps its own (unblocked-K) schedule.
    vlm_packed_weight wb;
    if (M > ks->mr_max && (double)npanels * VLM_NR * (double)K <= SHARED_PACK_MAX_FLOATS) {
        float *bbuf = vlm_scratch(SLOT_SHARED_B, (size_t)npanels * (size_t)K * VLM_NR + 64);
        if (bbuf) {
            pack_b_job pj = { .j = &j, .dst = bbuf };
            if (par) vlm_parallel_for(npanels, pack_b_task, &pj);
            else for (int64_t p = 0; p < npanels; p++) pack_b_task(&pj, p, 0);
            wb = (vlm_packed_weight){ .N = N, .K = K, .npanels = npanels, .dtype = VLM_WEIGHT_F32, .esize = 4, .data = bbuf };
            j.W = &wb;
        }
    }
    plan_and_run(&j, parallel);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}

int vlm_sgemm_st(const vlm_gemm_kernels *ks, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (!ks) { vlm_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return 0; }
    return sgemm_common(ks, 0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int vlm_sgemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    const vlm_gemm_kernels *ks = vlm_active_gemm_kernels();
    if (!ks) { vlm_sgemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return 0; }
    return sgemm_common(ks, 1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

int vlm_linear_exact(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                     vlm_activation act, float *Y, int64_t ldy) {
    if (!W || M <= 0) return 0;
    const vlm_gemm_kernels *ks = vlm_active_gemm_kernels();
    if (!ks) { vlm_linear_packed_naive(X, M, ldx, W, bias, act, Y, ldy); return 0; }
    // The weight-only GEMV reads I4 in lane order; a weight re-laid for W4A8 (quad order) reaches this exact path only
    // when called directly, and takes the dequantizing GEMM.
    if (vlm_dtype_quantized(W->dtype) && M <= VLM_QGEMV_MAX_M && ks->qgemv && !W->i4_quads)
        return qgemv_run(ks, X, M, ldx, W, bias, act, Y, ldy);
    gemm_job j = {
        .ks = ks, .M = M, .N = W->N, .K = W->K, .A = X, .lda = ldx, .alpha = 1.0f, .W = W,
        .C = Y, .ldc = ldy, .beta = 0.0f, .bias = bias, .act = act,
    };
    // Aliased activations (K = 1024, 4096: ViT-L/14) were copied by every task sharing their rows: eight times per
    // call on two threads, 4% of an L/14 image. One copy on the pool serves every task.
    if (a_aliased(&j) && vlm_pool_threads() > 1 && 2.0 * (double)M * (double)W->N * (double)W->K >= PARALLEL_MIN_FLOPS)
        pack_a_once(&j, 1);
    plan_and_run(&j, 1);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}
