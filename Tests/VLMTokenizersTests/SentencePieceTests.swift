import Foundation
import Testing
import VLMTestSupport
@testable import VLMTokenizers

/// SentencePiece tokenizers against Tests/Fixtures/tokenizers/sentencepiece/reference.json, written by
/// Scripts/fixtures/sentencepiece_fixtures.py from transformers 5.25 (SiglipTokenizer, Siglip2Tokenizer),
/// sentencepiece 0.2.3 (`sp.encode` / `sp.decode` on the spiece.model files) and tokenizers (unigram_json).
@Suite struct SentencePieceTests {
    struct Reference: Decodable {
        struct Case: Decodable {
            let name: String
            let text: String
            let ids: [Int]
            let ids_no_special: [Int]
            let ids_padded: [Int]?
            let attention_mask: [Int]?
            let decode: String
            let decode_skip_special: String
        }

        struct SPCase: Decodable {
            let name: String
            let text: String
            let ids: [Int]
            let pieces: [String]
            let decode: String
        }

        let kind: String
        let vocab_size: Int
        let cases: [Case]
        let sp_cases: [SPCase]
    }

    static let names = ["siglip_unigram", "siglip_bpe", "siglip2_gemma", "unigram_json"]

    /// A missing or unreadable reference fails the test (never a silent pass).
    static func reference(_ name: String) throws -> Reference {
        let all = try Fixtures.json("tokenizers/sentencepiece/reference.json", as: [String: AnyReference].self)
        guard let entry = all[name]?.value else {
            throw TokenizerError.missingFiles(directory: "sentencepiece/reference.json", expected: [name])
        }
        return entry
    }

    /// reference.json also holds a "versions" object; entries that are not references decode to nil.
    struct AnyReference: Decodable {
        let value: Reference?
        init(from decoder: Decoder) throws { value = try? Reference(from: decoder) }
    }

    static func directory(_ name: String) -> URL { Fixtures.url("tokenizers/sentencepiece/\(name)") }

    // MARK: Parity

    @Test(arguments: names)
    func matchesTransformers(name: String) throws {
        let reference = try Self.reference(name)
        #expect(reference.cases.count >= 60, "the corpus is the adversarial one")
        let tok = try TokenizerLoader.load(directory: Self.directory(name))
        #expect(tok.vocabularySize == reference.vocab_size)
        var failures = 0
        for c in reference.cases {
            let label = "\(name)/\(c.name): \(c.text.debugDescription)"
            let ids = try tok.encode(c.text, addSpecialTokens: true)
            let noSpecial = try tok.encode(c.text, addSpecialTokens: false)
            #expect(ids == c.ids, "\(label)")
            #expect(noSpecial == c.ids_no_special, "\(label) no special")
            if let padded = c.ids_padded, let mask = c.attention_mask {
                let batch = try tok.encodeBatch([c.text], maxLength: 64, padding: .maxLength(64))
                #expect(batch.inputIDs == [padded], "\(label) padded")
                #expect(batch.attentionMask == [mask], "\(label) mask")
            }
            #expect(tok.decode(c.ids, skipSpecialTokens: false) == c.decode, "\(label) decode")
            #expect(tok.decode(c.ids, skipSpecialTokens: true) == c.decode_skip_special, "\(label) decode skip")
            if ids != c.ids { failures += 1 }
        }
        #expect(failures == 0)
    }

    @Test(arguments: ["siglip_unigram", "siglip_bpe"])
    func sentencePieceEncodeDecode(name: String) throws {
        let reference = try Self.reference(name)
        #expect(!reference.sp_cases.isEmpty)
        let sp = try TokenizerLoader.loadSentencePiece(directory: Self.directory(name))
        for c in reference.sp_cases {
            let label = "\(name)/\(c.name): \(c.text.debugDescription)"
            let encoded = sp.encode(c.text)
            #expect(encoded.map(\.id) == c.ids, "\(label)")
            #expect(encoded.map { String(decoding: $0.piece, as: UTF8.self) } == c.pieces, "\(label) pieces")
            #expect(sp.decode(ids: c.ids) == c.decode, "\(label) decode")
        }
    }

    @Test func loaderPicksTheRecipes() throws {
        let unigram = try TokenizerLoader.load(directory: Self.directory("siglip_unigram"))
        #expect(unigram is SiglipTokenizer)
        #expect((unigram as? SiglipTokenizer)?.processor.model.algorithm == .unigram)
        #expect((unigram as? SiglipTokenizer)?.processor.model.byteFallback == true)
        let bpe = try TokenizerLoader.load(directory: Self.directory("siglip_bpe"))
        #expect((bpe as? SiglipTokenizer)?.processor.model.algorithm == .bpe)
        #expect((bpe as? SiglipTokenizer)?.doLowerCase == false)
        let gemma = try TokenizerLoader.loadPretrained(directory: Self.directory("siglip2_gemma"))
        #expect((gemma.normalizer as? SequenceNormalizer)?.normalizers.first is LowercaseNormalizer)
        #expect((gemma.model as? BPEModel)?.byteFallback == true)
        let json = try TokenizerLoader.loadPretrained(directory: Self.directory("unigram_json"))
        #expect(json.model is UnigramModel)
        #expect((json.normalizer as? SequenceNormalizer)?.normalizers.first is PrecompiledNormalizer)
    }

    // MARK: Bad files

    func siglipError(spiece: Data, config: String? = nil) throws -> TokenizerError? {
        let dir = try Shared.temporaryDirectory("spiece")
        defer { try? FileManager.default.removeItem(at: dir) }
        try spiece.write(to: dir.appendingPathComponent("spiece.model"))
        if let config { try Data(config.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json")) }
        do {
            _ = try TokenizerLoader.load(directory: dir)
            return nil
        } catch let error as TokenizerError {
            return error
        }
    }

    func expectMalformed(_ error: TokenizerError?, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case let .malformedModel(file, reason)? = error else {
            Issue.record("expected malformedModel, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(file == "spiece.model", sourceLocation: sourceLocation)
        #expect(reason.contains(fragment), "\(reason)", sourceLocation: sourceLocation)
        #expect(error?.description.contains("spiece.model") == true, sourceLocation: sourceLocation)
    }

    @Test func truncatedModelsFailClearly() throws {
        let good = try Data(contentsOf: Self.directory("siglip_unigram").appendingPathComponent("spiece.model"))
        // Every cut of the first 64 bytes, and a spread of cuts through the file: an error or (for cuts that
        // land on a field boundary) a smaller valid model — never a crash.
        var cuts = Array(0 ..< 64)
        cuts += stride(from: 64, to: good.count, by: max(1, good.count / 200))
        var errors = 0
        for cut in cuts {
            let error = try siglipError(spiece: good.prefix(cut))
            if error != nil { errors += 1 }
            if cut == 0 { expectMalformed(error, "empty") }
        }
        #expect(errors > cuts.count / 2)
        expectMalformed(try siglipError(spiece: good.prefix(good.count - 3)), "truncated")
    }

    @Test func garbageModelsFailClearly() throws {
        expectMalformed(try siglipError(spiece: Data("not a model at all, just text".utf8)), "wire type")
        expectMalformed(try siglipError(spiece: Data([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])), "claims")
        expectMalformed(try siglipError(spiece: Data([0x0B, 0x00])), "wire type")
        expectMalformed(try siglipError(spiece: Data([0x08] + [UInt8](repeating: 0xFF, count: 12))), "varint")
        // A valid message with no pieces, and one with a piece but no <unk>.
        expectMalformed(try siglipError(spiece: Data([0x12, 0x00])), "no pieces")
        expectMalformed(try siglipError(spiece: Data([0x0A, 0x03, 0x0A, 0x01, 0x61])), "unknown piece")
        // A duplicate piece, and a byte piece without byte_fallback.
        let unk: [UInt8] = [0x0A, 0x09, 0x0A, 0x05] + Array("<unk>".utf8) + [0x18, 0x02]
        expectMalformed(try siglipError(spiece: Data(unk + [0x0A, 0x03, 0x0A, 0x01, 0x61, 0x0A, 0x03, 0x0A, 0x01, 0x61])), "already defined")
        let byte: [UInt8] = [0x0A, 0x0A, 0x0A, 0x06] + Array("<0x41>".utf8) + [0x18, 0x06]
        expectMalformed(try siglipError(spiece: Data(unk + byte)), "byte_fallback")
        // Random bytes: bounded, never a crash.
        var rng = SystemRandomNumberGenerator()
        for _ in 0 ..< 200 {
            let bytes = (0 ..< Int.random(in: 1 ..< 300, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            _ = try siglipError(spiece: Data(bytes))
        }
    }

    @Test func unknownClassNamesTheSupportedOnes() throws {
        let good = try Data(contentsOf: Self.directory("siglip_bpe").appendingPathComponent("spiece.model"))
        let error = try siglipError(spiece: good, config: #"{"tokenizer_class": "T5Tokenizer"}"#)
        #expect(error == .unsupportedTokenizerClass(file: "tokenizer_config.json", className: "T5Tokenizer"))
        #expect(error?.description.contains("SiglipTokenizer") == true)
    }

    @Test func precompiledCharsmapRejectsBadBlobs() {
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(blob: [1, 0, 0], file: "f", key: "k") }
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(blob: [0xFF, 0xFF, 0, 0, 1, 2], file: "f", key: "k") }
        #expect(throws: TokenizerError.self) { try PrecompiledCharsmap(blob: [8, 0, 0, 0] + [UInt8](repeating: 0, count: 12), file: "f", key: "k") }
    }
}
