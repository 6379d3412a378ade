// Tiles of the AVX512-VNNI int8 kernel (gemm_i8_vnni.c), included twice there: once built for AVX512-VNNI with the
// AVX2 byte transpose as the re-layout (VNNI_QUADS = quads_of_rows), once also for AVX512-VBMI with its two-source
// byte permute (quads_of_rows_vbmi). The includer defines VNNI_TARGET (the target attribute), VNNI_NAME(x) (the
// suffix of every function and table) and VNNI_QUADS.

// PACK (a constant at every call site): this is a panel's first row tile, which also re-lays out the panel into B
// (quads) and colsum (the sum of codes per group and column) from the stored codes as it goes. The weights then
// stream from memory while this tile computes instead of in a separate pass: the separate pass was ~8% of a
// SmolLM2-1.7B int8 prefill (a build that skipped it ran 209-211 against 184-199 tokens/s, Zen 4).
VLM_INLINE VNNI_TARGET void VNNI_NAME(vnni_rows)(const int MR, const int PACK, const uint8_t *A, int64_t lda, unsigned char *B,
                                   int32_t *colsum, const vlm_packed_weight *w, int64_t p, int64_t kpad,
                                   const float *sa, const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 cf[VNNI_MR][2];
    for (int i = 0; i < MR; i++) cf[i][0] = cf[i][1] = _mm512_setzero_ps();
    for (int64_t g = 0; g < w->ngroups; g++) {
        int64_t t0 = g * w->group / 4, k1 = (g + 1) * w->group < kpad ? (g + 1) * w->group : kpad, t1 = k1 / 4;
        const unsigned char *codes = PACK ? vlm_qblock(w, p, g) + vlm_qcodes_offset(VLM_WEIGHT_I8) : NULL;
        __m512i cs0 = _mm512_setzero_si512(), cs1 = _mm512_setzero_si512();
        // Each group's sums less 128 * colsum (the u8 offset's share, see gemm_i8_vnni.c): the row tiles after the
        // first start their accumulators at it, which saves a subtraction per accumulator and group; the first
        // computes colsum as it goes and subtracts at the end. Integer sums: the same result either way.
        __m512i z0 = _mm512_setzero_si512(), z1 = _mm512_setzero_si512();
        if (!PACK) {
            z0 = _mm512_sub_epi32(z0, _mm512_slli_epi32(_mm512_loadu_si512((const void *)(colsum + g * VLM_NR)), 7));
            z1 = _mm512_sub_epi32(z1, _mm512_slli_epi32(_mm512_loadu_si512((const void *)(colsum + g * VLM_NR + 16)), 7));
        }
        __m512i acc[VNNI_MR][2];
        for (int i = 0; i < MR; i++) {
            acc[i][0] = z0;
            acc[i][1] = z1;
        }
        for (int64_t t = t0; t < t1; t++) {
            __m512i b0, b1;
            if (PACK) {
                // 8 KiB (256 code rows) ahead: without a prefetch this tile waits on memory and ran slower than a
                // separate pack pass (187-192 against 199-204 tokens/s; 2 KiB ahead: 205-215, SmolLM2-1.7B int8,
                // Zen 4). With the VBMI re-layout the tile is faster and 2 KiB too short: ViT-B/32 int8 batch 1 ran
                // 119-126 images/s at 2 KiB, 131 at 4 KiB, 132-137 at 8 KiB (Zen 5, session 21). Prefetches past
                // the group touch the next blocks of the same panel (harmless).
                _mm_prefetch((const char *)codes + (4 * t - g * w->group) * VLM_NR + 8192, _MM_HINT_T0);
                _mm_prefetch((const char *)codes + (4 * t - g * w->group) * VLM_NR + 8192 + 64, _MM_HINT_T0);
                VNNI_QUADS(w, codes, g * w->group, 4 * t, &b0, &b1);
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
            z0 = _mm512_slli_epi32(cs0, 7);
            z1 = _mm512_slli_epi32(cs1, 7);
            for (int i = 0; i < MR; i++) {
                acc[i][0] = _mm512_sub_epi32(acc[i][0], z0);
                acc[i][1] = _mm512_sub_epi32(acc[i][1], z1);
            }
        }
        const float *s = (const float *)vlm_qblock(w, p, g);
        __m512 s0 = _mm512_loadu_ps(s), s1 = _mm512_loadu_ps(s + 16);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(sa[i * w->ngroups + g]);
            cf[i][0] = _mm512_fmadd_ps(s0, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][0]), a), cf[i][0]);
            cf[i][1] = _mm512_fmadd_ps(s1, _mm512_mul_ps(_mm512_cvtepi32_ps(acc[i][1]), a), cf[i][1]);
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
    static VNNI_TARGET void VNNI_NAME(vnni_##MR)(const uint8_t *A, int64_t lda, const unsigned char *B, const int32_t *colsum,   \
                                   const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa,          \
                                   const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {        \
        VNNI_NAME(vnni_rows)(MR, 0, A, lda, (unsigned char *)B, (int32_t *)colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);   \
    }                                                                                                             \
    static VNNI_TARGET void VNNI_NAME(vnni_pack_##MR)(const uint8_t *A, int64_t lda, unsigned char *B, int32_t *colsum,          \
                                        const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa,     \
                                        const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {   \
        VNNI_NAME(vnni_rows)(MR, 1, A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);                               \
    }
VNNI_TILE_FN(1) VNNI_TILE_FN(2) VNNI_TILE_FN(3) VNNI_TILE_FN(4)
VNNI_TILE_FN(5) VNNI_TILE_FN(6) VNNI_TILE_FN(7) VNNI_TILE_FN(8)
#undef VNNI_TILE_FN

static const vnni_fn VNNI_NAME(vnni_tiles)[VNNI_MR + 1] = {
    NULL, VNNI_NAME(vnni_1), VNNI_NAME(vnni_2), VNNI_NAME(vnni_3), VNNI_NAME(vnni_4),
    VNNI_NAME(vnni_5), VNNI_NAME(vnni_6), VNNI_NAME(vnni_7), VNNI_NAME(vnni_8),
};
static const vnni_pack_fn VNNI_NAME(vnni_pack_tiles)[VNNI_MR + 1] = {
    NULL, VNNI_NAME(vnni_pack_1), VNNI_NAME(vnni_pack_2), VNNI_NAME(vnni_pack_3), VNNI_NAME(vnni_pack_4),
    VNNI_NAME(vnni_pack_5), VNNI_NAME(vnni_pack_6), VNNI_NAME(vnni_pack_7), VNNI_NAME(vnni_pack_8),
};

static void VNNI_NAME(tile_vnni)(int mr, const void *A, int64_t lda, const void *B, const int32_t *colsum,
                                 const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa, const float *bias,
                                 vlm_activation act, float *Y, int64_t ldy, int nr) {
    if (mr >= 1 && mr <= VNNI_MR) VNNI_NAME(vnni_tiles)[mr](A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);
}

static void VNNI_NAME(tile_pack_vnni)(int mr, const void *A, int64_t lda, void *B, int32_t *colsum,
                                      const vlm_packed_weight *w, int64_t p, int64_t kpad, const float *sa,
                                      const float *bias, vlm_activation act, float *Y, int64_t ldy, int nr) {
    if (mr >= 1 && mr <= VNNI_MR) VNNI_NAME(vnni_pack_tiles)[mr](A, lda, B, colsum, w, p, kpad, sa, bias, act, Y, ldy, nr);
}
