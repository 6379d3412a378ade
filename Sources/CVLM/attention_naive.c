// Portable reference scaled dot-product attention (see vlm_attention in cvlm_kernels.h for the layout).
#include "kernels_internal.h"
#include <math.h>
#include <stdlib.h>

// One query row of one head: softmax over the keys s in [begin, end) that key_mask keeps, in double precision.
// A row with every key masked is defined as zeros (torch would give NaN). p: scratch of Tk doubles. bf16: the
// operands rounded to bf16 first, and the probabilities after the softmax (vlm_attention_bf16's definition).
static inline double operand(float x, int bf16) { return bf16 ? (double)vlm_bf16_round(x) : (double)x; }

static void naive_query(int64_t Tk, int64_t D, const float *qr, const float *k, int64_t ldk, const float *v,
                        int64_t ldv, float *o, float scale, int64_t begin, int64_t end, const uint8_t *mask,
                        double *p, int bf16) {
    double mx = -INFINITY;
    for (int64_t s = 0; s < Tk; s++) {
        int masked = s < begin || s >= end || (mask && mask[s] == 0);
        if (masked) { p[s] = -INFINITY; continue; }
        const float *kr = k + s * ldk;
        double dot = 0;
        for (int64_t d = 0; d < D; d++) dot += operand(qr[d], bf16) * operand(kr[d], bf16);
        p[s] = dot * scale;
        if (p[s] > mx) mx = p[s];
    }
    if (mx == -INFINITY) {
        for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
        return;
    }
    double sum = 0;
    for (int64_t s = 0; s < Tk; s++) { p[s] = p[s] == -INFINITY ? 0.0 : exp(p[s] - mx); sum += p[s]; }
    if (bf16) {  // normalised, then rounded, as the fast path rounds its fp32 softmax
        for (int64_t s = 0; s < Tk; s++) p[s] = vlm_bf16_round((float)(p[s] / sum));
        sum = 1.0;
    }
    for (int64_t d = 0; d < D; d++) {
        double acc = 0;
        for (int64_t s = 0; s < Tk; s++)
            if (p[s] != 0.0) acc += p[s] * operand(v[s * ldv + d], bf16);
        o[d] = (float)(acc / sum);
    }
}

// Reference for vlm_attention_ranged: query t sees keys s with key_begin[t] <= s < key_end[t] (and key_mask);
// without ranges (NULL), every key, or with `causal` the keys up to its absolute position t + (Tk - Tq).
void vlm_attention_naive_general(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q, int64_t ldq,
                                 const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t hs, float *out, int64_t ldo,
                                 float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                                 const uint8_t *key_mask, int bf16) {
    if (KVH <= 0 || H % KVH != 0) return;
    int64_t group = H / KVH;
    double *p = malloc((size_t)(Tk > 0 ? Tk : 1) * sizeof(double));
    if (!p) return;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < Tq; t++) {
                int64_t begin = key_begin ? key_begin[t] : 0;
                int64_t end = key_end ? key_end[t] : (causal ? t + (Tk - Tq) + 1 : Tk);
                naive_query(Tk, D, q + (b * Tq + t) * ldq + h * D, k + b * Tk * ldk + (h / group) * hs, ldk,
                            v + b * Tk * ldv + (h / group) * hs, ldv, out + (b * Tq + t) * ldo + h * D, scale, begin, end,
                            key_mask ? key_mask + b * Tk : NULL, p, bf16);
            }
    free(p);
}

void vlm_attention_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                         const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                         float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask) {
    vlm_attention_naive_general(B, H, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, causal, NULL, NULL, key_mask, 0);
}

void vlm_attention_ranged_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                                const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                                float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                                const uint8_t *key_mask) {
    vlm_attention_naive_general(B, H, H, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, 0, key_begin, key_end,
                                key_mask, 0);
}

void vlm_attention_gqa_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D,
                             const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                             float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                             const uint8_t *key_mask) {
    vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, 0, key_begin, key_end,
                                key_mask, 0);
}
