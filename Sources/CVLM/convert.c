// Half and bfloat16 conversions. Widening is exact; narrowing rounds to nearest, ties to even, keeps NaNs
// quiet NaNs (never rounds a NaN payload into infinity) and saturates overflow to infinity (IEEE 754).
#include "kernels_internal.h"
#include <string.h>

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float vlm_f16_to_f32_scalar(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) return u2f(sign | 0x7F800000u | (man << 13));  // inf / NaN (payload kept)
    if (exp == 0) {
        // zero or subnormal: man * 2^-24, exact in float
        float v = (float)man * 5.9604644775390625e-8f;
        return u2f(sign | f2u(v));
    }
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t vlm_f32_to_f16_scalar(float f) {
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return sign | 0x7E00 | (uint16_t)((a >> 13) & 0x3FF);  // NaN, forced quiet
    if (a >= 0x477FF000u) return sign | 0x7C00;  // >= 65520 rounds to inf (also inf itself)
    if (a < 0x38800000u) {
        // Result is subnormal or zero: value = a * 2^24 units of 2^-24; round to nearest even.
        if (a < 0x33000000u) return sign;  // < 2^-25: rounds to 0 (2^-25 exactly ties to even 0)
        uint32_t e = a >> 23;              // 102..112
        uint32_t m = (a & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e;          // so that m >> shift is in units of 2^-24
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    // Normal: rebias exponent (127 -> 15), keep 10 mantissa bits, round to nearest even; a carry out of
    // the mantissa correctly bumps the exponent.
    uint32_t r = a - 0x38000000u;  // (127-15) << 23
    uint32_t q = r >> 13, rem = r & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return sign | (uint16_t)q;
}

uint16_t vlm_f32_to_bf16_scalar(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7FFFu + ((u >> 16) & 1);  // round to nearest even
    return (uint16_t)(u >> 16);
}

void vlm_f16_to_f32_naive(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = vlm_f16_to_f32_scalar(src[i]);
}
void vlm_f32_to_f16_naive(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = vlm_f32_to_f16_scalar(src[i]);
}
void vlm_bf16_to_f32_naive(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = u2f((uint32_t)src[i] << 16);
}
void vlm_f32_to_bf16_naive(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = vlm_f32_to_bf16_scalar(src[i]);
}

// Dispatching conversions (single-threaded: they run once per weight at load, memory bound).
void vlm_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (ks) ks->f16_to_f32(src, dst, n); else vlm_f16_to_f32_naive(src, dst, n);
}
void vlm_f32_to_f16(const float *src, uint16_t *dst, int64_t n) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (ks) ks->f32_to_f16(src, dst, n); else vlm_f32_to_f16_naive(src, dst, n);
}
void vlm_bf16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (ks) ks->bf16_to_f32(src, dst, n); else vlm_bf16_to_f32_naive(src, dst, n);
}
void vlm_f32_to_bf16(const float *src, uint16_t *dst, int64_t n) {
    const vlm_ops_kernels *ks = vlm_active_ops_kernels();
    if (ks) ks->f32_to_bf16(src, dst, n); else vlm_f32_to_bf16_naive(src, dst, n);
}
