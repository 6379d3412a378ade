// Pillow's Image.resize for 8-bit RGB, bit-exact (Pillow 13: src/libImaging/Resample.c, Geometry.c, _imaging.c).
//
// Convolution filters (ImagingResample):
//  * per output pixel, precompute_coeffs: scale = in/out, filterscale = max(scale, 1), support = filter support *
//    filterscale, center = (x + 0.5) * scale, taps [int(center - support + 0.5), int(center + support + 0.5))
//    clamped to the image, weights filter((tap - center + 0.5) / filterscale) normalised to sum 1 (in double);
//  * normalize_coeffs_8bpc: weights to fixed point with PRECISION_BITS = 32 - 8 - 2 = 22, rounded half away
//    from zero by (int)(w * 2^22 +- 0.5);
//  * each pass accumulates sum(pixel * k) + 2^21 in int32 and clip8's it: (acc >> 22) clamped to 0..255;
//  * horizontal pass first (over the source rows the vertical pass will read), then vertical pass — except that
//    Pillow 13 runs the vertical pass first when sh - dh > 0 and sh - dh > 2 * (sw - dw); a pass whose size does
//    not change is skipped (need_horizontal / need_vertical with the default box (0, 0, w, h)).
// NEAREST (_imaging.c _resize -> ImagingTransform affine -> ImagingScaleAffine): source index
// COORD(xo), xo starting at 0.5 * w_in / w_out and *accumulating* += w_in / w_out in double.
//
// vlm_image_resize_window_rgb8 computes only a window of the output (the centre crop after a shortest-edge
// resize): each output pixel depends only on its own coefficients (from the full-image scale) and its filter
// window in the input, so the window's coefficients, the source rows/columns they reach and the same pass order
// give exactly the full resize's pixels there. vlm_image_resize_rgb8 (the whole output) stays the reference;
// Tests/VLMImageTests/BoundedResizeTests.swift compares them on random windows, every filter, both paths.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

#define PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double hamming_filter(double x) {
    if (x < 0.0) x = -x;
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x = x * M_PI;
    return sin(x) / x * (0.54f + 0.46f * cos(x));  // float literals as in Pillow: part of bit-exactness
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc_filter(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos_filter(double x) {
    if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
    return 0.0;
}

typedef struct {
    double (*fn)(double);
    double support;
} vlm_filter;

/// By vlm_resample_filter id.
static const vlm_filter filters[6] = {
    {NULL, 0.0},            // NEAREST: separate path
    {lanczos_filter, 3.0},  // LANCZOS
    {bilinear_filter, 1.0}, // BILINEAR
    {bicubic_filter, 2.0},  // BICUBIC
    {box_filter, 0.5},      // BOX
    {hamming_filter, 1.0},  // HAMMING
};

/// Coefficients of one pass: for output i, taps bounds[2i] .. bounds[2i] + bounds[2i+1] with weights kk[i*ksize ..].
typedef struct {
    int ksize;
    int *bounds;
    int32_t *kk;
} vlm_coeffs;

static void coeffs_free(vlm_coeffs *c) {
    free(c->bounds);
    free(c->kk);
    c->bounds = NULL;
    c->kk = NULL;
}

/// precompute_coeffs + normalize_coeffs_8bpc of Resample.c for box (in0, in1) = (0, inSize), for the `count`
/// outputs [out0, out0 + count) of a resize to outSize (out0 = 0, count = outSize: the whole axis). Each output's
/// coefficients depend only on its index and the full scale inSize / outSize, so a range gets exactly the
/// coefficients the whole axis has there. bounds are source positions.
static int precompute(int inSize, int outSize, int out0, int count, const vlm_filter *f, vlm_coeffs *c) {
    double scale = (double)inSize / outSize, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    c->bounds = (int *)malloc((size_t)count * 2 * sizeof(int));
    c->kk = (int32_t *)calloc((size_t)count * (size_t)ksize, sizeof(int32_t));
    double *k = (double *)malloc((size_t)ksize * sizeof(double));
    if (!c->bounds || !c->kk || !k) {
        free(k);
        coeffs_free(c);
        return VLM_IMG_ERR_NOMEM;
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < count; xx++) {
        double center = (out0 + xx + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = f->fn((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        int32_t *kx = c->kk + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? k[x] / ww : k[x];
            kx[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(k);
    return VLM_IMG_OK;
}

static inline uint8_t clip8(int32_t acc) {
    int32_t v = acc >> PRECISION_BITS;  // arithmetic shift, as Pillow's clip8_lookups index
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/// Horizontal pass over rows [y0, y0 + rows) of src (rows `stride` pixels apart, sw pixels read from each, taps
/// relative to src) into dst (dw wide, packed), scalar reference.
static void horizontal_scalar(const uint8_t *src, int stride, int y0, int rows, uint8_t *dst, int dw,
                              const vlm_coeffs *c) {
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(y0 + yy) * stride * 3;
        uint8_t *out = dst + (size_t)yy * dw * 3;
        for (int xx = 0; xx < dw; xx++) {
            int xmin = c->bounds[2 * xx], xmax = c->bounds[2 * xx + 1];
            const int32_t *k = c->kk + (size_t)xx * c->ksize;
            const uint8_t *p = in + (size_t)xmin * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                s0 += p[3 * x] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            out[3 * xx] = clip8(s0);
            out[3 * xx + 1] = clip8(s1);
            out[3 * xx + 2] = clip8(s2);
        }
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VLM_HAVE_AVX2_PATH 1

/// Same arithmetic as horizontal_scalar (int32 products and sums are exact, so lane order does not matter).
/// Source rows are widened to int32 RGBX (+ ksize zero pixels of padding, so taps past a pixel's own count, whose
/// coefficient is 0, read zeros). Two output pixels share one 256-bit register per tap, with their coefficients
/// pre-interleaved as [ka x4, kb x4], and two source rows are processed together to reuse each coefficient load.
__attribute__((target("avx2"))) static void widen_row(const uint8_t *in, int sw, int32_t *wide) {
    const __m128i shuf = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    int x = 0;
    for (; x + 6 <= sw; x += 4) {  // reads 16 bytes for 4 pixels: stay 2 pixels clear of the row end
        __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 3 * x)), shuf);
        _mm256_storeu_si256((__m256i *)(wide + 4 * x), _mm256_cvtepu8_epi32(v));
        _mm256_storeu_si256((__m256i *)(wide + 4 * x + 8), _mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
    }
    for (; x < sw; x++) {
        wide[4 * x] = in[3 * x];
        wide[4 * x + 1] = in[3 * x + 1];
        wide[4 * x + 2] = in[3 * x + 2];
        wide[4 * x + 3] = 0;
    }
}

__attribute__((target("avx2"))) static inline void store_pair(uint8_t *out, __m256i acc) {
    int32_t s[8];
    _mm256_storeu_si256((__m256i *)s, acc);
    out[0] = clip8(s[0]);
    out[1] = clip8(s[1]);
    out[2] = clip8(s[2]);
    out[3] = clip8(s[4]);
    out[4] = clip8(s[5]);
    out[5] = clip8(s[6]);
}

__attribute__((target("avx2"))) static int horizontal_avx2(const uint8_t *src, int stride, int sw, int y0, int rows,
                                                           uint8_t *dst, int dw, const vlm_coeffs *c) {
    int ksize = c->ksize, pairs = dw / 2;
    size_t wide_n = (size_t)(sw + ksize) * 4;
    int32_t *wide = (int32_t *)malloc(2 * wide_n * sizeof(int32_t));
    int32_t *kp = (int32_t *)malloc(((size_t)pairs * ksize * 8 + 1) * sizeof(int32_t));
    int *np = (int *)malloc(((size_t)pairs + 1) * sizeof(int));
    if (!wide || !kp || !np) {
        free(wide);
        free(kp);
        free(np);
        return VLM_IMG_ERR_NOMEM;
    }
    int32_t *wide1 = wide + wide_n;
    memset(wide + (size_t)sw * 4, 0, (size_t)ksize * 4 * sizeof(int32_t));
    memset(wide1 + (size_t)sw * 4, 0, (size_t)ksize * 4 * sizeof(int32_t));
    for (int p = 0; p < pairs; p++) {
        const int32_t *ka = c->kk + (size_t)(2 * p) * ksize, *kb = ka + ksize;
        int na = c->bounds[4 * p + 1], nb = c->bounds[4 * p + 3];
        np[p] = na > nb ? na : nb;  // <= ksize; beyond its own count each pixel's k is 0
        for (int t = 0; t < ksize; t++)
            for (int l = 0; l < 4; l++) {
                kp[((size_t)p * ksize + t) * 8 + l] = ka[t];
                kp[((size_t)p * ksize + t) * 8 + 4 + l] = kb[t];
            }
    }
    const __m256i half = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    for (int yy = 0; yy < rows; yy += 2) {
        int two = yy + 1 < rows;
        widen_row(src + (size_t)(y0 + yy) * stride * 3, sw, wide);
        if (two) widen_row(src + (size_t)(y0 + yy + 1) * stride * 3, sw, wide1);
        uint8_t *out0 = dst + (size_t)yy * dw * 3, *out1 = out0 + (size_t)dw * 3;
        for (int p = 0; p < pairs; p++) {
            int xa = c->bounds[4 * p], xb = c->bounds[4 * p + 2], n = np[p];
            const int32_t *k = kp + (size_t)p * ksize * 8;
            const int32_t *a0 = wide + (size_t)xa * 4, *b0 = wide + (size_t)xb * 4;
            const int32_t *a1 = wide1 + (size_t)xa * 4, *b1 = wide1 + (size_t)xb * 4;
            __m256i acc0 = half, acc1 = half;
            for (int t = 0; t < n; t++) {
                __m256i kv = _mm256_loadu_si256((const __m256i *)(k + 8 * t));
                __m256i p0 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a0 + 4 * t))),
                                                     _mm_loadu_si128((const __m128i *)(b0 + 4 * t)), 1);
                acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(p0, kv));
                if (two) {
                    __m256i p1 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a1 + 4 * t))),
                                                         _mm_loadu_si128((const __m128i *)(b1 + 4 * t)), 1);
                    acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(p1, kv));
                }
            }
            store_pair(out0 + 6 * p, acc0);
            if (two) store_pair(out1 + 6 * p, acc1);
        }
        for (int r = 0; r < 1 + two; r++) {  // odd last output pixel
            if (dw % 2 == 0) break;
            int xx = dw - 1, xmin = c->bounds[2 * xx], xmax = c->bounds[2 * xx + 1];
            const int32_t *k = c->kk + (size_t)xx * ksize, *px = (r ? wide1 : wide) + (size_t)xmin * 4;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < xmax; x++) {
                s0 += px[4 * x] * k[x];
                s1 += px[4 * x + 1] * k[x];
                s2 += px[4 * x + 2] * k[x];
            }
            uint8_t *o = (r ? out1 : out0) + 3 * xx;
            o[0] = clip8(s0);
            o[1] = clip8(s1);
            o[2] = clip8(s2);
        }
    }
    free(wide);
    free(kp);
    free(np);
    return VLM_IMG_OK;
}
#endif

/// Horizontal pass: rows [y0, y0 + rows) of src (`stride` pixels apart; sw pixels from src on, every tap inside
/// them) -> dst, rows x dw packed.
static int horizontal(const uint8_t *src, int stride, int sw, int y0, int rows, uint8_t *dst, int dw,
                      const vlm_coeffs *c, int flags) {
#ifdef VLM_HAVE_AVX2_PATH
    if (!(flags & VLM_RESAMPLE_FLAG_SCALAR) && __builtin_cpu_supports("avx2"))
        return horizontal_avx2(src, stride, sw, y0, rows, dst, dw, c);
#else
    (void)sw;
#endif
    horizontal_scalar(src, stride, y0, rows, dst, dw, c);
    return VLM_IMG_OK;
}

/// Vertical pass: w pixels of each src row (rows `stride` pixels apart, taps relative to src) -> dh rows of w
/// pixels, packed. Row-at-a-time accumulation vectorises well and keeps the exact per-channel int32 sums of
/// Pillow's loop.
static int vertical(const uint8_t *src, int stride, int w, uint8_t *dst, int dh, const vlm_coeffs *c) {
    size_t n = (size_t)w * 3;
    int32_t *acc = (int32_t *)malloc(n * sizeof(int32_t));
    if (!acc) return VLM_IMG_ERR_NOMEM;
    for (int yy = 0; yy < dh; yy++) {
        int ymin = c->bounds[2 * yy], ymax = c->bounds[2 * yy + 1];
        const int32_t *k = c->kk + (size_t)yy * c->ksize;
        for (size_t i = 0; i < n; i++) acc[i] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < ymax; y++) {
            const uint8_t *row = src + (size_t)(ymin + y) * stride * 3;
            int32_t ky = k[y];
            for (size_t i = 0; i < n; i++) acc[i] += row[i] * ky;
        }
        uint8_t *out = dst + (size_t)yy * n;
        for (size_t i = 0; i < n; i++) out[i] = clip8(acc[i]);
    }
    free(acc);
    return VLM_IMG_OK;
}

static int nearest_window(const uint8_t *src, int sw, int sh, int dw, int dh, int x0, int y0, uint8_t *dst, int w,
                          int h);

int vlm_image_resize_rgb8(const uint8_t *src, int64_t sw64, int64_t sh64, uint8_t *dst, int64_t dw64, int64_t dh64,
                          int filter, int flags) {
    if (!src || !dst || sw64 <= 0 || sh64 <= 0 || dw64 <= 0 || dh64 <= 0 || sw64 > INT32_MAX / 4 ||
        sh64 > INT32_MAX / 4 || dw64 > INT32_MAX / 4 || dh64 > INT32_MAX / 4)
        return VLM_IMG_ERR_ARGUMENT;
    int sw = (int)sw64, sh = (int)sh64, dw = (int)dw64, dh = (int)dh64;
    if (sw == dw && sh == dh) {  // Image.resize returns a copy when size and box are unchanged
        memcpy(dst, src, (size_t)sw * sh * 3);
        return VLM_IMG_OK;
    }
    if (filter == VLM_RESAMPLE_NEAREST) return nearest_window(src, sw, sh, dw, dh, 0, 0, dst, dw, dh);
    if (filter < 0 || filter > 5) return VLM_IMG_ERR_ARGUMENT;
    const vlm_filter *f = &filters[filter];

    int need_h = dw != sw, need_v = dh != sh;
    // Pillow >= 12 (ImagingResampleInner): "If height is being scaled down more than twice the amount the width
    // is, run the vertical pass first". The order changes the intermediate rounding, so it is part of the result.
    int horizontal_first = !((sh - dh) > 0 && (sh - dh) > (sw - dw) * 2);
    vlm_coeffs cv = {0, NULL, NULL}, ch = {0, NULL, NULL};
    int st = VLM_IMG_OK;
    if (need_v) st = precompute(sh, dh, 0, dh, f, &cv);
    if (!st && need_h) st = precompute(sw, dw, 0, dw, f, &ch);
    if (st) goto done;
    if (!need_h) {
        st = vertical(src, sw, sw, dst, dh, &cv);
    } else if (!need_v) {
        st = horizontal(src, sw, sw, 0, sh, dst, dw, &ch, flags);
    } else if (horizontal_first) {
        // Only the source rows the vertical pass reads: [first, last) (ybox_first / ybox_last).
        int first = cv.bounds[0], last = cv.bounds[2 * dh - 2] + cv.bounds[2 * dh - 1];
        uint8_t *tmp = (uint8_t *)malloc((size_t)dw * (size_t)(last - first) * 3);
        if (!tmp) {
            st = VLM_IMG_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < dh; i++) cv.bounds[2 * i] -= first;
        st = horizontal(src, sw, sw, first, last - first, tmp, dw, &ch, flags);
        if (!st) st = vertical(tmp, dw, dw, dst, dh, &cv);
        free(tmp);
    } else {
        uint8_t *tmp = (uint8_t *)malloc((size_t)sw * (size_t)dh * 3);
        if (!tmp) {
            st = VLM_IMG_ERR_NOMEM;
            goto done;
        }
        st = vertical(src, sw, sw, tmp, dh, &cv);
        if (!st) st = horizontal(tmp, sw, sw, 0, dh, dst, dw, &ch, flags);
        free(tmp);
    }
done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    return st;
}

/// ImagingScaleAffine for a pure scale with a = (sw/dw, 0, 0, 0, sh/dh, 0), restricted to the window: source
/// index COORD(xo) with xo accumulated from output 0 (so the doubles are bit-identical to the full image's), only
/// the window's pixels copied. O(x0 + w + y0 + h) time, w ints of memory.
static int nearest_window(const uint8_t *src, int sw, int sh, int dw, int dh, int x0, int y0, uint8_t *dst, int w,
                          int h) {
    int *xin = (int *)malloc((size_t)w * sizeof(int));
    if (!xin) return VLM_IMG_ERR_NOMEM;
    double a0 = (double)sw / dw, a4 = (double)sh / dh;
    double xo = a0 * 0.5, yo = a4 * 0.5;
    for (int x = 0; x < x0 + w; x++) {
        int v = xo < 0.0 ? -1 : (int)xo;                 // COORD
        if (x >= x0) xin[x - x0] = v < sw ? v : sw - 1;  // never hit for a pure down/upscale, kept for safety
        xo += a0;
    }
    for (int y = 0; y < y0 + h; y++) {
        if (y >= y0) {
            int yi = yo < 0.0 ? -1 : (int)yo;
            if (yi >= sh) yi = sh - 1;
            const uint8_t *in = src + (size_t)yi * sw * 3;
            uint8_t *out = dst + (size_t)(y - y0) * w * 3;
            for (int x = 0; x < w; x++) memcpy(out + 3 * x, in + 3 * (size_t)xin[x], 3);
        }
        yo += a4;
    }
    free(xin);
    return VLM_IMG_OK;
}

/// Taps of a coefficient range as one source span [*a, *b), and the bounds made relative to *a.
static void span(vlm_coeffs *c, int count, int *a, int *b) {
    *a = c->bounds[0];
    *b = c->bounds[2 * count - 2] + c->bounds[2 * count - 1];  // both ends are monotone in the output index
    for (int i = 0; i < count; i++) c->bounds[2 * i] -= *a;
}

int vlm_image_resize_window_rgb8(const uint8_t *src, int64_t sw64, int64_t sh64, int64_t dw64, int64_t dh64,
                                 int64_t x064, int64_t y064, uint8_t *dst, int64_t w64, int64_t h64, int filter,
                                 int flags) {
    if (!src || !dst || sw64 <= 0 || sh64 <= 0 || dw64 <= 0 || dh64 <= 0 || sw64 > INT32_MAX / 4 ||
        sh64 > INT32_MAX / 4 || dw64 > INT32_MAX / 4 || dh64 > INT32_MAX / 4 || x064 < 0 || y064 < 0 || w64 <= 0 ||
        h64 <= 0 || x064 + w64 > dw64 || y064 + h64 > dh64 || filter < 0 || filter > 5)
        return VLM_IMG_ERR_ARGUMENT;
    int sw = (int)sw64, sh = (int)sh64, dw = (int)dw64, dh = (int)dh64;
    int x0 = (int)x064, y0 = (int)y064, w = (int)w64, h = (int)h64;
    if (sw == dw && sh == dh) {  // a copy: the window of the source
        for (int y = 0; y < h; y++) memcpy(dst + (size_t)y * w * 3, src + ((size_t)(y0 + y) * sw + x0) * 3, (size_t)w * 3);
        return VLM_IMG_OK;
    }
    if (filter == VLM_RESAMPLE_NEAREST) return nearest_window(src, sw, sh, dw, dh, x0, y0, dst, w, h);
    const vlm_filter *f = &filters[filter];
    // Pass order and skipped passes exactly as the full resize decides them (from the full sizes).
    int need_h = dw != sw, need_v = dh != sh;
    int horizontal_first = !((sh - dh) > 0 && (sh - dh) > (sw - dw) * 2);
    vlm_coeffs cv = {0, NULL, NULL}, ch = {0, NULL, NULL};
    int st = VLM_IMG_OK;
    if (need_v) st = precompute(sh, dh, y0, h, f, &cv);
    if (!st && need_h) st = precompute(sw, dw, x0, w, f, &ch);
    if (st) goto done;
    // The source rectangle the window reads: columns [xa, xb), rows [ya, yb) (an unchanged axis reads the window).
    int xa = x0, xb = x0 + w, ya = y0, yb = y0 + h;
    if (need_h) span(&ch, w, &xa, &xb);
    if (need_v) span(&cv, h, &ya, &yb);
    const uint8_t *base = src + ((size_t)ya * sw + xa) * 3;
    if (!need_h) {
        st = vertical(base, sw, w, dst, h, &cv);
    } else if (!need_v) {
        st = horizontal(base, sw, xb - xa, 0, h, dst, w, &ch, flags);
    } else {
        // The one intermediate: horizontal first, w x (yb - ya) — at most w x sh, and for the aspect-preserving
        // resizes before a crop (scale s = sh/dh ~ sw/dw) about w x (h * s + ksize) <= the input plus w x ksize;
        // vertical first (height shrinks), (xb - xa) x h — at most sw x h < sw x sh.
        size_t n = horizontal_first ? (size_t)w * (size_t)(yb - ya) : (size_t)(xb - xa) * (size_t)h;
        uint8_t *tmp = (uint8_t *)malloc(n * 3);
        if (!tmp) {
            st = VLM_IMG_ERR_NOMEM;
            goto done;
        }
        if (horizontal_first) {
            st = horizontal(base, sw, xb - xa, 0, yb - ya, tmp, w, &ch, flags);
            if (!st) st = vertical(tmp, w, w, dst, h, &cv);
        } else {
            st = vertical(base, sw, xb - xa, tmp, h, &cv);
            if (!st) st = horizontal(tmp, xb - xa, xb - xa, 0, h, dst, w, &ch, flags);
        }
        free(tmp);
    }
done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    return st;
}
