import Foundation

/// Every failure of the image front end. Payloads name the culprit: the file (when the bytes came from one),
/// the offending size and the limit, or the config key.
public enum ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Zero bytes.
    case empty(file: String?)
    /// Magic bytes are of no decoded format (whatever the extension says). `detail` names a recognised other
    /// format and lists the supported ones.
    case unknownFormat(file: String?, detail: String)
    /// The codec rejected the data (bad Huffman table, zlib error, bad CRC of a critical chunk, ...).
    case corrupt(file: String?, detail: String)
    /// The data ends before the image does.
    case truncated(file: String?, detail: String)
    /// width x height above the pixel limit; refused from the header, before any pixel memory is allocated.
    case tooLarge(file: String?, width: Int, height: Int, limit: Int)
    /// A valid file using a feature that is not handled (e.g. a 2-component JPEG, an animated WebP, a CMYK TIFF
    /// in tiles), or a format whose system library (libwebp, giflib, libtiff, libheif) could not be loaded: the
    /// detail names it.
    case unsupported(file: String?, detail: String)
    /// The file could not be read at all.
    case unreadable(file: String, reason: String)
    /// A caller-supplied argument is invalid (zero or negative size, pixel buffer of the wrong length, ...).
    case invalidArgument(String)
    /// preprocessor_config.json problems, or a config the processor cannot run.
    case invalidConfig(file: String?, key: String, reason: String)
    /// A resize the image processor would perform produces more than it allows (`limit` says what): refused before
    /// allocating, naming the input (width x height) and the resize target.
    case resizeTooLarge(width: Int, height: Int, targetWidth: Int, targetHeight: Int, limit: String)
    /// Out of memory inside the codec or resampler.
    case outOfMemory(String)

    public var description: String {
        func at(_ file: String?) -> String { file.map { "\($0): " } ?? "" }
        switch self {
        case .empty(let file): return "\(at(file))empty image data (0 bytes)"
        case .unknownFormat(let file, let detail): return "\(at(file))\(detail)"
        case .corrupt(let file, let detail): return "\(at(file))corrupt image: \(detail)"
        case .truncated(let file, let detail): return "\(at(file))truncated image: \(detail)"
        case .tooLarge(let file, let w, let h, let limit):
            return "\(at(file))image is \(w)x\(h) = \(w * h) pixels, above the limit of \(limit) pixels"
        case .unsupported(let file, let detail): return "\(at(file))unsupported image: \(detail)"
        case .unreadable(let file, let reason): return "\(file): cannot read: \(reason)"
        case .invalidArgument(let what): return "invalid argument: \(what)"
        case .invalidConfig(let file, let key, let reason): return "\(at(file))image processor config '\(key)': \(reason)"
        case .resizeTooLarge(let w, let h, let tw, let th, let limit):
            return "image is \(w)x\(h): resizing it to \(tw)x\(th) is above the limit of \(limit)"
        case .outOfMemory(let what): return "out of memory: \(what)"
        }
    }

    /// The same error attributed to `file` (used by the URL-taking entry points).
    func naming(_ file: String) -> ImageError {
        switch self {
        case .empty(nil): return .empty(file: file)
        case .unknownFormat(nil, let d): return .unknownFormat(file: file, detail: d)
        case .corrupt(nil, let d): return .corrupt(file: file, detail: d)
        case .truncated(nil, let d): return .truncated(file: file, detail: d)
        case .tooLarge(nil, let w, let h, let l): return .tooLarge(file: file, width: w, height: h, limit: l)
        case .unsupported(nil, let d): return .unsupported(file: file, detail: d)
        case .invalidConfig(nil, let k, let r): return .invalidConfig(file: file, key: k, reason: r)
        default: return self
        }
    }
}
