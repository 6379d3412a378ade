// JPEG decoding with libjpeg-turbo, matching Pillow's JpegImagePlugin + JpegDecode.c + convert("RGB"):
//  * mode from the number of components: 1 -> "L", 3 -> "RGB", 4 -> "CMYK" (rawmode "CMYK;I": Pillow always
//    assumes Adobe's inverted polarity, JpegImagePlugin.py), out_color_space GRAYSCALE / RGB / CMYK;
//  * libjpeg defaults otherwise: JDCT_ISLOW, fancy upsampling, block smoothing, no scaling, no EXIF rotation;
//  * "L" -> RGB replicates; "CMYK" -> RGB is Pillow's cmyk2rgb (Convert.c): R = nk - MULDIV255(C, nk), nk = 255-K;
//  * a premature end of data (libjpeg warning JWRN_JPEG_EOF) is an error, like Pillow's "image file is
//    truncated"; other corrupt-data warnings are tolerated as Pillow tolerates them.
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "image_internal.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int truncated;
    char text[JMSG_LENGTH_MAX];
} vlm_jpeg_error;

static void on_error_exit(j_common_ptr cinfo) {
    vlm_jpeg_error *err = (vlm_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->text);
    longjmp(err->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
    vlm_jpeg_error *err = (vlm_jpeg_error *)cinfo->err;
    if (level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {  // libjpeg would pad with grey; Pillow refuses
            err->truncated = 1;
            (*cinfo->err->format_message)(cinfo, err->text);
            longjmp(err->jump, 1);
        }
    }
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }  // never print

/// Pillow's MULDIV255 (ImagingUtils.h): (a*b + 128 + ((a*b + 128) >> 8)) >> 8.
static inline uint32_t muldiv255(uint32_t a, uint32_t b) {
    uint32_t t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

int vlm_image_decode_jpeg(const uint8_t *data, size_t size, uint8_t *out, vlm_image_info *info) {
    struct jpeg_decompress_struct cinfo;
    vlm_jpeg_error err;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.emit_message = on_emit_message;
    err.pub.output_message = on_output_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        if (err.truncated) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "JPEG is truncated (%s)", err.text);
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "JPEG decoding failed: %s", err.text);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int components = cinfo.num_components;
    if (components == 1) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (components == 3) {
        cinfo.out_color_space = JCS_RGB;
    } else if (components == 4) {
        cinfo.out_color_space = JCS_CMYK;  // libjpeg converts YCCK -> CMYK itself
    } else {
        jpeg_destroy_decompress(&cinfo);
        return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "JPEG with %d colour components", components);
    }
    jpeg_start_decompress(&cinfo);
    if ((int64_t)cinfo.output_width != info->width || (int64_t)cinfo.output_height != info->height ||
        cinfo.output_components != (components == 3 ? 3 : components)) {
        jpeg_destroy_decompress(&cinfo);
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "JPEG frame header disagrees with the decoder (%ux%u)",
                            cinfo.output_width, cinfo.output_height);
    }
    size_t w = cinfo.output_width;
    // CMYK rows go through a scratch row from libjpeg's own pool (freed by jpeg_destroy, longjmp-safe).
    JSAMPARRAY scratch = NULL;
    if (components == 4) scratch = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)(w * 4), 1);

    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *row = out + (size_t)cinfo.output_scanline * w * 3;
        if (components == 3) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(&cinfo, rows, 1);
        } else if (components == 1) {
            JSAMPROW rows[1] = {row};
            jpeg_read_scanlines(&cinfo, rows, 1);
            for (size_t x = w; x-- > 0;) {  // in place, back to front: 3x >= x
                uint8_t v = row[x];
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
            }
        } else {
            jpeg_read_scanlines(&cinfo, scratch, 1);
            const uint8_t *s = scratch[0];
            for (size_t x = 0; x < w; x++) {
                // "CMYK;I": stored values are inverted, then cmyk2rgb.
                uint32_t c = 255u - s[4 * x], m = 255u - s[4 * x + 1], y = 255u - s[4 * x + 2];
                uint32_t nk = s[4 * x + 3];  // 255 - K with K = 255 - stored
                row[3 * x] = (uint8_t)(nk - muldiv255(c, nk));
                row[3 * x + 1] = (uint8_t)(nk - muldiv255(m, nk));
                row[3 * x + 2] = (uint8_t)(nk - muldiv255(y, nk));
            }
        }
    }
    // No jpeg_finish_decompress: all pixels are out, and a missing EOI after them is not worth an error.
    jpeg_destroy_decompress(&cinfo);
    return VLM_IMG_OK;
}
