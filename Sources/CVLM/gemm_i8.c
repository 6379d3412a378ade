// int8 compute on I8 weights (W8A8): the definition (cvlm_kernels.h, vlm_linear_i8), its naive twin, and the
// choice of the per-ISA kernels (gemm_i8_avx2.c, gemm_i8_vnni.c; driver: gemm_lowp.c).
//
// Why this shape: the I8 panels already hold symmetric int8 codes with one fp32 scale per output row and group of
// k, so no second copy of the weights is needed. Each task re-lays out one 32-column panel (all of K) into the
// kernel's operand format in per-thread scratch -- int16 k-pairs for AVX2's vpmaddwd, u8 k-quads for VNNI's
// vpdpbusd -- and reuses it for every row tile, so the re-layout costs 1/M of the multiply-adds. Per group the
// int32 tile sums are scaled into fp32 (a product with the activation group's scale and an FMA with the weight's,
// per output and group); the bias comes last.
// Integer sums are exact, so every ISA and every tiling or thread count gives the same bits.
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

int vlm_packed_weight_set_compute(vlm_packed_weight *w, vlm_compute_mode mode) {
    if (!w) return -1;
    int ok = mode == VLM_COMPUTE_WEIGHT_ONLY || (mode == VLM_COMPUTE_INT8 && (w->dtype == VLM_WEIGHT_I8 || w->dtype == VLM_WEIGHT_I4)) ||
             (mode == VLM_COMPUTE_BF16 && w->dtype == VLM_WEIGHT_BF16);
    if (!ok) return -1;
    // I4 marked for W4A8 keeps its codes in the kernel's quad order; weight-only in the GEMV's lane order.
    int rc = vlm_i4_set_order(w, mode == VLM_COMPUTE_INT8);
    if (rc) return rc;
    w->compute = (int)mode;
    return 0;
}

vlm_compute_mode vlm_packed_weight_compute(const vlm_packed_weight *w) {
    return w ? (vlm_compute_mode)w->compute : VLM_COMPUTE_WEIGHT_ONLY;
}

// The kernel set for the CPU and the forced ISA: VNNI needs the AVX-512 path active and the CPU's AVX512_VNNI; with
// AVX512_VBMI too, its re-layout is one byte permute per 16 columns.
static const vlm_lowp_kernels *active_i8_kernels(void) {
    vlm_isa isa = vlm_active_isa();
    uint64_t f = vlm_cpu_features();
    if (isa == VLM_ISA_AVX512 && (f & VLM_CPU_AVX512_VNNI) && (f & VLM_CPU_AVX512_VBMI) && vlm_i8_kernels_vnni_vbmi.tile)
        return &vlm_i8_kernels_vnni_vbmi;
    if (isa == VLM_ISA_AVX512 && (f & VLM_CPU_AVX512_VNNI) && vlm_i8_kernels_vnni.tile)
        return &vlm_i8_kernels_vnni;
    if (isa >= VLM_ISA_AVX2 && vlm_i8_kernels_avx2.tile) return &vlm_i8_kernels_avx2;
    return NULL;
}

const char *vlm_i8_gemm_kernel(void) {
    const vlm_lowp_kernels *ks = active_i8_kernels();
    return ks ? ks->name : "naive";
}

// MARK: Reference

void vlm_quantize_rows_i8_naive(const float *X, int64_t M, int64_t ldx, int64_t K, int64_t group, int8_t *q, int64_t ldq,
                                float *sa) {
    int64_t ngroups = (K + group - 1) / group;
    for (int64_t m = 0; m < M; m++) {
        const float *x = X + m * ldx;
        int8_t *qm = q + m * ldq;
        for (int64_t g = 0; g < ngroups; g++) {
            int64_t k0 = g * group, k1 = k0 + group < K ? k0 + group : K;
            float a = 0.0f;
            int bad = 0;
            for (int64_t k = k0; k < k1; k++) {
                if (!isfinite(x[k])) bad = 1;
                a = fmaxf(a, fabsf(x[k]));
            }
            if (bad || a == 0.0f) {
                memset(qm + k0, 0, (size_t)(k1 - k0));
                sa[m * ngroups + g] = bad ? NAN : 0.0f;
                continue;
            }
            float inv = 127.0f / a;
            for (int64_t k = k0; k < k1; k++) {
                float r = nearbyintf(x[k] * inv);
                qm[k] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
            }
            sa[m * ngroups + g] = a / 127.0f;
        }
    }
}

int vlm_linear_i8_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                        vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I8) return -1;
    if (M <= 0) return 0;
    int64_t K = W->K;
    int8_t *q = vlm_aligned_alloc((size_t)K + 64);
    float *sa = vlm_aligned_alloc((size_t)W->ngroups * sizeof(float) + 64);
    if (!q || !sa) {
        vlm_aligned_free(q);
        vlm_aligned_free(sa);
        return VLM_ERR_NOMEM;
    }
    for (int64_t m = 0; m < M; m++) {
        vlm_quantize_rows_i8_naive(X + m * ldx, 1, ldx, K, W->group, q, K, sa);
        for (int64_t n = 0; n < W->N; n++) {
            int64_t p = n / VLM_NR;
            int j = (int)(n % VLM_NR);
            float c = 0.0f;
            for (int64_t g = 0; g < W->ngroups; g++) {
                const unsigned char *blk = vlm_qblock(W, p, g);
                const int8_t *codes = (const int8_t *)(blk + vlm_qcodes_offset(VLM_WEIGHT_I8));
                int64_t k0 = g * W->group, len = K - k0 < W->group ? K - k0 : W->group;
                int32_t acc = 0;
                for (int64_t i = 0; i < len; i++) acc += (int32_t)q[k0 + i] * (int32_t)codes[i * VLM_NR + j];
                float s;
                memcpy(&s, blk + 4 * j, 4);
                c = fmaf(s, (float)acc * sa[g], c);
            }
            float y = c;
            if (bias) y = y + bias[n];
            Y[m * ldy + n] = vlm_act_scalar(y, act);
        }
    }
    vlm_aligned_free(q);
    vlm_aligned_free(sa);
    return 0;
}

int vlm_linear_i8(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                  vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I8) return -1;
    if (M <= 0) return 0;
    const vlm_lowp_kernels *ks = active_i8_kernels();
    if (!ks) return vlm_linear_i8_naive(X, M, ldx, W, bias, act, Y, ldy);
    return vlm_lowp_linear(ks, X, M, ldx, W, bias, act, Y, ldy);
}
