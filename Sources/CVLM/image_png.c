// PNG decoding with libpng, matching Pillow's PngImagePlugin (_MODES table) + convert("RGB"):
//  * 16-bit RGB / RGBA / grey+alpha: Pillow's rawmodes "RGB;16B", "RGBA;16B", "LA;16B" keep the high byte of
//    each sample -> png_set_strip_16 (truncation, not png_set_scale_16's rounding);
//  * 16-bit grey opens as "I;16", whose convert("RGB") clips: v > 255 -> 255 (checked in Pillow 13);
//  * 1/2/4-bit grey are scaled to 0..255 (x255, x85, x17) as Pillow's "1", "L;2", "L;4" unpackers do;
//  * palette -> RGB via PLTE; alpha channels and tRNS are ignored by convert("RGB");
//  * no gamma, sBIT or colour-profile handling (Pillow applies none on open).
// With VLM_ALPHA_WHITE (transformers' convert_to_rgb) alpha and tRNS become an alpha channel and the pixel is
// composited onto white. Known gaps against Pillow in that mode only: tRNS colour keys of 16-bit or <8-bit grey
// and of 16-bit RGB images (Pillow compares the key against the converted 8-bit values; libpng against the raw
// samples) — such files are rare.
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "image_internal.h"

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    int truncated;
    char text[200];
} vlm_png_reader;

static void on_read(png_structp png, png_bytep dst, size_t n) {
    vlm_png_reader *r = (vlm_png_reader *)png_get_io_ptr(png);
    if (r->size - r->pos < n) {
        r->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(dst, r->data + r->pos, n);
    r->pos += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    vlm_png_reader *r = (vlm_png_reader *)png_get_error_ptr(png);
    snprintf(r->text, sizeof r->text, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/// One decoded row (after libpng's transforms) -> RGB.
static void convert_row(const uint8_t *s, uint8_t *d, size_t w, int channels, int grey16, vlm_alpha_mode alpha) {
    if (grey16) {
        for (size_t x = 0; x < w; x++) {
            unsigned v = ((unsigned)s[2 * x] << 8) | s[2 * x + 1];
            uint8_t g = v > 255 ? 255 : (uint8_t)v;  // Pillow's I;16 -> RGB clips rather than scales
            d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = g;
        }
        return;
    }
    for (size_t x = 0; x < w; x++) {
        const uint8_t *p = s + x * (size_t)channels;
        uint8_t r, g, b, a = 255;
        if (channels >= 3) { r = p[0]; g = p[1]; b = p[2]; if (channels == 4) a = p[3]; }
        else { r = g = b = p[0]; if (channels == 2) a = p[1]; }
        if (alpha == VLM_ALPHA_WHITE && a != 255) {
            r = vlm_img_over_white(r, a);
            g = vlm_img_over_white(g, a);
            b = vlm_img_over_white(b, a);
        }
        d[3 * x] = r;
        d[3 * x + 1] = g;
        d[3 * x + 2] = b;
    }
}

int vlm_image_decode_png(const uint8_t *data, size_t size, vlm_alpha_mode alpha, uint8_t *out, vlm_image_info *info) {
    vlm_png_reader reader = {data, size, 0, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_error, on_warning);
    if (!png) return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "libpng could not allocate its state");
    png_infop pinfo = png_create_info_struct(png);
    if (!pinfo) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vlm_img_fail(info, VLM_IMG_ERR_NOMEM, "libpng could not allocate its state");
    }
    uint8_t *volatile temp = NULL;  // volatile: read after longjmp
    if (setjmp(png_jmpbuf(png))) {
        free(temp);
        png_destroy_read_struct(&png, &pinfo, NULL);
        if (reader.truncated) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "PNG is truncated (%s)", reader.text);
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "PNG decoding failed: %s", reader.text);
    }
    png_set_read_fn(png, &reader, on_read);
    png_set_user_limits(png, 0x7FFFFFFF, 0x7FFFFFFF);  // the caller's pixel limit applies, not libpng's 1M/side
    png_read_info(png, pinfo);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, pinfo, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((int64_t)w != info->width || (int64_t)h != info->height)
        png_error(png, "IHDR disagrees with the probed header");
    int has_trns = png_get_valid(png, pinfo, PNG_INFO_tRNS) != 0;
    info->has_alpha = (ctype & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;

    int grey16 = ctype == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (!grey16) {
        if (depth == 16) png_set_strip_16(png);
        if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // also turns tRNS into alpha
        if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (has_trns && alpha == VLM_ALPHA_WHITE && ctype != PNG_COLOR_TYPE_PALETTE) png_set_tRNS_to_alpha(png);
        if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, pinfo);
    int channels = png_get_channels(png, pinfo);
    size_t rowbytes = png_get_rowbytes(png, pinfo);
    size_t stride = (size_t)w * 3;
    if ((grey16 && rowbytes != (size_t)w * 2) || (!grey16 && rowbytes != (size_t)w * (size_t)channels))
        png_error(png, "unexpected row layout after transforms");

    if (!grey16 && channels == 3) {
        // Straight into the output. Interlaced: libpng combines each pass into the same rows.
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(png, out + y * stride, NULL);
    } else if (passes > 1) {
        temp = (uint8_t *)malloc(rowbytes * h);
        if (!temp) png_error(png, "out of memory for the interlaced image");
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++) png_read_row(png, temp + y * rowbytes, NULL);
        for (png_uint_32 y = 0; y < h; y++) convert_row(temp + y * rowbytes, out + y * stride, w, channels, grey16, alpha);
    } else {
        temp = (uint8_t *)malloc(rowbytes);
        if (!temp) png_error(png, "out of memory for a row");
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(png, temp, NULL);
            convert_row(temp, out + y * stride, w, channels, grey16, alpha);
        }
    }
    // No png_read_end: every row is decoded; chunks after IDAT (text, IEND) do not change pixels.
    free(temp);
    temp = NULL;
    png_destroy_read_struct(&png, &pinfo, NULL);
    return VLM_IMG_OK;
}
