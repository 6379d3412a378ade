// bf16 attention (`--precision bf16` encoders and prefill): the two products of attention with bf16 operands and
// fp32 accumulation, as the bf16 linear layers compute (gemm_bf16.c) and as PyTorch's bf16 autocast runs SDPA:
//   S = scale * (bf16(Q) bf16(K)^T)        summed in fp32 by vdpbf16ps (k pairs in order)
//   P = softmax(S) in fp32, then rounded to bf16
//   O = bf16(P) bf16(V)                     summed in fp32
// Why: with the projections in bf16, fp32 attention was 28% of a SmolVLM tile encode (1024 tokens) and 13% of
// ViT-L/14. Only on CPUs with AVX512_BF16; elsewhere attention stays fp32 (rounding alone would buy no speed).
//
// One task per (sequence, head): its keys and values are rounded and laid out once as the bf16 tile's k-pair
// panels (keys: 32 keys per panel, pairs of head dimensions; values: 32 head dimensions per panel, pairs of keys),
// then every block of query rows runs the tiles against them.
#include "kernels_internal.h"
#include <math.h>
#include <stdatomic.h>
#include <string.h>

// MARK: Reference (attention_naive.c computes the definition)

void vlm_attention_bf16_naive(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                              int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, float *out,
                              int64_t ldo, float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                              const uint8_t *key_mask) {
    vlm_attention_naive_general(B, H, KVH, Tq, Tk, D, q, ldq, k, ldk, v, ldv, D, out, ldo, scale, causal, key_begin,
                                key_end, key_mask, 1);
}

// MARK: AVX512_BF16 path

#if defined(__x86_64__)
#include "simd_math.h"
#define VLM_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c,avx2")))

// Rows of query block and scores per task step: 64 rows x up to 4096 keys of fp32 scores (1 MiB) at most.
#define BF16_QB 64

typedef struct {
    const vlm_lowp_kernels *bk;
    int64_t B, H, group, Tq, Tk, D, Dp, Tkp;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv, hs, ldo;  // hs: key/value head stride
    float *out;
    float scale;
    int causal;
    const int64_t *key_begin, *key_end;
    const uint8_t *key_mask;
    _Atomic int failed;
} bf16_attn_job;

// Keys [0, Tk) of one head as k-pair panels: panel c (keys 32c..32c+31), pair t (dims 2t, 2t+1) is 32 dwords,
// dword j = bf16(K[32c+j][2t+1]) << 16 | bf16(K[32c+j][2t]) -- the j-th key row's t-th dword once rounded, so the
// rounded rows are transposed by dwords. Keys past Tk and the odd last dim are zeros.
static VLM_BF16 void pack_keys(const float *k, int64_t ldk, int64_t Tk, int64_t D, int64_t Dp, uint16_t *rows,
                               uint32_t *panels) {
    const vlm_lowp_kernels *bk = &vlm_bf16_kernels_avx512;
    int64_t npairs = Dp / 2, npanels = (Tk + 31) / 32;
    for (int64_t c = 0; c < npanels; c++) {
        int64_t n = Tk - 32 * c < 32 ? Tk - 32 * c : 32;
        bk->quantize_rows(k + 32 * c * ldk, n, ldk, D, Dp, 0, rows, NULL);
        const uint32_t *r = (const uint32_t *)rows;
        uint32_t *dst = panels + c * npairs * 32;
        for (int64_t t = 0; t < npairs; t++)
            for (int64_t j = 0; j < 32; j++) dst[t * 32 + j] = j < n ? r[j * npairs + t] : 0;
    }
}

// Values [0, Tkp) of one head as k-pair panels over keys: panel c (dims 32c..32c+31), pair t (keys 2t, 2t+1) is 32
// dwords, dword j = bf16(V[2t+1][32c+j]) << 16 | bf16(V[2t][32c+j]). Keys past Tk and dims past D are zeros.
static VLM_BF16 void pack_values(const float *v, int64_t ldv, int64_t Tk, int64_t Tkp, int64_t D, uint32_t *panels) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int64_t npairs = Tkp / 2, npanels = (D + 31) / 32;
    for (int64_t c = 0; c < npanels; c++) {
        uint32_t *dst = panels + c * npairs * 32;
        for (int64_t h = 0; h < 2; h++) {
            int64_t d0 = 32 * c + 16 * h;
            int64_t left = D - d0;
            __mmask16 m = left >= 16 ? 0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            for (int64_t t = 0; t < npairs; t++) {
                int64_t s0 = 2 * t, s1 = 2 * t + 1;
                __m512 a = s0 < Tk ? _mm512_maskz_loadu_ps(m, v + s0 * ldv + d0) : _mm512_setzero_ps();
                __m512 b = s1 < Tk ? _mm512_maskz_loadu_ps(m, v + s1 * ldv + d0) : _mm512_setzero_ps();
                __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(b, a);  // 16-bit lanes: a0..a15, b0..b15
                _mm512_storeu_si512((void *)(dst + t * 32 + 16 * h), _mm512_permutexvar_epi16(interleave, ab));
            }
        }
    }
}

// Y[r, 0:nr] for `rows` rows of bf16 A (stride lda elements) against one k-pair panel, in tiles of <= 14 rows.
static void run_tiles(const vlm_lowp_kernels *bk, int64_t rows, const uint16_t *A, int64_t lda, const void *panel,
                      int64_t kpad, float *Y, int64_t ldy, int nr) {
    int64_t ntiles = (rows + bk->mr_max - 1) / bk->mr_max, base = rows / ntiles, extra = rows % ntiles, r = 0;
    for (int64_t t = 0; t < ntiles; t++) {
        int mr = (int)(base + (t < extra));
        bk->tile(mr, A + r * lda, lda, panel, NULL, NULL, 0, kpad, NULL, NULL, VLM_ACT_NONE, Y + r * ldy, ldy, nr);
        r += mr;
    }
}

static void bf16_attn_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    bf16_attn_job *j = ctx;
    const vlm_lowp_kernels *bk = j->bk;
    int64_t b = task / j->H, h = task % j->H, g = h / j->group;
    int64_t D = j->D, Dp = j->Dp, Tk = j->Tk, Tkp = j->Tkp, nkpanels = (Tk + 31) / 32;
    // Scratch: key panels, value panels, 32 rounded key rows, the query block and P (bf16), the scores (fp32).
    size_t kbytes = (size_t)nkpanels * (size_t)Dp * 64, vbytes = (size_t)((D + 31) / 32) * (size_t)Tkp * 64;
    size_t rbytes = (size_t)32 * (size_t)Dp * 2, qbytes = (size_t)BF16_QB * (size_t)Dp * 2;
    size_t pbytes = (size_t)BF16_QB * (size_t)Tkp * 2;
    size_t total = (kbytes + vbytes + rbytes + qbytes + pbytes + 5 * 64) / sizeof(float) + (size_t)BF16_QB * (size_t)Tk;
    unsigned char *base = (unsigned char *)vlm_scratch(0, total + 16);
    if (!base) { atomic_store(&j->failed, 1); return; }
    uint32_t *kpan = (uint32_t *)base;
    uint32_t *vpan = (uint32_t *)(base + (kbytes + 63) / 64 * 64);
    uint16_t *krows = (uint16_t *)((unsigned char *)vpan + (vbytes + 63) / 64 * 64);
    uint16_t *qb = (uint16_t *)((unsigned char *)krows + (rbytes + 63) / 64 * 64);
    uint16_t *pb = (uint16_t *)((unsigned char *)qb + (qbytes + 63) / 64 * 64);
    float *s = (float *)((unsigned char *)pb + (pbytes + 63) / 64 * 64);
    pack_keys(j->k + b * Tk * j->ldk + g * j->hs, j->ldk, Tk, D, Dp, krows, kpan);
    pack_values(j->v + b * Tk * j->ldv + g * j->hs, j->ldv, Tk, Tkp, D, vpan);
    const vlm_ops_kernels *ok = vlm_active_ops_kernels();
    const uint8_t *mask = j->key_mask ? j->key_mask + b * Tk : NULL;
    for (int64_t t0 = 0; t0 < j->Tq; t0 += BF16_QB) {
        int64_t rows = j->Tq - t0 < BF16_QB ? j->Tq - t0 : BF16_QB;
        bk->quantize_rows(j->q + (b * j->Tq + t0) * j->ldq + h * D, rows, j->ldq, D, Dp, 0, qb, NULL);
        for (int64_t c = 0; c < nkpanels; c++) {
            int nr = (int)(Tk - 32 * c < 32 ? Tk - 32 * c : 32);
            run_tiles(bk, rows, qb, Dp, kpan + c * (Dp / 2) * 32, Dp, s + 32 * c, Tk, nr);
        }
        for (int64_t r = 0; r < rows; r++) {
            float *sr = s + r * Tk;
            if (!mask && !j->key_begin && !j->causal) {  // every key visible (encoders): a loop that vectorises
                for (int64_t c = 0; c < Tk; c++) sr[c] *= j->scale;
            } else {
                int64_t lo, hi;
                vlm_attn_key_range(t0 + r, j->Tq, Tk, j->causal, j->key_begin, j->key_end, &lo, &hi);
                for (int64_t c = 0; c < Tk; c++) {
                    int visible = c >= lo && c < hi && (!mask || mask[c]);
                    sr[c] = visible ? sr[c] * j->scale : -INFINITY;
                }
            }
            ok->softmax_row(sr, Tk);  // a row with no visible key becomes zeros
        }
        bk->quantize_rows(s, rows, Tk, Tk, Tkp, 0, pb, NULL);
        float *o = j->out + (b * j->Tq + t0) * j->ldo + h * D;
        for (int64_t c = 0; c < (D + 31) / 32; c++) {
            int nr = (int)(D - 32 * c < 32 ? D - 32 * c : 32);
            run_tiles(bk, rows, pb, Tkp, vpan + c * (Tkp / 2) * 32, Tkp, o + 32 * c, j->ldo, nr);
        }
    }
}

int vlm_attention_bf16_run(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                           int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t hs, float *out,
                           int64_t ldo, float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                           const uint8_t *key_mask) {
    bf16_attn_job j = {
        .bk = &vlm_bf16_kernels_avx512, .B = B, .H = H, .group = H / KVH, .Tq = Tq, .Tk = Tk, .D = D,
        .Dp = (D + 1) / 2 * 2, .Tkp = (Tk + 1) / 2 * 2, .q = q, .k = k, .v = v, .ldq = ldq, .ldk = ldk, .ldv = ldv,
        .hs = hs, .ldo = ldo, .out = out, .scale = scale, .causal = causal,
        .key_begin = key_begin && key_end ? key_begin : NULL, .key_end = key_begin && key_end ? key_end : NULL,
        .key_mask = key_mask,
    };
    vlm_parallel_for(B * H, bf16_attn_task, &j);
    return atomic_load(&j.failed) ? VLM_ERR_NOMEM : 0;
}

int vlm_attention_bf16_available(void) {
    return vlm_active_isa() == VLM_ISA_AVX512 && (vlm_cpu_features() & VLM_CPU_AVX512_BF16) &&
           vlm_bf16_kernels_avx512.tile != NULL && vlm_active_ops_kernels() != NULL;
}
#else
int vlm_attention_bf16_run(int64_t B, int64_t H, int64_t KVH, int64_t Tq, int64_t Tk, int64_t D, const float *q,
                           int64_t ldq, const float *k, int64_t ldk, const float *v, int64_t ldv, int64_t hs, float *out,
                           int64_t ldo, float scale, int causal, const int64_t *key_begin, const int64_t *key_end,
                           const uint8_t *key_mask) {
    (void)B; (void)H; (void)KVH; (void)Tq; (void)Tk; (void)D; (void)q; (void)ldq; (void)k; (void)ldk; (void)v;
    (void)ldv; (void)hs; (void)out; (void)ldo; (void)scale; (void)causal; (void)key_begin; (void)key_end; (void)key_mask;
    return -1;
}
int vlm_attention_bf16_available(void) { return 0; }
#endif
