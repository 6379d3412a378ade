// Image encoders (PNG/JPEG writing) for generated data. Owned by the scenes generator.
//
// Every entry point returns a vlm_enc_status; a codec error (libpng's png_error, libjpeg's error_exit) is
// caught with setjmp/longjmp and becomes a status plus a message: nothing here exits, aborts or prints.
// Encoded bytes are malloc'ed by the encoder and released with vlm_enc_free.
#ifndef CVLM_IMAGE_ENCODE_H
#define CVLM_IMAGE_ENCODE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VLM_ENC_OK = 0,
    VLM_ENC_ERR_ARGUMENT = 1,  // bad size, null buffer, rgb_size too small, quality out of 1...100
    VLM_ENC_ERR_NOMEM = 2,
    VLM_ENC_ERR_CODEC = 3,     // the codec reported an error; message has its text
} vlm_enc_status;

typedef struct {
    uint8_t *data;      // encoded bytes (malloc'ed; free with vlm_enc_free), NULL on failure
    size_t size;
    char message[256];  // human-readable detail when a call fails
} vlm_enc_result;

/// PNG, 8-bit RGB, no interlace, zlib level `compression` (0...9; -1 = libpng default). No time or text
/// chunks, so the same pixels always give the same bytes.
int vlm_enc_png_rgb8(const uint8_t *rgb, size_t rgb_size, int64_t width, int64_t height, int compression,
                     vlm_enc_result *out);

/// Baseline JPEG, 4:2:0, quality 1...100 (libjpeg's scale), no JFIF timestamps.
int vlm_enc_jpeg_rgb8(const uint8_t *rgb, size_t rgb_size, int64_t width, int64_t height, int quality,
                      vlm_enc_result *out);

/// Releases the bytes of a result (safe on a zeroed or failed result).
void vlm_enc_free(vlm_enc_result *out);

#ifdef __cplusplus
}
#endif
#endif
