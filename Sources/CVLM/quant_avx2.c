// AVX2 kernels of the group-quantized weight formats (I8, I4; layout: kernels_internal.h).
//
// Decode (M <= VLM_QGEMV_MAX_M rows) runs a fused GEMV: per panel, group and 16-column half, the codes of
// each k are widened to float32 (exact: |q| <= 127) and accumulated as sum x_k q_k in fp32 registers; at
// the end of the group the sum is scaled once: acc += s * (sum x q - z * sum x). That reads each code once
// and costs one FMA per weight and row, with the dequantization (s * (q - z)) folded into the group's end.
// Larger M dequantizes panel slices to fp32 (qdequant) for the fp32 micro-kernel (gemm_driver.c).
//
// Intrinsics, not assembly like the fp32 micro-kernels: debug builds compile these at -O0 (slow but correct);
// benchmarks use release builds. AVX-512 / VNNI variants are open slots: those CPUs run these kernels.
#include "kernels_internal.h"
#include <string.h>
#if defined(__x86_64__)
#include "simd_math.h"

#ifndef VLM_QPREFETCH
#define VLM_QPREFETCH 4096  // bytes ahead in the decode loop: measured to help the int4 stream on Zen 3
#endif

// Codes of one k row, half h (16 columns), widened to two vectors of 8 floats.
VLM_INLINE VLM_AVX2 void load_codes_i8(const unsigned char *row, int h, __m256 *w0, __m256 *w1) {
    const unsigned char *r = row + 16 * h;
    *w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)r)));
    *w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(r + 8))));
}

// I4: the row's four words in both 128-bit halves; vector c (columns 8c..8c+7) is each lane's word shifted
// right by 8c (lanes 0-3) or 8c + 4 (lanes 4-7), masked to 4 bits (layout: kernels_internal.h).
VLM_INLINE VLM_AVX2 __m256i i4_row(const unsigned char *row) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)row));
}
VLM_INLINE VLM_AVX2 __m256 i4_vector(__m256i v, int c) {
    __m256i count = _mm256_setr_epi32(8 * c, 8 * c, 8 * c, 8 * c, 8 * c + 4, 8 * c + 4, 8 * c + 4, 8 * c + 4);
    return _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(v, count), _mm256_set1_epi32(0x0F)));
}

VLM_INLINE VLM_AVX2 void load_codes_i4(const unsigned char *row, int h, __m256 *w0, __m256 *w1) {
    __m256i v = i4_row(row);
    *w0 = i4_vector(v, 2 * h);
    *w1 = i4_vector(v, 2 * h + 1);
}

// The GEMV's cheaper form: vector c as q * 2^e per lane, with no shift for c < 3 (AND keeps the nibble in place;
// q * 2^e has 4 significant bits, so the int32 -> float conversion is exact). The top nibble (c = 3, lanes 4-7
// at bits 28..31) would be negative as int32, so c = 3 shifts by 4 first. The sums over k then carry the exact
// power-of-two factor i4_unscale(c) removes at the group's end: results equal the unscaled ones bit for bit.
VLM_INLINE VLM_AVX2 __m256 i4_vector_scaled(__m256i v, int c) {
    int lo = c < 3 ? 8 * c : 20, hi = c < 3 ? 8 * c + 4 : 24;
    if (c == 3) v = _mm256_srli_epi32(v, 4);
    __m256i mask = _mm256_setr_epi32(0xF << lo, 0xF << lo, 0xF << lo, 0xF << lo, 0xF << hi, 0xF << hi, 0xF << hi, 0xF << hi);
    return _mm256_cvtepi32_ps(_mm256_and_si256(v, mask));
}
VLM_INLINE VLM_AVX2 __m256 i4_unscale(int c) {
    int lo = c < 3 ? 8 * c : 20, hi = c < 3 ? 8 * c + 4 : 24;
    float a = 1.0f / (float)(1 << lo), b = 1.0f / (float)(1 << hi);
    return _mm256_setr_ps(a, a, a, a, b, b, b, b);
}

// All 32 columns of one k row (I4: one load, both nibbles).
VLM_INLINE VLM_AVX2 void load_codes_full(const int i4, const unsigned char *row, __m256 w[4]) {
    if (!i4) {
        load_codes_i8(row, 0, &w[0], &w[1]);
        load_codes_i8(row, 1, &w[2], &w[3]);
        return;
    }
    __m256i v = i4_row(row);
    for (int c = 0; c < 4; c++) w[c] = i4_vector_scaled(v, c);
}

// acc[m * VLM_NR + 8 c + l] += s * (v[m][c] - z * xs[m, g]) for the 8-column vectors c in [c0, c1) of a block.
VLM_INLINE VLM_AVX2 void group_end(const int MR, const int i4, const unsigned char *blk, int c0, int c1,
                                   __m256 v[][4], const float *xs, int64_t ngroups, int64_t g, float *acc) {
    for (int c = c0; c < c1; c++) {
        __m256 s = _mm256_load_ps((const float *)blk + 8 * c), z = _mm256_setzero_ps();
        if (i4) z = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 4 * VLM_NR + 8 * c))));
        for (int m = 0; m < MR; m++) {
            float *a = acc + m * VLM_NR + 8 * c;
            __m256 t = v[m][c - c0];
            if (i4) t = _mm256_fnmadd_ps(z, _mm256_set1_ps(xs[m * ngroups + g]), _mm256_mul_ps(t, i4_unscale(c)));
            _mm256_store_ps(a, _mm256_fmadd_ps(s, t, _mm256_load_ps(a)));
        }
    }
}

// One group of a block for MR <= 2 rows, all 32 columns at once (4 or 8 accumulator chains; MR == 1 also
// alternates two sets over k so 8 FMAs are in flight and FMA latency does not bound the stream).
VLM_INLINE VLM_AVX2 void group_full(const int MR, const int i4, const float *X, int64_t ldx, int64_t k0, int64_t len,
                                    const unsigned char *blk, const float *xs, int64_t ngroups, int64_t g, float *acc) {
    const unsigned char *codes = blk + vlm_qcodes_offset(i4 ? VLM_WEIGHT_I4 : VLM_WEIGHT_I8);
    const int64_t stride = i4 ? VLM_NR / 2 : VLM_NR;
    __m256 ga[2][4], gb[4];
    for (int c = 0; c < 4; c++) ga[0][c] = ga[1][c] = gb[c] = _mm256_setzero_ps();
    int64_t i = 0;
    if (MR == 1)
        for (; i + 1 < len; i += 2) {
            _mm_prefetch((const char *)(codes + i * stride) + VLM_QPREFETCH, _MM_HINT_T0);
            __m256 w[4], u[4];
            load_codes_full(i4, codes + i * stride, w);
            load_codes_full(i4, codes + (i + 1) * stride, u);
            __m256 x0 = _mm256_broadcast_ss(X + k0 + i), x1 = _mm256_broadcast_ss(X + k0 + i + 1);
            for (int c = 0; c < 4; c++) {
                ga[0][c] = _mm256_fmadd_ps(x0, w[c], ga[0][c]);
                gb[c] = _mm256_fmadd_ps(x1, u[c], gb[c]);
            }
        }
    for (; i < len; i++) {
        __m256 w[4];
        load_codes_full(i4, codes + i * stride, w);
        for (int m = 0; m < MR; m++) {
            __m256 xb = _mm256_broadcast_ss(X + m * ldx + k0 + i);
            for (int c = 0; c < 4; c++) ga[m][c] = _mm256_fmadd_ps(xb, w[c], ga[m][c]);
        }
    }
    if (MR == 1)
        for (int c = 0; c < 4; c++) ga[0][c] = _mm256_add_ps(ga[0][c], gb[c]);
    group_end(MR, i4, blk, 0, 4, ga, xs, ngroups, g, acc);
}

// acc[m * VLM_NR + 16 h + c] += s * (sum_{k in group} x[m, k0 + k] q_k - z * xs[m]) for the half h of one block.
// MR is a compile-time constant at every call site, so the row loops unroll and gacc stays in registers.
VLM_INLINE VLM_AVX2 void group_half(const int MR, const int i4, const float *X, int64_t ldx, int64_t k0, int64_t len,
                                    const unsigned char *blk, int h, const float *xs, int64_t ngroups, int64_t g,
                                    float *acc) {
    const unsigned char *codes = blk + vlm_qcodes_offset(i4 ? VLM_WEIGHT_I4 : VLM_WEIGHT_I8);
    const int64_t stride = i4 ? VLM_NR / 2 : VLM_NR;
    __m256 gacc[VLM_QGEMV_MAX_M][4];
    for (int m = 0; m < MR; m++) gacc[m][0] = gacc[m][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < len; i++) {
        __m256 w0, w1;
        if (i4) {
            __m256i v = i4_row(codes + i * stride);
            w0 = i4_vector_scaled(v, 2 * h);
            w1 = i4_vector_scaled(v, 2 * h + 1);
        }
        else load_codes_i8(codes + i * stride, h, &w0, &w1);
        for (int m = 0; m < MR; m++) {
            __m256 xb = _mm256_broadcast_ss(X + m * ldx + k0 + i);
            gacc[m][0] = _mm256_fmadd_ps(xb, w0, gacc[m][0]);
            gacc[m][1] = _mm256_fmadd_ps(xb, w1, gacc[m][1]);
        }
    }
    group_end(MR, i4, blk, 2 * h, 2 * h + 2, gacc, xs, ngroups, g, acc);
}

VLM_INLINE VLM_AVX2 void qgemv_rows(const int MR, const int i4, const float *X, int64_t ldx, const vlm_packed_weight *w,
                                    const float *xs, int64_t p0, int64_t p1, const float *bias, vlm_activation act,
                                    float *Y, int64_t ldy) {
    float acc[VLM_QGEMV_MAX_M * VLM_NR] __attribute__((aligned(32)));
    for (int64_t p = p0; p < p1; p++) {
        memset(acc, 0, sizeof acc);
        for (int64_t g = 0; g < w->ngroups; g++) {
            const unsigned char *blk = vlm_qblock(w, p, g);
            int64_t k0 = g * w->group, len = w->K - k0 < w->group ? w->K - k0 : w->group;
            if (MR <= 2) {
                group_full(MR, i4, X, ldx, k0, len, blk, xs, w->ngroups, g, acc);
            } else {
                group_half(MR, i4, X, ldx, k0, len, blk, 0, xs, w->ngroups, g, acc);
                group_half(MR, i4, X, ldx, k0, len, blk, 1, xs, w->ngroups, g, acc);
            }
        }
        int64_t n0 = p * VLM_NR;
        int nr = (int)(w->N - n0 < VLM_NR ? w->N - n0 : VLM_NR);
        for (int m = 0; m < MR; m++) {
            float *a = acc + m * VLM_NR;
            if (bias || act != VLM_ACT_NONE) vlm_bias_act_avx2(a, nr, bias ? bias + n0 : NULL, act);
            memcpy(Y + m * ldy + n0, a, (size_t)nr * sizeof(float));
        }
    }
}

#define QGEMV_FN(MR, I4)                                                                                     \
    static VLM_AVX2 void qgemv_##MR##_##I4(const float *X, int64_t ldx, const vlm_packed_weight *w, const float *xs, \
                                           int64_t p0, int64_t p1, const float *bias, vlm_activation act, float *Y, \
                                           int64_t ldy) {                                                      \
        qgemv_rows(MR, I4, X, ldx, w, xs, p0, p1, bias, act, Y, ldy);                                          \
    }
QGEMV_FN(1, 0) QGEMV_FN(2, 0) QGEMV_FN(3, 0) QGEMV_FN(4, 0)
QGEMV_FN(1, 1) QGEMV_FN(2, 1) QGEMV_FN(3, 1) QGEMV_FN(4, 1)

typedef void (*qgemv_fn)(const float *, int64_t, const vlm_packed_weight *, const float *, int64_t, int64_t,
                         const float *, vlm_activation, float *, int64_t);
static const qgemv_fn qgemv_table[2][VLM_QGEMV_MAX_M + 1] = {
    {NULL, qgemv_1_0, qgemv_2_0, qgemv_3_0, qgemv_4_0},
    {NULL, qgemv_1_1, qgemv_2_1, qgemv_3_1, qgemv_4_1},
};

void vlm_qgemv_avx2(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                    int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    if (M < 1 || M > VLM_QGEMV_MAX_M) return;
    qgemv_table[w->dtype == VLM_WEIGHT_I4][M](X, ldx, w, xs, p0, p1, bias, act, Y, ldy);
}

// dst[kk * VLM_NR + j] = s_j * (float)(q - z_j): the same single rounding as vlm_quant_get.
VLM_AVX2 void vlm_qdequant_avx2(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst) {
    int i4 = w->dtype == VLM_WEIGHT_I4;
    int64_t k = k0, end = k0 + kc;
    while (k < end) {
        int64_t g = k / w->group, i = k % w->group;
        int64_t stop = (g + 1) * w->group < end ? (g + 1) * w->group : end;
        const unsigned char *blk = vlm_qblock(w, p, g), *codes = blk + vlm_qcodes_offset(w->dtype);
        __m256 s[4], z[4];
        for (int c = 0; c < 4; c++) {
            s[c] = _mm256_load_ps((const float *)blk + 8 * c);
            z[c] = i4 ? _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 4 * VLM_NR + 8 * c))))
                      : _mm256_setzero_ps();
        }
        for (; k < stop; k++, i++) {
            __m256 q[4];
            if (i4 && w->i4_quads) {
                // Quad order: lane j of the two 32-byte halves is column j (low nibble) and j + 16 (high) over
                // four k; this row is byte i % 4 of each lane.
                const unsigned char *quad = codes + (i >> 2) * 64;
                __m256i a = _mm256_loadu_si256((const __m256i *)quad), b = _mm256_loadu_si256((const __m256i *)(quad + 32));
                __m128i lo = _mm_cvtsi32_si128((int)(8 * (i & 3))), hi = _mm_cvtsi32_si128((int)(8 * (i & 3) + 4));
                const __m256i nib = _mm256_set1_epi32(0x0F);
                q[0] = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(a, lo), nib));
                q[1] = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(b, lo), nib));
                q[2] = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(a, hi), nib));
                q[3] = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srl_epi32(b, hi), nib));
            } else if (i4) {
                load_codes_i4(codes + i * (VLM_NR / 2), 0, &q[0], &q[1]);
                load_codes_i4(codes + i * (VLM_NR / 2), 1, &q[2], &q[3]);
            } else {
                load_codes_i8(codes + i * VLM_NR, 0, &q[0], &q[1]);
                load_codes_i8(codes + i * VLM_NR, 1, &q[2], &q[3]);
            }
            float *d = dst + (k - k0) * VLM_NR;
            // q - z is exact (small integers); one rounding in the product, as in the scalar reader.
            for (int c = 0; c < 4; c++) _mm256_storeu_ps(d + 8 * c, _mm256_mul_ps(s[c], _mm256_sub_ps(q[c], z[c])));
        }
    }
}
#else
void vlm_qdequant_avx2(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst) {
    vlm_quant_dequant_slice_naive(w, p, k0, kc, dst);
}
void vlm_qgemv_avx2(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, const float *xs, int64_t p0,
                    int64_t p1, const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    (void)X; (void)M; (void)ldx; (void)w; (void)xs; (void)p0; (void)p1; (void)bias; (void)act; (void)Y; (void)ldy;
}
#endif
