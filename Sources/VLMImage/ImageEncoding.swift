import CVLM
import Foundation

/// Failures of `ImageEncoder`. Kept separate from the decoder's error type because this file is the only
/// encoding entry point and its callers (dataset exporters) handle encode failures on their own.
public enum ImageEncodeError: Error, CustomStringConvertible, Equatable {
    /// Width/height not positive, too large for the codec, or a pixel buffer shorter than width*height*3.
    case invalidImage(width: Int, height: Int, bytes: Int)
    /// A codec parameter out of range (JPEG quality outside 1...100, PNG compression outside -1...9).
    case invalidParameter(String)
    /// libpng/libjpeg reported an error or ran out of memory; `message` is the codec's text.
    case codecFailed(format: String, message: String)

    public var description: String {
        switch self {
        case let .invalidImage(width, height, bytes):
            return "cannot encode a \(width)x\(height) RGB image from \(bytes) bytes (need width*height*3, 1...65500 per side)"
        case let .invalidParameter(message):
            return "invalid encoder parameter: \(message)"
        case let .codecFailed(format, message):
            return "\(format) encoder failed: \(message)"
        }
    }
}

/// Writes 8-bit RGB (HWC, row-major, no padding) pixel buffers as PNG or JPEG bytes.
/// The output is a pure function of the pixels and parameters (no timestamps or text chunks), so generated
/// datasets are byte-identical across runs.
public enum ImageEncoder {
    /// Lossless PNG. `compression` is zlib's level 0...9 (-1 = libpng's default, 6).
    public static func png(width: Int, height: Int, rgb: [UInt8], compression: Int = -1) throws -> Data {
        try validate(width: width, height: height, rgb: rgb)
        guard (-1...9).contains(compression) else { throw ImageEncodeError.invalidParameter("PNG compression \(compression) is outside -1...9") }
        return try encode(format: "PNG") { result in
            rgb.withUnsafeBufferPointer { buffer in
                vlm_enc_png_rgb8(buffer.baseAddress, buffer.count, Int64(width), Int64(height), Int32(compression), result)
            }
        }
    }

    /// Baseline JPEG (4:2:0) at libjpeg `quality` 1...100.
    public static func jpeg(width: Int, height: Int, rgb: [UInt8], quality: Int = 90) throws -> Data {
        try validate(width: width, height: height, rgb: rgb)
        guard (1...100).contains(quality) else { throw ImageEncodeError.invalidParameter("JPEG quality \(quality) is outside 1...100") }
        return try encode(format: "JPEG") { result in
            rgb.withUnsafeBufferPointer { buffer in
                vlm_enc_jpeg_rgb8(buffer.baseAddress, buffer.count, Int64(width), Int64(height), Int32(quality), result)
            }
        }
    }

    private static func validate(width: Int, height: Int, rgb: [UInt8]) throws {
        guard width > 0, height > 0, width <= 65500, height <= 65500,
              rgb.count >= width * height * 3 else {
            throw ImageEncodeError.invalidImage(width: width, height: height, bytes: rgb.count)
        }
    }

    private static func encode(format: String, _ call: (UnsafeMutablePointer<vlm_enc_result>) -> Int32) throws -> Data {
        var result = vlm_enc_result()
        let status = call(&result)
        defer { vlm_enc_free(&result) }
        guard status == Int32(VLM_ENC_OK.rawValue), let bytes = result.data else {
            throw ImageEncodeError.codecFailed(format: format, message: message(&result.message))
        }
        return Data(bytes: bytes, count: result.size)
    }

    /// The C struct's fixed `char[256]` arrives as a tuple; read it as NUL-terminated bytes.
    private static func message<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
