import Foundation

/// tokenizer.json's `decoder` stage (tokenizers' `Decoder::decode_chain`): tokens in, tokens out; the
/// tokenizer joins the final list with "". Named TokenDecoder to stay clear of Swift's `Decoder`.
public protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

public enum DecoderType: String, Sendable, CaseIterable {
    case sequence = "Sequence"
    case byteLevel = "ByteLevel"
    case bpe = "BPEDecoder"
    case metaspace = "Metaspace"
    case byteFallback = "ByteFallback"
    case fuse = "Fuse"
    case strip = "Strip"
    case replace = "Replace"
    case wordPiece = "WordPiece"
}

struct AnyTokenDecoder: Decodable {
    let value: any TokenDecoder

    private enum CodingKeys: String, CodingKey { case type }

    init(from decoder: Decoder) throws {
        let typeName = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        guard let type = DecoderType(rawValue: typeName) else {
            throw TokenizerError.unsupportedType(file: decoder.fileName, key: decoder.keyPath + ".type", type: typeName)
        }
        switch type {
        case .sequence: value = try SequenceDecoder(from: decoder)
        case .byteLevel: value = ByteLevelDecoder()
        case .bpe: value = try BPEDecoder(from: decoder)
        case .metaspace: value = try MetaspaceDecoder(from: decoder)
        case .byteFallback: value = ByteFallbackDecoder()
        case .fuse: value = FuseDecoder()
        case .strip: value = try StripDecoder(from: decoder)
        case .replace: value = try ReplaceDecoder(from: decoder)
        case .wordPiece: value = try WordPieceDecoder(from: decoder)
        }
    }
}

public struct SequenceDecoder: TokenDecoder, Decodable {
    public let decoders: [any TokenDecoder]

    private enum CodingKeys: String, CodingKey { case decoders }

    public init(_ decoders: [any TokenDecoder]) { self.decoders = decoders }

    public init(from decoder: Decoder) throws {
        decoders = try decoder.container(keyedBy: CodingKeys.self).decode([AnyTokenDecoder].self, forKey: .decoders).map(\.value)
    }

    public func decodeChain(_ tokens: [String]) -> [String] { decoders.reduce(tokens) { $1.decodeChain($0) } }
}

/// Maps ByteLevel characters back to bytes and decodes them as lossy UTF-8 (Rust's `from_utf8_lossy`, which
/// like Swift's decoder replaces each maximal invalid subsequence with one U+FFFD). A token containing a
/// character outside the table contributes its own UTF-8 bytes, as in tokenizers' byte_level.rs.
public struct ByteLevelDecoder: TokenDecoder {
    public init() {}

    public func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for token in tokens {
            let start = bytes.count
            var mapped = true
            for scalar in token.unicodeScalars {
                guard let b = ByteLevel.byte(for: scalar) else { mapped = false; break }
                bytes.append(b)
            }
            if !mapped {
                bytes.removeSubrange(start...)
                bytes += Array(token.utf8)
            }
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// Replaces the end-of-word suffix with a space, except on the last token (tokenizers' BPEDecoder).
public struct BPEDecoder: TokenDecoder, Decodable {
    public let suffix: String

    private enum CodingKeys: String, CodingKey { case suffix }

    public init(from decoder: Decoder) throws {
        suffix = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(String.self, forKey: .suffix) ?? "</w>"
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            token.replacingScalars(suffix, with: i == tokens.count - 1 ? "" : " ")
        }
    }
}

/// "▁" back to " "; on the first token every replacement char is dropped unless prepend_scheme is never
/// (tokenizers' metaspace.rs `decode_chain`).
public struct MetaspaceDecoder: TokenDecoder, Decodable {
    public let replacement: Unicode.Scalar
    public let dropOnFirstToken: Bool

    private enum CodingKeys: String, CodingKey {
        case replacement, prependScheme = "prepend_scheme", addPrefixSpace = "add_prefix_space"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let rep = try container.decodeIfPresent(String.self, forKey: .replacement) ?? "▁"
        guard rep.unicodeScalars.count == 1, let ch = rep.unicodeScalars.first else {
            throw TokenizerError.invalidValue(
                file: decoder.fileName, key: decoder.keyPath + ".replacement", reason: "must be one character, got '\(rep)'")
        }
        replacement = ch
        if let scheme = try container.decodeIfPresent(MetaspacePreTokenizer.PrependScheme.self, forKey: .prependScheme) {
            dropOnFirstToken = scheme != .never
        } else {
            dropOnFirstToken = try container.decodeIfPresent(Bool.self, forKey: .addPrefixSpace) ?? true
        }
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            var out: [Unicode.Scalar] = []
            for ch in token.unicodeScalars {
                if ch == replacement {
                    if !(i == 0 && dropOnFirstToken) { out.append(" ") }
                } else {
                    out.append(ch)
                }
            }
            return makeString(out)
        }
    }
}

/// Runs of `<0xXX>` tokens become the string they encode; invalid UTF-8 yields one U+FFFD per byte
/// (tokenizers' byte_fallback.rs, deliberately not lossy-by-subsequence).
public struct ByteFallbackDecoder: TokenDecoder {
    public func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if isValidUTF8(pending) {
                out.append(String(decoding: pending, as: UTF8.self))
            } else {
                out += Array(repeating: "\u{FFFD}", count: pending.count)
            }
            pending.removeAll()
        }
        for token in tokens {
            let u = Array(token.utf8)
            if u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
               u[5] == UInt8(ascii: ">"),
               let b = UInt8(String(decoding: u[3 ..< 5], as: UTF8.self), radix: 16) {
                pending.append(b)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }
}

public struct FuseDecoder: TokenDecoder {
    public func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
public struct StripDecoder: TokenDecoder, Decodable {
    public let content: Unicode.Scalar
    public let start: Int
    public let stop: Int

    private enum CodingKeys: String, CodingKey { case content, start, stop }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let c = try container.decode(String.self, forKey: .content)
        guard c.unicodeScalars.count == 1, let ch = c.unicodeScalars.first else {
            throw TokenizerError.invalidValue(file: decoder.fileName, key: decoder.keyPath + ".content", reason: "must be one character")
        }
        content = ch
        start = try container.decodeIfPresent(Int.self, forKey: .start) ?? 0
        stop = try container.decodeIfPresent(Int.self, forKey: .stop) ?? 0
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let chars = Array(token.unicodeScalars)
            var lo = 0
            while lo < min(start, chars.count) && chars[lo] == content { lo += 1 }
            var hi = chars.count
            while chars.count - hi < stop && hi > lo && chars[hi - 1] == content { hi -= 1 }
            return makeString(chars[lo ..< hi])
        }
    }
}

/// Per-token pattern replacement (Llama's "▁" -> " ").
public struct ReplaceDecoder: TokenDecoder, Decodable {
    let replace: ReplaceNormalizer

    public init(from decoder: Decoder) throws { replace = try ReplaceNormalizer(from: decoder) }

    /// A literal replacement.
    init(literal: String, content: String) {
        replace = ReplaceNormalizer(pattern: LiteralPattern(literal: Array(literal.unicodeScalars)), content: content)
    }

    public func decodeChain(_ tokens: [String]) -> [String] { tokens.map(replace.normalize) }
}

/// WordPiece: "##" continuation pieces glued on, others spaced; optional BERT cleanup of spaces.
public struct WordPieceDecoder: TokenDecoder, Decodable {
    public let prefix: String
    public let cleanup: Bool

    private enum CodingKeys: String, CodingKey { case prefix, cleanup }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        prefix = try container.decodeIfPresent(String.self, forKey: .prefix) ?? "##"
        cleanup = try container.decodeIfPresent(Bool.self, forKey: .cleanup) ?? true
    }

    public func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            var t = token
            if i != 0 {
                if t.hasScalarPrefix(prefix) { t = t.droppingScalarPrefix(prefix.unicodeScalars.count) } else { t = " " + t }
            }
            return cleanup ? Self.cleanUp(t) : t
        }
    }

    /// tokenizers' wordpiece.rs `cleanup`, in its order.
    static func cleanUp(_ s: String) -> String {
        let rules = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                     (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
        return rules.reduce(s) { $0.replacingScalars($1.0, with: $1.1) }
    }
}

/// True when `bytes` is well-formed UTF-8 (Rust's `String::from_utf8(...).is_ok()`).
func isValidUTF8(_ bytes: [UInt8]) -> Bool {
    var iterator = bytes.makeIterator()
    var codec = UTF8()
    while true {
        switch codec.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}
