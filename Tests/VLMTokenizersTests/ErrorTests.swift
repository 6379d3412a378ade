import Foundation
import Testing
@testable import VLMTokenizers

/// Bad checkpoints fail with a TokenizerError naming the file and key, never a crash.
@Suite struct ErrorTests {
    /// A directory holding `files` (name -> contents).
    func directory(_ files: [String: String]) throws -> URL {
        let dir = try Shared.temporaryDirectory("errors")
        for (name, contents) in files {
            try Data(contents.utf8).write(to: dir.appendingPathComponent(name))
        }
        return dir
    }

    func loadError(_ files: [String: String]) throws -> TokenizerError? {
        let dir = try directory(files)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try TokenizerLoader.load(directory: dir)
            return nil
        } catch let error as TokenizerError {
            return error
        }
    }

    static let minimalModel = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    @Test func missingFiles() throws {
        let error = try loadError([:])
        guard case let .missingFiles(_, expected)? = error else {
            Issue.record("expected missingFiles, got \(String(describing: error))")
            return
        }
        #expect(expected.contains("tokenizer.json"))
        // vocab.json alone is not enough either.
        let partial = try loadError(["vocab.json": "{}"])
        #expect({ if case .missingFiles? = partial { return true } else { return false } }())
    }

    @Test func malformedJSONNamesFile() throws {
        let error = try loadError(["tokenizer.json": "{ \"model\": "])
        guard case let .malformedJSON(file, _, _)? = error else {
            Issue.record("expected malformedJSON, got \(String(describing: error))")
            return
        }
        #expect(file == "tokenizer.json")
        #expect(error?.description.contains("tokenizer.json") == true)
    }

    @Test func wrongTypeNamesKey() throws {
        let error = try loadError(["tokenizer.json": #"{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"#])
        guard case let .malformedJSON(file, key, _)? = error else {
            Issue.record("expected malformedJSON, got \(String(describing: error))")
            return
        }
        #expect(file == "tokenizer.json")
        #expect(key.hasPrefix("model.vocab"))
    }

    @Test func missingModel() throws {
        let error = try loadError(["tokenizer.json": #"{"normalizer": null}"#])
        #expect(error == .malformedJSON(file: "tokenizer.json", key: "model", reason: "missing key 'model'"))
    }

    @Test func unknownPreTokenizerType() throws {
        let json = #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "FancySplit"}]}, "#
            + Self.minimalModel + "}"
        let error = try loadError(["tokenizer.json": json])
        #expect(error == .unsupportedType(file: "tokenizer.json", key: "pre_tokenizer.pretokenizers[1].type", type: "FancySplit"))
        #expect(error?.description.contains("FancySplit") == true)
    }

    @Test func unknownNormalizerModelDecoderPostProcessor() throws {
        let normalizer = try loadError(["tokenizer.json": #"{"normalizer": {"type": "Nmt"}, "# + Self.minimalModel + "}"])
        #expect(normalizer == .unsupportedType(file: "tokenizer.json", key: "normalizer.type", type: "Nmt"))
        let model = try loadError(["tokenizer.json": #"{"model": {"type": "WordPiece", "vocab": {}}}"#])
        #expect(model == .unsupportedType(file: "tokenizer.json", key: "model.type", type: "WordPiece"))
        let decoder = try loadError(["tokenizer.json": #"{"decoder": {"type": "CTC"}, "# + Self.minimalModel + "}"])
        #expect(decoder == .unsupportedType(file: "tokenizer.json", key: "decoder.type", type: "CTC"))
        let post = try loadError(["tokenizer.json": #"{"post_processor": {"type": "Magic"}, "# + Self.minimalModel + "}"])
        #expect(post == .unsupportedType(file: "tokenizer.json", key: "post_processor.type", type: "Magic"))
    }

    @Test func mergeOutsideVocabulary() throws {
        let json = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#
        let error = try loadError(["tokenizer.json": json])
        guard case let .invalidValue(file, key, reason)? = error else {
            Issue.record("expected invalidValue, got \(String(describing: error))")
            return
        }
        #expect(file == "tokenizer.json" && key == "model.merges[0]" && reason.contains("ab"))
    }

    @Test func badRegex() throws {
        let json = #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}, "#
            + Self.minimalModel + "}"
        let error = try loadError(["tokenizer.json": json])
        guard case let .invalidValue(file, key, _)? = error else {
            Issue.record("expected invalidValue, got \(String(describing: error))")
            return
        }
        #expect(file == "tokenizer.json" && key == "pre_tokenizer.pattern")
    }

    @Test func malformedMergesTxt() throws {
        let error = try loadError(["vocab.json": #"{"a": 0, "b": 1, "ab": 2}"#, "merges.txt": "#version: 0.2\na b\nabc\n"])
        #expect(error == .malformedMerges(file: "merges.txt", line: 3, content: "abc"))
    }

    @Test func malformedVocabAndConfig() throws {
        let vocab = try loadError(["vocab.json": "[1, 2]", "merges.txt": ""])
        guard case let .malformedJSON(file, _, _)? = vocab else {
            Issue.record("expected malformedJSON, got \(String(describing: vocab))")
            return
        }
        #expect(file == "vocab.json")
        let config = try loadError(["tokenizer_config.json": #"{"model_max_length": "long"}"#, "tokenizer.json": "{}"])
        guard case let .malformedJSON(configFile, key, _)? = config else {
            Issue.record("expected malformedJSON, got \(String(describing: config))")
            return
        }
        #expect(configFile == "tokenizer_config.json" && key == "model_max_length")
        let unsupported = try loadError([
            "vocab.json": "{}", "merges.txt": "", "tokenizer_config.json": #"{"tokenizer_class": "LlamaTokenizer"}"#,
        ])
        #expect(unsupported == .unsupportedTokenizerClass(file: "tokenizer_config.json", className: "LlamaTokenizer"))
    }

    @Test func paddingWithoutPadToken() throws {
        let dir = try directory(["tokenizer.json": "{" + Self.minimalModel + "}"])
        defer { try? FileManager.default.removeItem(at: dir) }
        let tok = try TokenizerLoader.load(directory: dir)
        #expect(tok.padTokenID == nil)
        #expect(throws: TokenizerError.missingPadToken) { try tok.encodeBatch(["ab", "a"], maxLength: nil, padding: .longest) }
        #expect(try tok.encodeBatch(["ab", "a"], maxLength: nil, padding: .none).inputIDs == [[2], [0]])
    }

    @Test func modelMaxLengthEdgeCases() throws {
        let empty = try directory([:])
        let huge = try directory(["tokenizer_config.json": #"{"model_max_length": 1000000000000000019884624838656}"#])
        #expect(TokenizerLoader.modelMaxLength(directory: huge) == nil)
        let broken = try directory(["tokenizer_config.json": "not json"])
        defer { for dir in [empty, huge, broken] { try? FileManager.default.removeItem(at: dir) } }
        #expect(TokenizerLoader.modelMaxLength(directory: empty) == nil)
        #expect(TokenizerLoader.modelMaxLength(directory: broken) == nil)
    }
}
