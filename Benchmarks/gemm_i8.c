// Prefill/encoder GEMM throughput of int8 compute against the fp32 and int8 weight-only paths, kernel only:
// Y[M, N] = X[M, K] W^T with the same weights (fp32 panels; I8 g128 weight-only, dequantized per slice to the fp32
// micro-kernel; I8 g128 int8 compute, vlm_linear_i8). Prints GFLOP/s (2 M N K per call), best of R rounds, the
// three paths interleaved per round so a loaded machine hits them alike.
//   clang -O2 -D_GNU_SOURCE -ISources/CVLM/include Benchmarks/gemm_i8.c \
//     $(ls Sources/CVLM/*.c | grep -v image_) -lm -lpthread -o /tmp/gemm_i8
//   /tmp/gemm_i8 M N K [threads] [rounds]      e.g. 400 3072 768 2 (CLIP B/32 fc1, batch 8)
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
    int M = argc > 1 ? atoi(argv[1]) : 400, N = argc > 2 ? atoi(argv[2]) : 3072, K = argc > 3 ? atoi(argv[3]) : 768;
    vlm_set_num_threads(argc > 4 ? atoi(argv[4]) : 0);
    int rounds = argc > 5 ? atoi(argv[5]) : 7;
    if (M < 1 || N < 1 || K < 1 || rounds < 1) { fprintf(stderr, "bad sizes\n"); return 1; }
    float *W = malloc(4L * N * K), *X = malloc(4L * M * K), *Y = malloc(4L * M * N);
    if (!W || !X || !Y) return 1;
    unsigned s = 1;
    for (long i = 0; i < (long)N * K; i++) { s = s * 1664525u + 1013904223u; W[i] = ((s >> 8) / 16777216.0f - 0.5f) * 0.04f; }
    for (long i = 0; i < (long)M * K; i++) { s = s * 1664525u + 1013904223u; X[i] = (s >> 8) / 16777216.0f - 0.5f; }
    vlm_packed_weight *wf = vlm_pack_weight(W, N, K, VLM_WEIGHT_F32), *wq = vlm_pack_weight(W, N, K, VLM_WEIGHT_I8);
    if (!wf || !wq) return 1;
    double best[3] = {1e30, 1e30, 1e30};
    int calls = 1 + (int)(2e9 / (2.0 * M * N * K));
    for (int r = 0; r < rounds; r++)
        for (int path = 0; path < 3; path++) {
            double t0 = now();
            for (int c = 0; c < calls; c++) {
                if (path == 0) vlm_linear(X, M, K, wf, NULL, VLM_ACT_NONE, Y, N);
                else if (path == 1) vlm_linear(X, M, K, wq, NULL, VLM_ACT_NONE, Y, N);
                else vlm_linear_i8(X, M, K, wq, NULL, VLM_ACT_NONE, Y, N);
            }
            double t = (now() - t0) / calls;
            if (t < best[path]) best[path] = t;
        }
    double flop = 2.0 * M * N * K / 1e9;
    printf("M %d N %d K %d, %d threads, %s: fp32 %.1f GFLOP/s, int8 weight-only %.1f, int8 compute %.1f (%.2fx fp32)\n",
           M, N, K, vlm_get_num_threads(), vlm_i8_gemm_kernel(), flop / best[0], flop / best[1], flop / best[2],
           best[0] / best[2]);
    vlm_packed_weight_free(wf);
    vlm_packed_weight_free(wq);
    return 0;
}
