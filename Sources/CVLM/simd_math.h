// Vectorised elementary functions for the AVX-512 and AVX2 paths (private, header-only).
//
// exp: Cephes expf scheme (n = round(x log2 e), two-part Cody-Waite reduction, degree-6 polynomial),
//      ~1-2 ulp. Accepts an extra low part `lo` so callers can pass arguments carrying more than float
//      precision (used by erfc, where -z^2 is large and its rounding would dominate the error).
// erfc: Numerical Recipes' erfcc (Chebyshev fit in t = 1/(1 + z/2)), fractional error < 1.2e-7 for z >= 0.
//      GELU is then 0.5 x erfc(-x / sqrt 2) evaluated as 0.5 x (2 - erfc(z)) for x >= 0 and 0.5 x erfc(|z|)
//      for x < 0, which keeps full relative accuracy on the negative tail (torch: 0.5 x (1 + erf(x / sqrt 2))).
// sigmoid-based activations: 0.5 (1 + tanh u) == sigmoid(2u), so tanh-GELU, QuickGELU and SiLU are all
//      x / (1 + exp(-v)) with a true division (no reciprocal approximation).
#ifndef CVLM_SIMD_MATH_H
#define CVLM_SIMD_MATH_H
#include <immintrin.h>

#define VLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,f16c,avx2")))
#define VLM_AVX2 __attribute__((target("avx2,fma,f16c")))
#define VLM_INLINE static inline __attribute__((always_inline))

// Above ~88.72 exp overflows: clamping at 89 still yields 2^128 * p = inf, below -103.97 it is 0.
#define EXP_HI 89.0f
#define EXP_LO (-103.972084045410f)
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500E-4f
#define EXP_P1 1.3981999507E-3f
#define EXP_P2 8.3334519073E-3f
#define EXP_P3 4.1665795894E-2f
#define EXP_P4 1.6666665459E-1f
#define EXP_P5 5.0000001201E-1f

// MARK: AVX-512

VLM_INLINE VLM_AVX512 __m512 exp2_512(__m512 x, __m512 lo) {
    // (constant, x) operand order: min/max return the second operand for NaN, so NaN propagates.
    x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), x);
    x = _mm512_max_ps(_mm512_set1_ps(EXP_LO), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(x, lo), _mm512_set1_ps(LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    r = _mm512_add_ps(r, lo);
    __m512 p = _mm512_set1_ps(EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    // scalef handles the 2^n scaling including gradual underflow to subnormals and overflow to inf.
    return _mm512_scalef_ps(p, n);
}
VLM_INLINE VLM_AVX512 __m512 exp_512(__m512 x) { return exp2_512(x, _mm512_setzero_ps()); }

// erfc(z) for z = zh + zl >= 0 (zl a small correction).
VLM_INLINE VLM_AVX512 __m512 erfc_pos2_512(__m512 z, __m512 zl) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 zz = _mm512_mul_ps(z, z);
    // z^2 = zz + zz_lo: exact square of the high part plus the cross term 2 zh zl.
    __m512 zz_lo = _mm512_fmadd_ps(_mm512_add_ps(z, z), zl, _mm512_fmsub_ps(z, z, zz));
    // hi + lo = p - zz - zz_lo via Knuth's TwoSum (exact error of the rounded sum).
    __m512 a = _mm512_sub_ps(_mm512_setzero_ps(), zz);
    __m512 hi = _mm512_add_ps(a, p);
    __m512 bb = _mm512_sub_ps(hi, a);
    __m512 err = _mm512_add_ps(_mm512_sub_ps(a, _mm512_sub_ps(hi, bb)), _mm512_sub_ps(p, bb));
    __m512 lo = _mm512_sub_ps(err, zz_lo);
    return _mm512_mul_ps(t, exp2_512(hi, lo));
}

// 1 + erf(x / sqrt 2) = 2 Phi(x), the factor GELU multiplies 0.5 x by.
VLM_INLINE VLM_AVX512 __m512 gelu_factor_512(__m512 x) {
    // |z| = |x| / sqrt 2 as hi + lo (1/sqrt 2 split into two floats, products via FMA) so the large
    // exponent -z^2 inside erfc keeps ~float relative accuracy on the tail.
    __m512 zh = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f));
    __m512 zl = _mm512_fmadd_ps(x, _mm512_set1_ps(1.2101617e-08f), _mm512_fmsub_ps(x, _mm512_set1_ps(0.70710678118654752440f), zh));
    // Make both parts non-negative together (flip the signs of both when x < 0).
    __m512 s = _mm512_and_ps(x, _mm512_set1_ps(-0.0f));
    zh = _mm512_xor_ps(zh, s);
    zl = _mm512_xor_ps(zl, s);
    // erfc(10.5) underflows float; clamping keeps inf inputs finite inside (gelu(+inf) = inf, and
    // -inf * 0 = NaN like torch).
    __mmask16 big = _mm512_cmp_ps_mask(zh, _mm512_set1_ps(10.5f), _CMP_GT_OQ);
    zh = _mm512_mask_blend_ps(big, zh, _mm512_set1_ps(10.5f));
    zl = _mm512_maskz_mov_ps((__mmask16)~big, zl);
    __m512 e = erfc_pos2_512(zh, zl);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), e), e);  // 1 + erf(z)
}

VLM_INLINE VLM_AVX512 __m512 gelu_512(__m512 x) {
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), gelu_factor_512(x));
}

VLM_INLINE VLM_AVX512 __m512 x_sigmoid_512(__m512 x, __m512 v) {
    __m512 e = exp_512(_mm512_sub_ps(_mm512_setzero_ps(), v));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

VLM_INLINE VLM_AVX512 __m512 act_512(__m512 x, vlm_activation act) {
    switch (act) {
    case VLM_ACT_GELU: return gelu_512(x);
    case VLM_ACT_GELU_TANH: {
        // 2u = 2 sqrt(2/pi) (x + 0.044715 x^3)
        __m512 x2 = _mm512_mul_ps(x, x);
        __m512 inner = _mm512_fmadd_ps(_mm512_mul_ps(x2, x), _mm512_set1_ps(0.044715f), x);
        return x_sigmoid_512(x, _mm512_mul_ps(inner, _mm512_set1_ps(1.5957691216057308f)));
    }
    case VLM_ACT_QUICK_GELU: return x_sigmoid_512(x, _mm512_mul_ps(x, _mm512_set1_ps(1.702f)));
    case VLM_ACT_SILU: return x_sigmoid_512(x, x);
    case VLM_ACT_RELU: {
        // x < 0 ? 0 : x, so NaN passes through like torch.relu.
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_blend_ps(neg, x, _mm512_setzero_ps());
    }
    default: return x;
    }
}

// d act(z) / dz (training backward; vlm_act_derivative_scalar in ops_naive.c is the reference):
//   gelu: Phi(z) + z phi(z); sigmoid family with v = c z: s + c z s (1 - s), s = sigmoid(v);
//   gelu_tanh with s = sigmoid(2u): s + 2 z s (1 - s) u'(z), since 0.5 (1 + tanh u) = s and 1 - tanh^2 = 4 s (1 - s).
VLM_INLINE VLM_AVX512 __m512 sigmoid_512(__m512 v) {
    __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp_512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}
VLM_INLINE VLM_AVX512 __m512 dact_512(__m512 z, vlm_activation act) {
    __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case VLM_ACT_GELU: {
        __m512 pdf = _mm512_mul_ps(exp_512(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(z, z))),
                                   _mm512_set1_ps(0.39894228040143267794f));
        return _mm512_fmadd_ps(z, pdf, _mm512_mul_ps(_mm512_set1_ps(0.5f), gelu_factor_512(z)));
    }
    case VLM_ACT_GELU_TANH: {
        __m512 z2 = _mm512_mul_ps(z, z);
        __m512 u = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_mul_ps(z2, z), _mm512_set1_ps(0.044715f), z),
                                 _mm512_set1_ps(0.79788456080286535588f));
        __m512 du = _mm512_mul_ps(_mm512_fmadd_ps(z2, _mm512_set1_ps(3 * 0.044715f), one),
                                  _mm512_set1_ps(0.79788456080286535588f));
        __m512 s = sigmoid_512(_mm512_add_ps(u, u));
        __m512 g = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_sub_ps(one, s)), _mm512_mul_ps(_mm512_add_ps(z, z), du));
        return _mm512_add_ps(s, g);
    }
    case VLM_ACT_QUICK_GELU: case VLM_ACT_SILU: {
        __m512 c = _mm512_set1_ps(act == VLM_ACT_SILU ? 1.0f : 1.702f);
        __m512 v = _mm512_mul_ps(c, z), s = sigmoid_512(v);
        return _mm512_fmadd_ps(_mm512_mul_ps(v, s), _mm512_sub_ps(one, s), s);
    }
    case VLM_ACT_RELU: return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GT_OQ), one);
    default: return one;
    }
}

// One 32-column output row of a register tile: y[0:nr] = act(v + bias) under the column masks (bias NULL: none);
// bias0/bias1 are the bias's two halves loaded once per tile. The same operations as vlm_bias_act_avx512.
VLM_INLINE VLM_AVX512 void store_row_epilogue_512(float *y, __m512 v0, __m512 v1, __mmask16 m0, __mmask16 m1,
                                                  const float *bias, __m512 bias0, __m512 bias1, vlm_activation act) {
    if (bias) { v0 = _mm512_add_ps(v0, bias0); v1 = _mm512_add_ps(v1, bias1); }
    if (act != VLM_ACT_NONE) { v0 = act_512(v0, act); v1 = act_512(v1, act); }
    _mm512_mask_storeu_ps(y, m0, v0);
    _mm512_mask_storeu_ps(y + 16, m1, v1);
}

// Rows m < MR of one 32-column panel starting at column n0 (C[m][0]: columns n0..n0+15, C[m][1]: the next 16) into
// Y with the bias and activation; columns at N and past are not written (the decode GEMVs' epilogue).
VLM_INLINE VLM_AVX512 void store_panel_512(const int MR, __m512 C[][2], float *Y, int64_t ldy, int64_t n0, int64_t N,
                                           const float *bias, vlm_activation act) {
    int nr = (int)(N - n0 < 32 ? N - n0 : 32);
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFF : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (1u << (nr - 16)) - 1);
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias + n0) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + n0 + 16) : _mm512_setzero_ps();
    for (int m = 0; m < MR; m++) store_row_epilogue_512(Y + m * ldy + n0, C[m][0], C[m][1], m0, m1, bias, bias0, bias1, act);
}

// MARK: AVX2

VLM_INLINE VLM_AVX2 __m256 exp2_256(__m256 x, __m256 lo) {
    // (constant, x) operand order: min/max return the second operand for NaN, so NaN propagates.
    x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), x);
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(_mm256_add_ps(x, lo), _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    r = _mm256_add_ps(r, lo);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // 2^n in two halves (n in [-150, 128]) so each factor stays a normal float; gradual underflow via
    // the final multiply.
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i h1 = _mm256_srai_epi32(ni, 1);
    __m256i h2 = _mm256_sub_epi32(ni, h1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
VLM_INLINE VLM_AVX2 __m256 exp_256(__m256 x) { return exp2_256(x, _mm256_setzero_ps()); }

// erfc(z) for z = zh + zl >= 0 (zl a small correction).
VLM_INLINE VLM_AVX2 __m256 erfc_pos2_256(__m256 z, __m256 zl) {
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 zz = _mm256_mul_ps(z, z);
    // z^2 = zz + zz_lo: exact square of the high part plus the cross term 2 zh zl.
    __m256 zz_lo = _mm256_fmadd_ps(_mm256_add_ps(z, z), zl, _mm256_fmsub_ps(z, z, zz));
    // hi + lo = p - zz - zz_lo via Knuth's TwoSum (exact error of the rounded sum).
    __m256 a = _mm256_sub_ps(_mm256_setzero_ps(), zz);
    __m256 hi = _mm256_add_ps(a, p);
    __m256 bb = _mm256_sub_ps(hi, a);
    __m256 err = _mm256_add_ps(_mm256_sub_ps(a, _mm256_sub_ps(hi, bb)), _mm256_sub_ps(p, bb));
    __m256 lo = _mm256_sub_ps(err, zz_lo);
    return _mm256_mul_ps(t, exp2_256(hi, lo));
}

VLM_INLINE VLM_AVX2 __m256 gelu_factor_256(__m256 x) {
    // |z| = |x| / sqrt 2 as hi + lo (1/sqrt 2 split into two floats, products via FMA) so the large
    // exponent -z^2 inside erfc keeps ~float relative accuracy on the tail.
    __m256 zh = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f));
    __m256 zl = _mm256_fmadd_ps(x, _mm256_set1_ps(1.2101617e-08f), _mm256_fmsub_ps(x, _mm256_set1_ps(0.70710678118654752440f), zh));
    // Make both parts non-negative together (flip the signs of both when x < 0).
    __m256 s = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
    zh = _mm256_xor_ps(zh, s);
    zl = _mm256_xor_ps(zl, s);
    // erfc(10.5) underflows float; clamping keeps inf inputs finite inside (gelu(+inf) = inf, and
    // -inf * 0 = NaN like torch).
    __m256 big = _mm256_cmp_ps(zh, _mm256_set1_ps(10.5f), _CMP_GT_OQ);
    zh = _mm256_blendv_ps(zh, _mm256_set1_ps(10.5f), big);
    zl = _mm256_andnot_ps(big, zl);
    __m256 e = erfc_pos2_256(zh, zl);
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), e), e, neg);  // 1 + erf(z)
}

VLM_INLINE VLM_AVX2 __m256 gelu_256(__m256 x) {
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), gelu_factor_256(x));
}

VLM_INLINE VLM_AVX2 __m256 x_sigmoid_256(__m256 x, __m256 v) {
    __m256 e = exp_256(_mm256_sub_ps(_mm256_setzero_ps(), v));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

VLM_INLINE VLM_AVX2 __m256 act_256(__m256 x, vlm_activation act) {
    switch (act) {
    case VLM_ACT_GELU: return gelu_256(x);
    case VLM_ACT_GELU_TANH: {
        __m256 x2 = _mm256_mul_ps(x, x);
        __m256 inner = _mm256_fmadd_ps(_mm256_mul_ps(x2, x), _mm256_set1_ps(0.044715f), x);
        return x_sigmoid_256(x, _mm256_mul_ps(inner, _mm256_set1_ps(1.5957691216057308f)));
    }
    case VLM_ACT_QUICK_GELU: return x_sigmoid_256(x, _mm256_mul_ps(x, _mm256_set1_ps(1.702f)));
    case VLM_ACT_SILU: return x_sigmoid_256(x, x);
    case VLM_ACT_RELU: {
        __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_blendv_ps(x, _mm256_setzero_ps(), neg);
    }
    default: return x;
    }
}

// AVX2 twin of dact_512.
VLM_INLINE VLM_AVX2 __m256 sigmoid_256(__m256 v) {
    __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp_256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}
VLM_INLINE VLM_AVX2 __m256 dact_256(__m256 z, vlm_activation act) {
    __m256 one = _mm256_set1_ps(1.0f);
    switch (act) {
    case VLM_ACT_GELU: {
        __m256 pdf = _mm256_mul_ps(exp_256(_mm256_mul_ps(_mm256_set1_ps(-0.5f), _mm256_mul_ps(z, z))),
                                   _mm256_set1_ps(0.39894228040143267794f));
        return _mm256_fmadd_ps(z, pdf, _mm256_mul_ps(_mm256_set1_ps(0.5f), gelu_factor_256(z)));
    }
    case VLM_ACT_GELU_TANH: {
        __m256 z2 = _mm256_mul_ps(z, z);
        __m256 u = _mm256_mul_ps(_mm256_fmadd_ps(_mm256_mul_ps(z2, z), _mm256_set1_ps(0.044715f), z),
                                 _mm256_set1_ps(0.79788456080286535588f));
        __m256 du = _mm256_mul_ps(_mm256_fmadd_ps(z2, _mm256_set1_ps(3 * 0.044715f), one),
                                  _mm256_set1_ps(0.79788456080286535588f));
        __m256 s = sigmoid_256(_mm256_add_ps(u, u));
        __m256 g = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_sub_ps(one, s)), _mm256_mul_ps(_mm256_add_ps(z, z), du));
        return _mm256_add_ps(s, g);
    }
    case VLM_ACT_QUICK_GELU: case VLM_ACT_SILU: {
        __m256 c = _mm256_set1_ps(act == VLM_ACT_SILU ? 1.0f : 1.702f);
        __m256 v = _mm256_mul_ps(c, z), s = sigmoid_256(v);
        return _mm256_fmadd_ps(_mm256_mul_ps(v, s), _mm256_sub_ps(one, s), s);
    }
    case VLM_ACT_RELU: return _mm256_and_ps(_mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ), one);
    default: return one;
    }
}

// Mask of the first n (0..8) lanes for AVX2 masked loads/stores.
VLM_INLINE VLM_AVX2 __m256i tail_mask_256(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif
