// AVX-512 kernels of the few-query attention path (attention_decode.c; contracts in kernels_internal.h).
#include "kernels_internal.h"
#include "simd_math.h"
#include <math.h>

VLM_INLINE VLM_AVX512 __mmask16 tail16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// Lane i of the result = the sum of the 16 lanes of a[i]: a transpose-add tree (four levels of two shuffles and one
// add per pair, then one permute: 46 instructions per 16 keys, where 16 horizontal reductions take ~150).
VLM_INLINE VLM_AVX512 __m512 sum16_512(const __m512 a[16]) {
    __m512 b[8], c[4], d[2];
#pragma clang loop unroll(full)
    for (int i = 0; i < 8; i++)  // b[i]: 128-bit blocks 0-1 hold partial sums of a[2i], blocks 2-3 of a[2i+1]
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
#pragma clang loop unroll(full)
    for (int i = 0; i < 4; i++)  // c[i]: block t holds four partial sums of a[4i+t]
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
#pragma clang loop unroll(full)
    for (int i = 0; i < 2; i++)  // d[i]: in block t, lanes 0-1 are partial sums of a[8i+t], lanes 2-3 of a[8i+4+t]
        d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // e: lane 4t+u is the whole sum of a[4u+t]; the permute puts a[i]'s in lane i.
    __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), e);
}

// 16 keys' or values' elements d.. of a row: fp32 (W = 4 bytes) or bf16 (W = 2: the upper half of an fp32, widened
// exactly by a shift, so a bf16 cache gives the numbers the fp32 kernel gives on the widened rows).
VLM_INLINE VLM_AVX512 __m512 kv_load_512(const int W, const char *row, int64_t d, __mmask16 m) {
    if (W == 4) return _mm512_maskz_loadu_ps(m, (const float *)row + d);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + d);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// R (1..4, a constant after inlining) query rows against 16 keys at a time: one accumulator per key, the block's 16
// reduced together and stored as one vector. A short last block repeats its last key (computed, not stored). Each
// row's arithmetic is the same whatever R and its neighbours are (AttentionGQATests compares bitwise).
VLM_INLINE VLM_AVX512 void scores_rows_512(const int R, const int W, const float *const *q, const char *k, int64_t ldk,
                                           int64_t nk, int64_t D, float scale, float *s, int64_t lds) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int64_t j0 = 0; j0 < nk; j0 += 16) {
        int64_t nb = nk - j0 < 16 ? nk - j0 : 16;
        const char *kr[16];
#pragma clang loop unroll(full)
        for (int jj = 0; jj < 16; jj++) kr[jj] = k + (j0 + (jj < nb ? jj : nb - 1)) * ldk * W;
        // The next block's keys, a block ahead: each task reads a few KB per head, too short a stream for the
        // hardware prefetchers to ramp up before it ends.
        if (j0 + 16 < nk)
            for (int64_t jj = j0 + 16; jj < j0 + 32 && jj < nk; jj++)
                for (int64_t d = 0; d < D * W; d += 64) _mm_prefetch(k + jj * ldk * W + d, _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m512 a[16];
#pragma clang loop unroll(full)
            for (int jj = 0; jj < 16; jj++) a[jj] = _mm512_setzero_ps();
            for (int64_t d = 0; d < D; d += 16) {
                __mmask16 m = tail16(D - d);
                __m512 qv = _mm512_maskz_loadu_ps(m, q[r] + d);
#pragma clang loop unroll(full)
                for (int jj = 0; jj < 16; jj++) a[jj] = _mm512_fmadd_ps(qv, kv_load_512(W, kr[jj], d, m), a[jj]);
            }
            _mm512_mask_storeu_ps(s + (int64_t)r * lds + j0, tail16(nb), _mm512_mul_ps(sum16_512(a), sc));
        }
    }
}

VLM_INLINE VLM_AVX512 void scores_any_512(const int W, int rows, const float *const *q, const char *k, int64_t ldk,
                                          int64_t nk, int64_t D, float scale, float *s, int64_t lds) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        float *sr = s + (int64_t)r0 * lds;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: scores_rows_512(1, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        case 2: scores_rows_512(2, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        case 3: scores_rows_512(3, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        default: scores_rows_512(4, W, q + r0, k, ldk, nk, D, scale, sr, lds); break;
        }
    }
}

static VLM_AVX512 void scores_512(int rows, const float *const *q, const float *k, int64_t ldk, int64_t nk, int64_t D,
                                  float scale, float *s, int64_t lds) {
    scores_any_512(4, rows, q, (const char *)k, ldk, nk, D, scale, s, lds);
}

static VLM_AVX512 void scores_bf16_512(int rows, const float *const *q, const uint16_t *k, int64_t ldk, int64_t nk,
                                       int64_t D, float scale, float *s, int64_t lds) {
    scores_any_512(2, rows, q, (const char *)k, ldk, nk, D, scale, s, lds);
}

// max_ps(x, acc) returns acc when x is NaN: NaN scores are skipped, as the scalar `x > m ? x : m` does; lanes past
// the end are -inf.
static VLM_AVX512 float row_max_512(const float *x, int64_t n) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 acc = ninf;
    for (int64_t i = 0; i < n; i += 16) acc = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail16(n - i), x + i), acc);
    return _mm512_reduce_max_ps(acc);
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

// R (1..4, a constant after inlining) rows x 64 output columns (4R accumulators) per pass over the keys; each value
// row is loaded once per pass and only the rows there are get multiplied.
VLM_INLINE VLM_AVX512 void weighted_rows_512(const int R, const int W, const float *p, int64_t ldp, const char *v,
                                             int64_t ldv, int64_t nk, int64_t D, float *o, int64_t ldo) {
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
        __mmask16 m[4];
        for (int c = 0; c < 4; c++) m[c] = D - d0 - 16 * c > 0 ? tail16(D - d0 - 16 * c) : 0;
        __m512 acc[4][4];
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++)
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
        const char *vr = v + d0 * W;
        for (int64_t j = 0; j < nk; j++, vr += ldv * W) {
            if (j + 16 < nk)  // 16 rows ahead (see scores_rows_512): the 64 elements' cache lines
                for (int c = 0; c < W && d0 + 64 * c / W < D; c++) _mm_prefetch(vr + 16 * ldv * W + 64 * c, _MM_HINT_T0);
            __m512 vv[4];
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++) vv[c] = kv_load_512(W, vr, 16 * c, m[c]);
#pragma clang loop unroll(full)
            for (int r = 0; r < 4; r++) {
                if (r >= R) break;
                __m512 w = _mm512_set1_ps(p[(int64_t)r * ldp + j]);
#pragma clang loop unroll(full)
                for (int c = 0; c < 4; c++) acc[r][c] = _mm512_fmadd_ps(w, vv[c], acc[r][c]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < 4; r++) {
            if (r >= R) break;
            float *orow = o + (int64_t)r * ldo + d0;
#pragma clang loop unroll(full)
            for (int c = 0; c < 4; c++) _mm512_mask_storeu_ps(orow + 16 * c, m[c], acc[r][c]);
        }
    }
}

VLM_INLINE VLM_AVX512 void weighted_any_512(const int W, int rows, const float *p, int64_t ldp, const char *v, int64_t ldv,
                                            int64_t nk, int64_t D, float *o, int64_t ldo) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        const float *pr = p + (int64_t)r0 * ldp;
        float *orow = o + (int64_t)r0 * ldo;
        switch (rows - r0 < 4 ? rows - r0 : 4) {
        case 1: weighted_rows_512(1, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        case 2: weighted_rows_512(2, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        case 3: weighted_rows_512(3, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        default: weighted_rows_512(4, W, pr, ldp, v, ldv, nk, D, orow, ldo); break;
        }
    }
}

static VLM_AVX512 void weighted_sum_512(int rows, const float *p, int64_t ldp, const float *v, int64_t ldv, int64_t nk,
                                        int64_t D, float *o, int64_t ldo) {
    weighted_any_512(4, rows, p, ldp, (const char *)v, ldv, nk, D, o, ldo);
}

static VLM_AVX512 void weighted_sum_bf16_512(int rows, const float *p, int64_t ldp, const uint16_t *v, int64_t ldv,
                                             int64_t nk, int64_t D, float *o, int64_t ldo) {
    weighted_any_512(2, rows, p, ldp, (const char *)v, ldv, nk, D, o, ldo);
}

const vlm_attn_kernels vlm_attn_kernels_avx512 = {
    .scores = scores_512, .row_max = row_max_512, .exp_sum = exp_sum_512, .weighted_sum = weighted_sum_512,
    .scores_bf16 = scores_bf16_512, .weighted_sum_bf16 = weighted_sum_bf16_512,
};
