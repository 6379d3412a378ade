import Foundation

// VLMTokenizers mirrors the stages of a Hugging Face tokenizer.json (tokenizers' Tokenizer):
//   added tokens (AddedTokens.swift) -> Normalizer (Normalizers.swift) -> PreTokenizer (PreTokenizers.swift,
//   Patterns.swift, ByteLevel.swift) -> TokenizerModel (BPE.swift; WordLevel in TokenizerFile.swift)
//   -> PostProcessor (PostProcessors.swift); decoding through TokenDecoder (Decoders.swift).
// PretrainedTokenizer runs the pipeline; TokenizerLoader builds it from tokenizer.json (TokenizerFile.swift,
// BulkJSON.swift for the vocabulary; Unigram.swift and PrecompiledCharsmap.swift for SentencePiece conversions;
// GemmaRecipe in SentencePieceRecipes.swift for Gemma/SigLIP2) or from vocab.json + merges.txt (CLIPRecipe), with
// tokenizer_config.json / special_tokens_map.json (TokenizerConfig.swift). spiece.model without tokenizer.json is
// transformers' SiglipTokenizer (SiglipTokenizer.swift) over a sentencepiece port (SentencePieceModelFile.swift,
// SentencePieceProcessor.swift, SentencePieceBPE.swift, sentencepiece 0.2.3). Every stage reproduces tokenizers 0.23 / transformers 5
// exactly; the references are Tests/Fixtures/tokenizers/*_reference.json (Scripts/fixtures/tokenizer_*.py).

/// Text <-> token ids, bit-identical to Hugging Face transformers' tokenizer for the same files.
public protocol Tokenizer: Sendable {
    /// Ids for `text`; with `addSpecialTokens` the post-processor's tokens are added (CLIP: BOS ... EOS).
    func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int]
    /// Text for `ids`; unknown ids are skipped, like tokenizers' `decode`.
    func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String
    var bosTokenID: Int? { get }
    var eosTokenID: Int? { get }
    var padTokenID: Int? { get }
    /// Model vocabulary plus added tokens (transformers' `len(tokenizer)`).
    var vocabularySize: Int { get }
    func tokenID(for token: String) -> Int?
    /// The vocabulary string of `id` (added tokens first), nil for unknown ids.
    func token(for id: Int) -> String?

    /// The post-processor applied to model ids (identity for tokenizers without one).
    func postProcess(_ ids: [Int]) -> [Int]
    /// How many ids `postProcess` adds; truncation reserves room for them.
    var specialTokenCount: Int { get }
    /// Where `encodeBatch` puts padding (transformers' `padding_side`; GemmaTokenizer/Siglip2Tokenizer: left).
    var paddingSide: PaddingSide { get }
}

/// transformers' `padding_side`.
public enum PaddingSide: String, Sendable, Equatable {
    case left, right
}

extension Tokenizer {
    public var paddingSide: PaddingSide { .right }
    public func token(for id: Int) -> String? { nil }
    public func postProcess(_ ids: [Int]) -> [Int] { ids }
    public var specialTokenCount: Int { 0 }
}

/// A padded batch. Rows are padded with the pad id on the tokenizer's `paddingSide` (right unless the tokenizer
/// says left); the mask is 1 on real tokens, 0 on padding.
public struct EncodedBatch: Sendable, Equatable {
    public let inputIDs: [[Int]]
    public let attentionMask: [[Int]]

    public init(inputIDs: [[Int]], attentionMask: [[Int]]) {
        self.inputIDs = inputIDs
        self.attentionMask = attentionMask
    }
}

public enum Padding: Sendable, Equatable {
    /// Rows keep their own lengths.
    case none
    /// Pad to the longest row of the batch (transformers' `padding="longest"`).
    case longest
    /// Pad every row to this length (`padding="max_length"`); longer rows are not cut (truncation does that).
    case maxLength(Int)
}

extension Tokenizer {
    /// Truncation keeps the post-processor's special tokens (CLIP: BOS ... EOS at 77 max), as transformers'
    /// `truncation=True, max_length=n` does: the model ids are cut to `n - specialTokenCount`, from the right.
    public func encode(_ text: String, maxLength: Int?) throws -> [Int] {
        let ids = try encode(text, addSpecialTokens: false)
        guard let maxLength else { return postProcess(ids) }
        let budget = max(0, maxLength - specialTokenCount)
        return postProcess(ids.count > budget ? Array(ids.prefix(budget)) : ids)
    }

    /// Encodes with special tokens, truncates to `maxLength` (if given) and pads per `padding` on `paddingSide`.
    public func encodeBatch(_ texts: [String], maxLength: Int?, padding: Padding) throws -> EncodedBatch {
        let rows = try texts.map { try encode($0, maxLength: maxLength) }
        let target: Int
        switch padding {
        case .none:
            return EncodedBatch(inputIDs: rows, attentionMask: rows.map { Array(repeating: 1, count: $0.count) })
        case .longest:
            target = rows.map(\.count).max() ?? 0
        case let .maxLength(length):
            target = length
        }
        guard let pad = padTokenID else { throw TokenizerError.missingPadToken }
        var ids: [[Int]] = []
        var mask: [[Int]] = []
        ids.reserveCapacity(rows.count)
        mask.reserveCapacity(rows.count)
        for row in rows {
            let missing = max(0, target - row.count)
            let padding = Array(repeating: pad, count: missing)
            let ones = Array(repeating: 1, count: row.count), zeros = Array(repeating: 0, count: missing)
            if paddingSide == .left {
                ids.append(padding + row)
                mask.append(zeros + ones)
            } else {
                ids.append(row + padding)
                mask.append(ones + zeros)
            }
        }
        return EncodedBatch(inputIDs: ids, attentionMask: mask)
    }
}
