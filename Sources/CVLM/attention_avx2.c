// AVX2 kernels of the few-query attention path (attention_decode.c; contracts in kernels_internal.h).
#include "kernels_internal.h"
#include "simd_math.h"
#include <math.h>
#include <string.h>

VLM_INLINE VLM_AVX2 float hsum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Lane i of the result = the sum of the 8 lanes of a[i] (a transpose-add tree, as sum16_512 in attention_avx512.c).
VLM_INLINE VLM_AVX2 __m256 sum8_256(const __m256 a[8]) {
    __m256 b[4], c[2];
#pragma clang loop unroll(full)
    for (int i = 0; i < 4; i++)  // b[i]: the low 128 bits hold partial sums of a[2i], the high of a[2i+1]
        b[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x31));
#pragma clang loop unroll(full)
    for (int i = 0; i < 2; i++)  // c[i]: low half lanes 0-1 a[4i], 2-3 a[4i+2]; high half a[4i+1], a[4i+3]
        c[i] = _mm256_add_ps(_mm256_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // e: lane l of the low half is a[2l]'s sum, of the high half a[2l+1]'s; the permute puts a[i]'s in lane i.
    __m256 e = _mm256_add_ps(_mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm256_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// 8 elements d.. of a key or value row: fp32 (W = 4 bytes, lanes past `left` zero) or bf16 (W = 2, widened exactly by a
// shift; see kv_load_512). AVX2 has no masked 16-bit load: a short tail goes through a zeroed copy.
VLM_INLINE VLM_AVX2 __m256 kv_load_256(const int W, const char *row, int64_t d, int64_t left, __m256i m) {
    if (W == 4) return _mm256_maskload_ps((const float *)row + d, m);
    __m128i h;
    if (left >= 8) {
        h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + d));
    } else {
        uint16_t t[8] = {0};
        if (left > 0) memcpy(t, (const uint16_t *)row + d, (size_t)left * sizeof(uint16_t));
        h = _mm_loadu_si128((const __m128i *)t);
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// R (1..4, a constant after inlining) query rows against 8 keys at a time (see scores_rows_512).
VLM_INLINE VLM_AVX2 void scores_rows_256(const int R, const int W, const float *const *q, const char *k, int64_t ldk,
                                         int64_t nk, int64_t D, float scale, float *s, int64_t lds) {
    const __m256 sc = _mm256_set1_ps(scale);
    for (int64_t j0 = 0; j0 < nk; j0 += 8) {
        int64_t nb = nk - j0 < 8 ? nk - j0 : 8;
        const char *kr[8];
#pragma clang loop unroll(full)
        for (int jj = 0; jj < 8; jj++) kr[jj] = k + (j0 + (jj < nb ? jj : nb - 1)) * ldk * W;
        // Keys 16 rows ahead (see scores_rows_512).
        for (int64_t jj = j0 + 16; jj < j0 + 24 && jj < nk; jj++)
            for (int64_t d = 0; d < D * W; d += 64) _mm_prefetch(k + jj * ldk * W + d, _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m256 a[8];
#pragma clang loop unroll(full)
            for (int jj = 0; jj < 8; jj++) a[jj] = _mm256_setzero_ps();
            for (int64_t d = 0; d < D; d += 8) {
                __m256i m = tail_mask_256(D - d);
                __m256 qv = _mm256_maskload_ps(q[r] + d, m);
#pragma clang loop unroll(full)
                for (int jj = 0; jj < 8; jj++) a[jj] = _mm256_fmadd_ps(qv, kv_load_256(W, kr[jj], d, D - d, m), a[jj]);
            }
            _mm256_maskstore_ps(s + (int64_t)r * lds + j0, tail_mask_256(nb), _mm256_mul_ps(sum8_256(a), sc));
        }
    }
}

VLM_INLINE VLM_AVX2 void scores_any_256(const int W, int rows, const float *const *q, const char *k, int64_t ldk,
                                        int64_t nk, int64_t D, float scale, float *s, int64_t lds) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        float *sr = s + (int64_t)r0 * lds;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: scores_rows_256(1, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        case 2: scores_rows_256(2, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        case 3: scores_rows_256(3, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        default: scores_rows_256(4, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        }
    }
}

static VLM_AVX2 void scores_256(int rows, const float *const *q, const float *k, int64_t ldk, int64_t nk, int64_t D,
                                float scale, float *s, int64_t lds) {
    scores_any_256(4, rows, q, (const char *)k, ldk, nk, D, scale, s, lds);
}

static VLM_AVX2 void scores_bf16_256(int rows, const float *const *q, const uint16_t *k, int64_t ldk, int64_t nk,
                                     int64_t D, float scale, float *s, int64_t lds) {
    scores_any_256(2, rows, q, (const char *)k, ldk, nk, D, scale, s, lds);
}

// The largest of x[0..n): max_ps(x, acc) keeps acc where x is NaN (NaN skipped, as in the scalar loop); lanes past
// the end are -inf.
static VLM_AVX2 float row_max_256(const float *x, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 acc = ninf;
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 xv = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
        acc = _mm256_max_ps(xv, acc);
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

static VLM_AVX2 float exp_sum_256(float *x, int64_t n, float mx) {
    __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps(), ninf = _mm256_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 8) {
        __m256i m = tail_mask_256(n - i);
        __m256 xv = _mm256_maskload_ps(x + i, m);
        __m256 live = _mm256_and_ps(_mm256_castsi256_ps(m), _mm256_cmp_ps(xv, ninf, _CMP_NEQ_OQ));
        __m256 e = _mm256_and_ps(live, exp_256(_mm256_sub_ps(xv, vm)));  // masked keys: exactly 0
        acc = _mm256_add_ps(acc, e);
        _mm256_maskstore_ps(x + i, m, e);
    }
    return hsum_256(acc);
}

// R (1..4, a constant after inlining) rows x 16 output columns (2R accumulators) per pass over the keys.
VLM_INLINE VLM_AVX2 void weighted_rows_256(const int R, const int W, const float *p, int64_t ldp, const char *v,
                                           int64_t ldv, int64_t nk, int64_t D, float *o, int64_t ldo) {
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
        __m256i m0 = tail_mask_256(D - d0), m1 = tail_mask_256(D - d0 - 8);
        __m256 acc[4][2];
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        const char *vr = v + d0 * W;
        for (int64_t j = 0; j < nk; j++, vr += ldv * W) {
            if (d0 == 0 && j + 16 < nk)  // the first pass brings whole rows in, 16 rows ahead; the others find them
                for (int64_t d = 0; d < D * W; d += 64) _mm_prefetch(vr + 16 * ldv * W + d, _MM_HINT_T0);
            __m256 v0 = kv_load_256(W, vr, 0, D - d0, m0), v1 = kv_load_256(W, vr, 8, D - d0 - 8, m1);
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) {
                if (r >= R) break;
                __m256 w = _mm256_broadcast_ss(p + (int64_t)r * ldp + j);
                acc[r][0] = _mm256_fmadd_ps(w, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(w, v1, acc[r][1]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) {
            if (r >= R) break;
            float *orow = o + (int64_t)r * ldo + d0;
            _mm256_maskstore_ps(orow, m0, acc[r][0]);
            _mm256_maskstore_ps(orow + 8, m1, acc[r][1]);
        }
    }
}

VLM_INLINE VLM_AVX2 void weighted_any_256(const int W, int rows, const float *p, int64_t ldp, const char *v, int64_t ldv,
                                          int64_t nk, int64_t D, float *o, int64_t ldo) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        const float *pr = p + (int64_t)r0 * ldp;
        float *orow = o + (int64_t)r0 * ldo;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: weighted_rows_256(1, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        case 2: weighted_rows_256(2, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        case 3: weighted_rows_256(3, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        default: weighted_rows_256(4, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        }
    }
}

static VLM_AVX2 void weighted_sum_256(int rows, const float *p, int64_t ldp, const float *v, int64_t ldv, int64_t nk,
                                      int64_t D, float *o, int64_t ldo) {
    weighted_any_256(4, rows, p, ldp, (const char *)v, ldv, nk, D, o, ldo);
}

static VLM_AVX2 void weighted_sum_bf16_256(int rows, const float *p, int64_t ldp, const uint16_t *v, int64_t ldv,
                                           int64_t nk, int64_t D, float *o, int64_t ldo) {
    weighted_any_256(2, rows, p, ldp, (const char *)v, ldv, nk, D, o, ldo);
}

const vlm_attn_kernels vlm_attn_kernels_avx2 = {
    .scores = scores_256, .row_max = row_max_256, .exp_sum = exp_sum_256, .weighted_sum = weighted_sum_256,
    .scores_bf16 = scores_bf16_256, .weighted_sum_bf16 = weighted_sum_bf16_256,
};
