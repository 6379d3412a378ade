// Format sniffing, header probing and the decode entry point (image codecs of CVLM).
//
// The pixel-limit check happens here, on dimensions parsed by hand from the header (PNG IHDR, JPEG SOFn),
// before libjpeg/libpng are even created: a 40-byte file claiming 30000x30000 costs nothing.
#include <string.h>

#include "image_internal.h"

static int has_prefix(const uint8_t *data, size_t size, const char *magic, size_t n) {
    return size >= n && memcmp(data, magic, n) == 0;
}

vlm_image_format vlm_image_sniff(const uint8_t *data, size_t size) {
    if (has_prefix(data, size, "\xFF\xD8\xFF", 3)) return VLM_IMG_FORMAT_JPEG;
    if (has_prefix(data, size, "\x89PNG\r\n\x1A\n", 8)) return VLM_IMG_FORMAT_PNG;
    return VLM_IMG_FORMAT_UNKNOWN;
}

/// A name for formats we recognise but do not decode, so the error says "GIF" rather than "not an image".
static const char *other_format_name(const uint8_t *d, size_t n) {
    if (has_prefix(d, n, "GIF87a", 6) || has_prefix(d, n, "GIF89a", 6)) return "GIF";
    if (has_prefix(d, n, "BM", 2)) return "BMP";
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (has_prefix(d, n, "II*\0", 4) || has_prefix(d, n, "MM\0*", 4)) return "TIFF";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF (ISO-BMFF)";
    if (has_prefix(d, n, "\xFF\xD8", 2)) return "JPEG without a marker after SOI";
    return NULL;
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int vlm_image_probe_png(const uint8_t *data, size_t size, vlm_image_info *info) {
    // signature(8) + length(4) + "IHDR"(4) + width(4) + height(4) + depth, colour, ... (5) + CRC(4)
    if (size < 33) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "PNG is truncated inside its header (%zu bytes)", size);
    if (be32(data + 8) != 13 || memcmp(data + 12, "IHDR", 4) != 0)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "PNG does not start with an IHDR chunk");
    uint32_t w = be32(data + 16), h = be32(data + 20);
    if (w == 0 || h == 0 || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu)
        return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "PNG header has invalid dimensions %ux%u", w, h);
    uint8_t colour = data[25];
    info->width = w;
    info->height = h;
    info->has_alpha = colour == 4 || colour == 6;
    // A tRNS chunk may follow; the decoder reports it, the probe only looks at IHDR.
    return VLM_IMG_OK;
}

int vlm_image_probe_jpeg(const uint8_t *data, size_t size, vlm_image_info *info) {
    // Walk the marker segments after SOI until a start-of-frame (SOF0..SOF15 except DHT C4, JPG C8, DAC CC).
    size_t pos = 2;
    for (;;) {
        while (pos < size && data[pos] != 0xFF) pos++;  // tolerate junk between segments, as libjpeg does
        while (pos < size && data[pos] == 0xFF) pos++;  // fill bytes
        if (pos >= size) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "JPEG ends before its frame header");
        uint8_t m = data[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // stand-alone markers
        if (m == 0xD9 || m == 0xDA) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "JPEG has no frame header before its scan");
        if (pos + 2 > size) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "JPEG ends inside a marker segment");
        size_t len = ((size_t)data[pos] << 8) | data[pos + 1];
        if (len < 2) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "JPEG marker 0x%02X has bad length %zu", m, len);
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (pos + 8 > size) return vlm_img_fail(info, VLM_IMG_ERR_TRUNCATED, "JPEG ends inside its frame header");
            uint32_t h = ((uint32_t)data[pos + 3] << 8) | data[pos + 4];
            uint32_t w = ((uint32_t)data[pos + 5] << 8) | data[pos + 6];
            if (h == 0) return vlm_img_fail(info, VLM_IMG_ERR_UNSUPPORTED, "JPEG with height defined by a DNL marker");
            if (w == 0) return vlm_img_fail(info, VLM_IMG_ERR_CORRUPT, "JPEG frame header has width 0");
            info->width = w;
            info->height = h;
            info->has_alpha = 0;
            return VLM_IMG_OK;
        }
        pos += len;
    }
}

int vlm_image_probe(const uint8_t *data, size_t size, vlm_image_info *info) {
    memset(info, 0, sizeof *info);
    if (data == NULL || size == 0) return vlm_img_fail(info, VLM_IMG_ERR_EMPTY, "no data (0 bytes)");
    info->format = vlm_image_sniff(data, size);
    switch (info->format) {
        case VLM_IMG_FORMAT_JPEG: return vlm_image_probe_jpeg(data, size, info);
        case VLM_IMG_FORMAT_PNG: return vlm_image_probe_png(data, size, info);
        default: {
            const char *name = other_format_name(data, size);
            if (name) return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT, "unsupported image format %s (only JPEG and PNG)", name);
            return vlm_img_fail(info, VLM_IMG_ERR_UNKNOWN_FORMAT,
                                "not a JPEG or PNG image (first bytes %02X %02X %02X %02X)", data[0],
                                size > 1 ? data[1] : 0, size > 2 ? data[2] : 0, size > 3 ? data[3] : 0);
        }
    }
}

int vlm_img_check_output(vlm_image_info *info, int64_t max_pixels, const uint8_t *out, size_t out_size) {
    int64_t pixels = info->width * info->height;  // both < 2^31: no overflow in int64
    if (max_pixels > 0 && pixels > max_pixels)
        return vlm_img_fail(info, VLM_IMG_ERR_TOO_LARGE, "%lldx%lld = %lld pixels exceeds the limit of %lld pixels",
                            (long long)info->width, (long long)info->height, (long long)pixels, (long long)max_pixels);
    if (out == NULL || (uint64_t)out_size < (uint64_t)pixels * 3)
        return vlm_img_fail(info, VLM_IMG_ERR_ARGUMENT, "output buffer of %zu bytes is smaller than %lld", out_size,
                            (long long)pixels * 3);
    return VLM_IMG_OK;
}

int vlm_image_decode_rgb(const uint8_t *data, size_t size, vlm_alpha_mode alpha, int64_t max_pixels,
                         uint8_t *out, size_t out_size, vlm_image_info *info) {
    int st = vlm_image_probe(data, size, info);
    if (st != VLM_IMG_OK) return st;
    if ((st = vlm_img_check_output(info, max_pixels, out, out_size)) != VLM_IMG_OK) return st;
    if (info->format == VLM_IMG_FORMAT_JPEG) return vlm_image_decode_jpeg(data, size, out, info);
    return vlm_image_decode_png(data, size, alpha, out, info);
}
