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
// Two kernel sets share the tiles (gemm_i8_vnni_tiles.h): the re-layout is a byte transpose in AVX2 shuffles, or,
// where the CPU also has AVX512_VBMI, one two-source byte permute per 16 columns. The twin tests run both on a VBMI
// CPU by hiding the feature (vlm_hide_cpu_features).
// Written without a VNNI machine at hand: on CPUs without AVX512_VNNI (the Zen 3 it was written on) this file is
// compiled but never dispatched; the shared tests compare it with the naive twin wherever it runs.
#include "kernels_internal.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include "simd_math.h"

#define VLM_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c,avx2")))
#define VLM_VNNI_VBMI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,fma,f16c,avx2")))
#define VNNI_MR 8

// The activations as u8 = q + 128, q = rint(x * 127 / max|x|) per row and group (the definition's rounding; the
// AVX2 converter's, 16 lanes at a time with masked tails). It is ~5% of a ViT-B/32 int8 encode (batch 8, perf, Zen 5)
// in AVX2 and in this form alike: reading the fresh activations, not the arithmetic, is what it costs.
static VLM_VNNI void quantize_rows_u8(const float *X, int64_t rows, int64_t ldx, int64_t K, int64_t kpad, int64_t group,
                                     void *dst, float *sa) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF)), inf = _mm512_set1_ps(INFINITY);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    int64_t ngroups = (K + group - 1) / group;
    for (int64_t m = 0; m < rows; m++) {
        const float *x = X + m * ldx;
        uint8_t *d = (uint8_t *)dst + m * kpad;
        for (int64_t g = 0; g < ngroups; g++) {
            int64_t k0 = g * group, k1 = k0 + group < K ? k0 + group : K;
            __m512 mx = _mm512_setzero_ps();
            __mmask16 nonfinite = 0;
            for (int64_t k = k0; k < k1; k += 16) {
                __mmask16 mk = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1);
                __m512 a = _mm512_and_ps(_mm512_maskz_loadu_ps(mk, x + k), absmask);
                nonfinite |= _mm512_mask_cmp_ps_mask(mk, a, inf, _CMP_NLT_UQ);  // inf and NaN
                mx = _mm512_max_ps(mx, a);
            }
            float amax = _mm512_reduce_max_ps(mx);
            float *s = sa + m * ngroups + g;
            if (nonfinite || amax == 0.0f) {
                memset(d + k0, 128, (size_t)(k1 - k0));
                *s = nonfinite ? NAN : 0.0f;
                continue;
            }
            const __m512 inv = _mm512_set1_ps(127.0f / amax);
            for (int64_t k = k0; k < k1; k += 16) {
                __mmask16 mk = k1 - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k1 - k)) - 1);
                __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + k), inv));
                q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
                __m128i v8 = _mm_xor_si128(_mm512_cvtsepi32_epi8(q), _mm_set1_epi8((char)0x80));
                _mm_mask_storeu_epi8(d + k, mk, v8);
            }
            *s = amax / 127.0f;
        }
        if (kpad > K) memset(d + K, 128, (size_t)(kpad - K));  // padding: code 0
    }
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

// Code rows k..k+3 of a group as column quads with one two-source byte permute per 16 columns: the four 32-byte
// rows are 128 contiguous bytes (two loads), and output byte 4c + j of b0 is row j, column c (source byte 32j + c);
// of b1, column 16 + c. Three instructions per 16 columns against the transpose's ten: the re-layout was 13.5% of an
// int8 prefill's samples (SmolLM2-1.7B, Zen 5), its first tile costing three of the others. Rows past K: as above.
VLM_INLINE VLM_VNNI_VBMI void quads_of_rows_vbmi(const vlm_packed_weight *w, const unsigned char *codes, int64_t k0,
                                                 int64_t k, __m512i *b0, __m512i *b1) {
    if (k + 3 >= w->K) {
        quads_of_rows(w, codes, k0, k, b0, b1);
        return;
    }
    static const unsigned char idx[128] __attribute__((aligned(64))) = {
#define Q(c) (c), 32 + (c), 64 + (c), 96 + (c)
        Q(0),  Q(1),  Q(2),  Q(3),  Q(4),  Q(5),  Q(6),  Q(7),  Q(8),  Q(9),  Q(10), Q(11), Q(12), Q(13), Q(14), Q(15),
        Q(16), Q(17), Q(18), Q(19), Q(20), Q(21), Q(22), Q(23), Q(24), Q(25), Q(26), Q(27), Q(28), Q(29), Q(30), Q(31),
#undef Q
    };
    const unsigned char *src = codes + (k - k0) * VLM_NR;
    __m512i r01 = _mm512_loadu_si512((const void *)src), r23 = _mm512_loadu_si512((const void *)(src + 64));
    *b0 = _mm512_permutex2var_epi8(r01, _mm512_load_si512((const void *)idx), r23);
    *b1 = _mm512_permutex2var_epi8(r01, _mm512_load_si512((const void *)(idx + 64)), r23);
}

typedef void (*vnni_fn)(const uint8_t *, int64_t, const unsigned char *, const int32_t *, const vlm_packed_weight *,
                        int64_t, int64_t, const float *, const float *, vlm_activation, float *, int64_t, int);
typedef void (*vnni_pack_fn)(const uint8_t *, int64_t, unsigned char *, int32_t *, const vlm_packed_weight *, int64_t,
                             int64_t, const float *, const float *, vlm_activation, float *, int64_t, int);

#define VNNI_TARGET VLM_VNNI
#define VNNI_NAME(x) x
#define VNNI_QUADS quads_of_rows
#include "gemm_i8_vnni_tiles.h"
#undef VNNI_TARGET
#undef VNNI_NAME
#undef VNNI_QUADS

#define VNNI_TARGET VLM_VNNI_VBMI
#define VNNI_NAME(x) x##_vbmi
#define VNNI_QUADS quads_of_rows_vbmi
#include "gemm_i8_vnni_tiles.h"
#undef VNNI_TARGET
#undef VNNI_NAME
#undef VNNI_QUADS

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

// The same tiles with the VBMI re-layout (chosen when the CPU also has AVX512_VBMI: Ice Lake and later, Zen 4 and
// later; Cascade Lake has VNNI without it).
const vlm_lowp_kernels vlm_i8_kernels_vnni_vbmi = {
    .name = "avx512-vnni+vbmi int8 vpdpbusd 8x32",
    .mr_max = VNNI_MR,
    .a_bytes = 1,
    .k_align = 4,
    .b_bytes = VLM_NR,
    .quantize_rows = quantize_rows_u8,
    .pack_panel = NULL,
    .tile = tile_vnni_vbmi,
    .tile_pack = tile_pack_vnni_vbmi,
};
#else
const vlm_lowp_kernels vlm_i8_kernels_vnni = {0};
const vlm_lowp_kernels vlm_i8_kernels_vnni_vbmi = {0};
#endif
