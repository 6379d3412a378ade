import Foundation

public enum TokenizerLoader {
    static let tokenizerJSON = "tokenizer.json"
    static let vocabJSON = "vocab.json"
    static let mergesTXT = "merges.txt"
    static let configJSON = "tokenizer_config.json"
    static let specialTokensMapJSON = "special_tokens_map.json"

    /// tokenizer.json if present, else spiece.model (transformers' SiglipTokenizer, SentencePieceRecipes.swift),
    /// else vocab.json + merges.txt (built into the same pipeline transformers' CLIPTokenizer builds), reading
    /// tokenizer_config.json / special_tokens_map.json for special tokens and model_max_length.
    public static func load(directory: URL) throws -> any Tokenizer {
        if isSentencePieceDirectory(directory) { return try loadSiglip(directory: directory) }
        return try loadPretrained(directory: directory)
    }

    /// `load`, returning the concrete pipeline (stages inspectable).
    public static func loadPretrained(directory: URL) throws -> PretrainedTokenizer {
        let config = try readConfig(directory)
        let specials = try namedSpecialTokens(directory, config: config)
        let jsonURL = directory.appendingPathComponent(tokenizerJSON)
        if FileManager.default.fileExists(atPath: jsonURL.path) {
            let (data, bulk) = BulkJSON.extractModel(from: try readFile(jsonURL), fileName: tokenizerJSON)
            let file = try decodeJSON(
                TokenizerFile.self, from: data, fileName: tokenizerJSON, userInfo: bulk.map { [.bulkModelData: $0] } ?? [:])
            if let config, let className = config.tokenizerClass, gemmaClasses.contains(className) {
                return try GemmaRecipe.build(file: file, config: config, specials: specials, className: className)
            }
            return fromTokenizerFile(file, config: config, specials: specials)
        }
        let vocabURL = directory.appendingPathComponent(vocabJSON)
        let mergesURL = directory.appendingPathComponent(mergesTXT)
        guard FileManager.default.fileExists(atPath: vocabURL.path), FileManager.default.fileExists(atPath: mergesURL.path)
        else {
            throw TokenizerError.missingFiles(
                directory: directory.path, expected: [tokenizerJSON, spieceModel, "\(vocabJSON) + \(mergesTXT)"])
        }
        let className = config?.tokenizerClass ?? "CLIPTokenizer"
        guard clipClasses.contains(className) else {
            throw TokenizerError.unsupportedTokenizerClass(file: configJSON, className: className)
        }
        var scanner = JSONScanner([UInt8](try readFile(vocabURL)), fileName: vocabJSON)
        let vocab = Dictionary(try scanner.vocabulary("<root>"), uniquingKeysWith: { _, later in later })
        let merges = try parseMerges(try readFile(mergesURL), fileName: mergesTXT)
        return try CLIPRecipe.build(vocab: vocab, merges: merges, config: config ?? TokenizerConfig(), specials: specials)
    }

    /// model_max_length from tokenizer_config.json (CLIP: 77); nil when absent or "unlimited" (1e30).
    public static func modelMaxLength(directory: URL) -> Int? {
        (try? readConfig(directory))??.maxLength
    }

    static func readConfig(_ directory: URL) throws -> TokenizerConfig? {
        let url = directory.appendingPathComponent(configJSON)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try decodeJSON(TokenizerConfig.self, from: try readFile(url), fileName: configJSON)
    }

    /// transformers reads special_tokens_map.json only when the config has no `added_tokens_decoder`, and then
    /// lets its values override the config's.
    static func namedSpecialTokens(_ directory: URL, config: TokenizerConfig?) throws -> SpecialTokens {
        let base = config?.specialTokens ?? SpecialTokens()
        guard config?.addedTokensDecoder == nil else { return base }
        let url = directory.appendingPathComponent(specialTokensMapJSON)
        guard FileManager.default.fileExists(atPath: url.path) else { return base }
        let map = try decodeJSON(SpecialTokens.self, from: try readFile(url), fileName: specialTokensMapJSON)
        return base.overridden(by: map)
    }

    /// merges.txt: an optional `#version` header, then one "a b" merge per line, rank = line order.
    static func parseMerges(_ data: Data, fileName: String) throws -> [(String, String)] {
        // On bytes: as Characters "\r\n" is one grapheme (it would not split on "\n") and a space followed
        // by a combining mark would not split on " ". '\n', '\r' and ' ' never occur inside a UTF-8 sequence.
        let bytes = [UInt8](data)
        var merges: [(String, String)] = []
        merges.reserveCapacity(bytes.count / 10)
        var lineStart = 0
        var lineNumber = 0
        while lineStart < bytes.count {
            lineNumber += 1
            var end = lineStart
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let next = end + 1
            if end > lineStart && bytes[end - 1] == 0x0D { end -= 1 }
            let line = bytes[lineStart ..< end]
            lineStart = next
            if line.isEmpty || (lineNumber == 1 && line.starts(with: Array("#version".utf8))) { continue }
            let spaces = line.indices.filter { line[$0] == 0x20 }
            guard spaces.count == 1, let space = spaces.first, space > line.startIndex, space < line.endIndex - 1 else {
                throw TokenizerError.malformedMerges(
                    file: fileName, line: lineNumber, content: String(decoding: line, as: UTF8.self))
            }
            merges.append((String(decoding: line[..<space], as: UTF8.self),
                           String(decoding: line[(space + 1)...], as: UTF8.self)))
        }
        return merges
    }

    static func fromTokenizerFile(_ file: TokenizerFile, config: TokenizerConfig?, specials: SpecialTokens) -> PretrainedTokenizer {
        let added = file.addedTokens
        func id(_ value: SpecialTokenValue?) -> Int? {
            guard let content = value?.content else { return nil }
            return added.first { $0.content == content }?.id ?? file.model.tokenID(for: content)
        }
        // Without a config, RobertaProcessing's cls/sep are the BOS/EOS (CLIP, RoBERTa).
        let clsSep = file.postProcessor as? ClsSepProcessor
        let bos = id(specials.bos) ?? (config == nil ? clsSep?.cls.id : nil)
        let eos = id(specials.eos) ?? (config == nil ? clsSep?.sep.id : nil)
        let pad = id(specials.pad) ?? file.padding?.padID
        let bpe = file.model as? BPEModel
        let isCLIP = config?.tokenizerClass.map { $0.hasPrefix("CLIPTokenizer") }
            ?? (bpe?.endOfWordSuffix?.isEmpty == false && file.decoder is ByteLevelDecoder)
        return PretrainedTokenizer(
            addedTokens: added, normalizer: file.normalizer, preTokenizer: file.preTokenizer, model: file.model,
            decoder: file.decoder, postProcessor: file.postProcessor, bosTokenID: bos, eosTokenID: eos, padTokenID: pad,
            decodeSuffixToSpace: isCLIP ? bpe?.endOfWordSuffix : nil)
    }
}

/// transformers' CLIPTokenizer.__init__ (tokenization_clip.py), which is what it builds from vocab.json +
/// merges.txt — and, in transformers 5, even when tokenizer.json exists.
enum CLIPRecipe {
    static func build(vocab: [TokenString: Int], merges: [(String, String)], config: TokenizerConfig,
                      specials named: SpecialTokens) throws -> PretrainedTokenizer {
        var specials = named
        // CLIPTokenizer's defaults: unk = eos = pad = "<|endoftext|>", bos = "<|startoftext|>".
        if specials.bos == nil { specials.bos = SpecialTokenValue(content: "<|startoftext|>") }
        if specials.eos == nil { specials.eos = SpecialTokenValue(content: "<|endoftext|>") }
        if specials.unk == nil { specials.unk = SpecialTokenValue(content: "<|endoftext|>") }
        if specials.pad == nil { specials.pad = SpecialTokenValue(content: "<|endoftext|>") }
        let unkToken = specials.unk?.content ?? "<|endoftext|>"
        let model = try BPEModel(
            vocabulary: vocab, merges: merges, unkToken: unkToken, continuingSubwordPrefix: "",
            endOfWordSuffix: "</w>", fuseUnk: false, source: TokenizerLoader.mergesTXT)
        let normalizer = SequenceNormalizer([
            UnicodeNormalizer(form: .nfc), ReplaceNormalizer(pattern: KnownPattern.whitespaceRun, content: " "),
            LowercaseNormalizer(),
        ])
        let preTokenizer = SequencePreTokenizer([
            SplitPreTokenizer(pattern: KnownPattern.clip, behavior: .removed, invert: true),
            ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
        ])
        let added = addedTokens(vocab: vocab, config: config, specials: specials)
        func id(_ content: String?) -> Int? {
            guard let content else { return nil }
            return added.first { $0.content == content }?.id ?? vocab[TokenString(content)]
        }
        let bosID = id(specials.bos?.content)
        let eosID = id(specials.eos?.content)
        var post: (any PostProcessor)?
        if let bos = specials.bos?.content, let eos = specials.eos?.content, let bosID, let eosID {
            post = ClsSepProcessor(cls: (bos, bosID), sep: (eos, eosID))
        }
        return PretrainedTokenizer(
            addedTokens: added, normalizer: normalizer, preTokenizer: preTokenizer, model: model,
            decoder: ByteLevelDecoder(), postProcessor: post, bosTokenID: bosID, eosTokenID: eosID,
            padTokenID: id(specials.pad?.content), decodeSuffixToSpace: "</w>")
    }

    /// transformers' TokenizersBackend.__init__: `added_tokens_decoder` entries (by id), then each named special
    /// token not yet present; without `added_tokens_decoder` all named tokens are added in attribute order and,
    /// for a content added twice, the later flags win (tokenizers' `add_tokens` replaces the entry). A bare
    /// string is `normalized: false`; CLIP's bos dict says `normalized: true`, its pad string false.
    static func addedTokens(vocab: [TokenString: Int], config: TokenizerConfig, specials: SpecialTokens) -> [AddedToken] {
        var order: [String] = []
        var byContent: [String: AddedToken] = [:]
        var nextID = (vocab.values.max() ?? -1) + 1
        func add(_ value: SpecialTokenValue, id explicit: Int?, replace: Bool, named: Bool) {
            if byContent[value.content] != nil && !replace { return }
            let id: Int
            if let explicit { id = explicit } else if let existing = byContent[value.content] { id = existing.id }
            else if let known = vocab[TokenString(value.content)] { id = known } else { id = nextID; nextID += 1 }
            if byContent[value.content] == nil { order.append(value.content) }
            let special = named ? true : (value.special ?? false)
            byContent[value.content] = AddedToken(
                id: id, content: value.content, singleWord: value.singleWord, lstrip: value.lstrip, rstrip: value.rstrip,
                normalized: value.normalized ?? !special, special: special)
        }
        if let decoderTokens = config.addedTokensDecoder {
            for (id, value) in decoderTokens.sorted(by: { $0.key < $1.key }) { add(value, id: id, replace: true, named: false) }
            for value in specials.ordered { add(value, id: nil, replace: false, named: true) }
        } else {
            for value in specials.ordered { add(value, id: nil, replace: true, named: true) }
        }
        return order.compactMap { byContent[$0] }
    }
}
