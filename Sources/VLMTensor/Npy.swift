import Foundation

/// NumPy .npy files (format spec: numpy/lib/format.py, versions 1.0, 2.0 and 3.0).
///
/// Read: little-endian '<f4', '<f8', '<i8' and '|u1' (uint8 image goldens), C order only. Write: '<f4' (from
/// a Tensor), '<i8' and '|u1'. Anything else (big-endian, Fortran order, other dtypes, object arrays) is refused
/// with an error that names the file and the field.
public enum Npy {
    public enum DType: String, Sendable {
        case float32 = "<f4"
        case float64 = "<f8"
        case int64 = "<i8"
        case uint8 = "|u1"

        var byteSize: Int {
            switch self {
            case .float32: return 4
            case .float64, .int64: return 8
            case .uint8: return 1
            }
        }
    }

    /// The raw contents of a .npy file: shape, dtype and the little-endian element bytes (C order).
    public struct Array: Sendable {
        public let shape: [Int]
        public let dtype: DType
        public let bytes: Data

        public init(shape: [Int], dtype: DType, bytes: Data) {
            self.shape = shape
            self.dtype = dtype
            self.bytes = bytes
        }

        public var count: Int { shape.reduce(1, *) }

        /// Elements converted to Float (float64 and int64 are rounded to the nearest float).
        public var floats: [Float] {
            bytes.withUnsafeBytes { raw in
                switch dtype {
                case .float32: return (0..<count).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
                case .float64: return (0..<count).map { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian)) }
                case .int64: return (0..<count).map { Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
                case .uint8: return raw.map { Float($0) }
                }
            }
        }

        /// Elements of an integer array ('<i8' or '|u1'); nil for float arrays.
        public var int64s: [Int64]? {
            switch dtype {
            case .int64:
                return bytes.withUnsafeBytes { raw in (0..<count).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
            case .uint8: return bytes.map { Int64($0) }
            default: return nil
            }
        }

        /// Elements of a '|u1' array; nil otherwise.
        public var uint8s: [UInt8]? { dtype == .uint8 ? [UInt8](bytes) : nil }

        public var tensor: Tensor { Tensor(shape: shape, values: floats) }
    }

    public struct FormatError: Error, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "\(file): not a supported .npy file: \(reason)" }
    }

    // MARK: Reading

    public static func read(_ url: URL) throws -> Array {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FormatError(file: url.path, reason: "cannot read (\(error.localizedDescription))")
        }
        return try parse(data, name: url.path)
    }

    public static func readTensor(_ url: URL) throws -> Tensor { try read(url).tensor }

    public static func parse(_ data: Data, name: String = "<data>") throws -> Array {
        func fail(_ reason: String) -> FormatError { FormatError(file: name, reason: reason) }
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1..<6]) == Swift.Array("NUMPY".utf8) else {
            throw fail("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header length") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major).\(bytes[7])")
        }
        guard data.count >= headerStart + headerLength else { throw fail("truncated header") }
        let base = data.startIndex
        guard let header = String(data: data[(base + headerStart)..<(base + headerStart + headerLength)], encoding: .utf8) else {
            throw fail("header is not text")
        }
        guard let descr = field(header, "descr").flatMap(quoted) else { throw fail("header has no 'descr'") }
        guard let dtype = DType(rawValue: descr == "<u1" ? "|u1" : descr) else {
            throw fail("dtype '\(descr)' (supported: <f4, <f8, <i8, |u1)")
        }
        guard let fortran = field(header, "fortran_order") else { throw fail("header has no 'fortran_order'") }
        guard fortran.hasPrefix("False") else { throw fail("Fortran-order arrays") }
        guard let shapeText = field(header, "shape"), shapeText.hasPrefix("("), let close = shapeText.firstIndex(of: ")") else {
            throw fail("header has no 'shape' tuple")
        }
        var shape: [Int] = []
        for part in shapeText[shapeText.index(after: shapeText.startIndex)..<close].split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let n = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), n >= 0 else { throw fail("bad dimension '\(t)'") }
            shape.append(n)
        }
        let (count, overflow) = shape.reduce((1, false)) { acc, n in
            let (m, o) = acc.0.multipliedReportingOverflow(by: n)
            return (m, acc.1 || o)
        }
        guard !overflow, count <= Int.max / 8 else { throw fail("shape \(shape) is too large") }
        let start = base + headerStart + headerLength
        let needed = count * dtype.byteSize
        guard data.count - (headerStart + headerLength) >= needed else {
            throw fail("\(data.count - headerStart - headerLength) data bytes, shape \(shape) of \(descr) needs \(needed)")
        }
        return Array(shape: shape, dtype: dtype, bytes: Data(data[start..<(start + needed)]))
    }

    /// The text after `'key':` in the header dict, trimmed.
    private static func field(_ header: String, _ key: String) -> Substring? {
        guard let r = header.range(of: "'\(key)':") ?? header.range(of: "\"\(key)\":") else { return nil }
        return header[r.upperBound...].drop(while: { $0 == " " })
    }

    private static func quoted(_ s: Substring) -> String? {
        guard let q = s.first, q == "'" || q == "\"" else { return nil }
        let rest = s.dropFirst()
        guard let end = rest.firstIndex(of: q) else { return nil }
        return String(rest[..<end])
    }

    // MARK: Writing

    /// '<f4' file of the tensor (shape and values).
    public static func write(_ tensor: Tensor, to url: URL) throws {
        var payload = Data(count: tensor.count * 4)
        payload.withUnsafeMutableBytes { raw in
            for i in 0..<tensor.count { raw.storeBytes(of: tensor[i].bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        try write(encode(shape: tensor.shape, dtype: .float32, payload: payload), to: url)
    }

    public static func write(int64 values: [Int64], shape: [Int], to url: URL) throws {
        precondition(shape.reduce(1, *) == values.count, "Npy.write: \(values.count) values for shape \(shape)")
        var payload = Data(count: values.count * 8)
        payload.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 8, as: Int64.self) }
        }
        try write(encode(shape: shape, dtype: .int64, payload: payload), to: url)
    }

    public static func write(uint8 values: [UInt8], shape: [Int], to url: URL) throws {
        precondition(shape.reduce(1, *) == values.count, "Npy.write: \(values.count) values for shape \(shape)")
        try write(encode(shape: shape, dtype: .uint8, payload: Data(values)), to: url)
    }

    private static func write(_ data: Data, to url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw FormatError(file: url.path, reason: "cannot write (\(error.localizedDescription))")
        }
    }

    /// Header + payload. Version 1.0 unless the header needs more than 65535 bytes; the header is padded with
    /// spaces and a final newline so the data starts on a 64-byte boundary, as numpy writes it.
    public static func encode(shape: [Int], dtype: DType, payload: Data) -> Data {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': (\(dims)), }"
        let v1 = header.utf8.count + 1 + 10 <= 65535 + 10
        let prefix = v1 ? 10 : 12
        let total = (prefix + header.utf8.count + 1 + 63) / 64 * 64
        header += String(repeating: " ", count: total - prefix - header.utf8.count - 1) + "\n"
        var out = Data([0x93] + Swift.Array("NUMPY".utf8) + [v1 ? 1 : 2, 0])
        let n = header.utf8.count
        out.append(contentsOf: v1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)])
        out.append(contentsOf: Swift.Array(header.utf8))
        out.append(payload)
        return out
    }
}
