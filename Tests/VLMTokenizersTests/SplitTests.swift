import Foundation
import Testing
@testable import VLMTokenizers

/// Split behaviors, inversion and empty regex matches, with expectations printed by tokenizers 0.23
/// (`pre_tokenizers.Split(Regex(p), behavior=b, invert=i).pre_tokenize_str(s)`).
@Suite struct SplitTests {
    func pieces(_ pattern: String, _ behavior: SplitBehavior, invert: Bool = false, _ text: String) throws -> [String] {
        let compiled = try PatternSpec.regex(pattern).compile(file: "test", key: "pattern")
        let split = SplitPreTokenizer(pattern: compiled, behavior: behavior, invert: invert)
        return split.preTokenize([PreToken(Array(text.unicodeScalars), atOrigin: true)]).map(\.string)
    }

    @Test func emptyMatches() throws {
        #expect(try pieces("x*", .isolated, "abxxc") == ["a", "b", "xx", "c"])
        #expect(try pieces("x*", .removed, "abxxc") == ["a", "b", "c"])
        #expect(try pieces("x*", .mergedWithPrevious, "abxxc") == ["a", "bxx", "c"])
        #expect(try pieces("x*", .mergedWithNext, "abxxc") == ["a", "b", "xxc"])
        #expect(try pieces("x*", .contiguous, "abxxc") == ["a", "b", "xx", "c"])
        let replace = ReplaceNormalizer(
            pattern: try PatternSpec.regex("x*").compile(file: "test", key: "pattern"), content: "-")
        #expect(replace.normalize("abxxc") == "-a-b-c-")
    }

    @Test func invertedBehaviors() throws {
        #expect(try pieces("b|x", .isolated, invert: true, "abxxcx") == ["a", "b", "x", "x", "c", "x"])
        #expect(try pieces("b|x", .removed, invert: true, "abxxcx") == ["b", "x", "x", "x"])
        #expect(try pieces("b|x", .mergedWithPrevious, invert: true, "abxxcx") == ["a", "b", "x", "xc", "x"])
        #expect(try pieces("b|x", .mergedWithNext, invert: true, "abxxcx") == ["ab", "x", "x", "cx"])
        #expect(try pieces("b|x", .contiguous, invert: true, "abxxcx") == ["a", "bxx", "c", "x"])
    }
}
