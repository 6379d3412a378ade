// Convolutions over channels-last (NHWC) images: x(b, h, w, c) = x[((b * H + h) * W + w) * C + c], the layout a
// linear layer's token-major rows already have (token = h * W + w), so vision towers mixing convolutions with
// attention need no transposes. Output sizes: OH = (H + 2 pad - KH) / stride + 1 (floor), same for OW; taps
// outside the image read zeros (PyTorch's zero padding). Every fast kernel has a `_naive` twin with the same
// contract, compared in the tests on odd shapes; the un-suffixed entry points dispatch on the CPU at run time.
#ifndef CVLM_CONV_H
#define CVLM_CONV_H
#include "cvlm_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Patch matrix of a convolution: cols[((b * OH + oh) * OW + ow), (kh * KW + kw) * C + c] = x(b, oh*stride - pad + kh,
/// ow*stride - pad + kw, c), 0 outside the image. cols: [B*OH*OW, KH*KW*C].
void vlm_im2col_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW,
                     int64_t stride, int64_t pad, float *cols);

/// y[B, OH, OW, Cout] = conv2d(x[B, H, W, Cin]) + bias, with the weight packed as a linear layer of
/// Cout x (KH*KW*Cin), columns in (kh, kw, cin) order (PyTorch's [Cout, Cin, KH, KW] permuted to [Cout, KH, KW, Cin]).
/// Patches go through the packed GEMM in blocks of output rows (bounded scratch). bias may be NULL.
/// Returns 0, or -1 on bad arguments (weight columns != KH*KW*Cin, empty output) or allocation failure.
int vlm_conv2d_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t Cin, const vlm_packed_weight *w,
                    int64_t KH, int64_t KW, int64_t stride, int64_t pad, const float *bias, float *y);
/// Reference: direct loops, weight unpacked [Cout, KH, KW, Cin], double accumulation.
void vlm_conv2d_nhwc_naive(const float *x, int64_t B, int64_t H, int64_t W, int64_t Cin, const float *w, int64_t Cout,
                           int64_t KH, int64_t KW, int64_t stride, int64_t pad, const float *bias, float *y);

/// Depth-wise convolution, stride 1 (groups = C): y(b,h,w,c) = bias[c] + sum_{kh,kw} x(b, h - pad + kh, w - pad + kw, c)
/// * wt[(kh * KW + kw) * C + c]  (+ x(b,h,w,c) when residual != 0, DaViT's `conv(x) + x`). wt: [KH, KW, C] (PyTorch's
/// [C, 1, KH, KW] transposed); bias may be NULL. Output [B, OH, OW, C] with OH = H + 2 pad - KH + 1 (residual needs
/// OH == H and OW == W). y must not overlap x.
void vlm_depthwise_conv2d_nhwc(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, const float *wt,
                               int64_t KH, int64_t KW, int64_t pad, const float *bias, int residual, float *y);
void vlm_depthwise_conv2d_nhwc_naive(const float *x, int64_t B, int64_t H, int64_t W, int64_t C, const float *wt,
                                     int64_t KH, int64_t KW, int64_t pad, const float *bias, int residual, float *y);

#ifdef __cplusplus
}
#endif
#endif
