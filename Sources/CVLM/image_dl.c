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
    int (*get_info)(const uint8_t *, size_t, int *, int *);
} webp = {PTHREAD_ONCE_INIT, 0, "", NULL, NULL, NULL, NULL};

static void webp_load(void) {
    void *lib = vlm_dl_open("libwebp.so.7", webp.error, sizeof webp.error);
    if (lib == NULL) return;
    *(void **)&webp.get_features = dlsym(lib, "WebPGetFeaturesInternal");
    *(void **)&webp.decode_rgb_into = dlsym(lib, "WebPDecodeRGBInto");
    *(void **)&webp.decode_rgba_into = dlsym(lib, "WebPDecodeRGBAInto");
    *(void **)&webp.get_info = dlsym(lib, "WebPGetInfo");
    if (!webp.get_features || !webp.decode_rgb_into || !webp.decode_rgba_into || !webp.get_info) {
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
    return VLM_IMG_OK;
}

static uint32_t le24(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16; }
static uint32_t le32(const uint8_t *p) { return le24(p) | (uint32_t)p[3] << 24; }

/// The first ANMF chunk of an animated WebP: frame offset/size and its ALPH/VP8/VP8L sub-chunks.
static int webp_first_frame(const uint8_t *data, size_t size, size_t *x, size_t *y, size_t *w, size_t *h,
                            const uint8_t **frame, size_t *frame_size, vlm_image_info *info) {
    size_t pos = 12, end = size;
    if (le32(data + 4) <= size - 8) end = 8 + (size_t)le32(data + 4);  // RIFF size, when consistent
    while (pos + 8 <= end) {
        size_t len = le32(data + pos + 4);
        if (len > end - pos - 8) break;
        if (memcmp(data + pos, "ANMF", 4) == 0) {
            if (len < 16) break;
            const uint8_t *p = data + pos + 8;
            *x = 2 * (size_t)le24(p), *y = 2 * (size_t)le24(p + 3);
            *w = 1 + (size_t)le24(p + 6), *h = 1 + (size_t)le24(p + 9);
            *frame = p + 16, *frame_size = len - 16;
            return VLM_IMG_OK;
        }
        pos += 8 + len + (len & 1);
    }
    return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "animated WebP without a complete first frame (ANMF chunk)");
}

/// Pillow decodes animated WebP with libwebpdemux's WebPAnimDecoder: the first frame is a key frame, decoded
/// into a canvas of transparent black at its offset (no blending). Done here without libwebpdemux.
static int webp_decode_animated(const uint8_t *data, size_t size, vlm_alpha_mode alpha, uint8_t *out, vlm_image_info *info) {
    size_t cw = (size_t)info->width, ch = (size_t)info->height, x = 0, y = 0, w = 0, h = 0, n = 0;
    const uint8_t *frame = NULL;
    int st = webp_first_frame(data, size, &x, &y, &w, &h, &frame, &n, info);
    if (st != VLM_IMG_OK) return st;
    int fw = 0, fh = 0;
    if (x + w > cw || y + h > ch || !webp.get_info(frame, n, &fw, &fh) || (size_t)fw != w || (size_t)fh != h)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "animated WebP frame %zux%zu at (%zu, %zu) does not fit its %zux%zu canvas",
                            w, h, x, y, cw, ch);
    uint8_t *canvas = calloc(cw * ch, 4);
    if (canvas == NULL) return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "%zu bytes for a WebP canvas", cw * ch * 4);
    size_t offset = (y * cw + x) * 4;
    if (!webp.decode_rgba_into(frame, n, canvas + offset, cw * ch * 4 - offset, (int)(cw * 4))) {
        free(canvas);
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "libwebp could not decode the first frame (corrupt or truncated)");
    }
    int composite = alpha == VLM_ALPHA_WHITE && info->has_alpha;  // Pillow's mode is RGBA only with the alpha flag
    for (size_t i = 0; i < cw * ch; i++) {
        const uint8_t *c = canvas + 4 * i;
        for (int k = 0; k < 3; k++) out[3 * i + k] = composite ? vlm_img_over_white(c[k], c[3]) : c[k];
    }
    free(canvas);
    return VLM_IMG_OK;
}

int vlm_webp_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info) {
    int st = vlm_webp_probe(data, size, info);
    if (st != VLM_IMG_OK) return st;
    if ((st = vlm_img_check_output(info, max_pixels, out, out_size)) != VLM_IMG_OK) return st;
    int64_t pixels = info->width * info->height;
    size_t w = (size_t)info->width, n = (size_t)pixels;
    if (w * 4 > 0x7FFFFFFF) return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "WebP row too wide");
    vlm_webp_features f;
    memset(&f, 0, sizeof f);
    if (webp.get_features(data, size, &f, 0x0209) == 0 && f.has_animation) return webp_decode_animated(data, size, alpha, out, info);
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

// MARK: giflib
//
// giflib 5.x (libgif.so.7). The structures below are giflib's gif_lib.h layouts (stable across 5.x):
// only SWidth/SHeight/SColorMap and Image are read, after DGifOpen / DGifGetImageDesc filled them.
// The pixels are what Pillow's GifImagePlugin gives for the first frame + convert("RGB"):
//  * canvas = logical screen, grown to hold the frame; outside the frame it holds the frame's transparent index
//    (graphic control extension before the frame, last one wins) or 0;
//  * palette = the local colour table, else the global one; a table that is the identity grey ramp (or none)
//    makes Pillow's mode "L": the index is the grey level; otherwise indices past the table are black;
//  * VLM_ALPHA_WHITE: the transparent index becomes white (convert_to_rgb of a "P" image with transparency).
// Interlaced frames are de-interlaced (rows 0,8,.. 4,12,.. 2,6,.. 1,3,..). Only the first frame is decoded.

typedef struct { uint8_t r, g, b; } vlm_gif_color;
typedef struct { int count, bits; _Bool sort; vlm_gif_color *colors; } vlm_gif_colormap;
typedef struct { int left, top, width, height; _Bool interlace; vlm_gif_colormap *map; } vlm_gif_desc;
typedef struct {
    int swidth, sheight, scolor_resolution, sbackground;
    uint8_t aspect;
    vlm_gif_colormap *smap;
    int image_count;
    vlm_gif_desc image;
    void *saved_images;
    int extension_block_count;
    void *extension_blocks;
    int error;
    void *user_data;
    void *private_data;
} vlm_gif_file;
typedef int (*vlm_gif_input)(vlm_gif_file *, uint8_t *, int);

static struct {
    pthread_once_t once;
    int ok;
    char error[160];
    vlm_gif_file *(*open)(void *, vlm_gif_input, int *);
    int (*record_type)(vlm_gif_file *, int *);
    int (*image_desc)(vlm_gif_file *);
    int (*get_line)(vlm_gif_file *, uint8_t *, int);
    int (*get_extension)(vlm_gif_file *, int *, uint8_t **);
    int (*extension_next)(vlm_gif_file *, uint8_t **);
    int (*close)(vlm_gif_file *, int *);
} gif = {PTHREAD_ONCE_INIT, 0, "", NULL, NULL, NULL, NULL, NULL, NULL, NULL};

static void gif_load(void) {
    void *lib = vlm_dl_open("libgif.so.7", gif.error, sizeof gif.error);
    if (lib == NULL) return;
    *(void **)&gif.open = dlsym(lib, "DGifOpen");
    *(void **)&gif.record_type = dlsym(lib, "DGifGetRecordType");
    *(void **)&gif.image_desc = dlsym(lib, "DGifGetImageDesc");
    *(void **)&gif.get_line = dlsym(lib, "DGifGetLine");
    *(void **)&gif.get_extension = dlsym(lib, "DGifGetExtension");
    *(void **)&gif.extension_next = dlsym(lib, "DGifGetExtensionNext");
    *(void **)&gif.close = dlsym(lib, "DGifCloseFile");
    if (!gif.open || !gif.record_type || !gif.image_desc || !gif.get_line || !gif.get_extension ||
        !gif.extension_next || !gif.close) {
        snprintf(gif.error, sizeof gif.error, "a DGif entry point is missing");
        return;
    }
    gif.ok = 1;
}

int vlm_gif_sniff(const uint8_t *d, size_t n) {
    return n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0);
}

typedef struct { const uint8_t *data; size_t size, pos; } vlm_gif_reader;

static int gif_read(vlm_gif_file *g, uint8_t *buf, int n) {
    vlm_gif_reader *r = (vlm_gif_reader *)g->user_data;
    if (n <= 0) return 0;
    size_t left = r->size - r->pos, take = (size_t)n < left ? (size_t)n : left;
    memcpy(buf, r->data + r->pos, take);
    r->pos += take;
    return (int)take;
}

/// Opens, walks to the first image descriptor (noting the transparent index), fills info; the caller closes.
static int gif_first_frame(vlm_gif_reader *r, vlm_gif_file **out_g, int *transparency, vlm_image_info *info) {
    memset(info, 0, sizeof *info);
    *out_g = NULL;
    if (r->data == NULL || r->size == 0) return vlm_img_fail(info, VLM_IMG_ERR_EMPTY, "no data (0 bytes)");
    if (!vlm_gif_sniff(r->data, r->size)) return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT, "not a GIF image");
    pthread_once(&gif.once, gif_load);
    if (!gif.ok) return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "GIF needs libgif.so.7, which could not be loaded (%s)", gif.error);
    int err = 0;
    vlm_gif_file *g = gif.open(r, gif_read, &err);
    if (g == NULL) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "GIF header rejected by giflib (error %d)", err);
    *out_g = g;
    *transparency = -1;
    for (int records = 0;; records++) {
        int type = 0;
        if (records > 1000000 || gif.record_type(g, &type) != 1)
            return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "GIF ends before its first image (giflib error %d)", g->error);
        if (type == 2) break;  // IMAGE_DESC_RECORD_TYPE
        if (type == 4) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "GIF has no image");
        if (type != 3) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "GIF has an unknown record");
        int code = 0;
        uint8_t *block = NULL;
        if (gif.get_extension(g, &code, &block) != 1)
            return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "GIF ends inside an extension");
        if (code == 0xF9 && block != NULL && block[0] >= 4 && (block[1] & 1)) *transparency = block[4];
        while (block != NULL) {  // every sub-block is read, so this ends with the data
            if (gif.extension_next(g, &block) != 1) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "GIF ends inside an extension");
        }
    }
    if (gif.image_desc(g) != 1) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "GIF ends inside its image descriptor");
    vlm_gif_desc *d = &g->image;
    if (d->width <= 0 || d->height <= 0 || d->left < 0 || d->top < 0)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "GIF frame of %dx%d", d->width, d->height);
    int64_t w = g->swidth, h = g->sheight;
    if (d->left + d->width > w) w = d->left + d->width;
    if (d->top + d->height > h) h = d->top + d->height;
    if (w <= 0 || h <= 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "GIF of %lldx%lld", (long long)w, (long long)h);
    info->width = w;
    info->height = h;
    info->has_alpha = *transparency >= 0;
    return VLM_IMG_OK;
}

int vlm_gif_probe(const uint8_t *data, size_t size, vlm_image_info *info) {
    vlm_gif_reader r = {data, size, 0};
    vlm_gif_file *g = NULL;
    int t = -1, err = 0;
    int st = gif_first_frame(&r, &g, &t, info);
    if (g) gif.close(g, &err);
    return st;
}

int vlm_gif_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                       size_t out_size, vlm_image_info *info) {
    vlm_gif_reader r = {data, size, 0};
    vlm_gif_file *g = NULL;
    int t = -1, err = 0;
    int st = gif_first_frame(&r, &g, &t, info);
    int64_t pixels = info->width * info->height;
    if (st == VLM_IMG_OK) st = vlm_img_check_output(info, max_pixels, out, out_size);
    uint8_t *index = NULL;
    if (st == VLM_IMG_OK && (index = malloc((size_t)pixels)) == NULL)
        st = vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "%lld bytes for a GIF frame", (long long)pixels);
    if (st != VLM_IMG_OK) {
        if (g) gif.close(g, &err);
        return st;
    }
    size_t w = (size_t)info->width, h = (size_t)info->height;
    memset(index, t >= 0 ? t : 0, (size_t)pixels);
    vlm_gif_desc d = g->image;
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    for (int pass = 0, row = 0; pass < (d.interlace ? 4 : 1) && st == VLM_IMG_OK; pass++) {
        for (int y = d.interlace ? start[pass] : 0; y < d.height; y += d.interlace ? step[pass] : 1, row++) {
            if (gif.get_line(g, index + (size_t)(d.top + y) * w + (size_t)d.left, d.width) != 1) {
                st = vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "GIF image data ends early (giflib error %d)", g->error);
                break;
            }
        }
    }
    // Palette: local, else global; Pillow's "L" mode when there is none or it is the identity grey ramp.
    vlm_gif_colormap *map = d.map ? d.map : g->smap;
    uint8_t lut[256 * 3];
    memset(lut, 0, sizeof lut);
    int grey = 1;
    if (map && map->colors && map->count > 0) {
        for (int i = 0; i < map->count && i < 256; i++) {
            vlm_gif_color c = map->colors[i];
            lut[3 * i] = c.r, lut[3 * i + 1] = c.g, lut[3 * i + 2] = c.b;
            if (!(c.r == i && c.g == i && c.b == i)) grey = 0;
        }
    }
    if (grey)
        for (int i = 0; i < 256; i++) lut[3 * i] = lut[3 * i + 1] = lut[3 * i + 2] = (uint8_t)i;
    if (st == VLM_IMG_OK) {
        for (size_t i = 0; i < w * h; i++) {
            const uint8_t *c = lut + 3 * index[i];
            int clear = alpha == VLM_ALPHA_WHITE && t >= 0 && index[i] == t;
            out[3 * i] = clear ? 255 : c[0];
            out[3 * i + 1] = clear ? 255 : c[1];
            out[3 * i + 2] = clear ? 255 : c[2];
        }
    }
    free(index);
    gif.close(g, &err);
    return st;
}
