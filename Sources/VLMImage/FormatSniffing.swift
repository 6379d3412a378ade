import CVLM
import Foundation

/// The format of a file from its first bytes (no decoding), and what its extension claims, for a folder walk
/// that reports formats and extensions that lie.
extension ImageFormat {
    /// Bytes `sniff` looks at (the magic numbers and the HEIF `ftyp` brand).
    public static let sniffLength = 16

    /// The format whose magic bytes `header` starts with (the decoders' own sniffers), nil when none does.
    public static func sniff(_ header: Data) -> ImageFormat? {
        header.withUnsafeBytes { raw -> ImageFormat? in
            let bytes = raw.bindMemory(to: UInt8.self)
            let base = bytes.baseAddress
            if BMPDecoder.isBMP(bytes) { return .bmp }
            switch vlm_image_sniff(base, raw.count) {
            case VLM_IMG_FORMAT_JPEG: return .jpeg
            case VLM_IMG_FORMAT_PNG: return .png
            default: break
            }
            if vlm_webp_sniff(base, raw.count) != 0 { return .webp }
            if vlm_gif_sniff(base, raw.count) != 0 { return .gif }
            if vlm_tiff_sniff(base, raw.count) != 0 { return .tiff }
            if vlm_heif_sniff(base, raw.count) != 0 { return .heif }
            return nil
        }
    }

    /// The format a file extension (without the dot, any case) claims; nil for extensions that are not images.
    public init?(fileExtension ext: String) {
        switch ext.lowercased() {
        case "jpg", "jpeg", "jpe": self = .jpeg
        case "png": self = .png
        case "bmp", "dib": self = .bmp
        case "webp": self = .webp
        case "gif": self = .gif
        case "tif", "tiff": self = .tiff
        case "heic", "heif", "avif": self = .heif
        default: return nil
        }
    }

    /// A name for summaries: the format, with HEIF split into "heic" and "avif" by the `ftyp` brand of `header`
    /// (as sniffed); a generic brand (mif1, msf1) goes by the extension.
    public static func displayName(_ format: ImageFormat, header: Data, fileExtension ext: String) -> String {
        guard format == .heif else { return format.rawValue }
        let brand = header.count >= 12 ? String(decoding: header[header.startIndex + 8 ..< header.startIndex + 12], as: UTF8.self) : ""
        if brand == "avif" || brand == "avis" { return "avif" }
        if brand.hasPrefix("he") { return "heic" }
        return ext.lowercased() == "avif" ? "avif" : "heic"
    }

    /// The summary name an extension implies (files not read this run): "jpeg", "heic", "avif", ...
    public static func displayName(fileExtension ext: String) -> String? {
        let lower = ext.lowercased()
        guard let format = ImageFormat(fileExtension: lower) else { return nil }
        return format == .heif ? (lower == "avif" ? "avif" : "heic") : format.rawValue
    }
}
