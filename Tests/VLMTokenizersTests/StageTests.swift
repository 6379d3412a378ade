import Foundation
import Testing
import VLMTestSupport
@testable import VLMTokenizers

/// The stages CLIP does not use (Metaspace, byte fallback, templates, ByteLevel with Qwen2 / Llama-3 regexes,
/// WordPiece-style decoding, lstrip/rstrip/single_word added tokens, legacy "a b" merges), on small tokenizers
/// built by Scripts/fixtures/tokenizer_stage_fixtures.py, against the Rust tokenizers library.
@Suite struct StageTests {
    struct Reference: Decodable {
        struct Case: Decodable {
            let name: String
            let text: String
            let ids: [Int]
            let ids_no_special: [Int]
            let ids_truncated_16: [Int]
            let decode: String
            let decode_skip_special: String
        }

        let vocab_size: Int
        let cases: [Case]
    }

    static let references: Result<[String: Reference], Error> = Result {
        try Fixtures.json("tokenizers/stages_reference.json", as: [String: Reference].self)
    }

    static let names = [
        "llama_like", "mistral_like", "qwen_like", "llama3_like", "bert_like", "exact_keys", "metaspace_split", "word_level",
    ]

    @Test(arguments: names)
    func matchesTokenizers(name: String) throws {
        let reference = try #require(try Self.references.get()[name])
        let tok = try TokenizerLoader.loadPretrained(directory: Fixtures.url("tokenizers/stages/\(name)"))
        #expect(tok.vocabularySize == reference.vocab_size)
        for c in reference.cases {
            let label = "\(name)/\(c.name): \(c.text.debugDescription)"
            #expect(try tok.encode(c.text, addSpecialTokens: true) == c.ids, "\(label)")
            #expect(try tok.encode(c.text, addSpecialTokens: false) == c.ids_no_special, "\(label) no special")
            #expect(try tok.encode(c.text, maxLength: 16) == c.ids_truncated_16, "\(label) truncated")
            #expect(tok.decode(c.ids, skipSpecialTokens: false) == c.decode, "\(label) decode")
            #expect(tok.decode(c.ids, skipSpecialTokens: true) == c.decode_skip_special, "\(label) decode skip")
        }
    }

    @Test func stageTypesAreTheIntendedOnes() throws {
        let llama = try TokenizerLoader.loadPretrained(directory: Fixtures.url("tokenizers/stages/llama_like"))
        #expect(llama.postProcessor is TemplateProcessor)
        #expect((llama.model as? BPEModel)?.byteFallback == true)
        let qwen = try TokenizerLoader.loadPretrained(directory: Fixtures.url("tokenizers/stages/qwen_like"))
        let split = (qwen.preTokenizer as? SequencePreTokenizer)?.preTokenizers.first as? SplitPreTokenizer
        #expect(split?.pattern as? KnownPattern == .qwen2)
    }

    @Test func knownPatternsMatchTheRegexEngine() throws {
        // The hand-written matchers against NSRegularExpression on the same (onig-translated) source.
        let texts = try Shared.reference.get().cases.map(\.text) + [
            "  a  b\t\tc \n d ", " ", "'s's 'S 'llx '", "x  ", "  <|startoftext|>x<|endoftext|>!!<|endoftext|>",
            "\u{85}\u{b}a\u{a0} b", "١٢ ab12 ½", "a \r\n\r\n  b\n \n\tc !!\n\n", "'ſ 'S 'Ll 'rE x'VE", "12345 ١٢٣٤",
        ]
        for (known, source) in [(KnownPattern.clip, KnownPattern.clipSource), (.gpt2, KnownPattern.gpt2Source),
                                (.clipNoSpecials, KnownPattern.clipNoSpecialsSource),
                                (.llama3, KnownPattern.llama3Source), (.qwen2, KnownPattern.qwen2Source),
                                (.whitespaceRun, #"\s+"#)] {
            let icu = try ICUPattern(onigSource: source, file: "test", key: "pattern")
            for text in texts {
                let scalars = Array(text.unicodeScalars)
                #expect(known.matches(in: scalars) == icu.matches(in: scalars), "\(known) on \(text.debugDescription)")
            }
        }
    }
}
