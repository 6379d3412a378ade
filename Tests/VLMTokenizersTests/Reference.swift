import Foundation
import VLMTestSupport
@testable import VLMTokenizers

/// Tests/Fixtures/tokenizers/clip_reference.json, written by Scripts/fixtures/tokenizer_fixtures.py.
struct CLIPReference: Decodable {
    struct Case: Decodable {
        let name: String
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
        let ids_truncated: [Int]
        let ids_vocab_merges: [Int]?
        let ids_truncated_vocab_merges: [Int]?
        let ids_raw_tokenizer_json: [Int]?
        let decode: String
        let decode_skip_special: String
        let divergent_loading_paths: Bool
    }

    struct Batch: Decodable {
        let padding: String
        let layout: String
        let max_length: Int?
        let texts: [String]
        let input_ids: [[Int]]
        let attention_mask: [[Int]]
    }

    struct Decode: Decodable {
        let ids: [Int]
        let decode: String
        let decode_skip_special: String
    }

    struct UnicodeTables: Decodable {
        let whitespace: [[UInt32]]
        let letter: [[UInt32]]
        let number: [[UInt32]]
        let word: [[UInt32]]
        let lowercase: [String: String]
    }

    let cases: [Case]
    let batches: [Batch]
    let decodes: [Decode]
    let unicode: UnicodeTables
    let bos_token_id: Int
    let eos_token_id: Int
    let pad_token_id: Int
    let vocab_size: Int
    let model_max_length: Int
}

/// Fixtures loaded once per test process: the 3.6 MB tokenizer.json is parsed a single time per layout.
enum Shared {
    static let clipDirectory = Fixtures.url("tokenizers/clip")

    static let reference: Result<CLIPReference, Error> = Result {
        try Fixtures.json("tokenizers/clip_reference.json", as: CLIPReference.self)
    }

    /// CLIP loaded from tokenizer.json.
    static let fromJSON: Result<PretrainedTokenizer, Error> = Result {
        try TokenizerLoader.loadPretrained(directory: clipDirectory)
    }

    /// CLIP loaded from vocab.json + merges.txt (a temporary directory linking the fixture's files but
    /// tokenizer.json; removed once loaded).
    static let fromVocabMerges: Result<PretrainedTokenizer, Error> = Result {
        let dir = try temporaryDirectory("clip-vocab-merges")
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.createSymbolicLink(
                at: dir.appendingPathComponent(name), withDestinationURL: clipDirectory.appendingPathComponent(name))
        }
        return try TokenizerLoader.loadPretrained(directory: dir)
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let dir = TestScratch.root
            .appendingPathComponent("vlm-tokenizer-tests-\(ProcessInfo.processInfo.processIdentifier)-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
