import Foundation

/// tokenizer.json's `normalizer` stage: rewrites the text before pre-tokenization (offsets are not tracked:
/// the toolkit only needs ids).
public protocol Normalizer: Sendable {
    func normalize(_ text: String) -> String
}

/// The normalizer `type`s tokenizer.json can name; the ones without a case are rejected by name.
public enum NormalizerType: String, Sendable, CaseIterable {
    case sequence = "Sequence"
    case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD"
    case lowercase = "Lowercase"
    case replace = "Replace"
    case strip = "Strip"
    case stripAccents = "StripAccents"
    case prepend = "Prepend"
    case byteLevel = "ByteLevel"
    case bert = "BertNormalizer"
    case precompiled = "Precompiled"
}

/// Decodes one normalizer object by its `type`.
struct AnyNormalizer: Decodable {
    let value: any Normalizer

    private enum CodingKeys: String, CodingKey { case type }

    init(from decoder: Decoder) throws {
        let typeName = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        guard let type = NormalizerType(rawValue: typeName) else {
            throw TokenizerError.unsupportedType(file: decoder.fileName, key: decoder.keyPath + ".type", type: typeName)
        }
        switch type {
        case .sequence: value = try SequenceNormalizer(from: decoder)
        case .nfc: value = UnicodeNormalizer(form: .nfc)
        case .nfd: value = UnicodeNormalizer(form: .nfd)
        case .nfkc: value = UnicodeNormalizer(form: .nfkc)
        case .nfkd: value = UnicodeNormalizer(form: .nfkd)
        case .lowercase: value = LowercaseNormalizer()
        case .replace: value = try ReplaceNormalizer(from: decoder)
        case .strip: value = try StripNormalizer(from: decoder)
        case .stripAccents: value = StripAccentsNormalizer()
        case .prepend: value = try PrependNormalizer(from: decoder)
        case .byteLevel: value = ByteLevelNormalizer()
        case .bert: value = try BertNormalizer(from: decoder)
        case .precompiled: value = try PrecompiledNormalizer(from: decoder)
        }
    }
}

public struct SequenceNormalizer: Normalizer, Decodable {
    public let normalizers: [any Normalizer]

    private enum CodingKeys: String, CodingKey { case normalizers }

    public init(_ normalizers: [any Normalizer]) { self.normalizers = normalizers }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        normalizers = try container.decode([AnyNormalizer].self, forKey: .normalizers).map(\.value)
    }

    public func normalize(_ text: String) -> String {
        normalizers.reduce(text) { $1.normalize($0) }
    }
}

/// NFC/NFD/NFKC/NFKD (tokenizers uses the unicode-normalization crate; Foundation's mapping is the same
/// Unicode algorithm, checked on the NFD/Hangul/compatibility cases of the corpus).
public struct UnicodeNormalizer: Normalizer {
    public enum Form: Sendable { case nfc, nfd, nfkc, nfkd }
    public let form: Form

    public init(form: Form) { self.form = form }

    public func normalize(_ text: String) -> String {
        // ASCII is invariant under every form; skipping Foundation there is most of the speed.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        switch form {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }
}

/// tokenizers' `NormalizedString::lowercase`: Rust's `char::to_lowercase` per scalar, the full but
/// context-free mapping (no final-sigma rule; U+0130 becomes "i̇"). Swift's `lowercaseMapping` is the same table.
public struct LowercaseNormalizer: Normalizer {
    public init() {}

    public func normalize(_ text: String) -> String {
        var out: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            if scalar.value < 0x80 {
                out.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(UInt8(scalar.value + 0x20)) : scalar)
            } else if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return makeString(out)
    }
}

/// Replace every match of `pattern` (literal or regex) with `content` (tokenizers' `NormalizedString::replace`).
public struct ReplaceNormalizer: Normalizer, Decodable {
    let pattern: any ScalarPattern
    let content: [Unicode.Scalar]

    private enum CodingKeys: String, CodingKey { case pattern, content }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let spec = try container.decode(PatternSpec.self, forKey: .pattern)
        pattern = try spec.compile(file: decoder.fileName, key: decoder.keyPath + ".pattern")
        content = Array(try container.decode(String.self, forKey: .content).unicodeScalars)
    }

    init(pattern: any ScalarPattern, content: String) {
        self.pattern = pattern
        self.content = Array(content.unicodeScalars)
    }

    public func normalize(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var previous = 0
        for m in pattern.matches(in: scalars) {
            out.append(contentsOf: scalars[previous ..< m.lowerBound])
            out.append(contentsOf: content)
            previous = m.upperBound
        }
        out.append(contentsOf: scalars[previous...])
        return makeString(out)
    }
}

/// Strip whitespace (Rust's `char::is_whitespace`, i.e. White_Space) from the left and/or right.
public struct StripNormalizer: Normalizer, Decodable {
    public let left: Bool
    public let right: Bool

    private enum CodingKeys: String, CodingKey {
        case left = "strip_left", right = "strip_right"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        left = try container.decodeIfPresent(Bool.self, forKey: .left) ?? true
        right = try container.decodeIfPresent(Bool.self, forKey: .right) ?? true
    }

    public func normalize(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars[...]
        if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
        if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
        return makeString(scalars)
    }
}

/// Removes combining marks (General_Category M: Mn, Mc, Me — unicode-normalization's `is_combining_mark`), as
/// tokenizers' StripAccents does (meant to follow NFD).
public struct StripAccentsNormalizer: Normalizer {
    public func normalize(_ text: String) -> String {
        makeString(text.unicodeScalars.filter { s in
            switch s.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: return false
            default: return true
            }
        })
    }
}

/// Prepends `prepend` to non-empty text (SentencePiece-style "▁").
public struct PrependNormalizer: Normalizer, Decodable {
    public let prepend: String

    private enum CodingKeys: String, CodingKey { case prepend }

    public init(from decoder: Decoder) throws {
        prepend = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .prepend)
    }

    public func normalize(_ text: String) -> String { text.isEmpty ? text : prepend + text }
}

/// Maps every UTF-8 byte to its ByteLevel character (GPT-2's bytes_to_unicode table).
public struct ByteLevelNormalizer: Normalizer {
    public func normalize(_ text: String) -> String {
        var out: [Unicode.Scalar] = []
        for byte in text.utf8 { out.append(ByteLevel.byteToScalar[Int(byte)]) }
        return makeString(out)
    }
}

/// BERT's normalizer: clean control chars, pad CJK ideographs with spaces, strip accents, lowercase.
public struct BertNormalizer: Normalizer, Decodable {
    public let cleanText: Bool
    public let handleChineseChars: Bool
    public let stripAccents: Bool?
    public let lowercase: Bool

    private enum CodingKeys: String, CodingKey {
        case cleanText = "clean_text", handleChineseChars = "handle_chinese_chars"
        case stripAccents = "strip_accents", lowercase
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cleanText = try container.decodeIfPresent(Bool.self, forKey: .cleanText) ?? true
        handleChineseChars = try container.decodeIfPresent(Bool.self, forKey: .handleChineseChars) ?? true
        stripAccents = try container.decodeIfPresent(Bool.self, forKey: .stripAccents)
        lowercase = try container.decodeIfPresent(Bool.self, forKey: .lowercase) ?? true
    }

    public func normalize(_ text: String) -> String {
        var out: [Unicode.Scalar] = []
        for s in text.unicodeScalars {
            if cleanText {
                // tokenizers' bert.rs: drop NUL, U+FFFD and "other" chars (Cc, Cf, Co, Cs — unassigned code
                // points stay, as the stage fixture shows) except \t \n \r, then map whitespace to a space (the
                // filter runs first, so U+000B/U+0085 are dropped, not spaced).
                if s.value == 0 || s.value == 0xFFFD { continue }
                let isTabOrNewline = s == "\t" || s == "\n" || s == "\r"
                let cat = s.properties.generalCategory
                if !isTabOrNewline && (cat == .control || cat == .format || cat == .privateUse || cat == .surrogate) {
                    continue
                }
                if isTabOrNewline || s.properties.isWhitespace { out.append(" "); continue }
            }
            if handleChineseChars && Self.isChineseChar(s) {
                out.append(" "); out.append(s); out.append(" ")
            } else {
                out.append(s)
            }
        }
        var result = makeString(out)
        if stripAccents ?? lowercase {
            // bert.rs strips only nonspacing marks (Mn), unlike the StripAccents normalizer (all M).
            result = makeString(UnicodeNormalizer(form: .nfd).normalize(result).unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            })
        }
        if lowercase { result = LowercaseNormalizer().normalize(result) }
        return result
    }

    static func isChineseChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00 ... 0x9FFF, 0x3400 ... 0x4DBF, 0x20000 ... 0x2A6DF, 0x2A700 ... 0x2B73F, 0x2B740 ... 0x2B81F,
             0x2B920 ... 0x2CEAF, 0xF900 ... 0xFAFF, 0x2F800 ... 0x2FA1F:
            return true
        default:
            return false
        }
    }
}
