// TIFF through the system's libtiff (libtiff.so.6), loaded at run time: the entry points used are declared
// here from tiffio.h (libtiff 4.x ABI: tmsize_t = ptrdiff_t, toff_t = uint64_t), so no -dev package is needed.
//
// The first page (directory) is decoded into its stored pixel grid (the file's Orientation tag is applied
// afterwards by ExifOrientation.swift, as Pillow's exif_transpose does), equal to Pillow's decoding:
//  * 1-bit bilevel, 8-bit grey (min-is-black or min-is-white), 8-bit palette (16-bit colour map) and 8-bit RGB
//    go through TIFFReadRGBAImageOriented (Orientation overridden to top-left, so it returns the stored grid);
//  * 16-bit RGB, 8/16-bit RGBA with unassociated alpha, 16-bit grey and 8-bit CMYK (stripped, contiguous) are
//    read scanline by scanline (libtiff hands out native-order samples) and unpacked as Pillow's rawmodes do:
//    high byte of 16-bit samples, "I;16" clipped to 255, CMYK through Pillow's cmyk2rgb — libtiff's RGBA path
//    would premultiply alpha, round 16-bit samples and convert CMYK differently;
//  * associated alpha, tiled or planar 16-bit/alpha/CMYK files and float samples are refused with
//    VLM_IMG_ERR_UNSUPPORTED naming the layout.
// libtiff's error and warning handlers are replaced so that nothing is printed; the last error text of the
// calling thread goes into the message.
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"
#include "include/cvlm_image_dl.h"

typedef struct tiff TIFF;
typedef ptrdiff_t (*vlm_tiff_rw)(void *, void *, ptrdiff_t);
typedef uint64_t (*vlm_tiff_seek)(void *, uint64_t, int);
typedef int (*vlm_tiff_close)(void *);
typedef uint64_t (*vlm_tiff_size)(void *);
typedef int (*vlm_tiff_map)(void *, void **, uint64_t *);
typedef void (*vlm_tiff_unmap)(void *, void *, uint64_t);
typedef void (*vlm_tiff_handler)(const char *, const char *, va_list);

static struct {
    pthread_once_t once;
    int ok;
    char error[160];
    TIFF *(*client_open)(const char *, const char *, void *, vlm_tiff_rw, vlm_tiff_rw, vlm_tiff_seek, vlm_tiff_close,
                         vlm_tiff_size, vlm_tiff_map, vlm_tiff_unmap);
    int (*get_field_defaulted)(TIFF *, uint32_t, ...);
    int (*get_field)(TIFF *, uint32_t, ...);
    int (*set_field)(TIFF *, uint32_t, ...);
    int (*read_rgba)(TIFF *, uint32_t, uint32_t, uint32_t *, int, int);
    void (*close)(TIFF *);
    int (*is_tiled)(TIFF *);
    int64_t (*scanline_size)(TIFF *);
    int (*read_scanline)(TIFF *, void *, uint32_t, uint16_t);
} tiff = {PTHREAD_ONCE_INIT, 0, "", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static _Thread_local char tiff_last_error[200];

static void tiff_on_error(const char *module, const char *fmt, va_list ap) {
    (void)module;
    vsnprintf(tiff_last_error, sizeof tiff_last_error, fmt, ap);
}
static void tiff_on_warning(const char *module, const char *fmt, va_list ap) { (void)module, (void)fmt, (void)ap; }

static void tiff_load(void) {
    void *lib = vlm_dl_open("libtiff.so.6", tiff.error, sizeof tiff.error);
    if (lib == NULL) return;
    *(void **)&tiff.client_open = dlsym(lib, "TIFFClientOpen");
    *(void **)&tiff.get_field_defaulted = dlsym(lib, "TIFFGetFieldDefaulted");
    *(void **)&tiff.get_field = dlsym(lib, "TIFFGetField");
    *(void **)&tiff.set_field = dlsym(lib, "TIFFSetField");
    *(void **)&tiff.read_rgba = dlsym(lib, "TIFFReadRGBAImageOriented");
    *(void **)&tiff.close = dlsym(lib, "TIFFClose");
    *(void **)&tiff.is_tiled = dlsym(lib, "TIFFIsTiled");
    *(void **)&tiff.scanline_size = dlsym(lib, "TIFFScanlineSize64");
    *(void **)&tiff.read_scanline = dlsym(lib, "TIFFReadScanline");
    vlm_tiff_handler (*set_error)(vlm_tiff_handler) = NULL, (*set_warning)(vlm_tiff_handler) = NULL;
    *(void **)&set_error = dlsym(lib, "TIFFSetErrorHandler");
    *(void **)&set_warning = dlsym(lib, "TIFFSetWarningHandler");
    if (!tiff.client_open || !tiff.get_field_defaulted || !tiff.get_field || !tiff.set_field || !tiff.read_rgba ||
        !tiff.close || !tiff.is_tiled || !tiff.scanline_size || !tiff.read_scanline || !set_error || !set_warning) {
        snprintf(tiff.error, sizeof tiff.error, "a TIFF entry point is missing");
        return;
    }
    set_error(tiff_on_error);
    set_warning(tiff_on_warning);
    tiff.ok = 1;
}

typedef struct { const uint8_t *data; uint64_t size, pos; } vlm_tiff_reader;

static ptrdiff_t tiff_read(void *h, void *buf, ptrdiff_t n) {
    vlm_tiff_reader *r = h;
    if (n <= 0 || r->pos >= r->size) return 0;
    uint64_t take = (uint64_t)n < r->size - r->pos ? (uint64_t)n : r->size - r->pos;
    memcpy(buf, r->data + r->pos, (size_t)take);
    r->pos += take;
    return (ptrdiff_t)take;
}
static ptrdiff_t tiff_write(void *h, void *buf, ptrdiff_t n) { (void)h, (void)buf, (void)n; return -1; }
static uint64_t tiff_seek(void *h, uint64_t off, int whence) {
    vlm_tiff_reader *r = h;
    uint64_t base = whence == 1 ? r->pos : whence == 2 ? r->size : 0;
    if (off > UINT64_MAX - base) return (uint64_t)-1;
    r->pos = base + off;  // past the end is allowed; reads there return 0 bytes
    return r->pos;
}
static int tiff_close_proc(void *h) { (void)h; return 0; }
static uint64_t tiff_size(void *h) { return ((vlm_tiff_reader *)h)->size; }
static int tiff_map(void *h, void **base, uint64_t *size) { (void)h, (void)base, (void)size; return 0; }
static void tiff_unmap(void *h, void *base, uint64_t size) { (void)h, (void)base, (void)size; }

int vlm_tiff_sniff(const uint8_t *d, size_t n) {
    return n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0);
}

/// Layouts read scanline by scanline (stripped, contiguous) and unpacked as Pillow's rawmodes do.
enum { TIFF_VIA_RGBA = 0, TIFF_RGB16 = 1, TIFF_RGBA8 = 2, TIFF_RGBA16 = 3, TIFF_GREY16 = 4, TIFF_CMYK8 = 5 };

/// Pillow's MULDIV255 (ImagingUtils.h).
static inline uint32_t tiff_muldiv255(uint32_t a, uint32_t b) {
    uint32_t t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/// Opens the first page and checks its layout; fills info. *out is the open handle (the caller closes it).
static int tiff_open(vlm_tiff_reader *r, TIFF **out, vlm_image_info *info, int *layout) {
    memset(info, 0, sizeof *info);
    *out = NULL;
    if (r->data == NULL || r->size == 0) return vlm_img_fail(info, VLM_IMG_ERR_EMPTY, "no data (0 bytes)");
    if (!vlm_tiff_sniff(r->data, (size_t)r->size)) return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT, "not a TIFF image");
    pthread_once(&tiff.once, tiff_load);
    if (!tiff.ok) return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "TIFF needs libtiff.so.6, which could not be loaded (%s)", tiff.error);
    tiff_last_error[0] = 0;
    // "rm": read, never memory-map (the data is already in memory; the map procs decline anyway).
    TIFF *t = tiff.client_open("tiff", "rm", r, tiff_read, tiff_write, tiff_seek, tiff_close_proc, tiff_size, tiff_map, tiff_unmap);
    if (t == NULL) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libtiff cannot open it: %s", tiff_last_error);
    *out = t;
    uint32_t w = 0, h = 0;
    uint16_t bits = 1, spp = 1, photometric = 0, planar = 1, extra = 0, sample_format = 1;
    uint16_t *extra_types = NULL;
    if (!tiff.get_field(t, 256, &w) || !tiff.get_field(t, 257, &h) || w == 0 || h == 0 || w > 0x7FFFFFFF || h > 0x7FFFFFFF)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "TIFF has invalid dimensions %ux%u", w, h);
    info->width = w;
    info->height = h;
    tiff.get_field_defaulted(t, 258, &bits);   // BitsPerSample
    tiff.get_field_defaulted(t, 277, &spp);    // SamplesPerPixel
    tiff.get_field_defaulted(t, 284, &planar); // PlanarConfiguration
    tiff.get_field_defaulted(t, 339, &sample_format);
    tiff.get_field_defaulted(t, 338, &extra, &extra_types);
    if (!tiff.get_field(t, 262, &photometric))
        return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "TIFF without a PhotometricInterpretation tag");
    int grey = (photometric == 0 || photometric == 1) && spp == 1 && (bits == 1 || bits == 8);
    int palette = photometric == 3 && spp == 1 && bits == 8;
    int rgb = photometric == 2 && spp == 3 && bits == 8;
    *layout = TIFF_VIA_RGBA;
    if (sample_format == 1 && extra == 0 && (grey || palette || rgb)) return VLM_IMG_OK;  // libtiff's RGBA reader
    // Pillow's OPEN_INFO rawmodes "RGB;16N", "RGBA" (unassociated alpha), "RGBA;16N", "I;16" (min-is-black).
    int unassociated = extra == 1 && extra_types != NULL && extra_types[0] == 2;
    if (sample_format == 1 && planar == 1 && !tiff.is_tiled(t)) {
        if (photometric == 2 && spp == 3 && bits == 16 && extra == 0) *layout = TIFF_RGB16;
        if (photometric == 2 && spp == 4 && bits == 8 && unassociated) *layout = TIFF_RGBA8;
        if (photometric == 2 && spp == 4 && bits == 16 && unassociated) *layout = TIFF_RGBA16;
        if (photometric == 1 && spp == 1 && bits == 16 && extra == 0) *layout = TIFF_GREY16;
        uint16_t inkset = 1;
        tiff.get_field_defaulted(t, 332, &inkset);
        if (photometric == 5 && spp == 4 && bits == 8 && extra == 0 && inkset == 1) *layout = TIFF_CMYK8;
    }
    if (*layout == TIFF_VIA_RGBA)
        return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED,
                            "TIFF layout not handled yet (photometric %u, %u samples of %u bits, %u extra, format %u, "
                            "planar %u; handled: 1/8-bit grey, 8-bit palette, 8/16-bit RGB, 8/16-bit RGBA with "
                            "unassociated alpha in strips, 16-bit grey, 8-bit CMYK in strips)", photometric, spp, bits, extra, sample_format, planar);
    info->has_alpha = *layout == TIFF_RGBA8 || *layout == TIFF_RGBA16;
    return VLM_IMG_OK;
}

int vlm_tiff_probe(const uint8_t *data, size_t size, vlm_image_info *info) {
    vlm_tiff_reader r = {data, size, 0};
    TIFF *t = NULL;
    int layout = 0;
    int st = tiff_open(&r, &t, info, &layout);
    if (t) tiff.close(t);
    return st;
}

static int tiff_read_scanlines(TIFF *t, int layout, vlm_alpha_mode alpha, uint8_t *out, vlm_image_info *info) {
    size_t w = (size_t)info->width, h = (size_t)info->height;
    size_t spp = layout == TIFF_RGB16 ? 3 : layout == TIFF_GREY16 ? 1 : 4;
    size_t bytes = layout == TIFF_RGBA8 || layout == TIFF_CMYK8 ? 1 : 2;
    int64_t line = tiff.scanline_size(t);
    if (line <= 0 || (uint64_t)line < w * spp * bytes)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "TIFF scanline of %lld bytes for %zu pixels", (long long)line, w);
    uint8_t *buf = malloc((size_t)line);
    if (buf == NULL) return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "%lld bytes for a TIFF scanline", (long long)line);
    int composite = alpha == VLM_ALPHA_WHITE && info->has_alpha;
    for (size_t y = 0; y < h; y++) {
        if (tiff.read_scanline(t, buf, (uint32_t)y, 0) != 1) {
            free(buf);
            return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libtiff could not read row %zu: %s", y, tiff_last_error);
        }
        uint8_t *d = out + y * w * 3;
        for (size_t x = 0; x < w; x++) {
            uint32_t c[4] = {0, 0, 0, 255};
            for (size_t k = 0; k < spp; k++) {
                if (bytes == 1) {
                    c[k] = buf[x * spp + k];
                } else {  // libtiff hands out native-order samples; Pillow's ";16N" unpackers keep the high byte
                    uint16_t v;
                    memcpy(&v, buf + 2 * (x * spp + k), 2);
                    c[k] = layout == TIFF_GREY16 ? (v > 255 ? 255 : v) : (uint32_t)(v >> 8);  // I;16 -> RGB clips
                }
            }
            if (layout == TIFF_GREY16) c[1] = c[2] = c[0];
            if (layout == TIFF_CMYK8) {  // Pillow's cmyk2rgb (Convert.c): R = nk - MULDIV255(C, nk), nk = 255 - K
                uint32_t nk = 255 - c[3];
                for (int k = 0; k < 3; k++) c[k] = nk - tiff_muldiv255(c[k], nk);
                c[3] = 255;
            }
            for (int k = 0; k < 3; k++) d[3 * x + k] = composite ? vlm_img_over_white(c[k], c[3]) : (uint8_t)c[k];
        }
    }
    free(buf);
    return VLM_IMG_OK;
}

int vlm_tiff_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info) {
    vlm_tiff_reader r = {data, size, 0};
    TIFF *t = NULL;
    int layout = 0;
    int st = tiff_open(&r, &t, info, &layout);
    int64_t pixels = info->width * info->height;
    if (st == VLM_IMG_OK) st = vlm_img_check_output(info, max_pixels, out, out_size);
    if (st == VLM_IMG_OK && layout != TIFF_VIA_RGBA) {
        st = tiff_read_scanlines(t, layout, alpha, out, info);
        tiff.close(t);
        return st;
    }
    uint32_t *raster = NULL;
    if (st == VLM_IMG_OK && (raster = malloc((size_t)pixels * 4)) == NULL)
        st = vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "%lld bytes for a TIFF page", (long long)pixels * 4);
    if (st == VLM_IMG_OK) {
        tiff.set_field(t, 274, 1);  // Orientation: read the stored grid; ExifOrientation applies the tag
        if (!tiff.read_rgba(t, (uint32_t)info->width, (uint32_t)info->height, raster, 1, 1))
            st = vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libtiff could not decode the image: %s", tiff_last_error);
    }
    if (st == VLM_IMG_OK) {
        for (size_t i = 0; i < (size_t)pixels; i++) {
            uint32_t p = raster[i];
            out[3 * i] = (uint8_t)p, out[3 * i + 1] = (uint8_t)(p >> 8), out[3 * i + 2] = (uint8_t)(p >> 16);
        }
    }
    free(raster);
    if (t) tiff.close(t);
    return st;
}
