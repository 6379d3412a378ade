import Foundation

/// The tokenizers pipeline: added tokens -> normalizer -> pre-tokenizer -> model -> post-processor, and
/// the decoder back. Built from tokenizer.json or from vocab.json + merges.txt by `TokenizerLoader`.
public struct PretrainedTokenizer: Tokenizer {
    let addedVocabulary: AddedVocabulary
    public let normalizer: (any Normalizer)?
    public let preTokenizer: (any PreTokenizer)?
    public let model: any TokenizerModel
    public let decoder: (any TokenDecoder)?
    public let postProcessor: (any PostProcessor)?
    public let bosTokenID: Int?
    public let eosTokenID: Int?
    public let padTokenID: Int?
    public let vocabularySize: Int
    /// transformers' CLIPTokenizer wraps the backend decode: the end-of-word suffix becomes " " and the text is
    /// `str.strip()`ped (tokenization_clip.py `_wrap_decode_method_backend_tokenizer`). nil elsewhere.
    let decodeSuffixToSpace: String?
    public let paddingSide: PaddingSide

    public init(
        addedTokens: [AddedToken], normalizer: (any Normalizer)?, preTokenizer: (any PreTokenizer)?,
        model: any TokenizerModel, decoder: (any TokenDecoder)?, postProcessor: (any PostProcessor)?,
        bosTokenID: Int?, eosTokenID: Int?, padTokenID: Int?, decodeSuffixToSpace: String? = nil,
        paddingSide: PaddingSide = .right
    ) {
        self.paddingSide = paddingSide
        addedVocabulary = AddedVocabulary(tokens: addedTokens, normalizer: normalizer)
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.decoder = decoder
        self.postProcessor = postProcessor
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
        self.decodeSuffixToSpace = decodeSuffixToSpace
        let extra = Set(addedTokens.filter { model.tokenID(for: $0.content) == nil }.map(\.content)).count
        vocabularySize = model.vocabularySize + extra
    }

    public var addedTokens: [AddedToken] { addedVocabulary.tokens }

    public func tokenID(for token: String) -> Int? {
        addedVocabulary.byContent[TokenString(token)]?.id ?? model.tokenID(for: token)
    }

    public func token(for id: Int) -> String? { addedVocabulary.byID[id]?.content ?? model.token(for: id) }

    public func postProcess(_ ids: [Int]) -> [Int] { postProcessor?.process(ids) ?? ids }
    public var specialTokenCount: Int { postProcessor?.addedTokenCount ?? 0 }

    /// tokenizers' `encode_single_sequence`: raw-text added tokens first, then each remaining piece is
    /// normalized, split on normalized added tokens, pre-tokenized and run through the model.
    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        var ids: [Int] = []
        let scalars = Array(text.unicodeScalars)
        for (id, range) in addedVocabulary.split(scalars, normalized: false) {
            if let id { ids.append(id); continue }
            var segment = makeString(scalars[range])
            if let normalizer { segment = normalizer.normalize(segment) }
            let normalized = Array(segment.unicodeScalars)
            for (nid, nrange) in addedVocabulary.split(normalized, normalized: true) {
                if let nid { ids.append(nid); continue }
                // tokenizers' PreTokenizedString::split drops empty pieces: "" never reaches the pre-tokenizer
                // (so Metaspace does not turn it into "▁").
                if nrange.isEmpty { continue }
                let piece = PreToken(Array(normalized[nrange]), atOrigin: range.lowerBound == 0 && nrange.lowerBound == 0)
                for p in preTokenizer?.preTokenize([piece]) ?? [piece] {
                    ids += try model.tokenize(p.scalars)
                }
            }
        }
        return addSpecialTokens ? postProcess(ids) : ids
    }

    /// tokenizers' `Tokenizer::decode`: ids to tokens (added vocabulary first, unknown ids dropped, special
    /// tokens filtered by content when asked), then the decoder chain, joined.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let token = addedVocabulary.byID[id]?.content ?? model.token(for: id) else { continue }
            if skipSpecialTokens, addedVocabulary.byContent[TokenString(token)]?.special == true { continue }
            tokens.append(token)
        }
        var text = decoder.map { $0.decodeChain(tokens).joined() } ?? tokens.joined(separator: " ")
        if let suffix = decodeSuffixToSpace, !suffix.isEmpty {
            text = pythonStrip(text.replacingScalars(suffix, with: " "))
        }
        return text
    }
}

/// Python's `str.strip()` with no argument: removes chars for which `str.isspace()` is true, i.e. Unicode
/// White_Space plus U+001C...U+001F (bidi class B/S), which differ from Swift's notion of whitespace.
func pythonStrip(_ text: String) -> String {
    func isSpace(_ s: Unicode.Scalar) -> Bool { (0x1C ... 0x1F).contains(s.value) || s.properties.isWhitespace }
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isSpace($0) }),
          let last = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
    return String(scalars[first ... last])
}
