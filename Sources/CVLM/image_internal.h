// Shared between the image_*.c files of CVLM (not part of the public header).
#ifndef CVLM_IMAGE_INTERNAL_H
#define CVLM_IMAGE_INTERNAL_H
#include <stdarg.h>
#include <stdio.h>
#include "include/cvlm_image.h"

/// printf into info->message (always NUL-terminated) and return status.
static inline int vlm_img_fail(vlm_image_info *info, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->message, sizeof info->message, fmt, ap);
    va_end(ap);
    return status;
}

/// Pillow's Image.alpha_composite(white, im) for one pixel (src/libImaging/AlphaComposite.c with dst = opaque
/// white: blend = 255*(255-a), coef1 = a*255*255*128/(255*255) = a*128, rounded division by 255 via
/// SHIFTFORDIV255). Verified exhaustively against Pillow 13 for all (c, a).
static inline uint8_t vlm_img_over_white(uint32_t c, uint32_t a) {
    if (a == 0) return 255;
    uint32_t t = (c * (a << 7) + 255u * ((255u - a) << 7)) + (0x80u << 7);
    return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

/* After a probe: the pixel limit (max_pixels <= 0: none) and the caller's RGB buffer size, checked before any
   pixel is decoded. Shared by every format's decode entry point. */
int vlm_img_check_output(vlm_image_info *info, int64_t max_pixels, const uint8_t *out, size_t out_size);
int vlm_image_probe_jpeg(const uint8_t *data, size_t size, vlm_image_info *info);
int vlm_image_probe_png(const uint8_t *data, size_t size, vlm_image_info *info);
int vlm_image_decode_jpeg(const uint8_t *data, size_t size, uint8_t *out, vlm_image_info *info);
int vlm_image_decode_png(const uint8_t *data, size_t size, vlm_alpha_mode alpha, uint8_t *out, vlm_image_info *info);

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
/* Opens a system library at run time (its -dev headers need not exist); on failure writes dlerror() (or
   "not found") into `error` and returns NULL. Shared by the WebP, GIF, TIFF and HEIF loaders. */
static inline void *vlm_dl_open(const char *name, char *error, size_t error_size) {
    // VLM_DISABLE_CODECS=libwebp,libheif treats those libraries as absent (what a machine without them sees;
    // tests use it, and it switches a codec off).
    const char *disabled = getenv("VLM_DISABLE_CODECS");
    const char *dot = strstr(name, ".so");
    size_t base = dot ? (size_t)(dot - name) : strlen(name);
    for (const char *p = disabled; p != NULL && *p != 0;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == base && strncmp(p, name, base) == 0) {
            snprintf(error, error_size, "%s: disabled by VLM_DISABLE_CODECS", name);
            return NULL;
        }
        p = end ? end + 1 : NULL;
    }
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(error, error_size, "%s", e ? e : "not found");
    }
    return lib;
}

#endif
