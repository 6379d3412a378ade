import Foundation

/// The bulk of a tokenizer file — the model's `vocab` object and `merges` array, >95% of its bytes — read by a
/// dedicated scanner instead of JSONDecoder, for two reasons:
/// - exactness: Foundation's JSON decoding keys objects by Swift `String`, which merges canonically equivalent
///   keys (see TokenString), silently dropping vocabulary entries;
/// - speed: JSONDecoder spends most of a CLIP load on these two values.
/// The rest of the file (stages, added tokens) still goes through the Decodable types; the model's
/// `init(from:)` takes the vocabulary and merges from here, handed over in `userInfo`.
final class BulkModelData: @unchecked Sendable {  // written once before decoding, then only read
    var vocab: [(TokenString, Int)]? = nil
    var merges: [(String, String)]? = nil
}

extension CodingUserInfoKey {
    static let bulkModelData = CodingUserInfoKey(rawValue: "VLMTokenizers.bulkModelData")!  // literal: cannot fail
}

/// A minimal JSON reader over UTF-8 bytes (RFC 8259), enough to locate, skip and read values.
struct JSONScanner {
    let bytes: [UInt8]
    let fileName: String
    var i = 0

    init(_ bytes: [UInt8], fileName: String) {
        self.bytes = bytes
        self.fileName = fileName
    }

    func fail(_ key: String, _ reason: String) -> TokenizerError {
        .malformedJSON(file: fileName, key: key, reason: "byte \(i): \(reason)")
    }

    mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func expect(_ byte: UInt8, _ key: String) throws {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == byte else {
            throw fail(key, "expected '\(Character(Unicode.Scalar(byte)))'")
        }
        i += 1
    }

    /// Consumes `,` (true) or the closing `close` (false) of an object or array.
    mutating func nextMember(close: UInt8, _ key: String) throws -> Bool {
        skipWhitespace()
        guard i < bytes.count else { throw fail(key, "unexpected end of file") }
        if bytes[i] == 0x2C { i += 1; return true }
        if bytes[i] == close { i += 1; return false }
        throw fail(key, "expected ',' or '\(Character(Unicode.Scalar(close)))'")
    }

    mutating func peek() -> UInt8? {
        skipWhitespace()
        return i < bytes.count ? bytes[i] : nil
    }

    mutating func string(_ key: String) throws -> String {
        try expect(0x22, key)
        let start = i
        while i < bytes.count, bytes[i] != 0x22, bytes[i] != 0x5C { i += 1 }
        guard i < bytes.count else { throw fail(key, "unterminated string") }
        if bytes[i] == 0x22 {  // fast path: no escapes
            defer { i += 1 }
            return String(decoding: bytes[start ..< i], as: UTF8.self)
        }
        var out = Array(bytes[start ..< i])
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x22 { i += 1; return String(decoding: out, as: UTF8.self) }
            if b != 0x5C { out.append(b); i += 1; continue }
            guard i + 1 < bytes.count else { break }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case 0x22, 0x5C, 0x2F: out.append(e)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x75:
                var scalar = try hex4(key)
                if (0xD800 ..< 0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 {
                    let save = i
                    i += 2
                    let low = try hex4(key)
                    if (0xDC00 ..< 0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save
                    }
                }
                out += Array(String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8)  // lone surrogate -> U+FFFD
            default:
                throw fail(key, "bad escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        throw fail(key, "unterminated string")
    }

    private mutating func hex4(_ key: String) throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i ..< i + 4], as: UTF8.self), radix: 16) else {
            throw fail(key, "bad \\u escape")
        }
        i += 4
        return v
    }

    mutating func integer(_ key: String) throws -> Int {
        skipWhitespace()
        let start = i
        if i < bytes.count, bytes[i] == 0x2D { i += 1 }
        while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 { i += 1 }
        guard i > start, let v = Int(String(decoding: bytes[start ..< i], as: UTF8.self)) else {
            throw fail(key, "expected an integer")
        }
        if i < bytes.count, bytes[i] == 0x2E || bytes[i] == 0x65 || bytes[i] == 0x45 {
            throw fail(key, "expected an integer")
        }
        return v
    }

    /// Skips any value.
    mutating func skipValue(_ key: String) throws {
        guard let b = peek() else { throw fail(key, "unexpected end of file") }
        switch b {
        case 0x22: _ = try string(key)
        case 0x7B:
            i += 1
            if peek() == 0x7D { i += 1; return }
            repeat {
                _ = try string(key)
                try expect(0x3A, key)
                try skipValue(key)
            } while try nextMember(close: 0x7D, key)
        case 0x5B:
            i += 1
            if peek() == 0x5D { i += 1; return }
            repeat { try skipValue(key) } while try nextMember(close: 0x5D, key)
        default:  // number, true, false, null
            let start = i
            while i < bytes.count, !(bytes[i] == 0x2C || bytes[i] == 0x7D || bytes[i] == 0x5D || bytes[i] <= 0x20) { i += 1 }
            guard i > start else { throw fail(key, "expected a value") }
        }
    }

    /// `{"token": id, ...}` in file order, duplicates kept (the later one wins when inserted, as in serde).
    mutating func vocabulary(_ key: String) throws -> [(TokenString, Int)] {
        try expect(0x7B, key)
        var out: [(TokenString, Int)] = []
        out.reserveCapacity(bytes.count / 24)
        if peek() == 0x7D { i += 1; return out }
        repeat {
            let token = try string(key)
            try expect(0x3A, key)
            out.append((TokenString(token), try integer(key == "<root>" ? token : "\(key).\(token)")))
        } while try nextMember(close: 0x7D, key)
        return out
    }

    /// `["a b", ...]` or `[["a", "b"], ...]`.
    mutating func merges(_ key: String) throws -> [(String, String)] {
        try expect(0x5B, key)
        var out: [(String, String)] = []
        out.reserveCapacity(bytes.count / 16)
        if peek() == 0x5D { i += 1; return out }
        var index = 0
        repeat {
            let itemKey = "\(key)[\(index)]"
            if peek() == 0x5B {
                i += 1
                let a = try string(itemKey)
                try expect(0x2C, itemKey)
                let b = try string(itemKey)
                try expect(0x5D, itemKey)
                out.append((a, b))
            } else {
                let line = try string(itemKey)
                guard let pair = splitMergeLine(Substring(line).unicodeScalars) else {
                    throw TokenizerError.malformedJSON(file: fileName, key: itemKey, reason: "expected 'a b', got '\(line)'")
                }
                out.append(pair)
            }
            index += 1
        } while try nextMember(close: 0x5D, key)
        return out
    }
}

enum BulkJSON {
    /// Reads model.vocab / model.merges of a tokenizer.json exactly and returns the file with those two values
    /// replaced by `{}` / `[]` for JSONDecoder. Files of another shape are returned unchanged (nil bulk), so
    /// JSONDecoder reports their errors.
    static func extractModel(from data: Data, fileName: String) -> (Data, BulkModelData?) {
        var s = JSONScanner([UInt8](data), fileName: fileName)
        do {
            try s.expect(0x7B, "<root>")
            if s.peek() == 0x7D { return (data, nil) }
            repeat {
                let key = try s.string("<root>")
                try s.expect(0x3A, key)
                if key == "model", s.peek() == 0x7B {
                    return try extractFromModel(&s, data: data)
                }
                try s.skipValue(key)
            } while try s.nextMember(close: 0x7D, "<root>")
        } catch {
            return (data, nil)
        }
        return (data, nil)
    }

    private static func extractFromModel(_ s: inout JSONScanner, data: Data) throws -> (Data, BulkModelData?) {
        let bulk = BulkModelData()
        var cuts: [(Range<Int>, String)] = []
        s.i += 1  // "{"
        if s.peek() == 0x7D { return (data, nil) }
        repeat {
            let key = try s.string("model")
            try s.expect(0x3A, "model.\(key)")
            s.skipWhitespace()
            let start = s.i
            switch key {
            case "vocab" where s.peek() == 0x7B:
                bulk.vocab = try s.vocabulary("model.vocab")
                cuts.append((start ..< s.i, "{}"))
            case "merges" where s.peek() == 0x5B:
                bulk.merges = try s.merges("model.merges")
                cuts.append((start ..< s.i, "[]"))
            default:
                try s.skipValue("model.\(key)")
            }
        } while try s.nextMember(close: 0x7D, "model")
        guard !cuts.isEmpty else { return (data, nil) }
        var out = Data()
        out.reserveCapacity(data.count - cuts.reduce(0) { $0 + $1.0.count })
        var previous = 0
        for (range, replacement) in cuts {
            out.append(contentsOf: s.bytes[previous ..< range.lowerBound])
            out.append(contentsOf: Array(replacement.utf8))
            previous = range.upperBound
        }
        out.append(contentsOf: s.bytes[previous...])
        return (out, bulk)
    }
}
