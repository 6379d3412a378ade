// AVX512-VNNI int8 compute (definition: vlm_linear_i8 in cvlm_kernels.h; driver: gemm_i8.c).
//
// vpdpbusd multiplies u8 x s8 in groups of four adjacent bytes and adds the four products to an int32 lane with
// no intermediate saturation, so activations go in as u8 = q + 128 and each group's sums are corrected by
// 128 * sum_k w (colsum, computed while re-laying out: vpdpbusd of all-ones bytes with the same weight quads). The
// result is the definition's integer sum exactly, as on every other path.
// Operands: activations u8 [rows, kpad]; a panel as k-quads: quad t holds 32 columns x (w[4t..4t+3, c]), 128 bytes,
// two 512-bit vectors (columns 0..15, 16..31), written by each panel's first row tile. Tile: 8 rows x 32 columns
// (16 int32 accumulators).
//
// Written without a VNNI machine at hand: on CPUs without AVX512_VNNI (the Zen 3 it was written on) this file is
// compiled but never dispatched; the shared tests compare it with the naive twin wherever it runs.
#include "kernels_internal.h"
#include <string.h>
#if defined(__x86_64__)
#include "simd_math.h"

#define VLM_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c,avx2")))
#define VNNI_MR 8

static void quantize_rows_u8(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group, void *dst,
                             float *sa) {
    vlm_i8_quantize_rows_avx2(X, rows, ldx, K, kpad, group, dst, sa, 1);
}

// Code row k of the group whose codes start at `codes` (k0 its first k), or zeros past K. No division per row: a
// 64-bit divide per code row made packing 10% of an int8 prefill.
VLM_INLINE VLM_VNNI __m256i code_row(const vlm_packed_weight *w, const unsigned char *codes, int64_t k0, int64_t k) {
    if (k >= w->K) return _mm256_setzero_si256();
    return _mm256_loadu_si256((const __m256i *)(codes + (k - k0) * VLM_NR));
}

// Code rows k..k+3 of a group (zeros past K) as column quads: b0 columns 0..15, b1 columns 16..31.
VLM_INLINE VLM_VNNI void quads_of_rows(const vlm_packed_weight *w, const unsigned char *codes, int64_t k0, int64_t k,
                                       __m512i *b0, __m512i *b1) {
    __m256i r0 = code_row(w, codes, k0, k), r1 = code_row(w, codes, k0, k + 1), r2 = code_row(w, codes, k0, k + 2),
            r3 = code_row(w, codes, k0, k + 3);
    // Byte transpose of 4 rows x 32 columns into column quads (per 128-bit lane, then lanes reordered).
    __m256i lo01 = _mm256_unpacklo_epi8(r0, r1), hi01 = _mm256_unpackhi_epi8(r0, r1);
    __m256i lo23 = _mm256_unpacklo_epi8(r2, r3), hi23 = _mm256_unpackhi_epi8(r2, r3);
    __m256i q0 = _mm256_unpacklo_epi16(lo01, lo23);  // columns 0-3 | 16-19
    __m256i q1 = _mm256_unpackhi_epi16(lo01, lo23);  // 4-7 | 20-23
    __m256i q2 = _mm256_unpacklo_epi16(hi01, hi23);  // 8-11 | 24-27
    __m256i q3 = _mm256_unpackhi_epi16(hi01, hi23);  // 12-15 | 28-31
    __m256i c0 = _mm256_permute2x128_si256(q0, q1, 0x20), c1 = _mm256_permute2x128_si256(q2, q3, 0x20);
    __m256i c2 = _mm256_permute2x128_si256(q0, q1, 0x31), c3 = _mm256_permute2x128_si256(q2, q3, 0x31);
    *b0 = _mm512_inserti64x4(_mm512_castsi256_si512(c0), c1, 1);  // columns 0..15
    *b1 = _mm512_inserti64x4(_mm512_castsi256_si512(c2), c3, 1);  // columns 16..31
}

// PACK (a constant at every call site): this is a panel's first row tile, which also re-lays out the panel into B
// (quads) and colsum (the sum of codes per group and column) from the stored codes as it goes. The weights then
// stream from memory while this tile computes instead of in a separate pass: the separate pass was ~8% of a
// SmolLM2-1.7B int8 prefill (a build that skipped it ran 209-211 against 184-199 tokens/s, Zen 4).
VLM_INLINE VLM_VNNI void vnni_rows(const int MR, const int PACK, const uint8_t *A, int64_t lda, unsigned char *B,
                                   int32_t *colsum, const vlm_packed_weight *w, int64_t p, int64_t kpad,
                                   const float *sa, const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 cf[VNNI_MR][2];
    for (int i = 0; i < MR; i++) cf[i][0] = cf[i][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < w->ngroups; g++) {
        int64_t t0 = g * w->group / 4, k1 = (g + 1) * w->group < kpad ? (g + 1) * w->group : kpad, t1 = k1 / 4;
        const unsigned char *codes = PACK ? vlm_qblock(w, p, g) + vlm_qcodes_offset(VLM_WEIGHT_I8) : NULL;
        __m512i cs0 = _mm512_setzero_si512(), cs1 = _mm512_setzero_si512();
        __m512i acc[VNNI_MR][2];
        for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
        for (int64_t t = t0; t < t1; t++) {
            __m512i b0, b1;
            if (PACK) {
                // 2 KiB (64 code rows) ahead: without it this tile waits on memory and ran slower than a separate
                // pack pass (187-192 against 199-204 tokens/s); with it 205-215 (SmolLM2-1.7B int8, Zen 4).
                // Prefetches past the group touch the next block (harmless).
                _mm_prefetch((const char *)codes + (4 * t - g * w->group) * VLM_NR + 2048, _MM_HINT_T0);
                _mm_prefetch((const char *)codes + (4 * t - g * w->group) * VLM_NR + 2048 + 64, _MM_HINT_T0);
                quads_of_rows(w, codes, g * w->group, 4 * t, &b0, &b1);
                _mm512_store_si512((void *)(B + t * 128), b0);
                _mm512_store_si512((void *)(B + t * 128 + 64), b1);
                cs0 = _mm512_dpbusd_epi32(cs0, ones, b0);
                cs1 = _mm512_dpbusd_epi32(cs1, ones, b1);
            } else {
                b0 = _mm512_load_si512((const void *)(B + t * 128));
                b1 = _mm512_load_si512((const void *)(B + t * 128 + 64));
            }
            for (int i = 0; i < MR; i++) {
                int32_t quad;
                memcpy(&quad, A + i * lda + 4 * t, 4);
                __m512i a = _mm512_set1_epi32(quad);
                acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], a, b0);
                acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], a, b1);
            }
        }
        if (PACK) {
            _mm512_storeu_si512((void *)(colsum + g * VLM_NR), cs0);
            _mm512_storeu_si512((void *)(colsum + g * VLM_NR + 16), cs1);
        }
        __m512i z0 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(colsum + g * VLM_NR)), 7);
        __m512i z1 = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(colsum + g * VLM_NR + 16)), 7);
        const float *s = (const float *)vlm_qblock(w, p, g);
        __m512 s0 = _mm512_loadu_ps(s), s1 = _mm512_loadu_ps(s + 16);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(sa[i * w->ngroups + g]);
            cf[i][0] = _mm512_fmadd_ps(s0, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][0], z0)), a), cf[i][0]);
            cf[i][1] = _mm512_fmadd_ps(s1, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][1], z1)), a), cf[i][1]);
        }
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    // Epilogue in registers: y = act(C + bias).
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < MR; i++) store_row_epilogue_512(Y + i * ldy, cf[i][0], cf[i][1], m0, m1, bias, bias0, bias1, act);
}

#define VNNI_TILE_FN(MR)                                                                                          \
    static VLM_VNNI void vnni_##MR(const uint8_t *A, int64_t lda, const unsigned char *B, const int32_t *colsum,   \
                                   const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa,          \
                                   const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {        \
        vnni_rows(MR, 0, A, lda, (unsigned char *)B, (int32_t *)colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);   \
    }                                                                                                             \
    static VLM_VNNI void vnni_pack_##MR(const uint8_t *A, int64_t lda, unsigned char *B, int32_t *colsum,          \
                                        const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa,     \
                                        const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {   \
        vnni_rows(MR, 1, A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);                               \
    }
VNNI_TILE_FN(1) VNNI_TILE_FN(2) VNNI_TILE_FN(3) VNNI_TILE_FN(4)
VNNI_TILE_FN(5) VNNI_TILE_FN(6) VNNI_TILE_FN(7) VNNI_TILE_FN(8)

typedef void (*vnni_fn)(const uint8_t *, int64_t, const unsigned char *, const int32_t *, const vlm_packed_weight *,
                        int64_t, int64_t, const float *, const float *, vlm_activation, float *, int64_t, int);
static const vnni_fn vnni_tiles[VNNI_MR + 1] = {NULL, vnni_1, vnni_2, vnni_3, vnni_4, vnni_5, vnni_6, vnni_7, vnni_8};
typedef void (*vnni_pack_fn)(const uint8_t *, int64_t, unsigned char *, int32_t *, const vlm_packed_weight *, int64_t,
                             int64_t, const float *, const float *, vlm_activation, float *, int64_t, int);
static const vnni_pack_fn vnni_pack_tiles[VNNI_MR + 1] = {
    NULL, vnni_pack_1, vnni_pack_2, vnni_pack_3, vnni_pack_4, vnni_pack_5, vnni_pack_6, vnni_pack_7, vnni_pack_8,
};

static void tile_vnni(int mr, const void *A, int64_t lda, const void *B, const int32_t *colsum, const vlm_packed_weight *w,
                      int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y,
                      int64_t ldy, int nr) {
    if (mr >= 1 && mr <= VNNI_MR) vnni_tiles[mr](A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);
}

static void tile_pack_vnni(int mr, const void *A, int64_t lda, void *B, int32_t *colsum, const vlm_packed_weight *w,
                           int64_t p, int64_t kpad, const float *sa, const float *bias, vlm_activation act, float *Y,
                           int64_t ldy, int nr) {
    if (mr >= 1 && mr <= VNNI_MR) vnni_pack_tiles[mr](A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);
}

const vlm_lowp_kernels vlm_i8_kernels_vnni = {
    .name = "avx512-vnni int8 vpdpbusd 8x32",
    .mr_max = VNNI_MR,
    .a_bytes = 1,
    .k_align = 4,
    .b_bytes = VLM_NR,
    .quantize_rows = quantize_rows_u8,
    .pack_panel = NULL,  // the first row tile of each panel re-lays it out (tile_pack)
    .tile = tile_vnni,
    .tile_pack = tile_pack_vnni,
};
#else
const vlm_lowp_kernels vlm_i8_kernels_vnni = {0};
#endif
