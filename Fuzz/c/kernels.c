// Differential libFuzzer harness for the C kernels' entry points: every input picks an operation, a shape, strides,
// an ISA path and a thread count, and the fast kernel's result is compared with its naive twin within the bound
// the kernel's contract states (cvlm_kernels.h). A difference beyond it, a wrong status, a write past the output or
// anything AddressSanitizer sees aborts the run, so libFuzzer keeps the input as a crash. Build and run with
// Scripts/fuzz-c.sh kernels SECONDS.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvlm_kernels.h"

// MARK: input decoding

typedef struct {
    const uint8_t *data;
    size_t size, at;
    uint64_t state;  // values come from a generator seeded by the whole input, so short inputs still fill tensors
} reader;

static uint8_t next_byte(reader *r) { return r->at < r->size ? r->data[r->at++] : 0; }

/// An integer in [lo, hi], from the next input byte.
static int64_t pick(reader *r, int64_t lo, int64_t hi) { return lo + (int64_t)(next_byte(r) % (uint64_t)(hi - lo + 1)); }

static uint64_t next_random(reader *r) {
    r->state ^= r->state << 13;
    r->state ^= r->state >> 7;
    r->state ^= r->state << 17;
    return r->state;
}

/// Values in [-1, 1], with a sprinkle of zeros and (when `specials`) exact powers of two far from 1.
static void fill(reader *r, float *x, int64_t n, int specials) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t u = next_random(r);
        float v = (float)((double)(u >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        if ((u & 63) == 0) v = 0;
        if (specials && (u & 255) == 1) v = (u & 256) ? 64.0f : 1.0f / 64;
        x[i] = v;
    }
}

static void *must_alloc(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) abort();
    return p;
}

/// Fails the run (libFuzzer records the input) with what differed.
static void fail(const char *what, int64_t index, double got, double want, double bound) {
    fprintf(stderr, "kernel fuzz: %s differs at %lld: %.9g vs naive %.9g (bound %.3g) on %s\n", what, (long long)index,
            got, want, bound, vlm_isa_name(vlm_active_isa()));
    abort();
}

static void expect_close(const char *what, const float *got, const float *want, const double *bound, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (isnan(g) || isnan(w)) {
            if (isnan(g) != isnan(w)) fail(what, i, g, w, bound[i]);
            continue;
        }
        if (fabs(g - w) > bound[i]) fail(what, i, g, w, bound[i]);
    }
}

static void expect_untouched(const char *what, const float *row, int64_t from, int64_t to) {
    for (int64_t i = from; i < to; i++)
        if (row[i] != 777.0f) fail(what, i, row[i], 777.0, 0);
}

// MARK: operations

/// vlm_sgemm against vlm_sgemm_naive: |C - C_naive| <= 4 (K + 8) eps (|alpha| sum_k |a b| + |beta c|).
static void check_sgemm(reader *r) {
    int ta = (int)pick(r, 0, 1), tb = (int)pick(r, 0, 1);
    int64_t M = pick(r, 1, 70), N = pick(r, 1, 90), K = pick(r, 1, 255) + 4 * pick(r, 0, 64);
    int64_t pad = pick(r, 0, 3);
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    float alpha = pick(r, 0, 3) == 0 ? -0.5f : 1.0f, beta = (float)pick(r, 0, 2) * 0.5f;
    float *A = must_alloc(sizeof(float) * (size_t)((ta ? K : M) * lda)), *B = must_alloc(sizeof(float) * (size_t)((tb ? N : K) * ldb));
    float *C = must_alloc(sizeof(float) * (size_t)(M * ldc)), *R = must_alloc(sizeof(float) * (size_t)(M * ldc));
    double *bound = must_alloc(sizeof(double) * (size_t)(M * ldc));
    fill(r, A, (ta ? K : M) * lda, 1);
    fill(r, B, (tb ? N : K) * ldb, 1);
    for (int64_t i = 0; i < M * ldc; i++) C[i] = R[i] = (i % ldc) < N ? (float)((i % 7) - 3) * 0.25f : 777.0f;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) s += fabs((double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]));
            bound[i * ldc + j] = 4.0 * (double)(K + 8) * FLT_EPSILON * (fabs(alpha) * s + fabs(beta * C[i * ldc + j])) + 1e-30;
        }
    if (vlm_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) != 0) fail("sgemm status", 0, 1, 0, 0);
    vlm_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    for (int64_t i = 0; i < M; i++) {
        expect_close("sgemm", C + i * ldc, R + i * ldc, bound + i * ldc, N);
        expect_untouched("sgemm row padding", C + i * ldc, N, ldc);
    }
    free(A), free(B), free(C), free(R), free(bound);
}

typedef int (*linear_fn)(const float *, int64_t, int64_t, const vlm_packed_weight *, const float *, vlm_activation, float *,
                         int64_t);

/// fast and naive on the same inputs, bit for bit (NaN matching NaN); activations other than none become ReLU.
static void check_bitwise_twins(const char *name, linear_fn fast, linear_fn naive, const float *X, int64_t M, int64_t ldx,
                                const vlm_packed_weight *P, const float *bias, vlm_activation act, float *Y, float *R,
                                int64_t ldy) {
    char what[64];
    for (int64_t i = 0; i < M * ldy; i++) Y[i] = R[i] = 777.0f;
    vlm_activation a = act == VLM_ACT_NONE ? VLM_ACT_NONE : VLM_ACT_RELU;
    snprintf(what, sizeof what, "%s status", name);
    if (fast(X, M, ldx, P, bias, a, Y, ldy) != 0 || naive(X, M, ldx, P, bias, a, R, ldy) != 0) fail(what, 0, 1, 0, 0);
    snprintf(what, sizeof what, "%s (bit for bit)", name);
    for (int64_t i = 0; i < M * ldy; i++)
        if (memcmp(&Y[i], &R[i], sizeof(float)) != 0 && !(isnan(Y[i]) && isnan(R[i]))) fail(what, i, Y[i], R[i], 0);
}

/// vlm_linear on a packed weight of any storage against vlm_linear_naive on the weight as stored (widened or
/// dequantized rows from vlm_packed_weight_get_row): the same products, float rounding apart. Then, on I8, I4 and
/// BF16 weights, the reduced-precision compute paths (int8 compute, W4A8, bf16 compute) against their naive twins.
static void check_linear(reader *r) {
    static const vlm_weight_dtype dtypes[] = {VLM_WEIGHT_F32, VLM_WEIGHT_BF16, VLM_WEIGHT_F16, VLM_WEIGHT_I8, VLM_WEIGHT_I4};
    vlm_weight_dtype dtype = dtypes[pick(r, 0, 4)];
    int64_t M = pick(r, 1, 40), N = pick(r, 1, 80), K = pick(r, 1, 200) + 32 * pick(r, 0, 6);
    int64_t ldx = K + pick(r, 0, 3), ldy = N + pick(r, 0, 3);
    int64_t group = 32 * pick(r, 1, 4);
    vlm_activation act = (vlm_activation)pick(r, 0, 5);
    int with_bias = (int)pick(r, 0, 1);
    float *W = must_alloc(sizeof(float) * (size_t)(N * K)), *X = must_alloc(sizeof(float) * (size_t)(M * ldx));
    float *bias = must_alloc(sizeof(float) * (size_t)N), *Wd = must_alloc(sizeof(float) * (size_t)(N * K));
    float *Y = must_alloc(sizeof(float) * (size_t)(M * ldy)), *R = must_alloc(sizeof(float) * (size_t)(M * ldy));
    double *bound = must_alloc(sizeof(double) * (size_t)(M * ldy));
    fill(r, W, N * K, 0);
    fill(r, X, M * ldx, 1);
    fill(r, bias, N, 0);
    vlm_packed_weight *P = (dtype == VLM_WEIGHT_I8 || dtype == VLM_WEIGHT_I4)
                               ? vlm_packed_weight_create_grouped(N, K, dtype, group)
                               : vlm_packed_weight_create(N, K, dtype);
    if (!P) abort();
    if (vlm_pack_weight_rows(P, 0, W, VLM_SRC_F32, N) != 0) fail("pack status", 0, 1, 0, 0);
    for (int64_t n = 0; n < N; n++)
        if (vlm_packed_weight_get_row(P, n, Wd + n * K) != 0) fail("get_row status", n, 1, 0, 0);
    if (vlm_packed_weight_get_row(P, N, Wd) != -1) fail("get_row out of range", N, 0, -1, 0);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = with_bias ? fabs(bias[j]) : 0;
            for (int64_t k = 0; k < K; k++) s += fabs((double)X[i * ldx + k] * Wd[j * K + k]);
            // I4 GEMV sums s (sum x q - z sum x) per group: its rounding scales with s (q + z) <= 2 (hi - lo), the
            // group's range, not with |s (q - z)|, which cancellation can make far smaller (found by this fuzzer:
            // I4, M 4, N 64, K 4, off by 8.5e-6 against a bound of 5.1e-6).
            if (dtype == VLM_WEIGHT_I4)
                for (int64_t g0 = 0; g0 < K; g0 += group) {
                    int64_t g1 = g0 + group < K ? g0 + group : K;
                    double lo = 0, hi = 0, xs = 0;
                    for (int64_t k = g0; k < g1; k++) {
                        lo = fmin(lo, Wd[j * K + k]), hi = fmax(hi, Wd[j * K + k]);
                        xs += fabs((double)X[i * ldx + k]);
                    }
                    s += 2 * (hi - lo) * xs;
                }
            // The activations' SIMD-vs-scalar difference is a few ulp of the output on top of the accumulation's.
            bound[i * ldy + j] = 4.0 * (double)(K + 8) * FLT_EPSILON * s + 1e-5 * (act != VLM_ACT_NONE) * (1 + s) + 1e-30;
        }
    for (int64_t i = 0; i < M * ldy; i++) Y[i] = R[i] = 777.0f;
    if (vlm_linear(X, M, ldx, P, with_bias ? bias : NULL, act, Y, ldy) != 0) fail("linear status", 0, 1, 0, 0);
    vlm_linear_naive(X, M, ldx, Wd, N, K, with_bias ? bias : NULL, act, R, ldy);
    for (int64_t i = 0; i < M; i++) {
        expect_close("linear (weight as stored)", Y + i * ldy, R + i * ldy, bound + i * ldy, N);
        expect_untouched("linear row padding", Y + i * ldy, N, ldy);
    }
    // int8 compute on I8 weights and W4A8 on I4 weights compute the same integers and float operations on every ISA:
    // bit for bit against their naive twins without an activation (ReLU is exact too).
    if (dtype == VLM_WEIGHT_I8)
        check_bitwise_twins("linear_i8", vlm_linear_i8, vlm_linear_i8_naive, X, M, ldx, P, with_bias ? bias : NULL, act, Y, R, ldy);
    if (dtype == VLM_WEIGHT_I4)
        check_bitwise_twins("linear_w4a8", vlm_linear_w4a8, vlm_linear_w4a8_naive, X, M, ldx, P, with_bias ? bias : NULL, act, Y, R, ldy);
    if (dtype == VLM_WEIGHT_BF16) {
        // Paths may order a pair's two products differently and flush denormals: the accumulation's rounding.
        for (int64_t i = 0; i < M * ldy; i++) Y[i] = R[i] = 777.0f;
        if (vlm_linear_bf16(X, M, ldx, P, with_bias ? bias : NULL, VLM_ACT_NONE, Y, ldy) != 0) fail("linear_bf16 status", 0, 1, 0, 0);
        if (vlm_linear_bf16_naive(X, M, ldx, P, with_bias ? bias : NULL, VLM_ACT_NONE, R, ldy) != 0) fail("linear_bf16_naive status", 0, 1, 0, 0);
        for (int64_t i = 0; i < M; i++) {
            expect_close("linear_bf16", Y + i * ldy, R + i * ldy, bound + i * ldy, N);
            expect_untouched("linear_bf16 row padding", Y + i * ldy, N, ldy);
        }
    }
    vlm_packed_weight_free(P);
    free(W), free(X), free(bias), free(Wd), free(Y), free(R), free(bound);
}

/// vlm_attention_gqa against its naive twin: outputs are convex combinations of values in [-1, 1], so 2e-5
/// absolute (as AttentionGQATests); key ranges (possibly empty), a key mask and row strides from the input.
static void check_attention(reader *r) {
    int64_t kvh = pick(r, 1, 3), group = pick(r, 1, 4), H = kvh * group;
    int64_t B = pick(r, 1, 2), Tq = pick(r, 1, 40), Tk = pick(r, 1, 300), D = pick(r, 1, 80);
    int64_t ldq = H * D + pick(r, 0, 3), ldk = kvh * D + pick(r, 0, 3), ldo = H * D + pick(r, 0, 3);
    int ranges = (int)pick(r, 0, 2), masked = (int)pick(r, 0, 1);
    float *q = must_alloc(sizeof(float) * (size_t)(B * Tq * ldq)), *k = must_alloc(sizeof(float) * (size_t)(B * Tk * ldk));
    float *v = must_alloc(sizeof(float) * (size_t)(B * Tk * ldk));
    float *out = must_alloc(sizeof(float) * (size_t)(B * Tq * ldo)), *ref = must_alloc(sizeof(float) * (size_t)(B * Tq * ldo));
    double *bound = must_alloc(sizeof(double) * (size_t)(B * Tq * ldo));
    int64_t *begin = must_alloc(sizeof(int64_t) * (size_t)Tq), *end = must_alloc(sizeof(int64_t) * (size_t)Tq);
    uint8_t *mask = must_alloc((size_t)(B * Tk));
    fill(r, q, B * Tq * ldq, 0);
    fill(r, k, B * Tk * ldk, 0);
    fill(r, v, B * Tk * ldk, 0);
    for (int64_t t = 0; t < Tq; t++) {
        if (ranges == 1) {  // causal, continuing a cache of Tk - Tq keys (when Tk >= Tq)
            begin[t] = 0;
            end[t] = Tk >= Tq ? t + 1 + (Tk - Tq) : (t < Tk ? t + 1 : Tk);
        } else {  // anything inside 0...Tk, empty ranges included
            int64_t a = (int64_t)(next_random(r) % (uint64_t)(Tk + 1)), b = (int64_t)(next_random(r) % (uint64_t)(Tk + 1));
            begin[t] = a < b ? a : b;
            end[t] = a < b ? b : a;
        }
    }
    for (int64_t i = 0; i < B * Tk; i++) mask[i] = (next_random(r) & 7) != 0;
    for (int64_t i = 0; i < B * Tq * ldo; i++) {
        out[i] = ref[i] = 777.0f;
        bound[i] = 2e-5;
    }
    float scale = 1.0f / sqrtf((float)D);
    const int64_t *kb = ranges ? begin : NULL, *ke = ranges ? end : NULL;
    if (vlm_attention_gqa(B, H, kvh, Tq, Tk, D, q, ldq, k, ldk, v, ldk, out, ldo, scale, kb, ke, masked ? mask : NULL) != 0)
        fail("attention_gqa status", 0, 1, 0, 0);
    vlm_attention_gqa_naive(B, H, kvh, Tq, Tk, D, q, ldq, k, ldk, v, ldk, ref, ldo, scale, kb, ke, masked ? mask : NULL);
    for (int64_t row = 0; row < B * Tq; row++) {
        expect_close("attention_gqa", out + row * ldo, ref + row * ldo, bound + row * ldo, H * D);
        expect_untouched("attention_gqa row padding", out + row * ldo, H * D, ldo);
    }
    free(q), free(k), free(v), free(out), free(ref), free(bound), free(begin), free(end), free(mask);
}

/// Conversions: widening is exact on every path (NaNs stay NaNs); narrowing rounds to nearest even on every path.
static void check_conversions(reader *r) {
    int64_t n = pick(r, 1, 200);
    uint16_t *h = must_alloc(2 * (size_t)n), *h2 = must_alloc(2 * (size_t)n);
    float *f = must_alloc(4 * (size_t)n), *g = must_alloc(4 * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = (uint16_t)next_random(r);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) vlm_f16_to_f32(h, f, n), vlm_f16_to_f32_naive(h, g, n);
        else vlm_bf16_to_f32(h, f, n), vlm_bf16_to_f32_naive(h, g, n);
        for (int64_t i = 0; i < n; i++)
            if (!(isnan(f[i]) && isnan(g[i])) && memcmp(&f[i], &g[i], 4) != 0) fail(pass ? "bf16 -> f32" : "f16 -> f32", i, f[i], g[i], 0);
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)next_random(r);
        memcpy(&f[i], &bits, 4);
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) vlm_f32_to_f16(f, h, n), vlm_f32_to_f16_naive(f, h2, n);
        else vlm_f32_to_bf16(f, h, n), vlm_f32_to_bf16_naive(f, h2, n);
        for (int64_t i = 0; i < n; i++) {
            int nan_pair = isnan(f[i]);  // any NaN encoding is a NaN; payloads may differ by the quiet bit
            if (!nan_pair && h[i] != h2[i]) fail(pass ? "f32 -> bf16" : "f32 -> f16", i, h[i], h2[i], 0);
        }
    }
    free(h), free(h2), free(f), free(g);
}

/// vlm_dot against its naive twin: ~(n/8 + 16) eps relative to sum |a b| (the header's bound, doubled).
static void check_dot(reader *r) {
    int64_t n = pick(r, 0, 255) + 16 * pick(r, 0, 20), off = pick(r, 0, 3);
    float *a = must_alloc(4 * (size_t)(n + 4)), *b = must_alloc(4 * (size_t)(n + 4));
    fill(r, a, n + 4, 1);
    fill(r, b, n + 4, 1);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[off + i] * b[off + i]);
    float got = vlm_dot(a + off, b + off, n), want = vlm_dot_naive(a + off, b + off, n);
    double bound = 2.0 * ((double)n / 8 + 16) * FLT_EPSILON * s + 1e-30;
    if (fabs((double)got - want) > bound) fail("dot", n, got, want, bound);
    free(a), free(b);
}

// MARK: entry point

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size, 0, 0x9E3779B97F4A7C15ull};
    for (size_t i = 0; i < size; i++) r.state = (r.state ^ data[i]) * 0x100000001B3ull;
    if (r.state == 0) r.state = 1;
    int op = (int)pick(&r, 0, 4);
    vlm_force_isa((vlm_isa)pick(&r, 0, 2));  // clamped to what the CPU has
    vlm_set_num_threads((int)pick(&r, 1, 2));
    switch (op) {
    case 0: check_sgemm(&r); break;
    case 1: check_linear(&r); break;
    case 2: check_attention(&r); break;
    case 3: check_conversions(&r); break;
    default: check_dot(&r); break;
    }
    return 0;
}
