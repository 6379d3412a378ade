// Driver of the reduced-precision compute kernels (int8: gemm_i8*.c, bf16: gemm_bf16.c) around their per-ISA
// operand formats (vlm_lowp_kernels in kernels_internal.h).
//
// Why this shape: the packed weights are read as stored (I8 codes with their scales, BF16 panels), so no second
// copy of the weights is kept. The activations are converted once per call on the caller's thread into the kernel's
// format; for int8 each task re-lays out one 32-column panel (all of K) into per-thread scratch -- int16 k-pairs for
// AVX2's vpmaddwd, u8 k-quads for VNNI's vpdpbusd (inside the panel's first row tile, so the weights stream in while
// it computes) -- and reuses it for every row tile, so the re-layout costs 1/M of the multiply-adds. BF16 panels are
// stored as vdpbf16ps's k pairs and read in place: the re-layout was ~9% of a bf16 prefill (perf, SmolLM2-360M,
// Zen 4), most of it the first pass over weights that come from DRAM. Tiles run all of K and finish with the
// epilogue (scales, bias, activation). Results do not depend on the task grid or the thread count: every output is
// computed by one tile over the same k order.
#include "kernels_internal.h"
#include <stdatomic.h>

// Work per task at least this many multiply-adds, and up to this many tasks per thread (gemm_driver.c's reasons).
#define LOWP_TASK_MIN_MACS 2000000.0
#define LOWP_TASKS_PER_THREAD 4

typedef struct {
    const vlm_lowp_kernels *ks;
    const vlm_packed_weight *W;
    const void *A; int64_t lda; const float *sa; int64_t sg;  // sa [M, sg]: int8 scales per row and group
    int64_t M, kpad;
    const float *bias; vlm_activation act;
    float *Y; int64_t ldy;
    int64_t nm, nn;
    _Atomic int failed;
} lowp_job;

// Bytes of converted activation rows a block of row tiles keeps in L2 while it runs over the task's panels.
#define LOWP_ROW_BLOCK_BYTES (128 * 1024)

static void lowp_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    lowp_job *j = ctx;
    const vlm_lowp_kernels *ks = j->ks;
    const vlm_packed_weight *W = j->W;
    int64_t im = task / j->nn, in = task % j->nn;
    int64_t m0 = j->M * im / j->nm, m1 = j->M * (im + 1) / j->nm;
    int64_t p0 = vlm_split_bound(in, j->nn, W->npanels), p1 = vlm_split_bound(in + 1, j->nn, W->npanels);
    if (m1 <= m0 || p1 <= p0) return;
    int64_t rows = m1 - m0, ntiles = (rows + ks->mr_max - 1) / ks->mr_max;
    int64_t base = rows / ntiles, extra = rows % ntiles;
    // Row tiles go in blocks whose activations stay in L2 while the block runs over every panel of the task:
    // panel after panel over all rows re-read the whole activation matrix once per panel (a ViT-L/14 batch of 8 is
    // 2-8.5 MB of int8 rows, read 32-128 times per projection): +5-10% on its K = 1024 projections, two threads, Zen 5.
    // Only for re-laid-out panels (int8), which a block finds in scratch: panels read in place (bf16) would come
    // from memory again for every block (-4% on the same shapes in bf16).
    int relayout = ks->tile_pack || ks->pack_panel;
    int64_t row_bytes = j->lda * ks->a_bytes, tb = LOWP_ROW_BLOCK_BYTES / (row_bytes * ks->mr_max);
    if (tb < 1) tb = 1;
    // Blocks re-read the task's panels once per block instead of its rows once per panel: worth it only when the rows
    // are the larger operand (ViT-L/14 batch 8: 2-8.5 MB of rows against 0.3-0.5 MB of panels per task; a 128-token
    // prefill of SmolLM2-1.7B has 0.3-1 MB of rows against 1.5-2 MB of panels, and blocking cost it 2-6%).
    size_t task_rows_bytes = (size_t)rows * (size_t)row_bytes, task_panel_bytes = (size_t)(p1 - p0) * (size_t)j->kpad * (size_t)ks->b_bytes;
    int blocked = relayout && ntiles > tb && task_rows_bytes > task_panel_bytes;
    if (!blocked) tb = ntiles;
    // Scratch for the re-laid-out panels, unless the kernel reads the stored ones (bf16): one panel, or every panel
    // of the task when row blocks come back to them.
    size_t bbytes = relayout ? ((size_t)j->kpad * (size_t)ks->b_bytes + 63) / 64 * 64 : 0;
    size_t cbytes = ((size_t)W->ngroups * VLM_NR * sizeof(int32_t) + 63) / 64 * 64;
    int64_t kept = blocked ? p1 - p0 : 1;
    unsigned char *scratch = (unsigned char *)vlm_scratch(VLM_SLOT_QSLICE, (size_t)kept * (bbytes + cbytes) / sizeof(float) + 32);
    if (!scratch) { atomic_store(&j->failed, 1); return; }
    int64_t r0 = m0;
    for (int64_t t0 = 0; t0 < ntiles; t0 += tb) {
        int64_t t1 = t0 + tb < ntiles ? t0 + tb : ntiles, r = r0;
        for (int64_t p = p0; p < p1; p++) {
            unsigned char *slot = scratch + (size_t)(blocked ? p - p0 : 0) * (bbytes + cbytes);
            int32_t *colsum = (int32_t *)(slot + bbytes);
            // With tile_pack the panel's first row tile re-lays it out into the slot; without pack_panel the stored
            // panel is the kernel's layout (bf16 k pairs) and is read in place.
            const unsigned char *B = slot;
            if (!ks->tile_pack) {
                if (!ks->pack_panel) B = (const unsigned char *)W->data + (size_t)p * (size_t)j->kpad * (size_t)ks->b_bytes;
                else if (t0 == 0 || !blocked) ks->pack_panel(W, p, j->kpad, slot, colsum);
            }
            int64_t n0 = p * VLM_NR;
            int nr = (int)(W->N - n0 < VLM_NR ? W->N - n0 : VLM_NR);
            r = r0;
            for (int64_t t = t0; t < t1; t++) {
                int mr = (int)(base + (t < extra));
                const unsigned char *a = (const unsigned char *)j->A + (size_t)(r * j->lda) * (size_t)ks->a_bytes;
                if (t == 0 && ks->tile_pack)
                    ks->tile_pack(mr, a, j->lda, slot, colsum, W, p, j->kpad, j->sa + r * j->sg, j->bias ? j->bias + n0 : NULL,
                                  j->act, j->Y + r * j->ldy + n0, j->ldy, nr);
                else
                    ks->tile(mr, a, j->lda, B, colsum, W, p, j->kpad, j->sa + r * j->sg, j->bias ? j->bias + n0 : NULL, j->act,
                             j->Y + r * j->ldy + n0, j->ldy, nr);
                r += mr;
            }
        }
        r0 = r;
    }
}

// Activations converted on the pool from this many elements on.
#define CONVERT_PARALLEL_MIN 262144.0

typedef struct {
    const vlm_lowp_kernels *ks;
    const vlm_packed_weight *W;
    const float *X; int64_t ldx, M, kpad, lda, sg, nchunks;
    void *A; float *sa;
} convert_job;

// Rows [m0, m1) of chunk `task` into the kernel's format (converters write rows kpad apart: one row per call when
// the stride differs).
static void convert_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const convert_job *c = ctx;
    const vlm_lowp_kernels *ks = c->ks;
    int64_t m0 = vlm_split_bound(task, c->nchunks, c->M), m1 = vlm_split_bound(task + 1, c->nchunks, c->M);
    if (m1 <= m0) return;
    unsigned char *A = (unsigned char *)c->A;
    if (c->lda == c->kpad) {
        ks->quantize_rows(c->X + m0 * c->ldx, m1 - m0, c->ldx, c->W->K, c->kpad, c->W->group,
                          A + (size_t)(m0 * c->lda) * (size_t)ks->a_bytes, c->sa + m0 * c->sg);
        return;
    }
    for (int64_t m = m0; m < m1; m++)
        ks->quantize_rows(c->X + m * c->ldx, 1, c->ldx, c->W->K, c->kpad, c->W->group,
                          A + (size_t)(m * c->lda) * (size_t)ks->a_bytes, c->sa + m * c->sg);
}

// Elements between converted activation rows: kpad, plus one cache line when the row size is a multiple of 2 KiB.
// A tile reads up to 14 rows at once; at a 4 KiB stride (K = 2048 bf16, 4096 int8) all of them fall into one set
// of the 8-way L1 and evict each other: bf16 ran at 77% of its peak on K = 2048 / 8192 against 92% at K = 768.
static int64_t lowp_row_stride(int64_t kpad, int a_bytes) {
    int64_t bytes = kpad * a_bytes;
    return bytes % 2048 == 0 ? kpad + 64 / a_bytes : kpad;
}

int vlm_lowp_linear(const vlm_lowp_kernels *ks, const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W,
                    const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    int64_t kpad = (W->K + ks->k_align - 1) / ks->k_align * ks->k_align;
    int64_t lda = lowp_row_stride(kpad, ks->a_bytes);
    // One caller-thread buffer: sa [M, groups] (rounded up to 64 bytes), then the converted rows [M, lda].
    int64_t sg = W->ngroups > 0 ? W->ngroups : 1;
    size_t sa_bytes = ((size_t)M * (size_t)sg * sizeof(float) + 63) / 64 * 64;
    size_t a_bytes = (size_t)M * (size_t)lda * (size_t)ks->a_bytes;
    float *buf = vlm_scratch(VLM_SLOT_I8A, (sa_bytes + a_bytes) / sizeof(float) + 16);
    if (!buf) return VLM_ERR_NOMEM;
    void *A = (unsigned char *)buf + sa_bytes;
    convert_job c = { .ks = ks, .W = W, .X = X, .ldx = ldx, .M = M, .kpad = kpad, .lda = lda, .sg = sg, .A = A, .sa = buf };
    // Large activations are converted by all threads (a ViT-L/14 batch of 8 is 34 MB of fp32 rows: serial, that
    // was ~15% of its fc2 on two threads).
    c.nchunks = (double)M * (double)W->K >= CONVERT_PARALLEL_MIN ? vlm_pool_threads() * 4 : 1;
    if (c.nchunks > M) c.nchunks = M;
    if (c.nchunks <= 1) convert_task(&c, 0, 0);
    else vlm_parallel_for(c.nchunks, convert_task, &c);
    lowp_job j = { .ks = ks, .W = W, .A = A, .lda = lda, .sa = buf, .sg = sg, .M = M, .kpad = kpad, .bias = bias, .act = act,
                   .Y = Y, .ldy = ldy };
    // Task grid as gemm_driver.c: panels first, rows only when there are too few panels for the wanted tasks.
    double macs = (double)M * (double)W->N * (double)W->K;
    int64_t T = vlm_pool_threads(), want = T * LOWP_TASKS_PER_THREAD, by_size = (int64_t)(macs / LOWP_TASK_MIN_MACS);
    if (want > by_size) want = by_size;
    if (want < 1) want = 1;
    int64_t mtiles = (M + ks->mr_max - 1) / ks->mr_max;
    j.nn = W->npanels < want ? W->npanels : want;
    j.nm = (want + j.nn - 1) / j.nn;
    if (j.nm > mtiles) j.nm = mtiles;
    if (j.nm * j.nn <= 1) lowp_task(&j, 0, 0);
    else vlm_parallel_for(j.nm * j.nn, lowp_task, &j);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}
