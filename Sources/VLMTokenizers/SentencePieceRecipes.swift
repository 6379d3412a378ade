import Foundation

// MARK: - spiece.model (SigLIP)

extension TokenizerLoader {
    static let spieceModel = "spiece.model"
    static let clipClasses = ["CLIPTokenizer", "CLIPTokenizerFast"]
    static let sentencePieceClasses = ["SiglipTokenizer"]
    static let gemmaClasses = ["GemmaTokenizer", "GemmaTokenizerFast", "Siglip2Tokenizer"]

    /// True when `directory` has spiece.model and no tokenizer.json: the SigLIP layout.
    static func isSentencePieceDirectory(_ directory: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: directory.appendingPathComponent(spieceModel).path)
            && !fm.fileExists(atPath: directory.appendingPathComponent(tokenizerJSON).path)
    }

    /// A parsed spiece.model from `directory`.
    public static func loadSentencePiece(directory: URL) throws -> SentencePieceProcessor {
        let url = directory.appendingPathComponent(spieceModel)
        let model = try SentencePieceModelFile(data: try readFile(url), fileName: spieceModel)
        return try SentencePieceProcessor(model: model, fileName: spieceModel)
    }

    /// spiece.model + tokenizer_config.json: the tokenizer_class picks the recipe (SiglipTokenizer when the
    /// config does not name one); the others are refused by name.
    public static func loadSiglip(directory: URL) throws -> SiglipTokenizer {
        let config = try readConfig(directory)
        let className = config?.tokenizerClass ?? "SiglipTokenizer"
        guard sentencePieceClasses.contains(className) else {
            throw TokenizerError.unsupportedTokenizerClass(file: configJSON, className: className)
        }
        let specials = try namedSpecialTokens(directory, config: config)
        return SiglipTokenizer(
            processor: try loadSentencePiece(directory: directory), config: config, specials: specials,
            doLowerCase: config?.doLowerCase ?? true)
    }
}

// MARK: - Gemma / SigLIP2 tokenizer.json

/// transformers 5.25's GemmaTokenizer and Siglip2Tokenizer (models/gemma/tokenization_gemma.py,
/// models/siglip2/tokenization_siglip2.py): they keep tokenizer.json's vocabulary, merges, added tokens and
/// post-processor but rebuild the rest — BPE with fuse_unk and byte_fallback, normalizer Replace(" ", "▁"),
/// pre-tokenizer Split(" ", merged_with_previous), decoder Replace("▁", " ") + ByteFallback + Fuse (no Strip).
/// Siglip2Tokenizer puts Lowercase in front of the normalizer. An explicit add_bos_token / add_eos_token in the
/// config replaces the post-processor with `[bos] $A [eos]` (TokenizersBackend.update_post_processor). Both classes
/// pad on the left unless the config's padding_side says otherwise.
enum GemmaRecipe {
    static func build(file: TokenizerFile, config: TokenizerConfig, specials named: SpecialTokens, className: String) throws
        -> PretrainedTokenizer
    {
        guard let bpe = file.model as? BPEModel else {
            throw TokenizerError.invalidValue(
                file: TokenizerLoader.tokenizerJSON, key: "model.type", reason: "\(className) needs a BPE model")
        }
        var specials = named
        if specials.unk == nil { specials.unk = SpecialTokenValue(content: "<unk>") }
        if specials.bos == nil { specials.bos = SpecialTokenValue(content: "<bos>") }
        if specials.eos == nil { specials.eos = SpecialTokenValue(content: "<eos>") }
        if specials.pad == nil { specials.pad = SpecialTokenValue(content: "<pad>") }
        if specials.mask == nil { specials.mask = SpecialTokenValue(content: "<mask>") }
        let model = BPEModel(reconfiguring: bpe, unkToken: specials.unk?.content, fuseUnk: true, byteFallback: true)
        var normalizer: any Normalizer = ReplaceNormalizer(pattern: LiteralPattern(literal: [" "]), content: "\u{2581}")
        if className == "Siglip2Tokenizer" { normalizer = SequenceNormalizer([LowercaseNormalizer(), normalizer]) }
        let preTokenizer = SplitPreTokenizer(pattern: LiteralPattern(literal: [" "]), behavior: .mergedWithPrevious, invert: false)
        let decoder = SequenceDecoder([ReplaceDecoder(literal: "\u{2581}", content: " "), ByteFallbackDecoder(), FuseDecoder()])
        // Added tokens: the file's, then each named special token not yet there (TokenizersBackend.__init__).
        var added = file.addedTokens
        var nextID = max(model.vocabularySize, (added.map(\.id).max() ?? -1) + 1)
        for value in specials.ordered where !added.contains(where: { $0.content == value.content }) {
            let id: Int
            if let known = model.tokenID(for: value.content) { id = known } else { id = nextID; nextID += 1 }
            added.append(AddedToken(id: id, content: value.content, singleWord: value.singleWord, lstrip: value.lstrip,
                                    rstrip: value.rstrip, normalized: value.normalized ?? false, special: true))
        }
        func id(_ value: SpecialTokenValue?) -> Int? {
            guard let content = value?.content else { return nil }
            return added.first { $0.content == content }?.id ?? model.tokenID(for: content)
        }
        var post = file.postProcessor
        if config.addBosToken != nil || config.addEosToken != nil || post == nil {
            var pieces: [TemplateProcessor.Piece] = []
            if config.addBosToken == true, let bos = id(specials.bos) { pieces.append(.special([bos])) }
            pieces.append(.sequence)
            if config.addEosToken == true, let eos = id(specials.eos) { pieces.append(.special([eos])) }
            post = TemplateProcessor(single: pieces)
        }
        return PretrainedTokenizer(
            addedTokens: added, normalizer: normalizer, preTokenizer: preTokenizer, model: model, decoder: decoder,
            postProcessor: post, bosTokenID: id(specials.bos), eosTokenID: id(specials.eos), padTokenID: id(specials.pad),
            paddingSide: config.paddingSide ?? .left)  // both classes set padding_side = "left"
    }
}
