// Group-wise quantized weights (I8, I4; layout: kernels_internal.h): the reference quantizer, packing,
// dequantization, and the format descriptors.
//
// Why weight-only with fp32 activations: decode is bound by the bytes of weights streamed per token, so 1 or
// 0.5 bytes per weight (plus 4/group for scales) is what buys speed; keeping activations and accumulation in
// float32 keeps the only error the weights' rounding, which vlm_quantize_naive defines exactly.
// Why I4 carries a zero point: GPTQ, AWQ and compressed-tensors 4-bit checkpoints store w = s * (q - z) with
// q, z in [0, 15], so the same panels can hold them without re-rounding, and round-to-nearest with the range
// [min(0, w), max(0, w)] uses all 16 levels on skewed groups (symmetric 4-bit has 15 and wastes one side).
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

// One group of n values: the scale, zero point and codes of vlm_quantize_naive's definition.
static void quantize_group(const float *w, int64_t n, int bits, int8_t *q, float *scale, uint8_t *zero) {
    if (bits == 8) {
        float a = 0.0f;
        for (int64_t i = 0; i < n; i++) a = fmaxf(a, fabsf(w[i]));
        float s = a > 0.0f ? a / 127.0f : 1.0f;
        for (int64_t i = 0; i < n; i++) {
            float r = nearbyintf(w[i] / s);
            q[i] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        }
        *scale = s;
        *zero = 0;
        return;
    }
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < n; i++) { lo = fminf(lo, w[i]); hi = fmaxf(hi, w[i]); }
    float s = hi > lo ? (hi - lo) / 15.0f : 1.0f;
    float zf = nearbyintf(-lo / s);
    zf = zf > 15.0f ? 15.0f : zf < 0.0f ? 0.0f : zf;
    for (int64_t i = 0; i < n; i++) {
        float r = nearbyintf(w[i] / s) + zf;
        q[i] = (int8_t)(r > 15.0f ? 15.0f : r < 0.0f ? 0.0f : r);
    }
    *scale = s;
    *zero = (uint8_t)zf;
}

int vlm_quantize_naive(const float *W, int64_t N, int64_t K, int bits, int64_t group, int8_t *q, float *scales,
                       uint8_t *zeros) {
    if (!W || !q || !scales || (bits != 4 && bits != 8) || (bits == 4 && !zeros) || group < 1 || N < 0 || K < 0) return -1;
    int64_t G = (K + group - 1) / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            int64_t k0 = g * group, len = K - k0 < group ? K - k0 : group;
            uint8_t z;
            quantize_group(W + n * K + k0, len, bits, q + n * K + k0, &scales[n * G + g], &z);
            if (zeros) zeros[n * G + g] = z;
        }
    return 0;
}

// Writes one group of codes (len values along k), its scale and zero point as column j of panel pn.
static void store_group(vlm_packed_weight *w, int64_t pn, int64_t g, int j, const int8_t *q, int64_t len, float s,
                        uint8_t z) {
    unsigned char *blk = (unsigned char *)vlm_qblock(w, pn, g), *codes = blk + vlm_qcodes_offset(w->dtype);
    memcpy(blk + 4 * j, &s, 4);
    if (w->dtype == VLM_WEIGHT_I8) {
        for (int64_t i = 0; i < len; i++) codes[i * VLM_NR + j] = (unsigned char)q[i];
        return;
    }
    blk[4 * VLM_NR + j] = z;
    for (int64_t i = 0; i < len; i++) {
        int shift;
        unsigned char *b = codes + vlm_i4_byte(w, i, j, &shift);
        *b = (unsigned char)((*b & (0xF0 >> shift)) | ((unsigned)q[i] << shift));
    }
}

void vlm_quant_pack_rows(vlm_packed_weight *w, int64_t pn, int64_t c0, int64_t c1, const float *rows, int64_t ldrows) {
    int bits = w->dtype == VLM_WEIGHT_I4 ? 4 : 8;
    int64_t n0 = pn * VLM_NR;
    int8_t q[4096];  // group <= 4096 (vlm_packed_weight_create_grouped)
    for (int64_t c = c0; c < c1; c++) {
        const float *src = rows + (c - c0) * ldrows;
        for (int64_t g = 0; g < w->ngroups; g++) {
            int64_t k0 = g * w->group, len = w->K - k0 < w->group ? w->K - k0 : w->group;
            float s;
            uint8_t z;
            quantize_group(src + k0, len, bits, q, &s, &z);
            store_group(w, pn, g, (int)(c - n0), q, len, s, z);
        }
    }
}

int vlm_pack_quantized_rows(vlm_packed_weight *w, int64_t row0, const int8_t *q, const float *scales,
                            const uint8_t *zeros, int64_t rows) {
    if (!w || !q || !scales || !vlm_dtype_quantized(w->dtype) || (w->dtype == VLM_WEIGHT_I4 && !zeros)) return -1;
    if (row0 < 0 || rows < 0 || row0 > w->N - rows) return -1;
    int i4 = w->dtype == VLM_WEIGHT_I4;
    if (i4)
        for (int64_t i = 0; i < rows * w->K; i++)
            if (q[i] < 0 || q[i] > 15) return -1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t c = row0 + r;
        for (int64_t g = 0; g < w->ngroups; g++) {
            int64_t k0 = g * w->group, len = w->K - k0 < w->group ? w->K - k0 : w->group;
            int64_t at = r * w->ngroups + g;
            store_group(w, c / VLM_NR, g, (int)(c % VLM_NR), q + r * w->K + k0, len, scales[at], i4 ? zeros[at] : 0);
        }
    }
    return 0;
}

float vlm_quant_get(const vlm_packed_weight *w, int64_t p, int64_t k, int j) {
    int64_t g = k / w->group, i = k % w->group;
    const unsigned char *blk = vlm_qblock(w, p, g), *codes = blk + vlm_qcodes_offset(w->dtype);
    float s;
    memcpy(&s, blk + 4 * j, 4);
    if (w->dtype == VLM_WEIGHT_I8) return s * (float)(int8_t)codes[i * VLM_NR + j];
    int shift;
    int qv = (codes[vlm_i4_byte(w, i, j, &shift)] >> shift) & 15, z = blk[4 * VLM_NR + j];
    return s * (float)(qv - z);
}

void vlm_quant_dequant_slice_naive(const vlm_packed_weight *w, int64_t p, int64_t k0, int64_t kc, float *dst) {
    for (int64_t kk = 0; kk < kc; kk++)
        for (int j = 0; j < VLM_NR; j++) dst[kk * VLM_NR + j] = vlm_quant_get(w, p, k0 + kk, j);
}

void vlm_quant_xsum(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *w, float *xs) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t g = 0; g < w->ngroups; g++) {
            int64_t k0 = g * w->group, k1 = k0 + w->group < w->K ? k0 + w->group : w->K;
            float s = 0.0f;
            for (int64_t k = k0; k < k1; k++) s += X[m * ldx + k];
            xs[m * w->ngroups + g] = s;
        }
}

// MARK: Format descriptors

static const vlm_weight_format formats[] = {
    {VLM_WEIGHT_F32, "f32", 32, VLM_NR, 0, 0, 0, "32-row panels, k-major, float32",
     "float32, read in place", "fp32 bias + activation"},
    {VLM_WEIGHT_BF16, "bf16", 16, VLM_NR, 0, 0, 0, "32-row panels of k pairs (vdpbf16ps operand layout), K padded to even",
     "float32, read in place; weights widened exactly", "fp32 bias + activation"},
    {VLM_WEIGHT_I8, "i8", 8, VLM_NR, 1, 32, 0,
     "32-row panels, k in groups; per group: 32 fp32 scales, then one 32-byte int8 row per k",
     "float32 (weight-only): sum x q per group in fp32, times the scale; or, marked int8-compute (vlm_linear_i8), "
     "int8 per token and group (symmetric, dynamic), int32 sums per group",
     "fp32 bias + activation; int8 compute: sum_g s_g * (int32 sum * the activation group's scale), + bias, activation"},
    {VLM_WEIGHT_F16, "f16", 16, VLM_NR, 0, 0, 0, "32-row panels, k-major, binary16",
     "float32, read in place; weights widened exactly", "fp32 bias + activation"},
    {VLM_WEIGHT_I4, "i4", 4, VLM_NR, 1, 32, 1,
     "32-row panels, k in groups; per group: 32 fp32 scales, 32 uint8 zero points, then one 16-byte row of "
     "nibbles per k (column j in byte 4(j%4) + j/8, high nibble for j%8 >= 4)",
     "float32 (weight-only); s * (sum x q - z * sum x) per group", "fp32 bias + activation"},
};

const vlm_weight_format *vlm_weight_format_info(vlm_weight_dtype dtype) {
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].dtype == dtype) return &formats[i];
    return NULL;
}

const char *vlm_weight_format_kernel(vlm_weight_dtype dtype, int64_t M) {
    vlm_isa isa = vlm_active_isa();
    if (isa == VLM_ISA_NAIVE || !vlm_weight_format_info(dtype)) return "naive";
    int avx512 = isa == VLM_ISA_AVX512;
    if (!vlm_dtype_quantized(dtype)) {
        if (dtype == VLM_WEIGHT_F32) return avx512 ? "avx512 fp32 FMA 14x32" : "avx2 fp32 FMA 6x16";
        return avx512 ? "avx512 fp32 FMA 14x32, 16-bit weights widened" : "avx2 fp32 FMA 6x16, 16-bit weights widened";
    }
    // Decode: I8 has an AVX-512 GEMV (quant_avx512.c); I4 keeps the AVX2 one on every CPU (its 512-bit version was
    // slower on Zen 4), unless it is marked for int8 compute (vlm_w4a8_kernel names that path).
    if (M <= VLM_QGEMV_MAX_M) {
        if (dtype == VLM_WEIGHT_I8) return avx512 ? "avx512 int8 group GEMV, fp32 FMA" : "avx2 int8 group GEMV, fp32 FMA";
        return "avx2 int4 group GEMV, fp32 FMA";
    }
    return avx512 ? "avx2 dequantize to fp32 + avx512 fp32 FMA 14x32" : "avx2 dequantize to fp32 + avx2 fp32 FMA 6x16";
}
