// int8 compute on I8 weights (W8A8): the definition (cvlm_kernels.h, vlm_linear_i8), its naive twin, and the
// driver around the per-ISA kernels (gemm_i8_avx2.c, gemm_i8_vnni.c).
//
// Why this shape: the I8 panels already hold symmetric int8 codes with one fp32 scale per output row and group of
// k, so no second copy of the weights is needed. Each task re-lays out one 32-column panel (all of K) into the
// kernel's operand format in per-thread scratch -- int16 k-pairs for AVX2's vpmaddwd, u8 k-quads for VNNI's
// vpdpbusd -- and reuses it for every row tile, so the re-layout costs 1/M of the multiply-adds. Per group the
// int32 tile sums are scaled into fp32 (one FMA per output per group); the per-token scale and the bias come last.
// Integer sums are exact, so every ISA and every tiling or thread count gives the same bits.
#include "kernels_internal.h"
#include <math.h>
#include <stdatomic.h>
#include <string.h>

int vlm_packed_weight_set_compute(vlm_packed_weight *w, vlm_compute_mode mode) {
    if (!w || w->dtype != VLM_WEIGHT_I8 || (mode != VLM_COMPUTE_WEIGHT_ONLY && mode != VLM_COMPUTE_INT8)) return -1;
    w->compute = (int)mode;
    return 0;
}

vlm_compute_mode vlm_packed_weight_compute(const vlm_packed_weight *w) {
    return w && w->compute == VLM_COMPUTE_INT8 ? VLM_COMPUTE_INT8 : VLM_COMPUTE_WEIGHT_ONLY;
}

// The kernel set for the CPU and the forced ISA: VNNI needs the AVX-512 path active and the CPU's AVX512_VNNI.
static const vlm_i8_kernels *active_i8_kernels(void) {
    vlm_isa isa = vlm_active_isa();
    if (isa == VLM_ISA_AVX512 && (vlm_cpu_features() & VLM_CPU_AVX512_VNNI) && vlm_i8_kernels_vnni.tile)
        return &vlm_i8_kernels_vnni;
    if (isa >= VLM_ISA_AVX2 && vlm_i8_kernels_avx2.tile) return &vlm_i8_kernels_avx2;
    return NULL;
}

const char *vlm_i8_gemm_kernel(void) {
    const vlm_i8_kernels *ks = active_i8_kernels();
    return ks ? ks->name : "naive";
}

// MARK: Reference

void vlm_quantize_rows_i8_naive(const float *X, int64_t M, int64_t ldx, int64_t K, int8_t *q, int64_t ldq, float *sa) {
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        float a = 0.0f;
        int bad = 0;
        for (int64_t k = 0; k < K; k++) {
            if (!isfinite(x[k])) bad = 1;
            a = fmaxf(a, fabsf(x[k]));
        }
        int8_t *qm = q + m * ldq;
        if (bad || a == 0.0f) {
            memset(qm, 0, (size_t)K);
            sa[m] = bad ? NAN : 0.0f;
            continue;
        }
        float inv = 127.0f / a;
        for (int64_t k = 0; k < K; k++) {
            float r = nearbyintf(x[k] * inv);
            qm[k] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        }
        sa[m] = a / 127.0f;
    }
}

int vlm_linear_i8_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                        vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I8) return -1;
    if (M <= 0) return 0;
    int64_t K = W->K;
    int8_t *q = vlm_aligned_alloc((size_t)K + 64);
    if (!q) return VLM_ERR_NOMEM;
    for (int64_t m = 0; m < M; m++) {
        float sa;
        vlm_quantize_rows_i8_naive(X + m * ldx, 1, ldx, K, q, K, &sa);
        for (int64_t n = 0; n < W->N; n++) {
            int64_t p = n / VLM_NR;
            int j = (int)(n % VLM_NR);
            float c = 0.0f;
            for (int64_t g = 0; g < W->ngroups; g++) {
                const unsigned char *blk = vlm_qblock(W, p, g);
                const int8_t *codes = (const int8_t *)(blk + vlm_qcodes_offset(VLM_WEIGHT_I8));
                int64_t k0 = g * W->group, len = K - k0 < W->group ? K - k0 : W->group;
                int32_t acc = 0;
                for (int64_t i = 0; i < len; i++) acc += (int32_t)q[k0 + i] * (int32_t)codes[i * VLM_NR + j];
                float s;
                memcpy(&s, blk + 4 * j, 4);
                c = fmaf(s, (float)acc, c);
            }
            float y = sa * c;
            if (bias) y = y + bias[n];
            Y[m * ldy + n] = vlm_act_scalar(y, act);
        }
    }
    vlm_aligned_free(q);
    return 0;
}

// MARK: Driver

// Work per task at least this many multiply-adds, and up to this many tasks per thread (gemm_driver.c's reasons).
#define I8_TASK_MIN_MACS 2000000.0
#define I8_TASKS_PER_THREAD 4

typedef struct {
    const vlm_i8_kernels *ks;
    const vlm_packed_weight *W;
    const void *A; int64_t lda; const float *sa;
    int64_t M, kpad;
    const float *bias; vlm_activation act;
    float *Y; int64_t ldy;
    int64_t nm, nn;
    _Atomic int failed;
} i8_job;

static void i8_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    i8_job *j = ctx;
    const vlm_i8_kernels *ks = j->ks;
    const vlm_packed_weight *W = j->W;
    int64_t im = task / j->nn, in = task % j->nn;
    int64_t m0 = j->M * im / j->nm, m1 = j->M * (im + 1) / j->nm;
    int64_t p0 = W->npanels * in / j->nn, p1 = W->npanels * (in + 1) / j->nn;
    if (m1 <= m0 || p1 <= p0) return;
    size_t bbytes = (size_t)j->kpad * (size_t)ks->b_bytes, cbytes = (size_t)W->ngroups * VLM_NR * sizeof(int32_t);
    unsigned char *scratch = (unsigned char *)vlm_scratch(VLM_SLOT_QSLICE, (bbytes + cbytes) / sizeof(float) + 32);
    if (!scratch) { atomic_store(&j->failed, 1); return; }
    int32_t *colsum = (int32_t *)(scratch + bbytes);
    int64_t rows = m1 - m0, ntiles = (rows + ks->mr_max - 1) / ks->mr_max;
    int64_t base = rows / ntiles, extra = rows % ntiles;
    for (int64_t p = p0; p < p1; p++) {
        ks->pack_panel(W, p, j->kpad, scratch, colsum);
        int64_t n0 = p * VLM_NR;
        int nr = (int)(W->N - n0 < VLM_NR ? W->N - n0 : VLM_NR);
        int64_t r = m0;
        for (int64_t t = 0; t < ntiles; t++) {
            int mr = (int)(base + (t < extra));
            const unsigned char *a = (const unsigned char *)j->A + (size_t)(r * j->lda) * (size_t)ks->a_bytes;
            ks->tile(mr, a, j->lda, scratch, colsum, W, p, j->kpad, j->sa + r, j->bias ? j->bias + n0 : NULL, j->act,
                     j->Y + r * j->ldy + n0, j->ldy, nr);
            r += mr;
        }
    }
}

int vlm_linear_i8(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                  vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I8) return -1;
    if (M <= 0) return 0;
    const vlm_i8_kernels *ks = active_i8_kernels();
    if (!ks) return vlm_linear_i8_naive(X, M, ldx, W, bias, act, Y, ldy);
    int64_t kpad = (W->K + 3) / 4 * 4;
    // One caller-thread buffer: sa [M] (rounded up to 64 bytes), then the quantized rows [M, kpad].
    size_t sa_bytes = ((size_t)M * sizeof(float) + 63) / 64 * 64;
    size_t a_bytes = (size_t)M * (size_t)kpad * (size_t)ks->a_bytes;
    float *buf = vlm_scratch(VLM_SLOT_I8A, (sa_bytes + a_bytes) / sizeof(float) + 16);
    if (!buf) return VLM_ERR_NOMEM;
    void *A = (unsigned char *)buf + sa_bytes;
    ks->quantize_rows(X, M, ldx, W->K, kpad, A, buf);
    i8_job j = { .ks = ks, .W = W, .A = A, .lda = kpad, .sa = buf, .M = M, .kpad = kpad, .bias = bias, .act = act,
                 .Y = Y, .ldy = ldy };
    // Task grid as gemm_driver.c: panels first, rows only when there are too few panels for the wanted tasks.
    double macs = (double)M * (double)W->N * (double)W->K;
    int64_t T = vlm_pool_threads(), want = T * I8_TASKS_PER_THREAD, by_size = (int64_t)(macs / I8_TASK_MIN_MACS);
    if (want > by_size) want = by_size;
    if (want < 1) want = 1;
    int64_t mtiles = (M + ks->mr_max - 1) / ks->mr_max;
    j.nn = W->npanels < want ? W->npanels : want;
    j.nm = (want + j.nn - 1) / j.nn;
    if (j.nm > mtiles) j.nm = mtiles;
    if (j.nm * j.nn <= 1) i8_task(&j, 0, 0);
    else vlm_parallel_for(j.nm * j.nn, i8_task, &j);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}
