// Attention over a bf16 key/value cache (vlm_attention_strided_kv16 in cvlm_kernels.h).
//
// Why: a decode step reads every cached key and value once, and with short weights (int4: 0.54 bytes per weight)
// that is not small -- SmolLM2-360M at 640 cached positions reads 52 MB of fp32 keys and values per token beside
// 195 MB of weights, in short per-head runs the memory serves at ~15-20 GB/s on two Zen 4 cores, not its ~35. Kept
// in bf16 (as PyTorch keeps the cache of a bf16 model) they are half the bytes and half the memory.
//
// Decode steps (few query rows per key/value head) read the bf16 rows in place: the few-query kernels widen each
// element exactly (bf16 is the upper half of an fp32), so they compute what the fp32 path computes on the widened
// cache, bit for bit. Longer calls (prefill, continuations) widen the rows they read into fp32 scratch and take the
// fp32 or bf16 path of vlm_attention_strided.
#include "kernels_internal.h"
#include <stdint.h>
#include <stdlib.h>

// k and v [B * Tk rows of KVH heads] widened into kf, vf laid out [KVH][B * Tk][D] (head stride B * Tk * D).
// widen: vlm_bf16_to_f32 or its naive twin (the naive entry uses only naive code).
static void kv16_widen(void (*widen)(const uint16_t *, float *, int64_t), int64_t B, int64_t KVH, int64_t Tk, int64_t D,
                       const uint16_t *k, int64_t ldk, const uint16_t *v, int64_t ldv, int64_t hs, float *kf, float *vf) {
    for (int64_t g = 0; g < KVH; g++)
        for (int64_t b = 0; b < B; b++) {
            float *kd = kf + (g * B + b) * Tk * D, *vd = vf + (g * B + b) * Tk * D;
            const uint16_t *ks = k + b * Tk * ldk + g * hs, *vs = v + b * Tk * ldv + g * hs;
            if (ldk == D && ldv == D) {  // a head's rows are one run (a head-major cache)
                widen(ks, kd, Tk * D);
                widen(vs, vd, Tk * D);
                continue;
            }
            for (int64_t s = 0; s < Tk; s++) {
                widen(ks + s * ldk, kd + s * D, D);
                widen(vs + s * ldv, vd + s * D, D);
            }
        }
}

static float *kv16_scratch(int64_t B, int64_t KVH, int64_t Tk, int64_t D) {
    double n = 2.0 * (double)B * (double)KVH * (double)Tk * (double)D;
    if (n <= 0 || n * sizeof(float) > (double)SIZE_MAX / 2) return NULL;
    return malloc((size_t)n * sizeof(float));
}

int vlm_attention_strided_kv16(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                               int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v, int64_t ldv,
                               int64_t kv_head_stride, float *out, int64_t ldo, float scale, int causal,
                               const int64_t *key_begin, const int64_t *key_end, const uint8_t *key_mask, int bf16) {
    if (KVH <= 0 || H % KVH != 0) return -1;
    if (B <= 0 || H <= 0 || Tq <= 0) return 0;
    const vlm_attn_kernels *ak = vlm_active_attn_kernels();
    if (ak && Tk > 0 && D > 0 && (H / KVH) * Tq <= VLM_ATTN_FEW_ROWS)
        return vlm_attention_few_queries(ak, B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, kv_head_stride, 1, out, ldo,
                                         scale, causal, key_begin, key_end, key_mask);
    if (Tk <= 0 || D <= 0)  // no key: the fp32 entry's zeros (nothing to read)
        return vlm_attention_strided(B, H, KVH, Tq, Tk, D, q, ldq, NULL, ldk, NULL, ldv, kv_head_stride, out, ldo,
                                     scale, causal, key_begin, key_end, key_mask, bf16);
    float *kf = kv16_scratch(B, KVH, Tk, D);
    if (!kf) return VLM_ERR_NOMEM;
    float *vf = kf + B * KVH * Tk * D;
    kv16_widen(vlm_bf16_to_f32, B, KVH, Tk, D, k, ldk, v, ldv, kv_head_stride, kf, vf);
    int status = vlm_attention_strided(B, H, KVH, Tq, Tk, D, q, ldq, kf, D, vf, D, B * Tk * D, out, ldo, scale, causal,
                                       key_begin, key_end, key_mask, bf16);
    free(kf);
    return status;
}

int vlm_attention_strided_kv16_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                                     const float *q, int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v,
                                     int64_t ldv, int64_t kv_head_stride, float *out, int64_t ldo, float scale,
                                     int causal, const int64_t *key_begin, const int64_t *key_end,
                                     const uint8_t *key_mask, int bf16) {
    if (KVH <= 0 || H % KVH != 0) return -1;
    if (B <= 0 || H <= 0 || Tq <= 0) return 0;
    if (Tk <= 0 || D <= 0) {
        vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, NULL, ldk, NULL, ldv, kv_head_stride, out, ldo, scale,
                                    causal, key_begin, key_end, key_mask, bf16 != 0);
        return 0;
    }
    float *kf = kv16_scratch(B, KVH, Tk, D);
    if (!kf) return VLM_ERR_NOMEM;
    float *vf = kf + B * KVH * Tk * D;
    kv16_widen(vlm_bf16_to_f32_naive, B, KVH, Tk, D, k, ldk, v, ldv, kv_head_stride, kf, vf);
    vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, kf, D, vf, D, B * Tk * D, out, ldo, scale, causal,
                                key_begin, key_end, key_mask, bf16 != 0);
    free(kf);
    return 0;
}
