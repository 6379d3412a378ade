// Fast scaled dot-product attention: per (batch, head, query block) task,
//   S = scale * Q K^T      (GEMM micro-kernel, K read in place through its row stride)
//   mask (causal / keys) + softmax per row (a fully masked row becomes zeros)
//   O = S V                (GEMM micro-kernel, written straight into the token-major output)
// Tasks run on the pool; the GEMMs inside a task are single-threaded. With a causal mask only the keys a
// query block can see are computed.
#include "kernels_internal.h"
#include <math.h>

// Score block of at most this many floats (256 KiB) per task so it stays in L2.
#define SCORE_BLOCK 65536

typedef struct {
    const vlm_gemm_kernels *gk;
    const vlm_ops_kernels *ok;
    int64_t B, H, Tq, Tk, D, qb, nqb;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv, ldo;
    float *out;
    float scale;
    int causal;
    const uint8_t *key_mask;
} attn_job;

static void attn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    int64_t bh = task / j->nqb, qblk = task % j->nqb;
    int64_t b = bh / j->H, h = bh % j->H;
    int64_t t0 = qblk * j->qb, t1 = t0 + j->qb < j->Tq ? t0 + j->qb : j->Tq;
    int64_t rows = t1 - t0, D = j->D, shift = j->Tk - j->Tq;
    // Keys visible to the last query of the block (causal), at most Tk.
    int64_t nk = j->Tk;
    if (j->causal) {
        nk = t1 - 1 + shift + 1;
        if (nk > j->Tk) nk = j->Tk;
    }
    float *o = j->out + (b * j->Tq + t0) * j->ldo + h * D;
    if (nk <= 0) {  // every key is in the future of every query here: fully masked rows
        for (int64_t r = 0; r < rows; r++)
            for (int64_t d = 0; d < D; d++) o[r * j->ldo + d] = 0.0f;
        return;
    }
    float *s = vlm_scratch(2, (size_t)rows * nk + 16);
    if (!s) return;
    const float *qp = j->q + (b * j->Tq + t0) * j->ldq + h * D;
    const float *kp = j->k + (b * j->Tk) * j->ldk + h * D;
    const float *vp = j->v + (b * j->Tk) * j->ldv + h * D;
    vlm_sgemm_st(j->gk, 0, 1, rows, nk, D, j->scale, qp, j->ldq, kp, j->ldk, 0.0f, s, nk);
    const uint8_t *mask = j->key_mask ? j->key_mask + b * j->Tk : NULL;
    for (int64_t r = 0; r < rows; r++) {
        float *sr = s + r * nk;
        if (j->causal)
            for (int64_t c = t0 + r + shift + 1; c < nk; c++) sr[c] = -INFINITY;
        if (mask)
            for (int64_t c = 0; c < nk; c++)
                if (!mask[c]) sr[c] = -INFINITY;
        j->ok->softmax_row(sr, nk);
    }
    vlm_sgemm_st(j->gk, 0, 0, rows, D, nk, 1.0f, s, nk, vp, j->ldv, 0.0f, o, j->ldo);
}

void vlm_attention(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                   const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                   float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask) {
    const vlm_gemm_kernels *gk = vlm_active_gemm_kernels();
    const vlm_ops_kernels *ok = vlm_active_ops_kernels();
    if (!gk || !ok || Tk <= 0 || D <= 0) {
        vlm_attention_naive(B, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, out, ldo, scale, causal, key_mask);
        return;
    }
    if (B <= 0 || H <= 0 || Tq <= 0) return;
    int64_t qb = SCORE_BLOCK / Tk;
    if (qb < 8) qb = 8;
    if (qb > Tq) qb = Tq;
    // Enough tasks to keep every thread busy when B*H is small (e.g. one image, long sequence).
    int64_t threads = vlm_pool_threads();
    while (B * H * ((Tq + qb - 1) / qb) < 2 * threads && qb > 16) qb = (qb + 1) / 2;
    attn_job j = {
        .gk = gk, .ok = ok, .B = B, .H = H, .Tq = Tq, .Tk = Tk, .D = D, .qb = qb, .nqb = (Tq + qb - 1) / qb,
        .q = q, .k = k, .v = v, .ldq = ldq, .ldk = ldk, .ldv = ldv, .ldo = ldo, .out = out,
        .scale = scale, .causal = causal, .key_mask = key_mask,
    };
    int64_t ntasks = B * H * j.nqb;
    double flops = 4.0 * (double)B * H * Tq * Tk * D;
    if (flops < 200000.0) {  // tiny (decode step): no pool wake-up
        for (int64_t t = 0; t < ntasks; t++) attn_task(&j, t, 0);
        return;
    }
    vlm_parallel_for(ntasks, attn_task, &j);
}
