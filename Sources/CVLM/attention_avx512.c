// AVX-512 kernels of the few-query attention path (attention_decode.c; contracts in kernels_internal.h).
#include "kernels_internal.h"
#include "simd_math.h"
#include <math.h>

VLM_INLINE VLM_AVX512 __mmask16 tail16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// Four query rows against one key at a time: the key row is loaded once per four rows. Rows past `rows` repeat
// the last one (computed, not stored).
static VLM_AVX512 void scores_512(int rows, const float *const *q, const float *k, int64_t ldk, int64_t nk, int64_t D,
                                  float scale, float *s, int64_t lds) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int rb = rows - r0 < 4 ? rows - r0 : 4;
        const float *q0 = q[r0], *q1 = q[r0 + (rb > 1)], *q2 = q[r0 + (rb > 2 ? 2 : 0)], *q3 = q[r0 + (rb > 3 ? 3 : 0)];
        for (int64_t j = 0; j < nk; j++) {
            const float *kr = k + j * ldk;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int64_t d = 0; d < D; d += 16) {
                __mmask16 m = tail16(D - d);
                __m512 kv = _mm512_maskz_loadu_ps(m, kr + d);
                a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q0 + d), kv, a0);
                a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q1 + d), kv, a1);
                a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q2 + d), kv, a2);
                a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q3 + d), kv, a3);
            }
            float *sj = s + (int64_t)r0 * lds + j;
            sj[0] = _mm512_reduce_add_ps(a0) * scale;
            if (rb > 1) sj[lds] = _mm512_reduce_add_ps(a1) * scale;
            if (rb > 2) sj[2 * lds] = _mm512_reduce_add_ps(a2) * scale;
            if (rb > 3) sj[3 * lds] = _mm512_reduce_add_ps(a3) * scale;
        }
    }
}

static VLM_AVX512 float exp_sum_512(float *x, int64_t n, float mx) {
    __m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps(), ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail16(n - i);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        __mmask16 live = _mm512_mask_cmp_ps_mask(m, xv, ninf, _CMP_NEQ_OQ);  // masked keys: exactly 0
        __m512 e = _mm512_maskz_mov_ps(live, exp_512(_mm512_sub_ps(xv, vm)));
        acc = _mm512_add_ps(acc, e);
        _mm512_mask_storeu_ps(x + i, m, e);
    }
    return _mm512_reduce_add_ps(acc);
}

// Four rows x 64 output columns (16 accumulators) per pass over the keys; each value row is loaded once per pass.
static VLM_AVX512 void weighted_sum_512(int rows, const float *p, int64_t ldp, const float *v, int64_t ldv, int64_t nk,
                                        int64_t D, float *o, int64_t ldo) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        int rb = rows - r0 < 4 ? rows - r0 : 4;
        const float *p0 = p + (int64_t)r0 * ldp;
        const float *p1 = p0 + (rb > 1 ? ldp : 0), *p2 = p0 + (rb > 2 ? 2 * ldp : 0), *p3 = p0 + (rb > 3 ? 3 * ldp : 0);
        for (int64_t d0 = 0; d0 < D; d0 += 64) {
            __mmask16 m[4];
            for (int c = 0; c < 4; c++) m[c] = D - d0 - 16 * c > 0 ? tail16(D - d0 - 16 * c) : 0;
            __m512 acc[4][4];
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++)
#pragma clang loop unroll(full)
                for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
            const float *vr = v + d0;
            for (int64_t j = 0; j < nk; j++, vr += ldv) {
                __m512 w0 = _mm512_set1_ps(p0[j]), w1 = _mm512_set1_ps(p1[j]), w2 = _mm512_set1_ps(p2[j]),
                       w3 = _mm512_set1_ps(p3[j]);
#pragma clang loop unroll(full)
                for (int c = 0; c < 4; c++) {
                    __m512 vv = _mm512_maskz_loadu_ps(m[c], vr + 16 * c);
                    acc[0][c] = _mm512_fmadd_ps(w0, vv, acc[0][c]);
                    acc[1][c] = _mm512_fmadd_ps(w1, vv, acc[1][c]);
                    acc[2][c] = _mm512_fmadd_ps(w2, vv, acc[2][c]);
                    acc[3][c] = _mm512_fmadd_ps(w3, vv, acc[3][c]);
                }
            }
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) {
                if (r >= rb) break;
                float *orow = o + (int64_t)(r0 + r) * ldo + d0;
#pragma clang loop unroll(full)
                for (int c = 0; c < 4; c++) _mm512_mask_storeu_ps(orow + 16 * c, m[c], acc[r][c]);
            }
        }
    }
}

const vlm_attn_kernels vlm_attn_kernels_avx512 = {
    .scores = scores_512, .exp_sum = exp_sum_512, .weighted_sum = weighted_sum_512,
};
