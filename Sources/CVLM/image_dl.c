// Run-time loaded image codecs (see include/cvlm_image_dl.h). The few entry points used are declared here by
// hand, from the libraries' public headers, so the build needs no -dev package:
//  * libwebp.so.7 (libwebp >= 0.5): WebPGetFeaturesInternal with WEBP_DECODER_ABI_VERSION 0x0209 (any 0x02xx
//    is accepted by libwebp 1.x), WebPDecodeRGBInto / WebPDecodeRGBAInto (libwebp's defaults: fancy
//    upsampling, no dithering — what Pillow's WebPAnimDecoder uses for a still image).
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"
#include "include/cvlm_image_dl.h"

// MARK: libwebp

typedef struct {
    int width, height, has_alpha, has_animation, format;  // format: 0 mixed/undefined, 1 lossy, 2 lossless
    uint32_t pad[5];
} vlm_webp_features;

static struct {
    pthread_once_t once;
    int ok;
    char error[160];
    int (*get_features)(const uint8_t *, size_t, vlm_webp_features *, int);
    uint8_t *(*decode_rgb_into)(const uint8_t *, size_t, uint8_t *, size_t, int);
    uint8_t *(*decode_rgba_into)(const uint8_t *, size_t, uint8_t *, size_t, int);
} webp = {PTHREAD_ONCE_INIT, 0, "", NULL, NULL, NULL};

static void webp_load(void) {
    void *lib = dlopen("libwebp.so.7", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(webp.error, sizeof webp.error, "%s", e ? e : "not found");
        return;
    }
    *(void **)&webp.get_features = dlsym(lib, "WebPGetFeaturesInternal");
    *(void **)&webp.decode_rgb_into = dlsym(lib, "WebPDecodeRGBInto");
    *(void **)&webp.decode_rgba_into = dlsym(lib, "WebPDecodeRGBAInto");
    if (!webp.get_features || !webp.decode_rgb_into || !webp.decode_rgba_into) {
        snprintf(webp.error, sizeof webp.error, "a WebPDecode entry point is missing");
        return;
    }
    webp.ok = 1;
}

static int webp_ready(vlm_image_info *info) {
    pthread_once(&webp.once, webp_load);
    if (webp.ok) return 1;
    vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "WebP needs libwebp.so.7, which could not be loaded (%s)", webp.error);
    return 0;
}

int vlm_webp_sniff(const uint8_t *d, size_t n) {
    return n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0;
}

int vlm_webp_probe(const uint8_t *data, size_t size, vlm_image_info *info) {
    memset(info, 0, sizeof *info);
    if (data == NULL || size == 0) return vlm_img_fail(info, VLM_IMG_ERR_EMPTY, "no data (0 bytes)");
    if (!vlm_webp_sniff(data, size)) return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT, "not a WebP image");
    if (!webp_ready(info)) return VLM_IMG_ERR_UNSUPPORTED;
    vlm_webp_features f;
    memset(&f, 0, sizeof f);
    int st = webp.get_features(data, size, &f, 0x0209);
    if (st == 7) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "WebP ends inside its header");  // NOT_ENOUGH_DATA
    if (st != 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "WebP header rejected by libwebp (status %d)", st);
    if (f.width <= 0 || f.height <= 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "WebP has size %dx%d", f.width, f.height);
    info->width = f.width;
    info->height = f.height;
    info->has_alpha = f.has_alpha != 0;
    if (f.has_animation)
        return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "animated WebP (its first frame needs libwebpdemux, not used yet)");
    return VLM_IMG_OK;
}

int vlm_webp_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info) {
    int st = vlm_webp_probe(data, size, info);
    if (st != VLM_IMG_OK) return st;
    int64_t pixels = info->width * info->height;
    if (max_pixels > 0 && pixels > max_pixels)
        return vlm_img_fail(info, VLM_IMG_ERR_TOO_LARGE, "%lldx%lld = %lld pixels exceeds the limit of %lld pixels",
                            (long long)info->width, (long long)info->height, (long long)pixels, (long long)max_pixels);
    if (out == NULL || (uint64_t)out_size < (uint64_t)pixels * 3)
        return vlm_img_fail(info, VLM_IMG_ERR_ARGUMENT, "output buffer of %zu bytes is smaller than %lld", out_size,
                            (long long)pixels * 3);
    size_t w = (size_t)info->width, n = (size_t)pixels;
    if (w * 4 > 0x7FFFFFFF) return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "WebP row too wide");
    if (!(info->has_alpha && alpha == VLM_ALPHA_WHITE)) {
        if (!webp.decode_rgb_into(data, size, out, n * 3, (int)(w * 3)))
            return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libwebp could not decode the image (corrupt or truncated)");
        return VLM_IMG_OK;
    }
    uint8_t *rgba = malloc(n * 4);
    if (rgba == NULL) return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "%zu bytes for a WebP with alpha", n * 4);
    if (!webp.decode_rgba_into(data, size, rgba, n * 4, (int)(w * 4))) {
        free(rgba);
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libwebp could not decode the image (corrupt or truncated)");
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t a = rgba[4 * i + 3];
        out[3 * i] = vlm_img_over_white(rgba[4 * i], a);
        out[3 * i + 1] = vlm_img_over_white(rgba[4 * i + 1], a);
        out[3 * i + 2] = vlm_img_over_white(rgba[4 * i + 2], a);
    }
    free(rgba);
    return VLM_IMG_OK;
}
