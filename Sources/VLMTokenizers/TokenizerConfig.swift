import Foundation

/// A special token as tokenizer_config.json / special_tokens_map.json write it: a bare string, or an
/// AddedToken dict (`{"content": ..., "normalized": ..., "__type": "AddedToken"}`).
struct SpecialTokenValue: Decodable, Equatable {
    var content: String
    var singleWord = false
    var lstrip = false
    var rstrip = false
    /// nil = tokenizers' default, `not special` (a bare string becomes `AddedToken(s, special=True)`: false).
    var normalized: Bool?
    /// Only `added_tokens_decoder` entries carry it; named special tokens are always special.
    var special: Bool?

    private enum CodingKeys: String, CodingKey {
        case content, singleWord = "single_word", lstrip, rstrip, normalized, special
    }

    init(content: String) { self.content = content }

    init(from decoder: Decoder) throws {
        if let string = try? decoder.singleValueContainer().decode(String.self) {
            content = string
            return
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        content = try c.decode(String.self, forKey: .content)
        singleWord = try c.decodeIfPresent(Bool.self, forKey: .singleWord) ?? false
        lstrip = try c.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false
        rstrip = try c.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false
        normalized = try c.decodeIfPresent(Bool.self, forKey: .normalized)
        special = try c.decodeIfPresent(Bool.self, forKey: .special)
    }
}

/// The named special tokens, in transformers' `SPECIAL_TOKENS_ATTRIBUTES` order (which decides, for tokens
/// sharing a content, whose flags win when they are added).
struct SpecialTokens: Decodable {
    var bos: SpecialTokenValue?
    var eos: SpecialTokenValue?
    var unk: SpecialTokenValue?
    var sep: SpecialTokenValue?
    var pad: SpecialTokenValue?
    var cls: SpecialTokenValue?
    var mask: SpecialTokenValue?
    var additional: [SpecialTokenValue]?

    enum CodingKeys: String, CodingKey {
        case bos = "bos_token", eos = "eos_token", unk = "unk_token", sep = "sep_token", pad = "pad_token"
        case cls = "cls_token", mask = "mask_token", additional = "additional_special_tokens"
    }

    init() {}

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bos = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .bos)
        eos = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .eos)
        unk = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .unk)
        sep = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .sep)
        pad = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .pad)
        cls = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .cls)
        mask = try c.decodeIfPresent(SpecialTokenValue.self, forKey: .mask)
        additional = try c.decodeIfPresent([SpecialTokenValue].self, forKey: .additional)
    }

    /// special_tokens_map.json values override tokenizer_config.json's (transformers' legacy merge).
    func overridden(by other: SpecialTokens) -> SpecialTokens {
        var out = self
        out.bos = other.bos ?? bos
        out.eos = other.eos ?? eos
        out.unk = other.unk ?? unk
        out.sep = other.sep ?? sep
        out.pad = other.pad ?? pad
        out.cls = other.cls ?? cls
        out.mask = other.mask ?? mask
        out.additional = other.additional ?? additional
        return out
    }

    var ordered: [SpecialTokenValue] {
        [bos, eos, unk, sep, pad, cls, mask].compactMap { $0 } + (additional ?? [])
    }
}

/// The keys of tokenizer_config.json this module reads; everything else is ignored.
struct TokenizerConfig: Decodable {
    var tokenizerClass: String?
    var modelMaxLength: Double?
    var specialTokens = SpecialTokens()
    /// `{"49406": {"content": ..., ...}}` in newer configs.
    var addedTokensDecoder: [Int: SpecialTokenValue]?
    /// SiglipTokenizer's canonicalisation lower-cases unless this is false.
    var doLowerCase: Bool?
    /// Set explicitly, these make transformers' TokenizersBackend rebuild the post-processor.
    var addBosToken: Bool?
    var addEosToken: Bool?
    /// transformers' `padding_side` ("left"/"right"); overrides the tokenizer class's default.
    var paddingSide: PaddingSide?

    private enum CodingKeys: String, CodingKey {
        case tokenizerClass = "tokenizer_class", modelMaxLength = "model_max_length"
        case addedTokensDecoder = "added_tokens_decoder", doLowerCase = "do_lower_case"
        case addBosToken = "add_bos_token", addEosToken = "add_eos_token", paddingSide = "padding_side"
    }

    init() {}

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tokenizerClass = try c.decodeIfPresent(String.self, forKey: .tokenizerClass)
        modelMaxLength = try c.decodeIfPresent(Double.self, forKey: .modelMaxLength)
        doLowerCase = try c.decodeIfPresent(Bool.self, forKey: .doLowerCase)
        addBosToken = try c.decodeIfPresent(Bool.self, forKey: .addBosToken)
        addEosToken = try c.decodeIfPresent(Bool.self, forKey: .addEosToken)
        if let side = try c.decodeIfPresent(String.self, forKey: .paddingSide) {
            guard let parsed = PaddingSide(rawValue: side) else {
                throw TokenizerError.invalidValue(file: decoder.fileName, key: "padding_side", reason: "expected 'left' or 'right', got '\(side)'")
            }
            paddingSide = parsed
        }
        specialTokens = try SpecialTokens(from: decoder)
        if let raw = try c.decodeIfPresent([String: SpecialTokenValue].self, forKey: .addedTokensDecoder) {
            var map: [Int: SpecialTokenValue] = [:]
            for (key, value) in raw {
                guard let id = Int(key) else {
                    throw TokenizerError.malformedJSON(
                        file: decoder.fileName, key: "added_tokens_decoder.\(key)", reason: "keys must be integer ids")
                }
                map[id] = value
            }
            addedTokensDecoder = map
        }
    }

    /// transformers stores "no limit" as int(1e30) (VERY_LARGE_INTEGER); that is reported as nil.
    var maxLength: Int? {
        guard let m = modelMaxLength, m.isFinite, m > 0, m < 1e15 else { return nil }
        return Int(m)
    }
}
