import Foundation
import Testing
@testable import VLMTokenizers

/// The hand-written matchers rely on Swift's Unicode properties standing in for Oniguruma's `\s`, `\p{L}`,
/// `\p{N}` and Rust's `char::to_lowercase`; the fixture carries onig's/Rust's tables for every code point.
@Suite struct UnicodeClassTests {
    /// Code points where `predicate` and the onig table (sorted [first, last] ranges) disagree.
    static func mismatches(_ ranges: [[UInt32]], _ predicate: (Unicode.Scalar) -> Bool) -> [String] {
        var out: [String] = []
        var r = 0
        for v in UInt32(0) ... 0x10FFFF {
            guard let s = Unicode.Scalar(v) else { continue }
            while r < ranges.count && ranges[r][1] < v { r += 1 }
            let member = r < ranges.count && ranges[r][0] <= v
            if predicate(s) != member { out.append(String(v, radix: 16, uppercase: true)) }
        }
        return out
    }

    @Test func whitespaceMatchesOnig() throws {
        let ref = try Shared.reference.get()
        #expect(Self.mismatches(ref.unicode.whitespace, CharClass.isWhitespace) == [])
    }

    @Test func lettersMatchOnig() throws {
        let ref = try Shared.reference.get()
        let diff = Self.mismatches(ref.unicode.letter, CharClass.isLetter)
        #expect(diff.isEmpty, "\(diff.count) letter mismatches, first: \(diff.prefix(20))")
    }

    @Test func numbersMatchOnig() throws {
        let ref = try Shared.reference.get()
        let diff = Self.mismatches(ref.unicode.number, CharClass.isNumber)
        #expect(diff.isEmpty, "\(diff.count) number mismatches, first: \(diff.prefix(20))")
    }

    @Test func wordCharactersMatchWhitespacePreTokenizer() throws {
        let ref = try Shared.reference.get()
        let diff = Self.mismatches(ref.unicode.word, CharClass.isWord)
        #expect(diff.isEmpty, "\(diff.count) Whitespace word-char mismatches, first: \(diff.prefix(20))")
    }

    @Test func lowercaseMatchesRust() throws {
        let ref = try Shared.reference.get()
        let lower = LowercaseNormalizer()
        var diff: [String] = []
        for (key, value) in ref.unicode.lowercase {
            guard let v = UInt32(key, radix: 16), let s = Unicode.Scalar(v) else { continue }
            let expected = String(String.UnicodeScalarView(value.split(separator: " ").compactMap {
                UInt32($0, radix: 16).flatMap(Unicode.Scalar.init)
            }))
            if lower.normalize(String(s)) != expected { diff.append(key) }
        }
        // And nothing outside the table changes (the normalizer only maps scalars with this property).
        for v in UInt32(0) ... 0x10FFFF {
            guard let s = Unicode.Scalar(v), s.properties.changesWhenLowercased || (0x41 ... 0x5A).contains(v),
                  ref.unicode.lowercase[String(v, radix: 16, uppercase: true)] == nil else { continue }
            if lower.normalize(String(s)) != String(s) { diff.append(String(v, radix: 16, uppercase: true)) }
        }
        #expect(diff.isEmpty, "\(diff.count) lowercase mismatches: \(diff.sorted().prefix(30))")
    }

    @Test func icuTranslationUsesOnigWhitespace() throws {
        #expect(ICUPattern.translate(#"\s+(?!\S)|[^\s\p{L}]"#) == #"\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}]"#)
        #expect(ICUPattern.translate(#"a\\s"#) == #"a\\s"#)
    }
}
