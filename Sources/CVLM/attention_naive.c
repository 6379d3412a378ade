// Portable reference scaled dot-product attention (see vlm_attention in cvlm_kernels.h for the layout).
#include "kernels_internal.h"
#include <math.h>
#include <stdlib.h>

void vlm_attention_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                         const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                         float *out, int64_t ldo, float scale, int causal, const uint8_t *key_mask) {
    if (Tk <= 0) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < Tq; t++)
                for (int64_t i = 0; i < H * D; i++) out[(b * Tq + t) * ldo + i] = 0.0f;
        return;
    }
    double *p = malloc((size_t)Tk * sizeof(double));
    if (!p) return;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t t = 0; t < Tq; t++) {
                const float *qr = q + (b * Tq + t) * ldq + h * D;
                double mx = -INFINITY;
                for (int64_t s = 0; s < Tk; s++) {
                    // Causal with a KV cache: query t sits at absolute position t + (Tk - Tq).
                    int masked = (causal && s > t + (Tk - Tq)) || (key_mask && key_mask[b * Tk + s] == 0);
                    if (masked) { p[s] = -INFINITY; continue; }
                    const float *kr = k + (b * Tk + s) * ldk + h * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += (double)qr[d] * kr[d];
                    p[s] = dot * scale;
                    if (p[s] > mx) mx = p[s];
                }
                float *o = out + (b * Tq + t) * ldo + h * D;
                if (mx == -INFINITY) {  // all keys masked: defined as zeros (torch would give NaN)
                    for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                    continue;
                }
                double sum = 0;
                for (int64_t s = 0; s < Tk; s++) { p[s] = p[s] == -INFINITY ? 0.0 : exp(p[s] - mx); sum += p[s]; }
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t s = 0; s < Tk; s++)
                        if (p[s] != 0.0) acc += p[s] * v[(b * Tk + s) * ldv + h * D + d];
                    o[d] = (float)(acc / sum);
                }
            }
        }
    }
    free(p);
}

// Reference for vlm_attention_ranged: query t sees keys s with key_begin[t] <= s < key_end[t] (and key_mask).
void vlm_attention_ranged_naive(int64_t B, int64_t H, int64_t Tq, int64_t Tk, int64_t D,
                                const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv,
                                float *out, int64_t ldo, float scale, const int64_t *key_begin, const int64_t *key_end,
                                const uint8_t *key_mask) {
    double *p = malloc((size_t)(Tk > 0 ? Tk : 1) * sizeof(double));
    if (!p) return;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t t = 0; t < Tq; t++) {
                const float *qr = q + (b * Tq + t) * ldq + h * D;
                double mx = -INFINITY;
                for (int64_t s = 0; s < Tk; s++) {
                    int masked = s < key_begin[t] || s >= key_end[t] || (key_mask && key_mask[b * Tk + s] == 0);
                    if (masked) { p[s] = -INFINITY; continue; }
                    const float *kr = k + (b * Tk + s) * ldk + h * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += (double)qr[d] * kr[d];
                    p[s] = dot * scale;
                    if (p[s] > mx) mx = p[s];
                }
                float *o = out + (b * Tq + t) * ldo + h * D;
                if (mx == -INFINITY) {
                    for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
                    continue;
                }
                double sum = 0;
                for (int64_t s = 0; s < Tk; s++) { p[s] = p[s] == -INFINITY ? 0.0 : exp(p[s] - mx); sum += p[s]; }
                for (int64_t d = 0; d < D; d++) {
                    double acc = 0;
                    for (int64_t s = 0; s < Tk; s++)
                        if (p[s] != 0.0) acc += p[s] * v[(b * Tk + s) * ldv + h * D + d];
                    o[d] = (float)(acc / sum);
                }
            }
        }
    }
    free(p);
}
