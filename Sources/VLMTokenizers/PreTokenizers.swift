import Foundation

/// A piece of normalized text on its way to the model. `atOrigin` is true when the piece starts at offset 0 of
/// the original input (tokenizers' `offsets_original().0 == 0`, which Metaspace's `prepend_scheme: first` uses).
public struct PreToken: Sendable, Equatable {
    public var scalars: [Unicode.Scalar]
    public var atOrigin: Bool

    public init(_ scalars: [Unicode.Scalar], atOrigin: Bool) {
        self.scalars = scalars
        self.atOrigin = atOrigin
    }

    public var string: String { makeString(scalars) }
}

/// tokenizer.json's `pre_tokenizer` stage: splits (and may rewrite) each piece of normalized text.
public protocol PreTokenizer: Sendable {
    func preTokenize(_ pieces: [PreToken]) -> [PreToken]
}

public enum PreTokenizerType: String, Sendable, CaseIterable {
    case sequence = "Sequence"
    case split = "Split"
    case byteLevel = "ByteLevel"
    case whitespace = "Whitespace"
    case whitespaceSplit = "WhitespaceSplit"
    case metaspace = "Metaspace"
    case digits = "Digits"
    case punctuation = "Punctuation"
    case bert = "BertPreTokenizer"
    case charDelimiterSplit = "CharDelimiterSplit"
}

struct AnyPreTokenizer: Decodable {
    let value: any PreTokenizer

    private enum CodingKeys: String, CodingKey { case type }

    init(from decoder: Decoder) throws {
        let typeName = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        guard let type = PreTokenizerType(rawValue: typeName) else {
            throw TokenizerError.unsupportedType(file: decoder.fileName, key: decoder.keyPath + ".type", type: typeName)
        }
        switch type {
        case .sequence: value = try SequencePreTokenizer(from: decoder)
        case .split: value = try SplitPreTokenizer(from: decoder)
        case .byteLevel: value = try ByteLevelPreTokenizer(from: decoder)
        case .whitespace: value = WhitespacePreTokenizer()
        case .whitespaceSplit: value = WhitespaceSplitPreTokenizer()
        case .metaspace: value = try MetaspacePreTokenizer(from: decoder)
        case .digits: value = try DigitsPreTokenizer(from: decoder)
        case .punctuation: value = try PunctuationPreTokenizer(from: decoder)
        case .bert: value = BertPreTokenizer()
        case .charDelimiterSplit: value = try CharDelimiterSplitPreTokenizer(from: decoder)
        }
    }
}

/// tokenizers' `SplitDelimiterBehavior`.
public enum SplitBehavior: String, Decodable, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// tokenizers' `NormalizedString::split`: tile by the pattern, flip matches when `invert`, then apply the
/// behavior (normalized_string.rs), dropping empty pieces.
func split(_ piece: PreToken, pattern: any ScalarPattern, behavior: SplitBehavior, invert: Bool = false) -> [PreToken] {
    var tiles = tile(piece.scalars, with: pattern)
    if invert { tiles = tiles.map { ($0.range, !$0.isMatch) } }
    // (range, remove)
    var kept: [(range: Range<Int>, remove: Bool)] = []
    switch behavior {
    case .isolated:
        kept = tiles.map { ($0.range, false) }
    case .removed:
        kept = tiles.map { ($0.range, $0.isMatch) }
    case .contiguous:
        var previousMatch = false
        for t in tiles {
            if t.isMatch == previousMatch, let last = kept.last {
                kept[kept.count - 1] = (last.range.lowerBound ..< t.range.upperBound, false)
            } else {
                kept.append((t.range, false))
            }
            previousMatch = t.isMatch
        }
    case .mergedWithPrevious:
        var previousMatch = false
        for t in tiles {
            if t.isMatch && !previousMatch, let last = kept.last {
                kept[kept.count - 1] = (last.range.lowerBound ..< t.range.upperBound, false)
            } else {
                kept.append((t.range, false))
            }
            previousMatch = t.isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        for t in tiles.reversed() {
            if t.isMatch && !previousMatch, let last = kept.last {
                kept[kept.count - 1] = (t.range.lowerBound ..< last.range.upperBound, false)
            } else {
                kept.append((t.range, false))
            }
            previousMatch = t.isMatch
        }
        kept.reverse()
    }
    return kept.compactMap { item in
        guard !item.remove, !item.range.isEmpty else { return nil }
        return PreToken(Array(piece.scalars[item.range]), atOrigin: piece.atOrigin && item.range.lowerBound == 0)
    }
}

/// A one-scalar predicate as a pattern (tokenizers' `impl Pattern for Fn(char) -> bool`: each char is a match).
struct PredicatePattern: ScalarPattern {
    let predicate: @Sendable (Unicode.Scalar) -> Bool

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        text.indices.filter { predicate(text[$0]) }.map { $0 ..< $0 + 1 }
    }
}

public struct SequencePreTokenizer: PreTokenizer, Decodable {
    public let preTokenizers: [any PreTokenizer]

    private enum CodingKeys: String, CodingKey { case pretokenizers }

    public init(_ preTokenizers: [any PreTokenizer]) { self.preTokenizers = preTokenizers }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        preTokenizers = try container.decode([AnyPreTokenizer].self, forKey: .pretokenizers).map(\.value)
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        preTokenizers.reduce(pieces) { $1.preTokenize($0) }
    }
}

public struct SplitPreTokenizer: PreTokenizer, Decodable {
    let pattern: any ScalarPattern
    public let behavior: SplitBehavior
    public let invert: Bool

    private enum CodingKeys: String, CodingKey { case pattern, behavior, invert }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let spec = try container.decode(PatternSpec.self, forKey: .pattern)
        pattern = try spec.compile(file: decoder.fileName, key: decoder.keyPath + ".pattern")
        behavior = try container.decode(SplitBehavior.self, forKey: .behavior)
        invert = try container.decodeIfPresent(Bool.self, forKey: .invert) ?? false
    }

    init(pattern: any ScalarPattern, behavior: SplitBehavior, invert: Bool) {
        self.pattern = pattern
        self.behavior = behavior
        self.invert = invert
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        pieces.flatMap { split($0, pattern: pattern, behavior: behavior, invert: invert) }
    }
}

/// tokenizers' ByteLevel pre-tokenizer: optional prefix space per piece, GPT-2 regex split (Isolated), then
/// every UTF-8 byte mapped through the bytes_to_unicode table.
public struct ByteLevelPreTokenizer: PreTokenizer, Decodable {
    public let addPrefixSpace: Bool
    public let useRegex: Bool

    private enum CodingKeys: String, CodingKey {
        case addPrefixSpace = "add_prefix_space", useRegex = "use_regex"
    }

    public init(addPrefixSpace: Bool, useRegex: Bool) {
        self.addPrefixSpace = addPrefixSpace
        self.useRegex = useRegex
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        addPrefixSpace = try container.decodeIfPresent(Bool.self, forKey: .addPrefixSpace) ?? true
        useRegex = try container.decodeIfPresent(Bool.self, forKey: .useRegex) ?? true
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        var out: [PreToken] = []
        out.reserveCapacity(pieces.count)
        for var piece in pieces {
            if addPrefixSpace && piece.scalars.first != " " { piece.scalars.insert(" ", at: 0) }
            let parts = useRegex ? split(piece, pattern: KnownPattern.gpt2, behavior: .isolated) : [piece]
            for part in parts {
                out.append(PreToken(ByteLevel.encode(part.scalars[...]), atOrigin: part.atOrigin))
            }
        }
        return out
    }
}

/// `\w+|[^\w\s]+`, keeping the matches (tokenizers' Whitespace pre-tokenizer), with onig's `\w`.
public struct WhitespacePreTokenizer: PreTokenizer {
    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        pieces.flatMap { split($0, pattern: KnownPattern.wordsAndSymbols, behavior: .removed, invert: true) }
    }
}

/// Splits on whitespace (Rust's `char::is_whitespace`), dropping it.
public struct WhitespaceSplitPreTokenizer: PreTokenizer {
    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        let pattern = PredicatePattern { $0.properties.isWhitespace }
        return pieces.flatMap { split($0, pattern: pattern, behavior: .removed) }
    }
}

/// SentencePiece-style: spaces become `replacement` ("▁"), one is prepended per `prepend_scheme`, and the text
/// is split before each replacement char (MergedWithNext), as tokenizers' metaspace.rs does.
public struct MetaspacePreTokenizer: PreTokenizer, Decodable {
    public enum PrependScheme: String, Decodable, Sendable { case always, first, never }

    public let replacement: Unicode.Scalar
    public let prependScheme: PrependScheme
    public let splitPieces: Bool

    private enum CodingKeys: String, CodingKey {
        case replacement, prependScheme = "prepend_scheme", split, addPrefixSpace = "add_prefix_space"
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let rep = try container.decodeIfPresent(String.self, forKey: .replacement) ?? "▁"
        guard rep.unicodeScalars.count == 1, let scalar = rep.unicodeScalars.first else {
            throw TokenizerError.invalidValue(
                file: decoder.fileName, key: decoder.keyPath + ".replacement", reason: "must be one character, got '\(rep)'")
        }
        replacement = scalar
        // Older files carry `add_prefix_space` instead of `prepend_scheme`.
        if let scheme = try container.decodeIfPresent(PrependScheme.self, forKey: .prependScheme) {
            prependScheme = scheme
        } else {
            let legacy = try container.decodeIfPresent(Bool.self, forKey: .addPrefixSpace) ?? true
            prependScheme = legacy ? .always : .never
        }
        splitPieces = try container.decodeIfPresent(Bool.self, forKey: .split) ?? true
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        var out: [PreToken] = []
        for var piece in pieces {
            piece.scalars = piece.scalars.map { $0 == " " ? replacement : $0 }
            let prepend: Bool
            switch prependScheme {
            case .always: prepend = piece.scalars.first != replacement
            case .first: prepend = piece.scalars.first != replacement && piece.atOrigin
            case .never: prepend = false
            }
            if prepend { piece.scalars.insert(replacement, at: 0) }
            if splitPieces {
                out += split(piece, pattern: LiteralPattern(literal: [replacement]), behavior: .mergedWithNext)
            } else {
                out.append(piece)
            }
        }
        return out
    }
}

/// Splits out numeric chars (Rust's `char::is_numeric`: Nd, Nl, No), one per piece or in runs.
public struct DigitsPreTokenizer: PreTokenizer, Decodable {
    public let individualDigits: Bool

    private enum CodingKeys: String, CodingKey { case individualDigits = "individual_digits" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        individualDigits = try container.decodeIfPresent(Bool.self, forKey: .individualDigits) ?? false
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        let pattern = PredicatePattern { CharClass.isNumber($0) }
        return pieces.flatMap { split($0, pattern: pattern, behavior: individualDigits ? .isolated : .contiguous) }
    }
}

/// Rust `char::is_ascii_punctuation() || is_punctuation()` (general categories P*).
func isPunctuation(_ s: Unicode.Scalar) -> Bool {
    if s.value < 0x80 {
        let v = s.value
        return (0x21 ... 0x2F).contains(v) || (0x3A ... 0x40).contains(v) || (0x5B ... 0x60).contains(v)
            || (0x7B ... 0x7E).contains(v)
    }
    switch s.properties.generalCategory {
    case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
         .finalPunctuation, .otherPunctuation:
        return true
    default:
        return false
    }
}

public struct PunctuationPreTokenizer: PreTokenizer, Decodable {
    public let behavior: SplitBehavior

    private enum CodingKeys: String, CodingKey { case behavior }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        behavior = try container.decodeIfPresent(SplitBehavior.self, forKey: .behavior) ?? .isolated
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        let pattern = PredicatePattern { isPunctuation($0) }
        return pieces.flatMap { split($0, pattern: pattern, behavior: behavior) }
    }
}

/// BERT: split on whitespace (removed), then isolate each punctuation char.
public struct BertPreTokenizer: PreTokenizer {
    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        let ws = PredicatePattern { $0.properties.isWhitespace }
        let punct = PredicatePattern { isPunctuation($0) }
        return pieces.flatMap { split($0, pattern: ws, behavior: .removed) }
            .flatMap { split($0, pattern: punct, behavior: .isolated) }
    }
}

public struct CharDelimiterSplitPreTokenizer: PreTokenizer, Decodable {
    public let delimiter: Unicode.Scalar

    private enum CodingKeys: String, CodingKey { case delimiter }

    public init(from decoder: Decoder) throws {
        let value = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .delimiter)
        guard value.unicodeScalars.count == 1, let scalar = value.unicodeScalars.first else {
            throw TokenizerError.invalidValue(
                file: decoder.fileName, key: decoder.keyPath + ".delimiter", reason: "must be one character")
        }
        delimiter = scalar
    }

    public func preTokenize(_ pieces: [PreToken]) -> [PreToken] {
        let pattern = LiteralPattern(literal: [delimiter])
        return pieces.flatMap { split($0, pattern: pattern, behavior: .removed) }
    }
}
