// Reference convolutions (NHWC): direct loops in double, the twins the fast paths are tested against.
#include "kernels_internal.h"
#include "include/cvlm_conv.h"

void vlm_conv2d_nhwc_naive(const float *x, int64_t B, int64_t H, int64_t W, int64_t Cin, const float *w, int64_t Cout,
                           int64_t KH, int64_t KW, int64_t stride, int64_t pad, const float *bias, float *y) {
    if (stride <= 0) return;
    int64_t OH = (H + 2 * pad - KH) / stride + 1, OW = (W + 2 * pad - KW) / stride + 1;
    if (OH <= 0 || OW <= 0) return;
    for (int64_t b = 0; b < B; b++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t co = 0; co < Cout; co++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh * stride - pad + kh;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t iw = ow * stride - pad + kw;
                            if (iw < 0 || iw >= W) continue;
                            const float *xp = x + ((b * H + ih) * W + iw) * Cin;
                            const float *wp = w + ((co * KH + kh) * KW + kw) * Cin;
                            for (int64_t c = 0; c < Cin; c++) acc += (double)xp[c] * wp[c];
                        }
                    }
                    y[((b * OH + oh) * OW + ow) * Cout + co] = (float)acc;
                }
}

void vlm_depthwise_conv2d_nhwc_naive(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, const float *wt,
                                     int64_t KH, int64_t KW, int64_t pad, const float *bias, int residual, float *y) {
    int64_t OH = H + 2 * pad - KH + 1, OW = W + 2 * pad - KW + 1;
    if (OH <= 0 || OW <= 0) return;
    if (residual && (OH != H || OW != W)) return;
    for (int64_t b = 0; b < B; b++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t c = 0; c < C; c++) {
                    double acc = bias ? bias[c] : 0.0;
                    for (int64_t kh = 0; kh < KH; kh++) {
                        int64_t ih = oh - pad + kh;
                        if (ih < 0 || ih >= H) continue;
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t iw = ow - pad + kw;
                            if (iw < 0 || iw >= W) continue;
                            acc += (double)x[((b * H + ih) * W + iw) * C + c] * wt[(kh * KW + kw) * C + c];
                        }
                    }
                    if (residual) acc += x[((b * H + oh) * W + ow) * C + c];
                    y[((b * OH + oh) * OW + ow) * C + c] = (float)acc;
                }
}
