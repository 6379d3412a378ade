// Fast scaled dot-product attention: per (batch, head, query block) task,
//   S = scale * Q K^T      (GEMM micro-kernel, K read in place through its row stride)
//   mask (causal / keys) + softmax per row (a fully masked row becomes zeros)
//   O = S V                (GEMM micro-kernel, written straight into the token-major output)
// Tasks run on the pool; the GEMMs inside a task are single-threaded. Only the keys a query block can see
// (causal, or the union of explicit per-query key ranges: sliding window, prefix-LM) are scored.
#include "kernels_internal.h"
#include <math.h>
#include <stdatomic.h>

// Score block of at most this many floats (256 KiB) per task so it stays in L2.
#define SCORE_BLOCK 65536

typedef struct {
    const vlm_gemm_kernels *gk;
    const vlm_ops_kernels *ok;
    int64_t B, H, group, Tq, Tk, D, qb, nqb;  // query head h reads key/value head h / group
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv, hs, ldo;  // hs: key/value head stride (D for token-major rows)
    float *out;
    float scale;
    int causal;
    const uint8_t *key_mask;
    const int64_t *key_begin, *key_end;  // per query [Tq] (shared by the batch), or NULL
    _Atomic int failed;                  // a task could not allocate its scratch
} attn_job;

// Keys [*lo, *hi) that query t may see: the explicit range if given, else causal / all keys.
static inline void attn_row_range(const attn_job *j, int64_t t, int64_t *lo, int64_t *hi) {
    vlm_attn_key_range(t, j->Tq, j->Tk, j->causal, j->key_begin, j->key_end, lo, hi);
}

static void attn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const attn_job *j = ctx;
    int64_t bh = task / j->nqb, qblk = task % j->nqb;
    int64_t b = bh / j->H, h = bh % j->H;
    int64_t t0 = qblk * j->qb, t1 = t0 + j->qb < j->Tq ? t0 + j->qb : j->Tq;
    int64_t rows = t1 - t0, D = j->D;
    // The union of the block's key ranges: only those keys are scored.
    int64_t kb = j->Tk, ke = 0;
    for (int64_t t = t0; t < t1; t++) {
        int64_t lo, hi;
        attn_row_range(j, t, &lo, &hi);
        if (hi <= lo) continue;
        if (lo < kb) kb = lo;
        if (hi > ke) ke = hi;
    }
    int64_t nk = ke - kb;
    float *o = j->out + (b * j->Tq + t0) * j->ldo + h * D;
    if (nk <= 0) {  // no query of the block sees a key: fully masked rows
        for (int64_t r = 0; r < rows; r++)
            for (int64_t d = 0; d < D; d++) o[r * j->ldo + d] = 0.0f;
        return;
    }
    float *s = vlm_scratch(2, (size_t)rows * nk + 16);
    if (!s) { atomic_store(&((attn_job *)j)->failed, 1); return; }
    const float *qp = j->q + (b * j->Tq + t0) * j->ldq + h * D;
    const float *kp = j->k + (b * j->Tk + kb) * j->ldk + (h / j->group) * j->hs;
    const float *vp = j->v + (b * j->Tk + kb) * j->ldv + (h / j->group) * j->hs;
    if (vlm_sgemm_st(j->gk, 0, 1, rows, nk, D, j->scale, qp, j->ldq, kp, j->ldk, 0.0f, s, nk) != 0) atomic_store(&((attn_job *)j)->failed, 1);
    const uint8_t *mask = j->key_mask ? j->key_mask + b * j->Tk + kb : NULL;
    for (int64_t r = 0; r < rows; r++) {
        float *sr = s + r * nk;
        int64_t lo, hi;
        attn_row_range(j, t0 + r, &lo, &hi);
        lo -= kb;
        hi -= kb;
        if (hi < lo) hi = lo;
        for (int64_t c = 0; c < lo && c < nk; c++) sr[c] = -INFINITY;
        for (int64_t c = hi > 0 ? hi : 0; c < nk; c++) sr[c] = -INFINITY;
        if (mask)
            for (int64_t c = 0; c < nk; c++)
                if (!mask[c]) sr[c] = -INFINITY;
        j->ok->softmax_row(sr, nk);
    }
    if (vlm_sgemm_st(j->gk, 0, 0, rows, D, nk, 1.0f, s, nk, vp, j->ldv, 0.0f, o, j->ldo) != 0) atomic_store(&((attn_job *)j)->failed, 1);
}

const vlm_attn_kernels *vlm_active_attn_kernels(void) {
    switch (vlm_active_isa()) {
    case VLM_ISA_AVX512: return &vlm_attn_kernels_avx512;
    case VLM_ISA_AVX2: return &vlm_attn_kernels_avx2;
    default: return NULL;
    }
}

static int attention_run(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                          const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                          int64_t hs, float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask,
                          const int64_t *key_begin, const int64_t *key_end) {
    const vlm_gemm_kernels *gk = vlm_active_gemm_kernels();
    const vlm_ops_kernels *ok = vlm_active_ops_kernels();
    const vlm_attn_kernels *ak = vlm_active_attn_kernels();
    if (KVH <= 0 || H % KVH != 0) return -1;
    if (!gk || !ok || !ak || Tk <= 0 || D <= 0) {
        vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, hs, out, ldo, scale, causal, key_begin,
                                    key_end, key_mask, 0);
        return 0;
    }
    if (B <= 0 || H <= 0 || Tq <= 0) return 0;
    // Decode steps and short continuations: one pass over each key/value head for all the query rows sharing it.
    if ((H / KVH) * Tq <= VLM_ATTN_FEW_ROWS)
        return vlm_attention_few_queries(ak, B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, hs, 0, out, ldo, scale, causal,
                                         key_begin, key_end, key_mask);
    int64_t qb = SCORE_BLOCK / Tk;
    if (qb < 8) qb = 8;
    if (qb > Tq) qb = Tq;
    // Enough tasks to keep every thread busy when B*H is small (e.g. one image, long sequence).
    int64_t threads = vlm_pool_threads();
    while (B * H * ((Tq + qb - 1) / qb) < 2 * threads && qb > 16) qb = (qb + 1) / 2;
    attn_job j = {
        .gk = gk, .ok = ok, .B = B, .H = H, .group = H / KVH, .Tq = Tq, .Tk = Tk, .D = D, .qb = qb, .nqb = (Tq + qb - 1) / qb,
        .q = q, .k = k, .v = v, .ldq = ldq, .ldk = ldk, .ldv = ldv, .hs = hs, .ldo = ldo, .out = out,
        .scale = scale, .causal = causal, .key_mask = key_mask,
        .key_begin = key_begin && key_end ? key_begin : NULL, .key_end = key_begin && key_end ? key_end : NULL,
    };
    int64_t ntasks = B * H * j.nqb;
    double flops = 4.0 * (double)B * H * Tq * Tk * D;
    if (flops < 200000.0) {  // tiny (decode step): no pool wake-up
        for (int64_t t = 0; t < ntasks; t++) attn_task(&j, t, 0);
    } else {
        vlm_parallel_for(ntasks, attn_task, &j);
    }
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}

int vlm_attention(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                   const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                   float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask) {
    return attention_run(B, H, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, causal, key_mask, NULL, NULL);
}

int vlm_attention_ranged(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                          const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                          float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                          const uint8_t *key_mask) {
    return attention_run(B, H, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, 0, key_mask, key_begin, key_end);
}

int vlm_attention_gqa(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                      const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                      float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                      const uint8_t *key_mask) {
    return attention_run(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, 0, key_mask, key_begin, key_end);
}

int vlm_attention_strided(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                          int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t kv_head_stride,
                          float *out, int64_t ldo, float scale, int causal, const int64_t *key_begin,
                          const int64_t *key_end, const uint8_t *key_mask, int bf16) {
    if (KVH <= 0 || H % KVH != 0) return -1;
    int few = (H / KVH) * Tq <= VLM_ATTN_FEW_ROWS;
    if (!bf16 || few || B <= 0 || H <= 0 || Tq <= 0 || Tk <= 0 || D <= 0 || !vlm_attention_bf16_available())
        return attention_run(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, kv_head_stride, out, ldo, scale, causal,
                             key_mask, key_begin, key_end);
    return vlm_attention_bf16_run(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, kv_head_stride, out, ldo, scale, causal,
                                  key_begin, key_end, key_mask);
}

void vlm_attention_strided_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                                 int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                                 int64_t kv_head_stride, float *out, int64_t ldo, float scale, int causal,
                                 const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask, int bf16) {
    vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, kv_head_stride, out, ldo, scale, causal,
                                key_begin, key_end, key_mask, bf16 != 0);
}

int vlm_attention_bf16(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                       const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                       float *out, int64_t ldo, float scale, int causal, const int64_t *key_begin,
                       const int64_t *key_end, const uint8_t *key_mask) {
    return vlm_attention_strided(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, causal, key_begin,
                                 key_end, key_mask, 1);
}
