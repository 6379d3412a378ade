// HEIC / AVIF through the system's libheif (libheif.so.1; HEVC via libde265, AV1 via dav1d/aom), loaded at run
// time: the entry points used are declared here from heif.h (libheif 1.x ABI), so no -dev package is needed.
//
// The primary image is decoded to interleaved 8-bit RGB (RGBA when it has alpha) with libheif's defaults, which
// apply the container's transformations (irot/imir/clap) as pillow-heif does; EXIF orientation is not applied
// again (ExifOrientation reads none from HEIF). The pixel limit is checked on the primary image handle's size
// before decoding. Colour conversion (YCbCr -> RGB) is libheif's own, so values can differ by a few levels from
// pillow-heif's newer bundled libheif (see FormatTests for the measured tolerance).
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "image_internal.h"
#include "include/cvlm_image_dl.h"

typedef struct { int code, subcode; const char *message; } vlm_heif_error;
typedef struct heif_context heif_context;
typedef struct heif_image_handle heif_image_handle;
typedef struct heif_image heif_image;

enum { HEIF_COLORSPACE_RGB = 1, HEIF_CHROMA_RGB = 10, HEIF_CHROMA_RGBA = 11, HEIF_CHANNEL_INTERLEAVED = 10 };

static struct {
    pthread_once_t once;
    int ok;
    char error[160];
    heif_context *(*context_alloc)(void);
    void (*context_free)(heif_context *);
    vlm_heif_error (*read_from_memory)(heif_context *, const void *, size_t, const void *);
    vlm_heif_error (*primary_handle)(heif_context *, heif_image_handle **);
    int (*handle_width)(const heif_image_handle *);
    int (*handle_height)(const heif_image_handle *);
    int (*handle_has_alpha)(const heif_image_handle *);
    vlm_heif_error (*decode)(const heif_image_handle *, heif_image **, int, int, const void *);
    const uint8_t *(*plane)(const heif_image *, int, int *);
    int (*image_width)(const heif_image *, int);
    int (*image_height)(const heif_image *, int);
    void (*image_release)(const heif_image *);
    void (*handle_release)(const heif_image_handle *);
} heif;

static pthread_once_t heif_once = PTHREAD_ONCE_INIT;

static void heif_load(void) {
    void *lib = vlm_dl_open("libheif.so.1", heif.error, sizeof heif.error);
    if (lib == NULL) return;
    *(void **)&heif.context_alloc = dlsym(lib, "heif_context_alloc");
    *(void **)&heif.context_free = dlsym(lib, "heif_context_free");
    *(void **)&heif.read_from_memory = dlsym(lib, "heif_context_read_from_memory_without_copy");
    *(void **)&heif.primary_handle = dlsym(lib, "heif_context_get_primary_image_handle");
    *(void **)&heif.handle_width = dlsym(lib, "heif_image_handle_get_width");
    *(void **)&heif.handle_height = dlsym(lib, "heif_image_handle_get_height");
    *(void **)&heif.handle_has_alpha = dlsym(lib, "heif_image_handle_has_alpha_channel");
    *(void **)&heif.decode = dlsym(lib, "heif_decode_image");
    *(void **)&heif.plane = dlsym(lib, "heif_image_get_plane_readonly");
    *(void **)&heif.image_width = dlsym(lib, "heif_image_get_width");
    *(void **)&heif.image_height = dlsym(lib, "heif_image_get_height");
    *(void **)&heif.image_release = dlsym(lib, "heif_image_release");
    *(void **)&heif.handle_release = dlsym(lib, "heif_image_handle_release");
    if (!heif.context_alloc || !heif.context_free || !heif.read_from_memory || !heif.primary_handle ||
        !heif.handle_width || !heif.handle_height || !heif.handle_has_alpha || !heif.decode || !heif.plane ||
        !heif.image_width || !heif.image_height || !heif.image_release || !heif.handle_release) {
        snprintf(heif.error, sizeof heif.error, "a heif_* entry point is missing");
        return;
    }
    heif.ok = 1;
}

/// ISO-BMFF "ftyp" with a HEIF/AVIF brand.
int vlm_heif_sniff(const uint8_t *d, size_t n) {
    if (n < 12 || memcmp(d + 4, "ftyp", 4) != 0) return 0;
    static const char *brands[] = {"heic", "heix", "hevc", "hevx", "heim", "heis", "mif1", "msf1", "avif", "avis"};
    for (size_t i = 0; i < sizeof brands / sizeof *brands; i++)
        if (memcmp(d + 8, brands[i], 4) == 0) return 1;
    return 0;
}

typedef struct { heif_context *ctx; heif_image_handle *handle; } vlm_heif_open;

static void heif_close(vlm_heif_open *h) {
    if (h->handle) heif.handle_release(h->handle);
    if (h->ctx) heif.context_free(h->ctx);
}

static int heif_open(const uint8_t *data, size_t size, vlm_heif_open *h, vlm_image_info *info) {
    memset(info, 0, sizeof *info);
    memset(h, 0, sizeof *h);
    if (data == NULL || size == 0) return vlm_img_fail(info, VLM_IMG_ERR_EMPTY, "no data (0 bytes)");
    if (!vlm_heif_sniff(data, size)) return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT, "not a HEIF/AVIF image");
    pthread_once(&heif_once, heif_load);
    if (!heif.ok)
        return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "HEIC/AVIF needs libheif.so.1, which could not be loaded (%s)", heif.error);
    if ((h->ctx = heif.context_alloc()) == NULL) return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "libheif context");
    vlm_heif_error e = heif.read_from_memory(h->ctx, data, size, NULL);
    if (e.code != 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libheif cannot read it: %s", e.message ? e.message : "?");
    e = heif.primary_handle(h->ctx, &h->handle);
    if (e.code != 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "no primary image: %s", e.message ? e.message : "?");
    int w = heif.handle_width(h->handle), ht = heif.handle_height(h->handle);
    if (w <= 0 || ht <= 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "HEIF image of %dx%d", w, ht);
    info->width = w;
    info->height = ht;
    info->has_alpha = heif.handle_has_alpha(h->handle) != 0;
    return VLM_IMG_OK;
}

int vlm_heif_probe(const uint8_t *data, size_t size, vlm_image_info *info) {
    vlm_heif_open h;
    int st = heif_open(data, size, &h, info);
    heif_close(&h);
    return st;
}

int vlm_heif_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info) {
    vlm_heif_open h;
    int st = heif_open(data, size, &h, info);
    int64_t pixels = info->width * info->height;
    if (st == VLM_IMG_OK) st = vlm_img_check_output(info, max_pixels, out, out_size);
    heif_image *img = NULL;
    int rgba = info->has_alpha;
    if (st == VLM_IMG_OK) {
        vlm_heif_error e = heif.decode(h.handle, &img, HEIF_COLORSPACE_RGB, rgba ? HEIF_CHROMA_RGBA : HEIF_CHROMA_RGB, NULL);
        if (e.code != 0 || img == NULL)
            st = vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libheif could not decode the image: %s", e.message ? e.message : "?");
    }
    int stride = 0;
    const uint8_t *plane = NULL;
    if (st == VLM_IMG_OK) {
        plane = heif.plane(img, HEIF_CHANNEL_INTERLEAVED, &stride);
        int pw = heif.image_width(img, HEIF_CHANNEL_INTERLEAVED), ph = heif.image_height(img, HEIF_CHANNEL_INTERLEAVED);
        if (plane == NULL || pw != info->width || ph != info->height || stride < pw * (rgba ? 4 : 3))
            st = vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "libheif returned a %dx%d plane for a %lldx%lld image (8-bit only)",
                              pw, ph, (long long)info->width, (long long)info->height);
    }
    if (st == VLM_IMG_OK) {
        size_t w = (size_t)info->width;
        for (size_t y = 0; y < (size_t)info->height; y++) {
            const uint8_t *s = plane + y * (size_t)stride;
            uint8_t *d = out + y * w * 3;
            for (size_t x = 0; x < w; x++) {
                if (!rgba) {
                    d[3 * x] = s[3 * x], d[3 * x + 1] = s[3 * x + 1], d[3 * x + 2] = s[3 * x + 2];
                } else if (alpha == VLM_ALPHA_WHITE) {
                    uint32_t a = s[4 * x + 3];
                    d[3 * x] = vlm_img_over_white(s[4 * x], a);
                    d[3 * x + 1] = vlm_img_over_white(s[4 * x + 1], a);
                    d[3 * x + 2] = vlm_img_over_white(s[4 * x + 2], a);
                } else {
                    d[3 * x] = s[4 * x], d[3 * x + 1] = s[4 * x + 1], d[3 * x + 2] = s[4 * x + 2];
                }
            }
        }
    }
    if (img) heif.image_release(img);
    heif_close(&h);
    return st;
}
