// The projections of transformer layers, each layer with its own weights so that they come from memory as in a model
// (a benchmark repeating one weight finds it in L3: it measured the fp32 ViT-L/14 layer 15% faster than the model
// ran it). Per layer: qkv [3D x D], out [D x D], fc1 [H x D] (gate|up [2H x D] when H > 4D, a Llama MLP), fc2/down
// [D x H]; ms per call and per layer (best of ROUNDS, each two passes over LAYERS layers).
//   clang -O2 -D_GNU_SOURCE -ISources/CVLM/include -ISources/CVLM Benchmarks/layer_gemm.c \
//     $(ls Sources/CVLM/*.c | grep -v image_) -lm -lpthread -ldl -o /tmp/layer_gemm
//   /tmp/layer_gemm MODE THREADS M D H LAYERS ROUNDS          MODE: fp32 | bf16 | int8 (the compute precision)
//     /tmp/layer_gemm fp32 2 257 1024 4096 8 3     ViT-L/14, one image (8 layers: 400 MB of fp32 weights)
//     /tmp/layer_gemm bf16 2 128 2048 8192 6 2     SmolLM2-1.7B, a 128-token prefill
#include "cvlm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { QKV, OUT, UP, DOWN, NPROJ };

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "fp32";
    int threads = argc > 2 ? atoi(argv[2]) : 2, M = argc > 3 ? atoi(argv[3]) : 257;
    int D = argc > 4 ? atoi(argv[4]) : 1024, H = argc > 5 ? atoi(argv[5]) : 4096;
    int layers = argc > 6 ? atoi(argv[6]) : 8, rounds = argc > 7 ? atoi(argv[7]) : 3;
    if (M < 1 || D < 1 || H < 1 || layers < 1 || rounds < 1) { fprintf(stderr, "bad sizes\n"); return 1; }
    vlm_weight_dtype dtype = !strcmp(mode, "fp32") ? VLM_WEIGHT_F32 : !strcmp(mode, "bf16") ? VLM_WEIGHT_BF16 : VLM_WEIGHT_I8;
    vlm_compute_mode compute = !strcmp(mode, "bf16") ? VLM_COMPUTE_BF16
                             : !strcmp(mode, "int8") ? VLM_COMPUTE_INT8 : VLM_COMPUTE_WEIGHT_ONLY;
    vlm_set_num_threads(threads);
    int up = H > 4 * D ? 2 * H : H;  // gate|up fused (Llama) or fc1 (ViT)
    int rows[NPROJ] = {3 * D, D, up, D}, cols[NPROJ] = {D, D, D, H};
    long most = (long)up * D > (long)D * H ? (long)up * D : (long)D * H;
    float *values = malloc(4L * most);
    vlm_packed_weight *(*w)[NPROJ] = malloc(sizeof(*w) * layers);
    float *x = malloc(4L * M * H), *qkv = malloc(4L * M * 3 * D), *y = malloc(4L * M * D), *h = malloc(4L * M * up);
    if (!values || !w || !x || !qkv || !y || !h) { fprintf(stderr, "out of memory\n"); return 1; }
    for (long i = 0; i < most; i++) values[i] = (float)(i % 97) * 0.001f - 0.05f;
    for (long i = 0; i < (long)M * H; i++) x[i] = (float)(i % 89) * 0.01f - 0.4f;
    for (int l = 0; l < layers; l++)
        for (int p = 0; p < NPROJ; p++) {
            w[l][p] = vlm_pack_weight(values, rows[p], cols[p], dtype);
            if (!w[l][p]) { fprintf(stderr, "pack failed\n"); return 1; }
            if (compute != VLM_COMPUTE_WEIGHT_ONLY) vlm_packed_weight_set_compute(w[l][p], compute);
        }
    float *outs[NPROJ] = {qkv, y, h, y};
    int ld[NPROJ] = {3 * D, D, up, D};
    double best = 1e30, per_call[NPROJ] = {0};
    for (int r = 0; r < rounds; r++) {
        double t0 = now();
        for (int pass = 0; pass < 2; pass++)
            for (int l = 0; l < layers; l++)
                for (int p = 0; p < NPROJ; p++) {
                    double c0 = now();
                    vlm_linear(x, M, cols[p], w[l][p], NULL, VLM_ACT_NONE, outs[p], ld[p]);
                    per_call[p] += now() - c0;
                }
        double t = (now() - t0) / (2 * layers);
        if (t < best) best = t;
    }
    double flop = 2.0 * M * D * (3.0 * D + D + up + H), calls = 2.0 * layers * rounds;
    printf("%s M %d D %d H %d, %d threads: qkv %.2f out %.2f up %.2f down %.2f ms | %.2f ms per layer, %.1f GFLOP/s\n",
           mode, M, D, H, vlm_get_num_threads(), per_call[QKV] * 1e3 / calls, per_call[OUT] * 1e3 / calls,
           per_call[UP] * 1e3 / calls, per_call[DOWN] * 1e3 / calls, best * 1e3, flop / best / 1e9);
    return 0;
}
