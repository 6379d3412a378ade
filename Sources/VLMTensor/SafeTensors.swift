import CVLM
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element types a safetensors header may name. Only the floating ones load as model weights.
public enum SafeTensorsDType: String, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2", u16 = "U16", u32 = "U32", u64 = "U64"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }
}

/// A read-only memory map of a whole file; unmapped when the last reference goes.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer?
    let size: Int
    let path: String

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw TensorError.fileNotFound(path: path) }
            throw TensorError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TensorError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw TensorError.unreadable(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw TensorError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }
}

/// One `.safetensors` file, memory-mapped: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data, with offsets
/// relative to the end of the header (the format's specification). Every offset and size is validated
/// against the file before any tensor is read, so a truncated file or a lying header is an error, never a crash.
public final class SafeTensorsFile: @unchecked Sendable {
    public struct Entry: Sendable {
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Absolute byte range in the file.
        public let range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let file: MappedFile

    /// Header length above this is refused: real headers are at most a few MB even for 100B-parameter models.
    public static let maxHeaderBytes = 100 << 20

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        self.path = path
        guard file.size >= 8, let base = file.base else {
            throw TensorError.truncated(path: path, reason: "\(file.size) bytes, shorter than the 8-byte header length")
        }
        let headerLength = Int(UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)).clampedToInt)
        guard headerLength <= Self.maxHeaderBytes else {
            throw TensorError.malformedHeader(path: path, reason: "header length \(headerLength) bytes is implausible")
        }
        guard headerLength <= file.size - 8 else {
            throw TensorError.truncated(path: path, reason: "header claims \(headerLength) bytes but the file has \(file.size - 8) after the length")
        }
        let headerData = Data(bytes: base + 8, count: headerLength)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw TensorError.malformedHeader(path: path, reason: "header is not valid JSON")
        }
        guard let dict = json as? [String: Any] else {
            throw TensorError.malformedHeader(path: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLength
        let dataSize = file.size - dataStart
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in dict {
            if key == "__metadata__" {
                if let m = value as? [String: Any] {
                    for (k, v) in m { metadata[k] = v as? String ?? "\(v)" }
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw TensorError.malformedHeader(path: path, reason: "entry '\(key)' is not an object")
            }
            guard let dtypeName = info["dtype"] as? String else {
                throw TensorError.malformedHeader(path: path, reason: "entry '\(key)' has no dtype")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw TensorError.unsupportedDType(path: path, key: key, dtype: dtypeName)
            }
            guard let shapeAny = info["shape"] as? [Any], let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw TensorError.malformedHeader(path: path, reason: "entry '\(key)' needs shape and data_offsets [begin, end]")
            }
            var shape: [Int] = []
            var count = 1
            for s in shapeAny {
                guard let n = Self.nonNegativeInt(s) else {
                    throw TensorError.malformedHeader(path: path, reason: "entry '\(key)' has an invalid dimension \(s)")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow else { throw TensorError.badOffsets(path: path, key: key, reason: "shape \(shapeAny) overflows") }
                count = product
                shape.append(n)
            }
            guard let begin = Self.nonNegativeInt(offsetsAny[0]), let end = Self.nonNegativeInt(offsetsAny[1]), begin <= end else {
                throw TensorError.badOffsets(path: path, key: key, reason: "data_offsets \(offsetsAny) are invalid")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, end - begin == bytes else {
                throw TensorError.badOffsets(path: path, key: key, reason: "data_offsets \(begin)..<\(end) hold \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(bytes)")
            }
            guard end <= dataSize else {
                throw TensorError.truncated(path: path, reason: "tensor '\(key)' ends at byte \(end) of the data but the file holds \(dataSize)")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, range: (dataStart + begin) ..< (dataStart + end))
        }
        self.entries = entries
        self.metadata = metadata
    }

    private static func nonNegativeInt(_ value: Any) -> Int? {
        if let n = value as? Int, n >= 0 { return n }
        if let d = value as? Double, d >= 0, d < 9.0e15, d == d.rounded() { return Int(d) }
        return nil
    }

    public var keys: [String] { entries.keys.sorted() }

    /// Raw bytes of a tensor (valid while this file is alive).
    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawBufferPointer, Entry) throws -> R) throws -> R {
        guard let entry = entries[key] else { throw TensorError.missingTensor(key: key, file: path) }
        guard let base = file.base else { throw TensorError.truncated(path: path, reason: "empty file") }
        return try body(UnsafeRawBufferPointer(start: base + entry.range.lowerBound, count: entry.range.count), entry)
    }

    /// The tensor widened to float32 (F32 copied, F16/BF16 widened exactly, F64 rounded).
    public func tensor(_ key: String) throws -> Tensor {
        try withRawBytes(key) { raw, entry in
            let out = Tensor(uninitialized: entry.shape)
            let n = out.count
            switch entry.dtype {
            case .f32:
                if let src = raw.baseAddress { memcpy(out.pointer, src, n * 4) }
            case .f16, .bf16:
                // The mapping may be unaligned for UInt16 (offsets are arbitrary), so widen via an aligned copy
                // when needed.
                let convert = entry.dtype == .f16 ? vlm_f16_to_f32 : vlm_bf16_to_f32
                if let src = raw.baseAddress {
                    if Int(bitPattern: src) % 2 == 0 {
                        convert(src.assumingMemoryBound(to: UInt16.self), out.pointer, Int64(n))
                    } else {
                        var tmp = [UInt16](repeating: 0, count: n)
                        tmp.withUnsafeMutableBytes { dst in
                            if let d = dst.baseAddress { memcpy(d, src, n * 2) }
                        }
                        tmp.withUnsafeBufferPointer { convert($0.baseAddress, out.pointer, Int64(n)) }
                    }
                }
            case .f64:
                for i in 0 ..< n { out.pointer[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            default:
                throw TensorError.unsupportedDType(path: path, key: key, dtype: entry.dtype.rawValue)
            }
            return out
        }
    }
}

extension UInt64 {
    fileprivate var clampedToInt: Int { self > UInt64(Int.max) ? Int.max : Int(self) }
}

/// All weights of a checkpoint directory: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json` (`weight_map`: key -> file), as `save_pretrained` writes them.
public final class WeightStore: @unchecked Sendable {
    public let directory: URL
    private let files: [String: SafeTensorsFile]
    private let location: [String: String]

    public init(directory: URL, singleFile: String = "model.safetensors", index: String = "model.safetensors.index.json") throws {
        self.directory = directory
        let fm = FileManager.default
        let single = directory.appendingPathComponent(singleFile)
        let indexURL = directory.appendingPathComponent(index)
        if fm.fileExists(atPath: indexURL.path) {
            let data: Data
            do { data = try Data(contentsOf: indexURL) } catch {
                throw TensorError.unreadable(path: indexURL.path, reason: "\(error.localizedDescription)")
            }
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = json["weight_map"] as? [String: Any] else {
                throw TensorError.malformedHeader(path: indexURL.path, reason: "expected a JSON object with \"weight_map\": {key: file}")
            }
            var files: [String: SafeTensorsFile] = [:]
            var location: [String: String] = [:]
            for (key, value) in map {
                guard let name = value as? String, !name.contains("/"), !name.contains("\\") else {
                    throw TensorError.malformedHeader(path: indexURL.path, reason: "weight_map entry for '\(key)' is not a file name")
                }
                if files[name] == nil { files[name] = try SafeTensorsFile(path: directory.appendingPathComponent(name).path) }
                guard files[name]?.entries[key] != nil else { throw TensorError.missingTensor(key: key, file: name) }
                location[key] = name
            }
            self.files = files
            self.location = location
        } else if fm.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(path: single.path)
            files = [singleFile: file]
            location = Dictionary(uniqueKeysWithValues: file.entries.keys.map { ($0, singleFile) })
        } else {
            let hasPickle = ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt"].contains {
                fm.fileExists(atPath: directory.appendingPathComponent($0).path)
            }
            throw TensorError.unsupportedFormat(
                path: directory.path,
                reason: hasPickle
                    ? "only PyTorch pickle weights (pytorch_model.bin) found; SwiftVLM reads safetensors only (pickle files can run code on load). Use the checkpoint's model.safetensors revision."
                    : "no \(singleFile) or \(index) found")
        }
    }

    public var keys: Set<String> { Set(location.keys) }

    public func entry(_ key: String) -> SafeTensorsFile.Entry? {
        guard let name = location[key] else { return nil }
        return files[name]?.entries[key]
    }

    public func fileName(of key: String) -> String? { location[key] }

    public func tensor(_ key: String) throws -> Tensor {
        guard let name = location[key], let file = files[name] else {
            throw TensorError.missingTensor(key: key, file: directory.path)
        }
        return try file.tensor(key)
    }

    /// Raw bytes of a tensor as stored (valid inside `body` only): packs 16-bit weights without widening.
    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawBufferPointer, SafeTensorsFile.Entry) throws -> R) throws -> R {
        guard let name = location[key], let file = files[name] else {
            throw TensorError.missingTensor(key: key, file: directory.path)
        }
        return try file.withRawBytes(key, body)
    }
}
