import Foundation

/// tokenizer.json, as tokenizers' `Tokenizer::save` writes it. Stages are optional except the model.
struct TokenizerFile: Decodable {
    let addedTokens: [AddedToken]
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let model: any TokenizerModel
    let decoder: (any TokenDecoder)?
    let postProcessor: (any PostProcessor)?
    let padding: PaddingSection?

    struct PaddingSection: Decodable {
        let padID: Int?
        private enum CodingKeys: String, CodingKey { case padID = "pad_id" }
    }

    private enum CodingKeys: String, CodingKey {
        case addedTokens = "added_tokens", normalizer, preTokenizer = "pre_tokenizer", model, decoder
        case postProcessor = "post_processor", padding
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        addedTokens = try c.decodeIfPresent([AddedToken].self, forKey: .addedTokens) ?? []
        normalizer = try c.decodeIfPresent(AnyNormalizer.self, forKey: .normalizer)?.value
        preTokenizer = try c.decodeIfPresent(AnyPreTokenizer.self, forKey: .preTokenizer)?.value
        model = try c.decode(AnyModel.self, forKey: .model).value
        self.decoder = try c.decodeIfPresent(AnyTokenDecoder.self, forKey: .decoder)?.value
        postProcessor = try c.decodeIfPresent(AnyPostProcessor.self, forKey: .postProcessor)?.value
        padding = try c.decodeIfPresent(PaddingSection.self, forKey: .padding)
    }
}

public enum ModelType: String, Sendable, CaseIterable {
    case bpe = "BPE"
    case wordLevel = "WordLevel"
    case unigram = "Unigram"
}

/// The `model` object. Old files omit `type`; tokenizers then guesses from the keys (`merges` means BPE).
struct AnyModel: Decodable {
    let value: any TokenizerModel

    private enum CodingKeys: String, CodingKey {
        case type, vocab, merges, unkToken = "unk_token", continuingSubwordPrefix = "continuing_subword_prefix"
        case endOfWordSuffix = "end_of_word_suffix", fuseUnk = "fuse_unk", byteFallback = "byte_fallback"
        case ignoreMerges = "ignore_merges", dropout, unkID = "unk_id"
    }

    /// One `[piece, score]` entry of a Unigram vocabulary.
    private struct UnigramEntry: Decodable {
        let piece: String
        let score: Double

        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            piece = try c.decode(String.self)
            score = try c.decode(Double.self)
        }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let typeName = try c.decodeIfPresent(String.self, forKey: .type) ?? (c.contains(.merges) ? "BPE" : "<missing>")
        guard let type = ModelType(rawValue: typeName) else {
            throw TokenizerError.unsupportedType(file: decoder.fileName, key: decoder.keyPath + ".type", type: typeName)
        }
        if type == .unigram {
            // tokenizers' Unigram: vocab is a list of [piece, score]; unk_id and byte_fallback are optional.
            let entries = try c.decode([UnigramEntry].self, forKey: .vocab)
            value = try UnigramModel(
                vocabulary: entries.map { ($0.piece, $0.score) }, unkID: try c.decodeIfPresent(Int.self, forKey: .unkID),
                byteFallback: try c.decodeIfPresent(Bool.self, forKey: .byteFallback) ?? false, source: decoder.fileName)
            return
        }
        // The loader reads vocab/merges exactly (BulkJSON) and hands them over; decoding them here is the
        // fallback for callers that use JSONDecoder directly (canonically-equivalent keys would merge).
        let bulk = decoder.userInfo[.bulkModelData] as? BulkModelData
        let vocab: [TokenString: Int]
        if let bulkVocab = bulk?.vocab {
            vocab = Dictionary(bulkVocab, uniquingKeysWith: { _, later in later })
        } else {
            let decoded = try c.decode([String: Int].self, forKey: .vocab)
            vocab = Dictionary(decoded.map { (TokenString($0.key), $0.value) }, uniquingKeysWith: { _, later in later })
        }
        let unk = try c.decodeIfPresent(String.self, forKey: .unkToken)
        switch type {
        case .wordLevel, .unigram:
            value = WordLevelModel(vocabulary: vocab, unkToken: unk)
        case .bpe:
            value = try BPEModel(
                vocabulary: vocab, merges: try bulk?.merges ?? Self.decodeMerges(c, decoder: decoder), unkToken: unk,
                continuingSubwordPrefix: try c.decodeIfPresent(String.self, forKey: .continuingSubwordPrefix),
                endOfWordSuffix: try c.decodeIfPresent(String.self, forKey: .endOfWordSuffix),
                fuseUnk: try c.decodeIfPresent(Bool.self, forKey: .fuseUnk) ?? false,
                byteFallback: try c.decodeIfPresent(Bool.self, forKey: .byteFallback) ?? false,
                ignoreMerges: try c.decodeIfPresent(Bool.self, forKey: .ignoreMerges) ?? false,
                source: decoder.fileName)
        }
    }

    /// Merges come as `"a b"` strings (tokenizers < 0.20) or `["a", "b"]` pairs (newer); both are accepted.
    private static func decodeMerges(_ c: KeyedDecodingContainer<CodingKeys>, decoder: Decoder) throws -> [(String, String)] {
        guard c.contains(.merges) else { return [] }
        if let pairs = try? c.decode([[String]].self, forKey: .merges) {
            return try pairs.enumerated().map { index, pair in
                guard pair.count == 2 else {
                    throw TokenizerError.malformedJSON(
                        file: decoder.fileName, key: decoder.keyPath + ".merges[\(index)]", reason: "a merge pair needs 2 symbols")
                }
                return (pair[0], pair[1])
            }
        }
        let lines = try c.decode([String].self, forKey: .merges)
        return try lines.enumerated().map { index, line in
            guard let merge = splitMergeLine(Substring(line).unicodeScalars) else {
                throw TokenizerError.malformedJSON(
                    file: decoder.fileName, key: decoder.keyPath + ".merges[\(index)]", reason: "expected 'a b', got '\(line)'")
            }
            return merge
        }
    }
}

/// "a b" -> ("a", "b"); exactly one space, as tokenizers' `convert_merges_to_hashmap` requires. Split on
/// scalars: as Characters, a space followed by a combining mark would be one grapheme and not split.
func splitMergeLine(_ line: Substring.UnicodeScalarView) -> (String, String)? {
    let parts = line.split(separator: " ", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
    return (makeString(parts[0]), makeString(parts[1]))
}

/// A whole pre-token looked up in the vocabulary, else the unk token (tokenizers' WordLevel).
public struct WordLevelModel: TokenizerModel {
    public let vocabulary: [TokenString: Int]
    public let unkToken: String?
    private let idToToken: [Int: String]

    public init(vocabulary: [TokenString: Int], unkToken: String?) {
        self.vocabulary = vocabulary
        self.unkToken = unkToken
        idToToken = Dictionary(vocabulary.map { ($1, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    public var vocabularySize: Int { vocabulary.count }
    public func tokenID(for token: String) -> Int? { vocabulary[TokenString(token)] }
    public func token(for id: Int) -> String? { idToToken[id] }

    public func tokenize(_ piece: [Unicode.Scalar]) throws -> [Int] {
        if piece.isEmpty { return [] }
        if let id = vocabulary[TokenString(makeString(piece))] { return [id] }
        guard let unk = unkToken, let id = vocabulary[TokenString(unk)] else {
            throw TokenizerError.unknownTokenNotInVocabulary(token: unkToken ?? "<none>")
        }
        return [id]
    }
}
