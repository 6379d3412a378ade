import Foundation

/// An entry of tokenizer.json's `added_tokens` (tokenizers' `AddedToken`).
public struct AddedToken: Decodable, Sendable, Equatable {
    public var id: Int
    public var content: String
    /// Match only when not inside a word.
    public var singleWord: Bool
    /// Swallow whitespace on the left / right into the match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Match in the normalized text (after the normalizer) instead of the raw input.
    public var normalized: Bool
    /// Dropped by `decode(skipSpecialTokens: true)`.
    public var special: Bool

    private enum CodingKeys: String, CodingKey {
        case id, content, singleWord = "single_word", lstrip, rstrip, normalized, special
    }

    public init(id: Int, content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool, special: Bool) {
        self.id = id
        self.content = content
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        content = try c.decode(String.self, forKey: .content)
        singleWord = try c.decodeIfPresent(Bool.self, forKey: .singleWord) ?? false
        lstrip = try c.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false
        rstrip = try c.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false
        special = try c.decodeIfPresent(Bool.self, forKey: .special) ?? false
        // tokenizers' AddedToken default: normalized = !special.
        normalized = try c.decodeIfPresent(Bool.self, forKey: .normalized) ?? !special
    }
}

/// tokenizers' `AddedVocabulary`: tokens cut out of the text before the model sees it. Non-normalized tokens
/// are matched in the raw input, normalized ones (with their content normalized) in each normalized piece;
/// matching is leftmost-longest and non-overlapping like its aho-corasick automaton.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    let byID: [Int: AddedToken]
    let byContent: [TokenString: AddedToken]
    private let raw: Matcher
    private let normalizedMatcher: Matcher

    init(tokens: [AddedToken], normalizer: (any Normalizer)?) {
        self.tokens = tokens
        var byID: [Int: AddedToken] = [:]
        var byContent: [TokenString: AddedToken] = [:]
        for t in tokens {
            byID[t.id] = t
            byContent[TokenString(t.content)] = t
        }
        self.byID = byID
        self.byContent = byContent
        raw = Matcher(tokens.filter { !$0.normalized }.map { ($0, Array($0.content.unicodeScalars)) })
        normalizedMatcher = Matcher(tokens.filter(\.normalized).map { token in
            (token, Array((normalizer?.normalize(token.content) ?? token.content).unicodeScalars))
        })
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Splits `text` into added-token ids and plain ranges (tokenizers' `AddedVocabulary::find_matches`).
    func split(_ text: [Unicode.Scalar], normalized: Bool) -> [(id: Int?, range: Range<Int>)] {
        (normalized ? normalizedMatcher : raw).split(text)
    }

    struct Matcher: Sendable {
        /// First scalar -> candidates, longest first (leftmost-longest semantics).
        private let candidates: [Unicode.Scalar: [(token: AddedToken, pattern: [Unicode.Scalar])]]
        /// ASCII first scalars with candidates: skips the dictionary probe on most characters of the text.
        private let asciiStarts: [Bool]

        init(_ entries: [(AddedToken, [Unicode.Scalar])]) {
            var map: [Unicode.Scalar: [(token: AddedToken, pattern: [Unicode.Scalar])]] = [:]
            for (token, pattern) in entries {
                guard let first = pattern.first else { continue }  // empty contents never match
                map[first, default: []].append((token, pattern))
            }
            candidates = map.mapValues { $0.sorted { $0.pattern.count > $1.pattern.count } }
            var starts = [Bool](repeating: false, count: 128)
            for first in map.keys where first.value < 128 { starts[Int(first.value)] = true }
            asciiStarts = starts
        }

        private func longestMatch(in text: [Unicode.Scalar], at i: Int) -> (AddedToken, Int)? {
            let v = text[i].value
            if v < 128 && !asciiStarts[Int(v)] { return nil }
            guard let list = candidates[text[i]] else { return nil }
            for (token, pattern) in list where i + pattern.count <= text.count {
                if text[i ..< i + pattern.count].elementsEqual(pattern) { return (token, i + pattern.count) }
            }
            return nil
        }

        func split(_ text: [Unicode.Scalar]) -> [(id: Int?, range: Range<Int>)] {
            if text.isEmpty { return [(nil, 0 ..< 0)] }
            if candidates.isEmpty { return [(nil, 0 ..< text.count)] }
            var out: [(id: Int?, range: Range<Int>)] = []
            var startOffset = 0
            var i = 0
            while i < text.count {
                guard let (token, matchEnd) = longestMatch(in: text, at: i) else { i += 1; continue }
                var start = i
                var stop = matchEnd
                i = matchEnd  // the automaton resumes after the match even if it is discarded below
                if token.singleWord {
                    let startSpace = start == 0 || !isWordCharacter(text[start - 1])
                    let stopSpace = stop == text.count || !isWordCharacter(text[stop])
                    if !startSpace || !stopSpace { continue }
                }
                if token.lstrip {
                    var s = start
                    while s > 0 && text[s - 1].properties.isWhitespace { s -= 1 }
                    start = max(s, startOffset)  // spaces a previous match took are not taken again
                }
                if token.rstrip {
                    while stop < text.count && text[stop].properties.isWhitespace { stop += 1 }
                }
                if startOffset < start { out.append((nil, startOffset ..< start)) }
                out.append((token.id, start ..< stop))
                startOffset = stop
            }
            if startOffset != text.count { out.append((nil, startOffset ..< text.count)) }
            return out
        }

        /// Rust's `char::is_alphanumeric` (Alphabetic or Numeric), the word test of single_word tokens.
        private func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
            s.properties.isAlphabetic || CharClass.isNumber(s)
        }
    }
}
