// PNG and JPEG encoders for generated images (see cvlm_image_encode.h). Codec errors longjmp back here and
// become status codes; every local touched after setjmp is volatile so its value survives the jump.
#include "cvlm_image_encode.h"
#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

static void set_message(char *message, const char *text) {
    if (!message) return;
    snprintf(message, 256, "%s", text ? text : "");
}

static int check_args(const uint8_t *rgb, size_t rgb_size, int64_t width, int64_t height, char *message) {
    // libpng and libjpeg both cap dimensions well below this; refusing early keeps width*height*3 from
    // overflowing and gives a clear message instead of a codec error.
    if (!rgb || width <= 0 || height <= 0 || width > 65500 || height > 65500) {
        set_message(message, "image size must be 1...65500 per side with a pixel buffer");
        return VLM_ENC_ERR_ARGUMENT;
    }
    if (rgb_size < (size_t)width * (size_t)height * 3) {
        set_message(message, "pixel buffer is smaller than width*height*3");
        return VLM_ENC_ERR_ARGUMENT;
    }
    return VLM_ENC_OK;
}

void vlm_enc_free(vlm_enc_result *out) {
    if (!out) return;
    free(out->data);
    out->data = NULL;
    out->size = 0;
}

// ---- PNG ----------------------------------------------------------------------------------------------

typedef struct {
    uint8_t *data;
    size_t size, capacity;
    int failed;  // allocation failed: reported after png_write_end, since png_error would hide the cause
    char message[256];
} png_sink;

static void png_sink_write(png_structp png, png_bytep bytes, png_size_t length) {
    png_sink *sink = (png_sink *)png_get_io_ptr(png);
    if (sink->failed) return;
    if (sink->size + length > sink->capacity) {
        size_t cap = sink->capacity ? sink->capacity : 4096;
        while (cap < sink->size + length) cap *= 2;
        uint8_t *grown = (uint8_t *)realloc(sink->data, cap);
        if (!grown) {
            sink->failed = 1;
            return;
        }
        sink->data = grown;
        sink->capacity = cap;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void png_sink_flush(png_structp png) { (void)png; }

static void png_on_error(png_structp png, png_const_charp msg) {
    png_sink *sink = (png_sink *)png_get_error_ptr(png);
    if (sink) set_message(sink->message, msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int vlm_enc_png_rgb8(const uint8_t *rgb, size_t rgb_size, int64_t width, int64_t height, int compression,
                     vlm_enc_result *out) {
    if (!out) return VLM_ENC_ERR_ARGUMENT;
    memset(out, 0, sizeof(*out));
    int status = check_args(rgb, rgb_size, width, height, out->message);
    if (status != VLM_ENC_OK) return status;
    if (compression < -1 || compression > 9) {
        set_message(out->message, "PNG compression must be -1...9");
        return VLM_ENC_ERR_ARGUMENT;
    }
    png_sink sink;
    memset(&sink, 0, sizeof(sink));
    png_structp volatile png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_error, png_on_warning);
    if (!png) {
        set_message(out->message, "out of memory creating the PNG writer");
        return VLM_ENC_ERR_NOMEM;
    }
    png_infop volatile info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_structp p = png;
        png_destroy_write_struct(&p, NULL);
        set_message(out->message, "out of memory creating the PNG writer");
        return VLM_ENC_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_structp p = png;
        png_infop i = info;
        png_destroy_write_struct(&p, &i);
        free(rows);
        free(sink.data);
        set_message(out->message, sink.message[0] ? sink.message : "PNG encoder failed");
        return VLM_ENC_ERR_CODEC;
    }
    png_set_write_fn(png, &sink, png_sink_write, png_sink_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (compression >= 0) png_set_compression_level(png, compression);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)height);
    if (!rows) png_error(png, "out of memory for row pointers");
    for (int64_t y = 0; y < height; y++) rows[y] = (png_bytep)(rgb + (size_t)y * (size_t)width * 3);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    {
        png_structp p = png;
        png_infop i = info;
        png_destroy_write_struct(&p, &i);
    }
    free(rows);
    if (sink.failed) {
        free(sink.data);
        set_message(out->message, "out of memory for the PNG bytes");
        return VLM_ENC_ERR_NOMEM;
    }
    out->data = sink.data;
    out->size = sink.size;
    return VLM_ENC_OK;
}

// ---- JPEG ---------------------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[256];
} jpeg_error_state;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_error_state *state = (jpeg_error_state *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    set_message(state->message, buffer);
    longjmp(state->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo) { (void)cinfo; }  // warnings: never print

int vlm_enc_jpeg_rgb8(const uint8_t *rgb, size_t rgb_size, int64_t width, int64_t height, int quality,
                      vlm_enc_result *out) {
    if (!out) return VLM_ENC_ERR_ARGUMENT;
    memset(out, 0, sizeof(*out));
    int status = check_args(rgb, rgb_size, width, height, out->message);
    if (status != VLM_ENC_OK) return status;
    if (quality < 1 || quality > 100) {
        set_message(out->message, "JPEG quality must be 1...100");
        return VLM_ENC_ERR_ARGUMENT;
    }
    struct jpeg_compress_struct cinfo;
    memset(&cinfo, 0, sizeof(cinfo));  // so jpeg_destroy_compress is safe even if creation itself fails
    jpeg_error_state err;
    memset(&err, 0, sizeof(err));
    // jpeg_mem_dest owns a malloc'ed buffer it may grow; both fields must survive the longjmp.
    unsigned char *volatile buffer = NULL;
    volatile unsigned long size = 0;
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_on_error;
    err.base.output_message = jpeg_on_message;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        set_message(out->message, err.message[0] ? err.message : "JPEG encoder failed");
        return VLM_ENC_ERR_CODEC;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, (unsigned long *)&size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * (size_t)width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    out->data = buffer;
    out->size = (size_t)size;
    return VLM_ENC_OK;
}
