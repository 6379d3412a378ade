// AVX2 depth-wise convolution (NHWC): one output row at a time, eight channels per vector, the taps of the
// kernel window accumulated with FMA (masked loads for the channel tail). Portable fallback: conv_naive.c.
#include "kernels_internal.h"
#include "include/cvlm_conv.h"
#if defined(__x86_64__)
#include "simd_math.h"

/// Output row oh of image b: y(b, oh, 0..<OW, 0..<C).
VLM_AVX2 void vlm_depthwise_row_avx2(const float *x, int64_t H, int64_t W, int64_t C, const float *wt, int64_t KH,
                                     int64_t KW, int64_t pad, const float *bias, int residual, int64_t oh, int64_t OW,
                                     float *yrow) {
    for (int64_t ow = 0; ow < OW; ow++) {
        float *yp = yrow + ow * C;
        for (int64_t c = 0; c < C; c += 8) {
            int64_t n = C - c < 8 ? C - c : 8;
            __m256i m = tail_mask_256(n);
            __m256 acc = bias ? _mm256_maskload_ps(bias + c, m) : _mm256_setzero_ps();
            for (int64_t kh = 0; kh < KH; kh++) {
                int64_t ih = oh - pad + kh;
                if (ih < 0 || ih >= H) continue;
                const float *xr = x + ih * W * C;
                const float *wr = wt + kh * KW * C;
                for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t iw = ow - pad + kw;
                    if (iw < 0 || iw >= W) continue;
                    __m256 xv = _mm256_maskload_ps(xr + iw * C + c, m);
                    __m256 wv = _mm256_maskload_ps(wr + kw * C + c, m);
                    acc = _mm256_fmadd_ps(xv, wv, acc);
                }
            }
            if (residual) acc = _mm256_add_ps(acc, _mm256_maskload_ps(x + (oh * W + ow) * C + c, m));
            _mm256_maskstore_ps(yp + c, m, acc);
        }
    }
}
#endif
