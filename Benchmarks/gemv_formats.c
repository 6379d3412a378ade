// GEMV (decode) throughput of each packed-weight format, kernel only: y = W x with M = 1..4 rows over enough
// distinct weights (default ~300 MB) that every call streams from memory, or over one small weight (in cache,
// the kernel's compute ceiling). Prints GB/s of packed bytes (codes + scales + zero points), best of 7.
//   clang -O2 -D_GNU_SOURCE -ISources/CVLM/include -ISources/CVLM Benchmarks/gemv_formats.c \
//     $(ls Sources/CVLM/*.c | grep -v image_) -lm -lpthread -ldl -o /tmp/gemv_formats
//   /tmp/gemv_formats N K [M] [bytes] [threads]     e.g. 2560 960 1 300000000 2   (in cache: ... 1 2000000 1)
#include "cvlm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 2560, K = argc > 2 ? atoi(argv[2]) : 960, M = argc > 3 ? atoi(argv[3]) : 1;
    long target = argc > 4 ? atol(argv[4]) : 300000000L;
    vlm_set_num_threads(argc > 5 ? atoi(argv[5]) : 0);
    if (N < 1 || K < 1 || M < 1 || M > 64) { fprintf(stderr, "bad sizes\n"); return 1; }
    float *W = malloc(4L * N * K), *X = malloc(4L * M * K), *Y = malloc(4L * M * N);
    if (!W || !X || !Y) return 1;
    unsigned s = 1;
    for (long i = 0; i < (long)N * K; i++) { s = s * 1664525u + 1013904223u; W[i] = ((s >> 8) / 16777216.0f - 0.5f) * 0.04f; }
    for (int i = 0; i < M * K; i++) X[i] = 0.1f * (float)(i % 7);
    // The fifth row is int4 marked for int8 compute: the W4A8 decode kernel (vlm_linear_w4a8).
    vlm_weight_dtype dts[] = {VLM_WEIGHT_F32, VLM_WEIGHT_BF16, VLM_WEIGHT_I8, VLM_WEIGHT_I4, VLM_WEIGHT_I4};
    for (int d = 0; d < 5; d++) {
        vlm_packed_weight *ws[256];
        int nw = 0;
        long bytes = 0;
        while (bytes < target && nw < 256 && (ws[nw] = vlm_pack_weight(W, N, K, dts[d]))) bytes += vlm_packed_weight_bytes(ws[nw++]);
        if (d == 4)
            for (int i = 0; i < nw; i++) vlm_packed_weight_set_compute(ws[i], VLM_COMPUTE_INT8);
        double best = 1e9;
        for (int r = 0; r < 7; r++) {
            double t0 = now();
            for (int i = 0; i < nw; i++) vlm_linear(X, M, K, ws[i], NULL, VLM_ACT_NONE, Y, N);
            if (now() - t0 < best) best = now() - t0;
        }
        printf("%-4s%s M=%d N=%d K=%d: %3d weights x %6.1f MB, %6.2f GB/s  [%s]\n", vlm_weight_format_info(dts[d])->name, d == 4 ? " w4a8" : "", M, N, K,
               nw, bytes / 1e6 / nw, bytes / best / 1e9, d == 4 ? vlm_w4a8_kernel() : vlm_weight_format_kernel(dts[d], M));
        for (int i = 0; i < nw; i++) vlm_packed_weight_free(ws[i]);
    }
    return 0;
}
