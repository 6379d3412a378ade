import CVLM
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC): pixel (x, y) channel c is
/// `pixels[(y * width + x) * 3 + c]`.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// Throws `invalidArgument` unless width, height > 0 and pixels.count == width * height * 3.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else { throw ImageError.invalidArgument("image size \(width)x\(height)") }
        let (n, overflow) = width.multipliedReportingOverflow(by: height * 3)
        guard !overflow, pixels.count == n else {
            throw ImageError.invalidArgument("\(pixels.count) bytes for a \(width)x\(height) RGB image")
        }
        self.init(unchecked: width, height: height, pixels: pixels)
    }

    /// `pixels` is mutable, so every consumer re-checks its length before handing the buffer to C.
    func validated() throws -> RGBImage {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw ImageError.invalidArgument("\(pixels.count) bytes for a \(width)x\(height) RGB image")
        }
        return self
    }

    init(unchecked width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// What decoding does with transparency (PNG alpha channels and tRNS).
public enum AlphaHandling: Sendable {
    /// Pillow's `Image.open(path).convert("RGB")`: alpha is discarded, colours kept as stored.
    case drop
    /// transformers' `convert_to_rgb` (what its image processors do to a PIL image with transparency):
    /// composite onto opaque white with Pillow's `alpha_composite` integer arithmetic. Use this to match
    /// `processor(images=Image.open(path))` in Python.
    case compositeOnWhite
}

public enum ImageFormat: String, Sendable {
    case jpeg, png, bmp, webp, gif, tiff, heif

    /// File extensions a folder walk treats as images (decoding itself goes by the magic bytes).
    public static let fileExtensions: Set<String> = ["jpg", "jpeg", "jpe", "png", "bmp", "dib", "webp", "gif", "tif", "tiff",
                                                     "heic", "heif", "avif"]

    /// The extension a file of this format is stored under (e.g. an uploaded image).
    public var fileExtension: String {
        switch self {
        case .jpeg: return "jpg"
        case .heif: return "heic"
        default: return rawValue
        }
    }
}

/// Decoding to `RGBImage` as Pillow decodes (+ convert("RGB")); the format comes from the magic bytes, never from a
/// file extension:
///  * JPEG, PNG (Sources/CVLM/image_jpeg.c, image_png.c) and BMP (BMPDecoder.swift): pixel-identical;
///  * WebP (still), GIF (first frame), TIFF (first page) and HEIC/AVIF (primary image) through the system's
///    libwebp, giflib, libtiff and libheif, loaded at run time (image_dl.c, image_tiff.c, image_heif.c; a
///    missing library is `ImageError.unsupported` naming it): identical for WebP, GIF and TIFF; HEIC/AVIF
///    within the tolerances of Tests/Fixtures/images/formats/manifest.json (libheif 1.15 vs Pillow's decoders).
/// By default the EXIF orientation is applied as transformers' `load_image` applies it (PIL's
/// `ImageOps.exif_transpose`, see ExifOrientation.swift); `exifTranspose: false` keeps the stored pixel grid,
/// which is Pillow's plain `Image.open(path).convert("RGB")`.
public enum ImageDecoder {
    /// The process-wide default of `exifTranspose` (true: upright, as transformers' load_image). The CLI's and the
    /// server's `--no-exif-transpose` set it to false at start-up, before any image is decoded.
    public static var appliesExifOrientation: Bool {
        get { exifDefault.withLock { $0 } }
        set { exifDefault.withLock { $0 = newValue } }
    }
    private static let exifDefault = ExifDefault()

    /// 100 megapixels (Pillow warns at 89.5 MP and refuses at twice that). Pass `maxPixels` to change it
    /// (<= 0: no limit).
    public static var defaultMaxPixels: Int { 100_000_000 }

    /// Format and size from the header only (no pixel decoding, no large allocation).
    public static func probe(_ data: Data) throws -> (format: ImageFormat, width: Int, height: Int) {
        if let bmp = try bmpHeader(data) { return (.bmp, bmp.width, bmp.height) }
        let codec = Codec(data)
        var info = vlm_image_info()
        let status = data.withUnsafeBytes { raw in codec.probe(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &info) }
        try check(status, info)
        if let format = codec.format { return (format, Int(info.width), Int(info.height)) }
        return (info.format == Int32(VLM_IMG_FORMAT_JPEG.rawValue) ? .jpeg : .png, Int(info.width), Int(info.height))
    }

    /// `probe` reports the stored grid: with an orientation of 5...8 the decoded image has width and height
    /// swapped (the pixel count, and so the pixel limit, is the same either way).
    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels, alpha: AlphaHandling = .drop,
                              exifTranspose: Bool = ImageDecoder.appliesExifOrientation) throws -> RGBImage {
        let (_, width, height) = try probe(data)
        // The limit is enforced here, on header values, before the output buffer exists (the C side checks again).
        // maxPixels <= 0 disables it; the byte count must still fit in an Int.
        let (count, overflow) = (width * height).multipliedReportingOverflow(by: 3)  // width, height < 2^31
        if overflow || (maxPixels > 0 && width * height > maxPixels) {
            throw ImageError.tooLarge(file: nil, width: width, height: height, limit: maxPixels)
        }
        if let header = try bmpHeader(data) {
            let pixels = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                buffer.initialize(repeating: 0)
                initialized = count
                try data.withUnsafeBytes { raw in
                    try BMPDecoder.decode(raw.bindMemory(to: UInt8.self), header, alpha: alpha, into: buffer)
                }
            }
            let image = RGBImage(unchecked: width, height: height, pixels: pixels)
            return exifTranspose ? image.exifTransposed(ExifOrientation.read(data)) : image
        }
        var info = vlm_image_info()
        var status: Int32 = 0
        let mode = alpha == .drop ? VLM_ALPHA_DROP : VLM_ALPHA_WHITE
        let codec = Codec(data)
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = data.withUnsafeBytes { raw in
                codec.decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, mode, Int64(maxPixels), buffer.baseAddress,
                             count, &info)
            }
            if status != 0 { buffer.initialize(repeating: 0) }  // never hand out uninitialised memory
            initialized = count
        }
        try check(status, info, limit: maxPixels)
        let image = RGBImage(unchecked: width, height: height, pixels: pixels)
        return exifTranspose ? image.exifTransposed(ExifOrientation.read(data)) : image
    }

    /// Reads and decodes a file; errors name it.
    public static func load(_ url: URL, maxPixels: Int = defaultMaxPixels, alpha: AlphaHandling = .drop,
                            exifTranspose: Bool = ImageDecoder.appliesExifOrientation) throws -> RGBImage {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw ImageError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        do { return try decode(data, maxPixels: maxPixels, alpha: alpha, exifTranspose: exifTranspose) } catch let error as ImageError {
            throw error.naming(url.path)
        }
    }

    /// The BMP header when `data` starts with "BM" (decoded in Swift, BMPDecoder.swift), nil otherwise.
    private static func bmpHeader(_ data: Data) throws -> BMPDecoder.Header? {
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            return BMPDecoder.isBMP(bytes) ? try BMPDecoder.header(bytes) : nil
        }
    }

    /// The C entry points for `data`: the run-time loaded codecs (image_dl.c) by their magic bytes, else the
    /// JPEG/PNG ones (which also name the formats nobody decodes).
    private struct Codec {
        typealias Probe = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<vlm_image_info>?) -> Int32
        typealias Decode = (UnsafePointer<UInt8>?, Int, vlm_alpha_mode, Int64, UnsafeMutablePointer<UInt8>?, Int,
                            UnsafeMutablePointer<vlm_image_info>?) -> Int32
        let format: ImageFormat?
        let probe: Probe
        let decode: Decode

        init(_ data: Data) {
            let sniffed: ImageFormat? = data.withUnsafeBytes { raw in
                let base = raw.bindMemory(to: UInt8.self).baseAddress
                if vlm_webp_sniff(base, raw.count) != 0 { return .webp }
                if vlm_gif_sniff(base, raw.count) != 0 { return .gif }
                if vlm_tiff_sniff(base, raw.count) != 0 { return .tiff }
                if vlm_heif_sniff(base, raw.count) != 0 { return .heif }
                return nil
            }
            format = sniffed
            switch sniffed {
            case .webp?: (probe, decode) = ({ vlm_webp_probe($0, $1, $2) }, { vlm_webp_decode_rgb($0, $1, $2, $3, $4, $5, $6) })
            case .gif?: (probe, decode) = ({ vlm_gif_probe($0, $1, $2) }, { vlm_gif_decode_rgb($0, $1, $2, $3, $4, $5, $6) })
            case .tiff?: (probe, decode) = ({ vlm_tiff_probe($0, $1, $2) }, { vlm_tiff_decode_rgb($0, $1, $2, $3, $4, $5, $6) })
            case .heif?: (probe, decode) = ({ vlm_heif_probe($0, $1, $2) }, { vlm_heif_decode_rgb($0, $1, $2, $3, $4, $5, $6) })
            default: (probe, decode) = ({ vlm_image_probe($0, $1, $2) }, { vlm_image_decode_rgb($0, $1, $2, $3, $4, $5, $6) })
            }
        }
    }

    private static func check(_ status: Int32, _ info: vlm_image_info, limit: Int = 0) throws {
        guard status != 0 else { return }
        let message = withUnsafeBytes(of: info.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch UInt32(status) {
        case VLM_IMG_ERR_EMPTY.rawValue: throw ImageError.empty(file: nil)
        case VLM_IMG_ERR_UNKNOWN_FORMAT.rawValue:
            let supported = "(supported: JPEG, PNG, BMP, WebP, GIF, TIFF, HEIC/AVIF)"
            throw ImageError.unknownFormat(file: nil, detail: message.replacingOccurrences(of: "(only JPEG and PNG)", with: supported)
                .replacingOccurrences(of: "HEIF/AVIF (ISO-BMFF)", with: "ISO-BMFF without a HEIF/AVIF brand")
                .replacingOccurrences(of: "not a JPEG or PNG image", with: "not a JPEG, PNG, BMP, WebP, GIF, TIFF or HEIC/AVIF image"))
        case VLM_IMG_ERR_TRUNCATED.rawValue: throw ImageError.truncated(file: nil, detail: message)
        case VLM_IMG_ERR_TOO_LARGE.rawValue:
            throw ImageError.tooLarge(file: nil, width: Int(info.width), height: Int(info.height), limit: limit)
        case VLM_IMG_ERR_UNSUPPORTED.rawValue: throw ImageError.unsupported(file: nil, detail: message)
        case VLM_IMG_ERR_NOMEM.rawValue: throw ImageError.outOfMemory(message)
        case VLM_IMG_ERR_ARGUMENT.rawValue: throw ImageError.invalidArgument(message)
        default: throw ImageError.corrupt(file: nil, detail: message)
        }
    }
}

/// A Bool behind a lock (the process-wide EXIF default is read from decoding threads).
private final class ExifDefault: @unchecked Sendable {
    private let lock = NSLock()
    private var value = true
    func withLock<T>(_ body: (inout Bool) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
