// AVX2 int8 compute (definition: vlm_linear_i8 in cvlm_kernels.h; driver: gemm_i8.c).
//
// Operands: activations quantized to int16 [rows, kpad]; a panel re-laid out as int16 k-pairs: half h (16 columns)
// and pair t hold, for columns c = 0..15, (w[2t, c], w[2t+1, c]) in one 32-bit lane (two 256-bit vectors per pair).
// vpmaddwd of a broadcast activation pair with a weight vector gives per column a0 w0 + a1 w1 in int32, exactly.
// Why not vpmaddubsw (u8 x s8, 4 k per lane): its int16 pair sums saturate at 2 * 255 * 127 > 32767 for u8
// activations, and the sign trick that avoids it (|a| x sign(w, a)) costs the same multiplier throughput as
// vpmaddwd plus two more ops per product vector; vpmaddwd on int16 needs neither and accepts w = -128 too.
// Tile: 6 rows x 16 columns = 12 int32 accumulators + 2 weight vectors + 1 broadcast (15 of 16 registers).
#include "kernels_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include "simd_math.h"

#define I8_MR 6

// One row: max |x| and whether any value is NaN or infinite (the definition's "bad" row).
VLM_INLINE VLM_AVX2 float row_absmax(const float *x, int64_t K, int *bad) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)), inf = _mm256_set1_ps(INFINITY);
    __m256 mx = _mm256_setzero_ps(), nonfinite = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + k), absmask);
        // !(a < inf) is true for inf and NaN (unordered compare).
        nonfinite = _mm256_or_ps(nonfinite, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
        mx = _mm256_max_ps(mx, a);
    }
    float lanes[8], m = 0.0f;
    _mm256_storeu_ps(lanes, mx);
    for (int i = 0; i < 8; i++) m = fmaxf(m, lanes[i]);
    int b = _mm256_movemask_ps(nonfinite) != 0;
    for (; k < K; k++) {
        if (!isfinite(x[k])) b = 1;
        m = fmaxf(m, fabsf(x[k]));
    }
    *bad = b;
    return m;
}

VLM_AVX2 void vlm_i8_quantize_rows_avx2(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group,
                                        void *dst, float *sa, int u8) {
    int64_t ngroups = (K + group - 1) / group;
    for (int64_t m = 0; m < rows; m++) {
        const float *x = X + m * ldx;
        int16_t *d16 = (int16_t *)dst + m * kpad;
        uint8_t *d8 = (uint8_t *)dst + m * kpad;
        for (int64_t g = 0; g < ngroups; g++) {
            int64_t k0 = g * group, k1 = k0 + group < K ? k0 + group : K;
            int bad;
            float a = row_absmax(x + k0, k1 - k0, &bad);
            float *s = sa + m * ngroups + g;
            if (bad || a == 0.0f) {
                if (u8) memset(d8 + k0, 128, (size_t)(k1 - k0));
                else memset(d16 + k0, 0, (size_t)(k1 - k0) * 2);
                *s = bad ? NAN : 0.0f;
                continue;
            }
            // rint(x * inv): vcvtps2dq rounds to nearest even like nearbyintf; |x * inv| <= 127 (+ an ulp), clamped.
            const __m256 inv = _mm256_set1_ps(127.0f / a);
            const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
            int64_t k = k0;
            for (; k + 8 <= k1; k += 8) {
                __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), inv));
                q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
                // int32 -> int16 (packs works per 128-bit lane: permute the 64-bit halves back into order).
                __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q, q), 0x08);
                __m128i v16 = _mm256_castsi256_si128(p16);
                if (u8) {
                    __m128i v8 = _mm_add_epi8(_mm_packs_epi16(v16, v16), _mm_set1_epi8((char)0x80));
                    _mm_storel_epi64((__m128i *)(d8 + k), v8);
                } else {
                    _mm_storeu_si128((__m128i *)(d16 + k), v16);
                }
            }
            float inv1 = 127.0f / a;
            for (; k < k1; k++) {
                float r = nearbyintf(x[k] * inv1);
                int v = (int)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
                if (u8) d8[k] = (uint8_t)(v + 128);
                else d16[k] = (int16_t)v;
            }
            *s = a / 127.0f;
        }
        for (int64_t k = K; k < kpad; k++) {  // padding: code 0
            if (u8) d8[k] = 128;
            else d16[k] = 0;
        }
    }
}

static void quantize_rows_s16(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group, void *dst,
                              float *sa) {
    vlm_i8_quantize_rows_avx2(X, rows, ldx, K, kpad, group, dst, sa, 0);
}

// dst (int16): half h, pair t at dst + (h * npairs + t) * 32; codes past K are zeros.
static VLM_AVX2 void pack_panel_s16(const vlm_packed_weight *w, int64_t p, int64_t kpad, void *dst, int32_t *colsum) {
    (void)colsum;
    int16_t *d = dst;
    int64_t npairs = kpad / 2;
    const __m128i zero = _mm_setzero_si128();
    // Groups hold an even number of k (a multiple of 32), so a pair never straddles two; walking the groups avoids a
    // 64-bit divide per code row (10% of an int8 prefill on the VNNI packer).
    int64_t g = 0, k0 = 0;
    const unsigned char *codes = vlm_qblock(w, p, 0) + vlm_qcodes_offset(VLM_WEIGHT_I8);
    for (int64_t t = 0; t < npairs; t++) {
        int64_t k = 2 * t;
        if (k >= k0 + w->group && g + 1 < w->ngroups) {
            g++;
            k0 += w->group;
            codes = vlm_qblock(w, p, g) + vlm_qcodes_offset(VLM_WEIGHT_I8);
        }
        const unsigned char *r[2];
        for (int i = 0; i < 2; i++) r[i] = k + i < w->K ? codes + (k + i - k0) * VLM_NR : NULL;
        for (int h = 0; h < 2; h++) {
            __m128i a = r[0] ? _mm_loadu_si128((const __m128i *)(r[0] + 16 * h)) : zero;
            __m128i b = r[1] ? _mm_loadu_si128((const __m128i *)(r[1] + 16 * h)) : zero;
            int16_t *o = d + (h * npairs + t) * 32;
            _mm256_store_si256((__m256i *)o, _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b)));
            _mm256_store_si256((__m256i *)(o + 16), _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b)));
        }
    }
}

// Rows 0..MR-1 of one 16-column half: int32 sums per group, scaled into fp32 at each group's end.
VLM_INLINE VLM_AVX2 void tile_half(const int MR, const int16_t *A, int64_t lda, const int16_t *B, int64_t npairs,
                                   const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa, int h,
                                   __m256 cf[][2]) {
    for (int i = 0; i < MR; i++) cf[i][0] = cf[i][1] = _mm256_setzero_ps();
    for (int64_t g = 0; g < w->ngroups; g++) {
        int64_t t0 = g * w->group / 2, k1 = (g + 1) * w->group < kpad ? (g + 1) * w->group : kpad, t1 = k1 / 2;
        __m256i acc[I8_MR][2];
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
        const int16_t *b = B + (h * npairs + t0) * 32;
        for (int64_t t = t0; t < t1; t++, b += 32) {
            __m256i b0 = _mm256_load_si256((const __m256i *)b), b1 = _mm256_load_si256((const __m256i *)(b + 16));
            for (int i = 0; i < MR; i++) {
                int32_t pair;
                memcpy(&pair, A + i * lda + 2 * t, 4);
                __m256i a = _mm256_set1_epi32(pair);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(a, b0));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(a, b1));
            }
        }
        const float *s = (const float *)vlm_qblock(w, p, g) + 16 * h;
        __m256 s0 = _mm256_loadu_ps(s), s1 = _mm256_loadu_ps(s + 8);
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_set1_ps(sa[i * w->ngroups + g]);
            cf[i][0] = _mm256_fmadd_ps(s0, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][0]), a), cf[i][0]);
            cf[i][1] = _mm256_fmadd_ps(s1, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][1]), a), cf[i][1]);
        }
    }
}

VLM_INLINE VLM_AVX2 void tile_rows(const int MR, const int16_t *A, int64_t lda, const int16_t *B,
                                   const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa, const float *bias,
                                   vlm_activation act, float *Y, int64_t ldy, int nr) {
    int64_t npairs = kpad / 2;
    for (int h = 0; h < 2; h++) {
        int cols = nr - 16 * h;
        if (cols <= 0) break;
        if (cols > 16) cols = 16;
        __m256 cf[I8_MR][2];
        tile_half(MR, A, lda, B, npairs, w, p, kpad, sa, h, cf);
        for (int i = 0; i < MR; i++) {
            float *y = Y + i * ldy + 16 * h;
            __m256 y0 = cf[i][0], y1 = cf[i][1];
            if (cols == 16) {
                _mm256_storeu_ps(y, y0);
                _mm256_storeu_ps(y + 8, y1);
            } else {
                float tmp[16];
                _mm256_storeu_ps(tmp, y0);
                _mm256_storeu_ps(tmp + 8, y1);
                memcpy(y, tmp, (size_t)cols * sizeof(float));
            }
            if (bias || act != VLM_ACT_NONE) vlm_bias_act_avx2(y, cols, bias ? bias + 16 * h : NULL, act);
        }
    }
}

#define I8_TILE_FN(MR)                                                                                            \
    static VLM_AVX2 void tile_##MR(const int16_t *A, int64_t lda, const int16_t *B, const vlm_packed_weight *w,    \
                                   int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, \
                                   float *Y, int64_t ldy, int nr) {                                               \
        tile_rows(MR, A, lda, B, w, p, kpad, sa, bias, act, Y, ldy, nr);                                          \
    }
I8_TILE_FN(1) I8_TILE_FN(2) I8_TILE_FN(3) I8_TILE_FN(4) I8_TILE_FN(5) I8_TILE_FN(6)

typedef void (*tile_fn)(const int16_t *, int64_t, const int16_t *, const vlm_packed_weight *, int64_t, int64_t,
                        const float *, const float *, vlm_activation, float *, int64_t, int);
static const tile_fn tiles[I8_MR + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

static void tile_s16(int mr, const void *A, int64_t lda, const void *B, const int32_t *colsum, const vlm_packed_weight *w,
                     int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y,
                     int64_t ldy, int nr) {
    (void)colsum;
    if (mr >= 1 && mr <= I8_MR) tiles[mr](A, lda, B, w, p, kpad, sa, bias, act, Y, ldy, nr);
}

const vlm_lowp_kernels vlm_i8_kernels_avx2 = {
    .name = "avx2 int8 vpmaddwd 6x16",
    .mr_max = I8_MR,
    .a_bytes = 2,
    .k_align = 4,
    .b_bytes = VLM_NR * 2,
    .quantize_rows = quantize_rows_s16,
    .pack_panel = pack_panel_s16,
    .tile = tile_s16,
};
#else
const vlm_lowp_kernels vlm_i8_kernels_avx2 = {0};
void vlm_i8_quantize_rows_avx2(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group, void *dst,
                               float *sa, int u8) {
    (void)X; (void)rows; (void)ldx; (void)K; (void)kpad; (void)group; (void)dst; (void)sa; (void)u8;
}
#endif
