// libFuzzer harness for the C image decoders (JPEG, PNG, and the formats vlm_image_decode_rgb hands on) and the
// resampler: probe, decode under a pixel limit into a buffer of exactly the probed size, then resize the decoded
// image (whole, and a window as the crop-aware resize computes it) with a filter from the input. The same inputs as
// the Swift `image` target, without Swift in the loop, so it runs an order of magnitude more executions per second.
// Build and run with Scripts/fuzz-c.sh image SECONDS.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cvlm_image.h"

static const int64_t max_pixels = 4 * 1000 * 1000;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vlm_image_info info;
    memset(&info, 0, sizeof info);
    (void)vlm_image_sniff(data, size);
    if (vlm_image_probe(data, size, &info) != VLM_IMG_OK) return 0;
    if (info.width <= 0 || info.height <= 0) {
        fprintf(stderr, "image fuzz: probe succeeded with a %lldx%lld image\n", (long long)info.width, (long long)info.height);
        abort();
    }
    if (info.width * info.height > max_pixels) return 0;
    size_t bytes = (size_t)(info.width * info.height * 3);
    uint8_t *rgb = malloc(bytes);
    if (!rgb) return 0;
    vlm_image_info decoded;
    memset(&decoded, 0, sizeof decoded);
    int alpha = size > 0 ? data[size - 1] & 1 : 0;
    int status = vlm_image_decode_rgb(data, size, (vlm_alpha_mode)alpha, max_pixels, rgb, bytes, &decoded);
    if (status == VLM_IMG_OK) {
        if (decoded.width != info.width || decoded.height != info.height) {
            fprintf(stderr, "image fuzz: decoded %lldx%lld, probed %lldx%lld\n", (long long)decoded.width,
                    (long long)decoded.height, (long long)info.width, (long long)info.height);
            abort();
        }
        // Output sizes and the window from the input's first bytes, small enough to stay fast.
        uint8_t a = size > 1 ? data[1] : 7, b = size > 2 ? data[2] : 5, c = size > 3 ? data[3] : 0;
        int64_t dw = 1 + a % 48, dh = 1 + b % 48;
        int filter = c % 6;
        // A window of a larger virtual output, as shortest-edge resize + centre crop asks for: bit-identical to the
        // full resize cropped (the crop-aware resize's contract), and the portable path to the SIMD one.
        int64_t vw = dw * 2 + (a & 3), vh = dh * 2 + (b & 3);
        int64_t x0 = (vw - dw) / 2, y0 = (vh - dh) / 2;
        uint8_t *full = malloc((size_t)(vw * vh * 3)), *portable = malloc((size_t)(vw * vh * 3));
        uint8_t *window = malloc((size_t)(dw * dh * 3));
        if (full && portable && window) {
            if (vlm_image_resize_rgb8(rgb, info.width, info.height, full, vw, vh, filter, 0) != 0) abort();
            if (vlm_image_resize_rgb8(rgb, info.width, info.height, portable, vw, vh, filter, VLM_RESAMPLE_FLAG_SCALAR) != 0) abort();
            if (memcmp(full, portable, (size_t)(vw * vh * 3)) != 0) {
                fprintf(stderr, "image fuzz: portable and SIMD resize differ (%lldx%lld -> %lldx%lld, filter %d)\n",
                        (long long)info.width, (long long)info.height, (long long)vw, (long long)vh, filter);
                abort();
            }
            if (vlm_image_resize_window_rgb8(rgb, info.width, info.height, vw, vh, x0, y0, window, dw, dh, filter, c & 64 ? 1 : 0) != 0)
                abort();
            for (int64_t y = 0; y < dh; y++)
                if (memcmp(window + y * dw * 3, full + ((y0 + y) * vw + x0) * 3, (size_t)(dw * 3)) != 0) {
                    fprintf(stderr, "image fuzz: window row %lld differs from the cropped full resize (filter %d)\n", (long long)y, filter);
                    abort();
                }
        }
        free(full), free(portable), free(window);
    } else if (status == VLM_IMG_ERR_ARGUMENT) {
        fprintf(stderr, "image fuzz: decode rejected its own probed buffer size\n");
        abort();
    }
    free(rgb);
    return 0;
}
