// W4A8 decode: I4 weights x int8 activations in blocks of 32 (definition: vlm_linear_w4a8 in cvlm_kernels.h), its
// naive twin and the AVX512-VNNI + VBMI kernel.
//
// Why: the weight-only int4 GEMV (quant_avx2.c) widens every nibble to fp32 and pays an AND, a convert and an FMA per
// 8 weights; on two Zen 4 cores that tops out at ~34 GB/s of packed weights in cache -- about the machine's memory
// bandwidth, so int4 decode of a 1.7B model stayed at 73-77% of its roofline. With the activations in int8, one
// vpdpbusd multiplies 64 code x activation pairs: per 4 k rows x 32 columns (one 64-byte load) the kernel splits the
// nibbles (AND, shift + AND) and runs two vpdpbusd per row. vpdpbusd wants a column's 4 k codes in one 32-bit lane;
// the lane order of the weight-only GEMV keeps a k row's 32 columns together instead, and moving them costs two
// vpermt2b per 64 bytes, ~25% of the kernel's in-cache rate (Zen 4). So marking an I4 weight for int8 compute
// re-lays its codes once into quad order (kernels_internal.h), where the split nibbles already are the operands;
// lane-order weights (vlm_linear_w4a8 called on an unmarked weight) take the permutes.
// Activation blocks of 32 (llama.cpp's Q8_0) bound the rounding by each block's own range, not the token's.
// Integer sums are exact and the float steps are the definition's, so the kernel equals the naive twin bit for bit.
#include "kernels_internal.h"
#include <math.h>
#include <string.h>

#define W4A8_BLOCK 32
#ifndef W4A8_PREFETCH
#define W4A8_PREFETCH 8192
#endif

// MARK: Activation quantizer (the definition's first step; shared by both paths)

// Rows of X into q [M, kp] (zeros past K), d [M, nb] and xs [M, nb], nb = kp / 32.
static void w4a8_quantize_naive(const float *X, int64_t M, int64_t ldx, int64_t K, int64_t kp, int8_t *q, float *d,
                                int32_t *xs) {
    int64_t nb = kp / W4A8_BLOCK;
    for (int64_t m = 0; m < M; m++)
        for (int64_t b = 0; b < nb; b++) {
            const float *x = X + m * ldx + b * W4A8_BLOCK;
            int8_t *qb = q + m * kp + b * W4A8_BLOCK;
            int64_t n = K - b * W4A8_BLOCK < W4A8_BLOCK ? K - b * W4A8_BLOCK : W4A8_BLOCK;
            float a = 0.0f;
            int bad = 0;
            for (int64_t k = 0; k < n; k++) {
                if (!isfinite(x[k])) bad = 1;
                a = fmaxf(a, fabsf(x[k]));
            }
            memset(qb, 0, W4A8_BLOCK);
            int32_t sum = 0;
            if (!bad && a > 0.0f) {
                float inv = 127.0f / a;
                for (int64_t k = 0; k < n; k++) {
                    float r = nearbyintf(x[k] * inv);
                    qb[k] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
                    sum += qb[k];
                }
            }
            d[m * nb + b] = bad ? NAN : a > 0.0f ? a / 127.0f : 0.0f;
            xs[m * nb + b] = sum;
        }
}

// MARK: Reference

// Nibble code of column j at k (0..15): the I4 layout of kernels_internal.h, in either order.
static int i4_code(const vlm_packed_weight *w, int64_t p, int64_t k, int j) {
    int64_t g = k / w->group, i = k % w->group;
    const unsigned char *codes = vlm_qblock(w, p, g) + vlm_qcodes_offset(VLM_WEIGHT_I4);
    int shift;
    return (codes[vlm_i4_byte(w, i, j, &shift)] >> shift) & 15;
}

// Y for rows of already-quantized activations (the definition's sums, scalar).
static void w4a8_rows_naive(int64_t M, const int8_t *q, int64_t kp, const float *d, const int32_t *xs,
                            const vlm_packed_weight *w, const float *bias, vlm_activation act, float *Y, int64_t ldy) {
    int64_t nb = kp / W4A8_BLOCK;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < w->N; n++) {
            int64_t p = n / VLM_NR;
            int j = (int)(n % VLM_NR);
            float C = 0.0f;
            for (int64_t g = 0; g < w->ngroups; g++) {
                const unsigned char *blk = vlm_qblock(w, p, g);
                float s;
                memcpy(&s, blk + 4 * j, 4);
                int32_t z = blk[4 * VLM_NR + j];
                int64_t k0 = g * w->group, k1 = k0 + w->group < w->K ? k0 + w->group : w->K;
                float G = 0.0f;
                for (int64_t b0 = k0; b0 < k1; b0 += W4A8_BLOCK) {
                    int64_t b1 = b0 + W4A8_BLOCK < k1 ? b0 + W4A8_BLOCK : k1, b = b0 / W4A8_BLOCK;
                    int32_t acc = 0;
                    for (int64_t k = b0; k < b1; k++) acc += (int32_t)q[m * kp + k] * i4_code(w, p, k, j);
                    float t = (float)(acc - z * xs[m * nb + b]);
                    G = fmaf(d[m * nb + b], t, G);
                }
                C = fmaf(s, G, C);
            }
            Y[m * ldy + n] = vlm_act_scalar(C + (bias ? bias[n] : 0.0f), act);
        }
}

static int64_t w4a8_kpad(int64_t K) { return (K + W4A8_BLOCK - 1) / W4A8_BLOCK * W4A8_BLOCK; }

int vlm_linear_w4a8_naive(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                          vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I4) return -1;
    if (M <= 0) return 0;
    int64_t kp = w4a8_kpad(W->K), nb = kp / W4A8_BLOCK;
    unsigned char *buf = vlm_aligned_alloc((size_t)kp + 8 * (size_t)nb + 64);
    if (!buf) return VLM_ERR_NOMEM;
    int8_t *q = (int8_t *)buf;
    float *d = (float *)(buf + kp);
    int32_t *xs = (int32_t *)(buf + kp + 4 * nb);
    for (int64_t m = 0; m < M; m++) {
        w4a8_quantize_naive(X + m * ldx, 1, ldx, W->K, kp, q, d, xs);
        w4a8_rows_naive(1, q, kp, d, xs, W, bias, act, Y + m * ldy, ldy);
    }
    vlm_aligned_free(buf);
    return 0;
}

// MARK: AVX512-VNNI + VBMI

#if defined(__x86_64__)
#include "simd_math.h"
#define VLM_W4A8 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,fma,f16c,avx2")))

// vpermt2b indices: byte 4 j + t of half h (columns 16 h + j, k row t of the 64 loaded bytes) comes from the low
// nibbles (first table) or high nibbles (second, +64) of byte 16 t + 4 (col % 4) + col / 8 (kernels_internal.h):
// idx[h][4 j + t] = (col % 8 >= 4 ? 64 : 0) + 16 t + 4 (col % 4) + col / 8 with col = 16 h + j. A constant, so no
// call rebuilds it.
static const unsigned char w4a8_idx[2][64] __attribute__((aligned(64))) = {
    {0, 16, 32, 48, 4, 20, 36, 52, 8, 24, 40, 56, 12, 28, 44, 60, 64, 80, 96, 112, 68, 84, 100, 116, 72, 88, 104, 120, 76, 92, 108, 124, 1, 17, 33, 49, 5, 21, 37, 53, 9, 25, 41, 57, 13, 29, 45, 61, 65, 81, 97, 113, 69, 85, 101, 117, 73, 89, 105, 121, 77, 93, 109, 125},
    {2, 18, 34, 50, 6, 22, 38, 54, 10, 26, 42, 58, 14, 30, 46, 62, 66, 82, 98, 114, 70, 86, 102, 118, 74, 90, 106, 122, 78, 94, 110, 126, 3, 19, 35, 51, 7, 23, 39, 55, 11, 27, 43, 59, 15, 31, 47, 63, 67, 83, 99, 115, 71, 87, 103, 119, 75, 91, 107, 123, 79, 95, 111, 127},
};

// QUADS: the codes are in quad order (no permutes); else lane order.
VLM_INLINE VLM_W4A8 void w4a8_panels(const int MR, const int QUADS, const int8_t *q, int64_t kp, const float *d, const int32_t *xs,
                                     const vlm_packed_weight *w, int64_t p0, int64_t p1, const float *bias,
                                     vlm_activation act, float *Y, int64_t ldy) {
    const __m512i ia = _mm512_load_si512((const void *)w4a8_idx[0]), ib = _mm512_load_si512((const void *)w4a8_idx[1]);
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const int64_t nb = kp / W4A8_BLOCK;
    for (int64_t p = p0; p < p1; p++) {
        __m512 C[VLM_QGEMV_MAX_M][2];
        for (int m = 0; m < MR; m++) C[m][0] = C[m][1] = _mm512_setzero_ps();
        for (int64_t g = 0; g < w->ngroups; g++) {
            const unsigned char *blk = vlm_qblock(w, p, g), *codes = blk + vlm_qcodes_offset(VLM_WEIGHT_I4);
            int64_t k0 = g * w->group, len = w->K - k0 < w->group ? w->K - k0 : w->group;
            __m512 z0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 4 * VLM_NR))));
            __m512 z1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 4 * VLM_NR + 16))));
            __m512 G[VLM_QGEMV_MAX_M][2];
            for (int m = 0; m < MR; m++) G[m][0] = G[m][1] = _mm512_setzero_ps();
            for (int64_t b0 = 0; b0 < len; b0 += W4A8_BLOCK) {
                // Four k rows per step (the last group's rows are padded to four with zero codes, pack.c).
                int64_t steps = ((len - b0 < W4A8_BLOCK ? len - b0 : W4A8_BLOCK) + 3) / 4;
                __m512i I[VLM_QGEMV_MAX_M][2];
                for (int m = 0; m < MR; m++) I[m][0] = I[m][1] = _mm512_setzero_si512();
                for (int64_t t = 0; t < steps; t++) {
                    const unsigned char *rows = codes + (b0 + 4 * t) * (VLM_NR / 2);
                    _mm_prefetch((const char *)rows + W4A8_PREFETCH, _MM_HINT_T0);
                    __m512i v = _mm512_loadu_si512((const void *)rows);
                    __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
                    __m512i wa = lo, wb = hi;
                    if (!QUADS) {
                        wa = _mm512_permutex2var_epi8(lo, ia, hi);
                        wb = _mm512_permutex2var_epi8(lo, ib, hi);
                    }
                    for (int m = 0; m < MR; m++) {
                        int32_t quad;
                        memcpy(&quad, q + m * kp + k0 + b0 + 4 * t, 4);
                        __m512i a = _mm512_set1_epi32(quad);
                        I[m][0] = _mm512_dpbusd_epi32(I[m][0], wa, a);
                        I[m][1] = _mm512_dpbusd_epi32(I[m][1], wb, a);
                    }
                }
                int64_t b = (k0 + b0) / W4A8_BLOCK;
                for (int m = 0; m < MR; m++) {
                    __m512 x = _mm512_set1_ps((float)xs[m * nb + b]), db = _mm512_set1_ps(d[m * nb + b]);
                    // i - z xs is an integer below 2^24 in magnitude: exact however it is rounded.
                    G[m][0] = _mm512_fmadd_ps(db, _mm512_fnmadd_ps(z0, x, _mm512_cvtepi32_ps(I[m][0])), G[m][0]);
                    G[m][1] = _mm512_fmadd_ps(db, _mm512_fnmadd_ps(z1, x, _mm512_cvtepi32_ps(I[m][1])), G[m][1]);
                }
            }
            __m512 s0 = _mm512_loadu_ps((const float *)blk), s1 = _mm512_loadu_ps((const float *)blk + 16);
            for (int m = 0; m < MR; m++) {
                C[m][0] = _mm512_fmadd_ps(s0, G[m][0], C[m][0]);
                C[m][1] = _mm512_fmadd_ps(s1, G[m][1], C[m][1]);
            }
        }
        store_panel_512(MR, C, Y, ldy, p * VLM_NR, w->N, bias, act);
    }
}

// The activation quantizer of the definition, 16 lanes at a time: the same max, division, product, rint (roundscale
// to nearest even, as nearbyintf in the default rounding mode) and clamp as w4a8_quantize_naive, so the same codes.
static VLM_W4A8 void w4a8_quantize_512(const float *X, int64_t M, int64_t ldx, int64_t K, int64_t kp, int8_t *q,
                                       float *d, int32_t *xs) {
    int64_t nb = kp / W4A8_BLOCK;
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t m = 0; m < M; m++)
        for (int64_t b = 0; b < nb; b++) {
            const float *x = X + m * ldx + b * W4A8_BLOCK;
            int8_t *qb = q + m * kp + b * W4A8_BLOCK;
            int64_t n = K - b * W4A8_BLOCK < W4A8_BLOCK ? K - b * W4A8_BLOCK : W4A8_BLOCK;
            __mmask16 k0 = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
            __mmask16 k1 = (__mmask16)(n >= 32 ? 0xFFFF : n <= 16 ? 0 : (1u << (n - 16)) - 1);
            __m512 x0 = _mm512_maskz_loadu_ps(k0, x), x1 = _mm512_maskz_loadu_ps(k1, x + 16);
            // NaN (quiet or signalling) or an infinity in the block (fpclass 0x99).
            int bad = (_mm512_fpclass_ps_mask(x0, 0x99) | _mm512_fpclass_ps_mask(x1, 0x99)) != 0;
            float a = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, sign), _mm512_and_ps(x1, sign)));
            int32_t sum = 0;
            if (!bad && a > 0.0f) {
                __m512 inv = _mm512_set1_ps(127.0f / a);
                __m512 r0 = _mm512_roundscale_ps(_mm512_mul_ps(x0, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m512 r1 = _mm512_roundscale_ps(_mm512_mul_ps(x1, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                __m512i i0 = _mm512_cvtps_epi32(_mm512_max_ps(nlim, _mm512_min_ps(lim, r0)));
                __m512i i1 = _mm512_cvtps_epi32(_mm512_max_ps(nlim, _mm512_min_ps(lim, r1)));
                _mm_storeu_si128((__m128i *)qb, _mm512_cvtepi32_epi8(i0));
                _mm_storeu_si128((__m128i *)(qb + 16), _mm512_cvtepi32_epi8(i1));
                sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
            } else {
                memset(qb, 0, W4A8_BLOCK);
            }
            d[m * nb + b] = bad ? NAN : a > 0.0f ? a / 127.0f : 0.0f;
            xs[m * nb + b] = sum;
        }
}

#define W4A8_FN(MR, QUADS)                                                                                        \
    static VLM_W4A8 void w4a8_##MR##_##QUADS(const int8_t *q, int64_t kp, const float *d, const int32_t *xs,      \
                                             const vlm_packed_weight *w, int64_t p0, int64_t p1, const float *bias, \
                                             vlm_activation act, float *Y, int64_t ldy) {                         \
        w4a8_panels(MR, QUADS, q, kp, d, xs, w, p0, p1, bias, act, Y, ldy);                                       \
    }
W4A8_FN(1, 0) W4A8_FN(2, 0) W4A8_FN(3, 0) W4A8_FN(4, 0)
W4A8_FN(1, 1) W4A8_FN(2, 1) W4A8_FN(3, 1) W4A8_FN(4, 1)
typedef void (*w4a8_fn)(const int8_t *, int64_t, const float *, const int32_t *, const vlm_packed_weight *, int64_t,
                        int64_t, const float *, vlm_activation, float *, int64_t);
static const w4a8_fn w4a8_table[2][VLM_QGEMV_MAX_M + 1] = {
    {NULL, w4a8_1_0, w4a8_2_0, w4a8_3_0, w4a8_4_0},
    {NULL, w4a8_1_1, w4a8_2_1, w4a8_3_1, w4a8_4_1},
};
#define W4A8_FAST_FEATURES (VLM_CPU_AVX512_VNNI | VLM_CPU_AVX512_VBMI)

// Lane order -> quad order for n 64-byte runs of four k rows: the kernel's own nibble split and permutes, the two
// halves' codes merged into one byte (columns 16..31 in the high nibbles).
static VLM_W4A8 void i4_quads_512(unsigned char *codes, int64_t n) {
    const __m512i ia = _mm512_load_si512((const void *)w4a8_idx[0]), ib = _mm512_load_si512((const void *)w4a8_idx[1]);
    const __m512i nib = _mm512_set1_epi8(0x0F);
    for (int64_t r = 0; r < n; r++) {
        __m512i v = _mm512_loadu_si512((const void *)(codes + 64 * r));
        __m512i lo = _mm512_and_si512(v, nib), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        __m512i wa = _mm512_permutex2var_epi8(lo, ia, hi), wb = _mm512_permutex2var_epi8(lo, ib, hi);
        _mm512_storeu_si512((void *)(codes + 64 * r), _mm512_or_si512(wa, _mm512_slli_epi16(wb, 4)));
    }
}
#else
static const void *const w4a8_table[2][VLM_QGEMV_MAX_M + 1] = {{NULL}};
#define W4A8_FAST_FEATURES 0
#endif

static int w4a8_fast(void) {
    return W4A8_FAST_FEATURES != 0 && vlm_active_isa() == VLM_ISA_AVX512 &&
           (vlm_cpu_features() & W4A8_FAST_FEATURES) == W4A8_FAST_FEATURES;
}

const char *vlm_w4a8_kernel(void) { return w4a8_fast() ? "avx512-vnni+vbmi int4 x int8 vpdpbusd GEMV" : "naive"; }

int vlm_w4a8_fast_available(void) { return w4a8_fast(); }

// MARK: Code order

// One block's codes (rows padded to four, pack.c) from one order to the other, through a copy: every nibble is read
// where the old order keeps it and written where the new one does (vlm_i4_byte_in).
static void i4_reorder_scalar(unsigned char *codes, int64_t rows, int quads, unsigned char *tmp) {
    memcpy(tmp, codes, (size_t)rows * (VLM_NR / 2));
    memset(codes, 0, (size_t)rows * (VLM_NR / 2));
    for (int64_t i = 0; i < rows; i++)
        for (int j = 0; j < VLM_NR; j++) {
            int from, to;
            int64_t a = vlm_i4_byte_in(!quads, i, j, &from), b = vlm_i4_byte_in(quads, i, j, &to);
            codes[b] |= (unsigned char)(((tmp[a] >> from) & 15) << to);
        }
}

int vlm_i4_set_order(vlm_packed_weight *w, int quads) {
    quads = quads != 0;
    if (!w || w->dtype != VLM_WEIGHT_I4 || w->i4_quads == quads) return 0;
    // Forward with the kernel's own permutes where the CPU has them (loading a model re-lays every int4 weight).
    int simd = quads && W4A8_FAST_FEATURES != 0 && (vlm_cpu_features() & W4A8_FAST_FEATURES) == W4A8_FAST_FEATURES;
    unsigned char *tmp = simd ? NULL : vlm_aligned_alloc((size_t)w->group * (VLM_NR / 2));
    if (!simd && !tmp) return VLM_ERR_NOMEM;
    for (int64_t p = 0; p < w->npanels; p++)
        for (int64_t g = 0; g < w->ngroups; g++) {
            unsigned char *codes = (unsigned char *)vlm_qblock(w, p, g) + vlm_qcodes_offset(VLM_WEIGHT_I4);
            int64_t len = w->K - g * w->group < w->group ? w->K - g * w->group : w->group, rows = (len + 3) / 4 * 4;
#if defined(__x86_64__)
            if (simd) { i4_quads_512(codes, rows / 4); continue; }
#endif
            i4_reorder_scalar(codes, rows, quads, tmp);
        }
    vlm_aligned_free(tmp);
    w->i4_quads = quads;
    return 0;
}

// MARK: Driver

typedef struct {
    int64_t M, kp;
    const int8_t *q; const float *d; const int32_t *xs;
    const vlm_packed_weight *W; const float *bias; vlm_activation act;
    float *Y; int64_t ldy;
    int64_t ntasks;
} w4a8_job;

static void w4a8_task(void *ctx, int64_t t, int thread) {
    (void)thread;
    const w4a8_job *j = ctx;
    int64_t np = j->W->npanels, p0 = np * t / j->ntasks, p1 = np * (t + 1) / j->ntasks;
#if defined(__x86_64__)
    if (p1 > p0) w4a8_table[j->W->i4_quads != 0][j->M](j->q, j->kp, j->d, j->xs, j->W, p0, p1, j->bias, j->act, j->Y, j->ldy);
#endif
}

int vlm_linear_w4a8(const float *X, int64_t M, int64_t ldx, const vlm_packed_weight *W, const float *bias,
                    vlm_activation act, float *Y, int64_t ldy) {
    if (!W || W->dtype != VLM_WEIGHT_I4) return -1;
    if (M <= 0) return 0;
    if (!w4a8_fast()) return vlm_linear_w4a8_naive(X, M, ldx, W, bias, act, Y, ldy);
    for (int64_t m0 = 0; m0 < M; m0 += VLM_QGEMV_MAX_M) {
        int64_t rows = M - m0 < VLM_QGEMV_MAX_M ? M - m0 : VLM_QGEMV_MAX_M;
        int64_t kp = w4a8_kpad(W->K), nb = kp / W4A8_BLOCK;
        size_t bytes = (size_t)(rows * kp) + 8 * (size_t)(rows * nb) + 64;
        unsigned char *buf = (unsigned char *)vlm_scratch(VLM_SLOT_QXSUM, bytes / 4 + 16);
        if (!buf) return VLM_ERR_NOMEM;
        int8_t *q = (int8_t *)buf;
        float *d = (float *)(buf + rows * kp);
        int32_t *xs = (int32_t *)(buf + rows * kp + 4 * rows * nb);
#if defined(__x86_64__)
        w4a8_quantize_512(X + m0 * ldx, rows, ldx, W->K, kp, q, d, xs);
#endif
        w4a8_job j = { .M = rows, .kp = kp, .q = q, .d = d, .xs = xs, .W = W, .bias = bias, .act = act,
                       .Y = Y + m0 * ldy, .ldy = ldy };
        int64_t T = vlm_pool_threads();
        j.ntasks = T <= 1 ? 1 : T * 4;
        if (j.ntasks > W->npanels) j.ntasks = W->npanels;
        if (j.ntasks <= 1) w4a8_task(&j, 0, 0);
        else vlm_parallel_for(j.ntasks, w4a8_task, &j);
    }
    return 0;
}
