// Convolution entry points (NHWC): im2col + the packed GEMM for dense convolutions (patch embeddings), and the
// run-time dispatched depth-wise kernel (conv_avx2.c, or the naive twin) split by output rows over the pool.
#include "kernels_internal.h"
#include "include/cvlm_conv.h"
#include <string.h>

#if defined(__x86_64__)
void vlm_depthwise_row_avx2(const float *x, int64_t H, int64_t W, int64_t C, const float *wt, int64_t KH, int64_t KW,
                            int64_t pad, const float *bias, int residual, int64_t oh, int64_t OW, float *yrow);
#endif

// Patch rows per GEMM call: bounds the scratch at CONV_BLOCK_ROWS * KH*KW*Cin floats.
#define CONV_BLOCK_ROWS 2048

static void im2col_rows(const float *x, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW, int64_t stride,
                        int64_t pad, int64_t OH, int64_t OW, int64_t row0, int64_t rows, float *cols) {
    int64_t K = KH * KW * C;
    for (int64_t r = 0; r < rows; r++) {
        int64_t idx = row0 + r;
        int64_t b = idx / (OH * OW), rem = idx % (OH * OW), oh = rem / OW, ow = rem % OW;
        float *dst = cols + r * K;
        for (int64_t kh = 0; kh < KH; kh++) {
            int64_t ih = oh * stride - pad + kh;
            for (int64_t kw = 0; kw < KW; kw++) {
                int64_t iw = ow * stride - pad + kw;
                float *d = dst + (kh * KW + kw) * C;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) memset(d, 0, (size_t)C * sizeof(float));
                else memcpy(d, x + ((b * H + ih) * W + iw) * C, (size_t)C * sizeof(float));
            }
        }
    }
}

void vlm_im2col_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW,
                     int64_t stride, int64_t pad, float *cols) {
    if (stride <= 0) return;
    int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
    im2col_rows(x, H, W, C, KH, KW, stride, pad, OH, OW, 0, B * OH * OW, cols);
}

int vlm_conv2d_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t Cin, const vlm_packed_weight *w,
                    int64_t KH, int64_t KW, int64_t stride, int64_t pad, const float *bias, float *y) {
    if (!w || stride <= 0 || KH <= 0 || KW <= 0 || Cin <= 0 || pad < 0) return -1;
    int64_t K = KH * KW * Cin, N = vlm_packed_weight_rows(w);
    if (vlm_packed_weight_cols(w) != K) return -1;
    int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    if (H + 2 * pad < KH || W + 2 * pad < KW || OH <= 0 || OW <= 0) return -1;
    int64_t M = B * OH * OW;
    int64_t block = M < CONV_BLOCK_ROWS ? M : CONV_BLOCK_ROWS;
    float *cols = vlm_aligned_alloc((size_t)block * (size_t)K * sizeof(float));
    if (!cols) return -1;
    for (int64_t r0 = 0; r0 < M; r0 += block) {
        int64_t rows = M - r0 < block ? M - r0 : block;
        im2col_rows(x, H, W, Cin, KH, KW, stride, pad, OH, OW, r0, rows, cols);
        vlm_linear(cols, rows, K, w, bias, VLM_ACT_NONE, y + r0 * N, N);
    }
    vlm_aligned_free(cols);
    return 0;
}

typedef struct {
    const float *x, *wt, *bias;
    float *y;
    int64_t H, W, C, KH, KW, pad, OH, OW;
    int residual;
} dw_job;

static void dw_task(void *ctx, int64_t task, int thread) {
    (void)thread;
    const dw_job *j = ctx;
    int64_t b = task / j->OH, oh = task % j->OH;
#if defined(__x86_64__)
    vlm_depthwise_row_avx2(j->x + b * j->H * j->W * j->C, j->H, j->W, j->C, j->wt, j->KH, j->KW, j->pad, j->bias,
                           j->residual, oh, j->OW, j->y + (b * j->OH + oh) * j->OW * j->C);
#else
    (void)b; (void)oh;
#endif
}

void vlm_depthwise_conv2d_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, const float *wt,
                               int64_t KH, int64_t KW, int64_t pad, const float *bias, int residual, float *y) {
    int64_t OH = H + 2 * pad - KH + 1, OW = W + 2 * pad - KW + 1;
    if (B <= 0 || C <= 0 || OH <= 0 || OW <= 0) return;
    if (residual && (OH != H || OW != W)) return;
    if (vlm_active_isa() < VLM_ISA_AVX2) {
        vlm_depthwise_conv2d_nhwc_naive(x, B, H, W, C, wt, KH, KW, pad, bias, residual, y);
        return;
    }
    dw_job j = {.x = x, .wt = wt, .bias = bias, .y = y, .H = H, .W = W, .C = C, .KH = KH, .KW = KW, .pad = pad,
                .OH = OH, .OW = OW, .residual = residual};
    vlm_parallel_for(B * OH, dw_task, &j);
}
