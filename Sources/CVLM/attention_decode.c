// Few-query attention: a decode step (one new token per sequence), a short continuation, or the query heads of
// one key/value head in grouped-query attention. The GEMM path of attention.c packs the keys and values of every
// head for a product with one or a few rows, and calls once per head; here one task reads each key/value row once
// for all the query rows that share it (the group's query heads x the new tokens):
//   S = scale * Q K^T   (rows x keys, dot products on the keys in place)
//   P = exp(S - max), l = sum P per row, O = P V (unnormalised)
// Keys are split into chunks of a fixed size; each (sequence, key/value head, chunk) task keeps its row maxima,
// sums and partial outputs, and the merge rescales them by exp(max_c - max) (split-K softmax, as flash-decoding
// does). The chunk size depends only on the shapes, so the sums run in the same order whatever the thread count.
#include "kernels_internal.h"
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

// Keys per chunk: 256 keys x 16 rows of scores (16 KB) stay in L1, and each task reads its keys and values as two
// runs of 64 KB (fp32) or 32 KB (bf16 cache). Runs that short are what limits a decode step's attention: on two Zen 4
// cores, over 24 layers x 32 heads x 1,040 positions, chunks of 128 keys read a bf16 cache in 10.5-11.7 ms per step and
// an fp32 one in 19.9-21.1, chunks of 256 in 8.4-9.1 and 17.4-18.8 (Benchmarks/RESULTS.md, session 28).
#define FEW_CHUNK 256

typedef struct {
    const vlm_attn_kernels *ak;
    int64_t B, H, KVH, group, Tq, Tk, D, rows;
    const float *q;
    const char *k, *v;               // fp32, or bf16 when kv16 (a bf16 KV cache)
    int64_t ldq, ldk, ldv, hs, ldo;  // hs: key/value head stride; ldk, ldv, hs in elements
    int kv16;
    float *out;
    float scale;
    int causal;
    const int64_t *key_begin, *key_end;
    const uint8_t *key_mask;
    int64_t kb, ke, nchunks;  // union of the queries' key ranges, cut into nchunks chunks
    float *partial;           // [B * KVH, nchunks, rows, 2 + D]: max, sum, unnormalised output; NULL if 1 chunk
    _Atomic int failed;
} few_job;

// Query row r of a key/value head: group member r / Tq, token r % Tq.
static inline const float *few_q(const few_job *j, int64_t b, int64_t g, int64_t r) {
    int64_t t = r % j->Tq, h = g * j->group + r / j->Tq;
    return j->q + (b * j->Tq + t) * j->ldq + h * j->D;
}
static inline float *few_out(const few_job *j, int64_t b, int64_t g, int64_t r) {
    int64_t t = r % j->Tq, h = g * j->group + r / j->Tq;
    return j->out + (b * j->Tq + t) * j->ldo + h * j->D;
}

static void few_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    few_job *j = ctx;
    int64_t u = task / j->nchunks, c = task % j->nchunks;
    int64_t b = u / j->KVH, g = u % j->KVH, R = j->rows, D = j->D;
    int64_t s0 = j->kb + c * FEW_CHUNK, s1 = s0 + FEW_CHUNK < j->ke ? s0 + FEW_CHUNK : j->ke, n = s1 - s0;
    float *s = vlm_scratch(2, (size_t)(R * n + R * D) + 16);
    if (!s) { atomic_store(&j->failed, 1); return; }
    float *o = s + R * n;
    const float *qr[VLM_ATTN_FEW_ROWS];
    for (int64_t r = 0; r < R; r++) qr[r] = few_q(j, b, g, r);
    const int64_t W = j->kv16 ? 2 : 4;  // bytes per element
    const char *kc = j->k + ((b * j->Tk + s0) * j->ldk + g * j->hs) * W, *vc = j->v + ((b * j->Tk + s0) * j->ldv + g * j->hs) * W;
    // The chunk's first 16 keys and values are asked for now, so they arrive while the first scores run (the
    // kernels prefetch 16 rows ahead from there on): a head's chunk of a short context is a stream too short for
    // the hardware prefetchers to ramp up. 64-byte steps: a cache line.
    for (int64_t i = 0; i < n && i < 16; i++)
        for (int64_t d = 0; d < D * W; d += 64) {
            __builtin_prefetch(kc + i * j->ldk * W + d);
            __builtin_prefetch(vc + i * j->ldv * W + d);
        }
    if (j->kv16) j->ak->scores_bf16((int)R, qr, (const uint16_t *)kc, j->ldk, n, D, j->scale, s, n);
    else j->ak->scores((int)R, qr, (const float *)kc, j->ldk, n, D, j->scale, s, n);
    const uint8_t *mask = j->key_mask ? j->key_mask + b * j->Tk + s0 : NULL;
    float mx[VLM_ATTN_FEW_ROWS], sum[VLM_ATTN_FEW_ROWS];
    for (int64_t r = 0; r < R; r++) {
        float *sr = s + r * n;
        int64_t lo, hi;
        vlm_attn_key_range(r % j->Tq, j->Tq, j->Tk, j->causal, j->key_begin, j->key_end, &lo, &hi);
        lo -= s0;
        hi -= s0;
        // Keys outside the row's range or masked out: -inf (a decode step's chunk usually has none).
        for (int64_t i = 0; i < lo && i < n; i++) sr[i] = -INFINITY;
        for (int64_t i = hi > 0 ? hi : 0; i < n; i++) sr[i] = -INFINITY;
        if (mask)
            for (int64_t i = 0; i < n; i++)
                if (!mask[i]) sr[i] = -INFINITY;
        float m = j->ak->row_max(sr, n);
        mx[r] = m;
        if (m == -INFINITY) {  // no key of this chunk is visible to the row
            for (int64_t i = 0; i < n; i++) sr[i] = 0.0f;
            sum[r] = 0.0f;
        } else {
            sum[r] = j->ak->exp_sum(sr, n, m);
        }
    }
    if (j->kv16) j->ak->weighted_sum_bf16((int)R, s, n, (const uint16_t *)vc, j->ldv, n, D, o, D);
    else j->ak->weighted_sum((int)R, s, n, (const float *)vc, j->ldv, n, D, o, D);
    if (!j->partial) {
        for (int64_t r = 0; r < R; r++) {
            float *dst = few_out(j, b, g, r);
            float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;  // a row with no visible key gets zeros
            for (int64_t d = 0; d < D; d++) dst[d] = o[r * D + d] * inv;
        }
        return;
    }
    float *p = j->partial + (u * j->nchunks + c) * R * (2 + D);
    for (int64_t r = 0; r < R; r++) {
        float *pr = p + r * (2 + D);
        pr[0] = mx[r];
        pr[1] = sum[r];
        for (int64_t d = 0; d < D; d++) pr[2 + d] = o[r * D + d];
    }
}

// Merges the chunks of one key/value head's rows: O = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c.
static void few_merge(const few_job *j, int64_t u) {
    int64_t b = u / j->KVH, g = u % j->KVH, R = j->rows, D = j->D, C = j->nchunks;
    const float *p = j->partial + u * C * R * (2 + D);
    for (int64_t r = 0; r < R; r++) {
        float *dst = few_out(j, b, g, r);
        float m = -INFINITY;
        for (int64_t c = 0; c < C; c++) {
            float mc = p[(c * R + r) * (2 + D)];
            m = mc > m ? mc : m;
        }
        for (int64_t d = 0; d < D; d++) dst[d] = 0.0f;
        if (m == -INFINITY) continue;
        float total = 0.0f;
        for (int64_t c = 0; c < C; c++) {
            const float *pr = p + (c * R + r) * (2 + D);
            if (pr[0] == -INFINITY) continue;
            float w = expf(pr[0] - m);
            total += w * pr[1];
            for (int64_t d = 0; d < D; d++) dst[d] += w * pr[2 + d];
        }
        float inv = 1.0f / total;
        for (int64_t d = 0; d < D; d++) dst[d] *= inv;
    }
}

int vlm_attention_few_queries(const vlm_attn_kernels *ak, int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk,
                              int64_t D, const float *q, int64_t ldq, const void *k, int64_t ldk, const void *v,
                              int64_t ldv, int64_t hs, int kv16, float *out, int64_t ldo, float scale, int causal,
                              const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask) {
    int64_t group = H / KVH, rows = group * Tq;
    if (rows > VLM_ATTN_FEW_ROWS) return -1;
    few_job j = {
        .ak = ak, .B = B, .H = H, .KVH = KVH, .group = group, .Tq = Tq, .Tk = Tk, .D = D, .rows = rows,
        .q = q, .k = (const char *)k, .v = (const char *)v, .kv16 = kv16 != 0, .ldq = ldq, .ldk = ldk, .ldv = ldv, .hs = hs, .ldo = ldo, .out = out, .scale = scale,
        .causal = causal, .key_begin = key_begin && key_end ? key_begin : NULL,
        .key_end = key_begin && key_end ? key_end : NULL, .key_mask = key_mask,
    };
    // Only the union of the queries' key ranges is read (the same for every sequence of the batch).
    int64_t kb = Tk, ke = 0;
    for (int64_t t = 0; t < Tq; t++) {
        int64_t lo, hi;
        vlm_attn_key_range(t, Tq, Tk, causal, j.key_begin, j.key_end, &lo, &hi);
        if (hi <= lo) continue;
        kb = lo < kb ? lo : kb;
        ke = hi > ke ? hi : ke;
    }
    if (ke <= kb) {  // no query sees a key: zeros
        for (int64_t bt = 0; bt < B * Tq; bt++)
            for (int64_t x = 0; x < H * D; x++) out[bt * ldo + x] = 0.0f;
        return 0;
    }
    j.kb = kb;
    j.ke = ke;
    j.nchunks = (ke - kb + FEW_CHUNK - 1) / FEW_CHUNK;
    int64_t units = B * KVH;
    if (j.nchunks > 1) {
        j.partial = malloc((size_t)(units * j.nchunks * rows * (2 + D)) * sizeof(float));
        if (!j.partial) return VLM_ERR_NOMEM;
    }
    double flops = 4.0 * (double)B * H * Tq * (double)(ke - kb) * D;
    int64_t ntasks = units * j.nchunks;
    if (flops < 100000.0) {  // a few hundred keys of one small head group: no pool wake-up
        for (int64_t t = 0; t < ntasks; t++) few_task(&j, t, 0);
    } else {
        vlm_parallel_for(ntasks, few_task, &j);
    }
    if (j.partial) {
        if (!atomic_load(&j.failed))
            for (int64_t u = 0; u < units; u++) few_merge(&j, u);
        free(j.partial);
    }
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}
