import Foundation

// Patterns of the Split pre-tokenizer and the Replace normalizer/decoder.
//
// tokenizers compiles `{"Regex": ...}` with Oniguruma (its `SysRegex`) and iterates matches leftmost-first,
// non-overlapping (`Pattern::find_matches`). We work on arrays of Unicode scalars, which is equivalent to
// onig's UTF-8 byte offsets because every match boundary falls on a scalar boundary.
//
// The patterns real checkpoints use are few and fixed (CLIP's, GPT-2's, `\s+`); those get hand-written
// matchers, which are linear and several times faster than NSRegularExpression. Anything else goes to
// NSRegularExpression (ICU) after rewriting `\s`/`\S` to onig's meaning (see `ICUPattern`).

/// Character classes with Oniguruma's Unicode semantics, checked code point by code point against onig by the tests.
enum CharClass {
    /// onig `\s` is the Unicode White_Space property (it includes U+000B and U+0085, which ICU's `\s` lacks).
    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        if s.value < 0x80 { return s.value == 0x20 || (s.value >= 0x09 && s.value <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// onig `\p{L}` (general categories Lu, Ll, Lt, Lm, Lo in onig's Unicode version, see UnicodeTables.swift).
    @inline(__always)
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        return inRanges(OnigTables.letter, v)
    }

    /// onig `\p{N}` (Nd, Nl, No).
    @inline(__always)
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        return inRanges(OnigTables.number, v)
    }

    /// Binary search in flattened sorted [first, last] pairs.
    static func inRanges(_ table: [UInt32], _ v: UInt32) -> Bool {
        var lo = 0
        var hi = table.count / 2  // pairs in [lo, hi)
        while lo < hi {
            let mid = (lo + hi) / 2
            if v < table[2 * mid] {
                hi = mid
            } else if v > table[2 * mid + 1] {
                lo = mid + 1
            } else {
                return true
            }
        }
        return false
    }

    /// A word char of tokenizers' Whitespace pre-tokenizer, whose hand-written class is UTS#18's \w
    /// (Alphabetic, marks, Nd, Pc, Join_Control) — not onig's `\w`, which also takes No ("²") and not ZWJ.
    @inline(__always)
    static func isWord(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A || (v >= 0x30 && v <= 0x39) || v == 0x5F }
        return inRanges(OnigTables.word, v)
    }

    /// `[^\s\p{L}\p{N}]`
    @inline(__always)
    static func isOther(_ s: Unicode.Scalar) -> Bool { !isWhitespace(s) && !isLetter(s) && !isNumber(s) }
}

/// Finds the non-overlapping matches of a pattern, leftmost-first (onig's `find_iter`).
protocol ScalarPattern: Sendable {
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>]
}

/// `{"String": "..."}` or `{"Regex": "..."}` as tokenizer.json writes a pattern.
enum PatternSpec: Decodable, Sendable, Equatable {
    case string(String)
    case regex(String)

    private enum CodingKeys: String, CodingKey {
        case string = "String"
        case regex = "Regex"
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let literal = try container.decodeIfPresent(String.self, forKey: .string) {
            self = .string(literal)
        } else if let regex = try container.decodeIfPresent(String.self, forKey: .regex) {
            self = .regex(regex)
        } else {
            throw TokenizerError.malformedJSON(
                file: decoder.fileName, key: decoder.keyPath, reason: "pattern needs a 'String' or 'Regex' key")
        }
    }

    /// Compiles the pattern; `file`/`key` name it in errors.
    func compile(file: String, key: String) throws -> any ScalarPattern {
        switch self {
        case let .string(literal):
            return LiteralPattern(literal: Array(literal.unicodeScalars))
        case let .regex(source):
            if let known = KnownPattern(source: source) { return known }
            return try ICUPattern(onigSource: source, file: file, key: key)
        }
    }
}

/// A literal substring (tokenizers' `impl Pattern for &str`: non-overlapping, left to right).
struct LiteralPattern: ScalarPattern {
    let literal: [Unicode.Scalar]

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        guard !literal.isEmpty, text.count >= literal.count else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        let first = literal[0]
        while i + literal.count <= text.count {
            if text[i] == first && text[i ..< i + literal.count].elementsEqual(literal) {
                out.append(i ..< i + literal.count)
                i += literal.count
            } else {
                i += 1
            }
        }
        return out
    }
}

/// Hand-written matchers for the regexes real checkpoints use, identical to onig's leftmost-first alternation.
enum KnownPattern: ScalarPattern {
    /// `\s+` (CLIP's Replace normalizer).
    case whitespaceRun
    /// CLIP as transformers' CLIPTokenizer builds it:
    /// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
    case clip
    /// CLIP as the hub's tokenizer.json files have it (convert_slow_tokenizer's CLIPConverter): the same
    /// without the two special-token literals.
    case clipNoSpecials
    /// GPT-2 / ByteLevel: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 (digits in runs of up to 3) and Qwen2 (single digits), ByteLevel tokenizers:
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    case qwen2
    /// The Whitespace pre-tokenizer, `\w+|[^\w\s]+` with its own \w (`CharClass.isWord`). Not matched from
    /// a regex source: a Split with that regex uses onig's \w and takes the general path.
    case wordsAndSymbols

    static let clipSource =
        #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#
    static let clipNoSpecialsSource = #"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    init?(source: String) {
        switch source {
        case #"\s+"#: self = .whitespaceRun
        case Self.clipSource: self = .clip
        case Self.clipNoSpecialsSource: self = .clipNoSpecials
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3
        case Self.qwen2Source: self = .qwen2
        default: return nil
        }
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        out.reserveCapacity(text.count / 3 + 1)
        var i = 0
        let n = text.count
        while i < n {
            let end: Int?
            switch self {
            case .whitespaceRun: end = Self.matchWhitespaceRun(text, at: i)
            case .clip: end = Self.matchCLIP(text, at: i, specials: true)
            case .clipNoSpecials: end = Self.matchCLIP(text, at: i, specials: false)
            case .gpt2: end = Self.matchGPT2(text, at: i)
            case .llama3: end = Self.matchLlama3(text, at: i, maxDigits: 3)
            case .qwen2: end = Self.matchLlama3(text, at: i, maxDigits: 1)
            case .wordsAndSymbols:
                let c = text[i]
                if CharClass.isWord(c) {
                    end = Self.run(text, from: i, while: CharClass.isWord)
                } else if CharClass.isWhitespace(c) {
                    end = nil
                } else {
                    end = Self.run(text, from: i, while: { !CharClass.isWord($0) && !CharClass.isWhitespace($0) })
                }
            }
            if let end, end > i {
                out.append(i ..< end)
                i = end
            } else {
                i += 1
            }
        }
        return out
    }

    private static func run(_ text: [Unicode.Scalar], from i: Int, while pred: (Unicode.Scalar) -> Bool) -> Int {
        var j = i
        while j < text.count && pred(text[j]) { j += 1 }
        return j
    }

    private static func matchWhitespaceRun(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        let j = run(t, from: i, while: CharClass.isWhitespace)
        return j > i ? j : nil
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` (case-sensitive, as in both CLIP's and GPT-2's pattern).
    private static func matchContraction(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        guard t[i] == "'", i + 1 < t.count else { return nil }
        switch t[i + 1] {
        case "s", "t", "m", "d": return i + 2
        case "r", "v":
            return i + 2 < t.count && t[i + 2] == "e" ? i + 3 : nil
        case "l":
            return i + 2 < t.count && t[i + 2] == "l" ? i + 3 : nil
        default: return nil
        }
    }

    private static let startOfText = Array("<|startoftext|>".unicodeScalars)
    private static let endOfText = Array("<|endoftext|>".unicodeScalars)

    private static func hasPrefix(_ t: [Unicode.Scalar], at i: Int, _ lit: [Unicode.Scalar]) -> Bool {
        i + lit.count <= t.count && t[i ..< i + lit.count].elementsEqual(lit)
    }

    private static func matchCLIP(_ t: [Unicode.Scalar], at i: Int, specials: Bool) -> Int? {
        let c = t[i]
        if specials && c == "<" {
            if hasPrefix(t, at: i, startOfText) { return i + startOfText.count }
            if hasPrefix(t, at: i, endOfText) { return i + endOfText.count }
        }
        if let end = matchContraction(t, at: i) { return end }
        if CharClass.isLetter(c) { return run(t, from: i, while: CharClass.isLetter) }
        if CharClass.isNumber(c) { return i + 1 }
        if CharClass.isWhitespace(c) { return nil }
        return run(t, from: i, while: CharClass.isOther)
    }

    private static func matchGPT2(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        if let end = matchContraction(t, at: i) { return end }
        let c = t[i]
        // ` ?X+` alternatives: an optional single U+0020 then a run of the class.
        let j = (c == " " && i + 1 < t.count) ? i + 1 : i
        let d = t[j]
        if CharClass.isLetter(d) { return run(t, from: j, while: CharClass.isLetter) }
        if CharClass.isNumber(d) { return run(t, from: j, while: CharClass.isNumber) }
        if !CharClass.isWhitespace(d) { return run(t, from: j, while: CharClass.isOther) }
        return matchTrailingWhitespace(t, at: i)
    }

    /// `\s+(?!\S)|\s+` at a whitespace char: the run, backing off one so the next match can take ` X`.
    private static func matchTrailingWhitespace(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        let end = run(t, from: i, while: CharClass.isWhitespace)
        if end == t.count { return end }
        return end - 1 > i ? end - 1 : end
    }

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)`: onig's case folding also maps U+017F (long s) to "s".
    private static func matchContractionIgnoringCase(_ t: [Unicode.Scalar], at i: Int) -> Int? {
        guard t[i] == "'", i + 1 < t.count else { return nil }
        func lower(_ k: Int) -> Unicode.Scalar? {
            guard k < t.count else { return nil }
            let v = t[k].value
            if v == 0x17F { return "s" }
            if v >= 0x41 && v <= 0x5A { return Unicode.Scalar(UInt8(v + 0x20)) }
            return t[k]
        }
        switch lower(i + 1) {
        case "s", "t", "m", "d": return i + 2
        case "r", "v": return lower(i + 2) == "e" ? i + 3 : nil
        case "l": return lower(i + 2) == "l" ? i + 3 : nil
        default: return nil
        }
    }

    private static func matchLlama3(_ t: [Unicode.Scalar], at i: Int, maxDigits: Int) -> Int? {
        if let end = matchContractionIgnoringCase(t, at: i) { return end }
        let c = t[i]
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if CharClass.isLetter(c) { return run(t, from: i, while: CharClass.isLetter) }
        let isCRLF = c == "\r" || c == "\n"
        if !isCRLF && !CharClass.isNumber(c) && i + 1 < t.count && CharClass.isLetter(t[i + 1]) {
            return run(t, from: i + 1, while: CharClass.isLetter)
        }
        // `\p{N}{1,3}` (Llama-3) / `\p{N}` (Qwen2)
        if CharClass.isNumber(c) {
            var j = i
            while j < t.count && j - i < maxDigits && CharClass.isNumber(t[j]) { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let start = (c == " " && i + 1 < t.count && CharClass.isOther(t[i + 1])) ? i + 1 : i
        if CharClass.isOther(t[start]) {
            let end = run(t, from: start, while: CharClass.isOther)
            return run(t, from: end, while: { $0 == "\r" || $0 == "\n" })
        }
        // `\s*[\r\n]+`: through the last CR/LF of the whitespace run.
        let end = run(t, from: i, while: CharClass.isWhitespace)
        if let last = (i ..< end).last(where: { t[$0] == "\r" || t[$0] == "\n" }) { return last + 1 }
        return matchTrailingWhitespace(t, at: i)
    }
}

/// Any other regex, via NSRegularExpression (ICU). ICU's `\s` is `[\t\n\f\r\p{Z}]`, onig's is White_Space
/// (adds U+000B, U+0085), so `\s`/`\S` are rewritten to the property; `\p{L}`, `\p{N}`, lookahead, `(?i:...)`
/// and counted repetition mean the same in both engines.
final class ICUPattern: ScalarPattern, @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
    let regex: NSRegularExpression

    init(onigSource: String, file: String, key: String) throws {
        do {
            regex = try NSRegularExpression(pattern: Self.translate(onigSource), options: [])
        } catch {
            throw TokenizerError.invalidValue(file: file, key: key, reason: "regex \(onigSource) does not compile: \(error)")
        }
    }

    static func translate(_ source: String) -> String {
        var out = ""
        var escaped = false
        for ch in source {
            if escaped {
                switch ch {
                case "s": out += #"\p{White_Space}"#
                case "S": out += #"\P{White_Space}"#
                default: out += "\\" + String(ch)
                }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        if escaped { out += "\\" }
        return out
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        let string = makeString(text)
        // UTF-16 offset -> scalar index, to map NSRange back onto the scalar array.
        var utf16ToScalar = [Int](repeating: 0, count: string.utf16.count + 1)
        var offset = 0
        for (index, scalar) in text.enumerated() {
            utf16ToScalar[offset] = index
            offset += scalar.utf16.count
        }
        utf16ToScalar[offset] = text.count
        let found = regex.matches(in: string, options: [], range: NSRange(location: 0, length: offset))
        // Empty matches are kept: like onig's, they split the gaps around them (the empty pieces are dropped
        // later) and make Replace insert its content. ICU also reports an empty match right where the previous
        // match ended, which the onig crate's iterator skips; so do we.
        var out: [Range<Int>] = []
        var previousEnd = -1
        for match in found {
            let r = match.range
            guard r.location != NSNotFound, r.location + r.length <= offset else { continue }
            if r.length == 0 && r.location == previousEnd { continue }
            out.append(utf16ToScalar[r.location] ..< utf16ToScalar[r.location + r.length])
            previousEnd = r.location + r.length
        }
        return out
    }
}

/// tokenizers' `Pattern::find_matches`: the text tiled into (range, isMatch) pieces, gaps included.
func tile(_ text: [Unicode.Scalar], with pattern: any ScalarPattern) -> [(range: Range<Int>, isMatch: Bool)] {
    if text.isEmpty { return [(0 ..< 0, false)] }
    var out: [(range: Range<Int>, isMatch: Bool)] = []
    var previous = 0
    for m in pattern.matches(in: text) {
        if previous != m.lowerBound { out.append((previous ..< m.lowerBound, false)) }
        out.append((m, true))
        previous = m.upperBound
    }
    if previous != text.count { out.append((previous ..< text.count, false)) }
    return out
}
