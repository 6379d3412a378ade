// Image codecs (libjpeg-turbo, libpng) behind setjmp-safe wrappers. Owned by the image front end.
//
// Every entry point returns a vlm_image_status; a codec error (libjpeg's error_exit, libpng's png_error) is
// caught with setjmp/longjmp and becomes a status plus a message in vlm_image_info.message: nothing here
// exits, aborts or prints.
//
// The decoded pixels are what Pillow gives for Image.open(path).convert("RGB") (no EXIF rotation; see
// image_common.c for the per-mode rules), or, with VLM_ALPHA_WHITE, what transformers' convert_to_rgb gives
// (transparency composited onto white with Pillow's Image.alpha_composite arithmetic).
#ifndef CVLM_IMAGE_H
#define CVLM_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VLM_IMG_OK = 0,
    VLM_IMG_ERR_EMPTY = 1,           // zero bytes
    VLM_IMG_ERR_UNKNOWN_FORMAT = 2,  // magic bytes are neither JPEG nor PNG (message names a known other format)
    VLM_IMG_ERR_CORRUPT = 3,         // the codec rejected the data; message has its text
    VLM_IMG_ERR_TRUNCATED = 4,       // data ends before the image does
    VLM_IMG_ERR_TOO_LARGE = 5,       // width*height above the caller's limit (checked before any allocation)
    VLM_IMG_ERR_UNSUPPORTED = 6,     // valid file, feature not handled (e.g. 2-channel JPEG, DNL height)
    VLM_IMG_ERR_NOMEM = 7,
    VLM_IMG_ERR_ARGUMENT = 8,        // bad argument from the caller (buffer too small, unknown filter)
} vlm_image_status;

typedef enum { VLM_IMG_FORMAT_UNKNOWN = 0, VLM_IMG_FORMAT_JPEG = 1, VLM_IMG_FORMAT_PNG = 2 } vlm_image_format;

/// What to do with an alpha channel or tRNS transparency.
typedef enum {
    VLM_ALPHA_DROP = 0,   // Pillow's convert("RGB"): alpha discarded, colour kept as stored
    VLM_ALPHA_WHITE = 1,  // transformers' convert_to_rgb: alpha_composite onto opaque white
} vlm_alpha_mode;

typedef struct {
    int64_t width;
    int64_t height;
    int32_t format;     // vlm_image_format
    int32_t has_alpha;  // alpha channel or tRNS chunk present (PNG only)
    char message[256];  // human-readable detail when a call fails
} vlm_image_info;

/// Format from magic bytes only.
vlm_image_format vlm_image_sniff(const uint8_t *data, size_t size);

/// Reads width/height from the header without decoding or allocating image memory.
int vlm_image_probe(const uint8_t *data, size_t size, vlm_image_info *info);

/// Decodes to 8-bit RGB, HWC, into out (out_size >= width*height*3 as probed). Probes first and refuses
/// width*height > max_pixels (max_pixels <= 0: no limit) before the codec allocates anything.
int vlm_image_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels,
                         uint8_t *out, size_t out_size, vlm_image_info *info);

/// Pillow's resampling filter ids (PIL.Image.Resampling).
typedef enum {
    VLM_RESAMPLE_NEAREST = 0,
    VLM_RESAMPLE_LANCZOS = 1,
    VLM_RESAMPLE_BILINEAR = 2,
    VLM_RESAMPLE_BICUBIC = 3,
    VLM_RESAMPLE_BOX = 4,
    VLM_RESAMPLE_HAMMING = 5,
} vlm_resample_filter;

/// Flags of vlm_image_resize_rgb8.
enum { VLM_RESAMPLE_FLAG_SCALAR = 1 };  // force the portable path (tests compare it with the AVX2 one)

/// Pillow's Image.resize((dw, dh), filter) (default box, no reducing_gap) on 8-bit RGB HWC images,
/// bit-exact with Pillow's Resample.c / Geometry.c. src is sw*sh*3 bytes, dst dw*dh*3 bytes.
int vlm_image_resize_rgb8(const uint8_t *src, int64_t sw, int64_t sh, uint8_t *dst, int64_t dw, int64_t dh,
                          int filter, int flags);

/// The window [y0, y0 + h) x [x0, x0 + w) of Pillow's Image.resize((dw, dh), filter), bit-identical to the full
/// resize followed by that crop, without building the full dw x dh image: only the window's coefficients and the
/// source rows/columns its filter windows reach are used. dst is w*h*3 bytes; the window must lie inside
/// (0, 0, dw, dh). Memory: dst, coefficients (w and h times the filter's taps) and one intermediate pass of at
/// most w x sh or sw x h pixels (see image_resample.c); time proportional to the same.
int vlm_image_resize_window_rgb8(const uint8_t *src, int64_t sw, int64_t sh, int64_t dw, int64_t dh, int64_t x0,
                                 int64_t y0, uint8_t *dst, int64_t w, int64_t h, int filter, int flags);

#ifdef __cplusplus
}
#endif
#endif
