// Image formats decoded by the system's own libraries, loaded at run time with dlopen (image_dl.c): their
// -dev headers are not needed to build, and a machine without the runtime library gets a clear error naming it.
//
// Statuses and vlm_image_info are those of cvlm_image.h. VLM_IMG_ERR_UNSUPPORTED with a message naming the
// library (e.g. "WebP needs libwebp.so.7, which could not be loaded: ...") when the library is missing.
#ifndef CVLM_IMAGE_DL_H
#define CVLM_IMAGE_DL_H
#include <stddef.h>
#include <stdint.h>

#include "cvlm_image.h"

#ifdef __cplusplus
extern "C" {
#endif

/// "RIFF" .... "WEBP".
int vlm_webp_sniff(const uint8_t *data, size_t size);

/// Width, height and has_alpha from the bitstream header (libwebp's WebPGetFeatures; the canvas of an animated
/// file, whose first frame is what decoding gives, as Pillow).
int vlm_webp_probe(const uint8_t *data, size_t size, vlm_image_info *info);

/// Decodes a still WebP (or an animated one's first frame) to 8-bit RGB HWC as Pillow's WebPImagePlugin + convert("RGB") (alpha dropped) or,
/// with VLM_ALPHA_WHITE, as transformers' convert_to_rgb. Refuses width*height > max_pixels (<= 0: no limit)
/// before allocating. out_size >= width*height*3.
int vlm_webp_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info);

/// "GIF87a" / "GIF89a".
int vlm_gif_sniff(const uint8_t *data, size_t size);

/// Canvas size of the first frame (logical screen grown to hold the frame) via giflib (libgif.so.7).
int vlm_gif_probe(const uint8_t *data, size_t size, vlm_image_info *info);

/// The first frame as Pillow's GifImagePlugin + convert("RGB") gives it (VLM_ALPHA_WHITE: the transparent
/// index becomes white, as transformers' convert_to_rgb). Refuses width*height > max_pixels before allocating.
int vlm_gif_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                       size_t out_size, vlm_image_info *info);

/// "II*\0" / "MM\0*" (classic TIFF).
int vlm_tiff_sniff(const uint8_t *data, size_t size);

/// Size of the first page via libtiff (libtiff.so.6); layouts not decoded Pillow-exactly are refused here.
int vlm_tiff_probe(const uint8_t *data, size_t size, vlm_image_info *info);

/// The first page's stored grid as Pillow decodes it + convert("RGB") (see image_tiff.c for the layouts).
int vlm_tiff_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info);

/// ISO-BMFF "ftyp" with a HEIF or AVIF brand (heic, heix, hevc, mif1, avif, ...).
int vlm_heif_sniff(const uint8_t *data, size_t size);

/// Size of the primary image (after its transformations) via libheif (libheif.so.1).
int vlm_heif_probe(const uint8_t *data, size_t size, vlm_image_info *info);

/// The primary image as 8-bit RGB (libheif's colour conversion; alpha dropped or composited on white).
int vlm_heif_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels, uint8_t *out,
                        size_t out_size, vlm_image_info *info);

#ifdef __cplusplus
}
#endif
#endif
