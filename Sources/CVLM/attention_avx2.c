// AVX2 kernels of the few-query attention path (attention_decode.c; contracts in kernels_internal.h).
#include "kernels_internal.h"
#include "simd_math.h"
#include <math.h>

VLM_INLINE VLM_AVX2 float hsum_256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Four query rows against one key at a time (see scores_512).
static VLM_AVX2 void scores_256(int rows, const float *const *q, const float *k, int64_t ldk, int64_t nk, int64_t D,
                                float scale, float *s, int64_t lds) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int rb = rows - r0 < 4 ? rows - r0 : 4;
        const float *q0 = q[r0], *q1 = q[r0 + (rb > 1)], *q2 = q[r0 + (rb > 2 ? 2 : 0)], *q3 = q[r0 + (rb > 3 ? 3 : 0)];
        for (int64_t j = 0; j < nk; j++) {
            const float *kr = k + j * ldk;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t d = 0; d < D; d += 8) {
                __m256i m = tail_mask_256(D - d);
                __m256 kv = _mm256_maskload_ps(kr + d, m);
                a0 = _mm256_fmadd_ps(_mm256_maskload_ps(q0 + d, m), kv, a0);
                a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q1 + d, m), kv, a1);
                a2 = _mm256_fmadd_ps(_mm256_maskload_ps(q2 + d, m), kv, a2);
                a3 = _mm256_fmadd_ps(_mm256_maskload_ps(q3 + d, m), kv, a3);
            }
            float *sj = s + (int64_t)r0 * lds + j;
            sj[0] = hsum_256(a0) * scale;
            if (rb > 1) sj[lds] = hsum_256(a1) * scale;
            if (rb > 2) sj[2 * lds] = hsum_256(a2) * scale;
            if (rb > 3) sj[3 * lds] = hsum_256(a3) * scale;
        }
    }
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

// Four rows x 16 output columns (8 accumulators) per pass over the keys.
static VLM_AVX2 void weighted_sum_256(int rows, const float *p, int64_t ldp, const float *v, int64_t ldv, int64_t nk,
                                      int64_t D, float *o, int64_t ldo) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int rb = rows - r0 < 4 ? rows - r0 : 4;
        const float *p0 = p + (int64_t)r0 * ldp;
        const float *p1 = p0 + (rb > 1 ? ldp : 0), *p2 = p0 + (rb > 2 ? 2 * ldp : 0), *p3 = p0 + (rb > 3 ? 3 * ldp : 0);
        for (int64_t d0 = 0; d0 < D; d0 += 16) {
            __m256i m0 = tail_mask_256(D - d0), m1 = tail_mask_256(D - d0 - 8);
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
                   a31 = a00;
            const float *vr = v + d0;
            for (int64_t j = 0; j < nk; j++, vr += ldv) {
                __m256 v0 = _mm256_maskload_ps(vr, m0), v1 = _mm256_maskload_ps(vr + 8, m1);
                __m256 w = _mm256_broadcast_ss(p0 + j);
                a00 = _mm256_fmadd_ps(w, v0, a00);
                a01 = _mm256_fmadd_ps(w, v1, a01);
                w = _mm256_broadcast_ss(p1 + j);
                a10 = _mm256_fmadd_ps(w, v0, a10);
                a11 = _mm256_fmadd_ps(w, v1, a11);
                w = _mm256_broadcast_ss(p2 + j);
                a20 = _mm256_fmadd_ps(w, v0, a20);
                a21 = _mm256_fmadd_ps(w, v1, a21);
                w = _mm256_broadcast_ss(p3 + j);
                a30 = _mm256_fmadd_ps(w, v0, a30);
                a31 = _mm256_fmadd_ps(w, v1, a31);
            }
            float *orow = o + (int64_t)r0 * ldo + d0;
            _mm256_maskstore_ps(orow, m0, a00);
            _mm256_maskstore_ps(orow + 8, m1, a01);
            if (rb > 1) { _mm256_maskstore_ps(orow + ldo, m0, a10); _mm256_maskstore_ps(orow + ldo + 8, m1, a11); }
            if (rb > 2) { _mm256_maskstore_ps(orow + 2 * ldo, m0, a20); _mm256_maskstore_ps(orow + 2 * ldo + 8, m1, a21); }
            if (rb > 3) { _mm256_maskstore_ps(orow + 3 * ldo, m0, a30); _mm256_maskstore_ps(orow + 3 * ldo + 8, m1, a31); }
        }
    }
}

const vlm_attn_kernels vlm_attn_kernels_avx2 = {
    .scores = scores_256, .exp_sum = exp_sum_256, .weighted_sum = weighted_sum_256,
};
