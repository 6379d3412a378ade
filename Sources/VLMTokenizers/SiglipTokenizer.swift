import Foundation

/// transformers 5.25's SiglipTokenizer (models/siglip/tokenization_siglip.py, a SentencePieceBackend) over
/// spiece.model: the text gets a leading "▁" (its own "▁" become spaces), is split on the added/special tokens,
/// and each remaining chunk is canonicalised (lower-cased if do_lower_case, ASCII punctuation removed, whitespace
/// runs collapsed, stripped) and encoded as `sp.encode(unk_token + chunk)` minus the pieces `unk_token` alone
/// encodes to. Ids are the pieces' ids; "</s>" is appended unless the ids already end with it.
public struct SiglipTokenizer: Tokenizer {
    public let processor: SentencePieceProcessor
    public let doLowerCase: Bool
    public let eosTokenID: Int?
    public let padTokenID: Int?
    public var bosTokenID: Int? { nil }
    public let vocabularySize: Int
    /// Right unless tokenizer_config.json's padding_side says left.
    public let paddingSide: PaddingSide
    let unkToken: String
    /// transformers' `_added_tokens_decoder` (id -> token) and its inverse.
    let addedByID: [Int: AddedToken]
    let addedByContent: [String: AddedToken]
    /// all_special_tokens: eos, unk, pad and additional ones (strings), and their ids.
    let specialTokens: Set<String>
    let specialIDs: Set<Int>
    /// tokens_trie: added tokens and special tokens, matched leftmost-longest.
    let splitter: AddedVocabulary.Matcher
    let unkPieceCount: Int
    static let underline = "\u{2581}"

    // MARK: Building

    init(processor: SentencePieceProcessor, config: TokenizerConfig?, specials named: SpecialTokens, doLowerCase: Bool) {
        self.processor = processor
        self.doLowerCase = doLowerCase
        paddingSide = config?.paddingSide ?? .right
        // SiglipTokenizer's defaults: eos = pad = "</s>", unk = "<unk>" (AddedTokens, lstrip/rstrip true).
        let eos = named.eos ?? SpecialTokenValue(content: "</s>", strip: true)
        let unk = named.unk ?? SpecialTokenValue(content: "<unk>", strip: true)
        let pad = named.pad ?? SpecialTokenValue(content: "</s>", strip: true)
        unkToken = unk.content
        var byID: [Int: AddedToken] = [:]
        var byContent: [String: AddedToken] = [:]
        var next = processor.pieceCount
        func add(_ value: SpecialTokenValue, id explicit: Int?) {
            if byContent[value.content] != nil && explicit == nil { return }
            var id = explicit ?? -1
            if explicit == nil {
                // SentencePieceBackend._add_tokens: an id of the base vocabulary if the piece is there, else next.
                let pieceID = processor.id(of: Array(value.content.utf8))
                if pieceID >= 0, processor.piece(of: pieceID) == Array(value.content.utf8) { id = pieceID } else { id = next; next += 1 }
            }
            let token = AddedToken(id: id, content: value.content, singleWord: value.singleWord, lstrip: value.lstrip,
                                   rstrip: value.rstrip, normalized: value.normalized ?? false, special: value.special ?? true)
            byID[id] = token
            byContent[value.content] = token
        }
        for (id, value) in (config?.addedTokensDecoder ?? [:]).sorted(by: { $0.key < $1.key }) { add(value, id: id) }
        // all_special_tokens: the named attributes in SPECIAL_TOKENS_ATTRIBUTES order, then the extra ones.
        let specialValues = [named.bos, eos, unk, named.sep, pad, named.cls, named.mask].compactMap { $0 } + (named.additional ?? [])
        for value in specialValues { add(value, id: nil) }
        addedByID = byID
        addedByContent = byContent
        specialTokens = Set(specialValues.map(\.content))
        vocabularySize = processor.pieceCount + byID.keys.filter { $0 >= processor.pieceCount }.count
        let splitTokens = Set(byContent.keys).union(specialTokens).sorted()
        // Plain matching: Python's Trie.split does not strip; the flags are applied afterwards, in `encode`.
        splitter = AddedVocabulary.Matcher(splitTokens.map { content in
            (AddedToken(id: byContent[content]?.id ?? -1, content: content, normalized: false, special: true),
             Array(content.unicodeScalars))
        })
        func id(_ content: String) -> Int? {
            byContent[content]?.id ?? processor.pieceToID[Array(content.utf8)]
        }
        eosTokenID = id(eos.content)
        padTokenID = id(pad.content)
        specialIDs = Set(specialTokens.compactMap(id))
        unkPieceCount = processor.encode(unk.content).count
    }

    // MARK: Encoding

    public func tokenID(for token: String) -> Int? {
        addedByContent[token]?.id ?? processor.pieceToID[Array(token.utf8)]
    }

    public func token(for id: Int) -> String? {
        addedByID[id]?.content ?? processor.piece(of: id).map { String(decoding: $0, as: UTF8.self) }
    }

    /// SiglipTokenizer.tokenize -> PreTrainedTokenizer.tokenize -> SiglipTokenizer._tokenize, then
    /// convert_tokens_to_ids (added tokens first, else `sp.piece_to_id`).
    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
        let prefixed = Array((Self.underline + text.replacingScalars(Self.underline, with: " ")).unicodeScalars)
        // tokens_trie.split, then lstrip/rstrip of the neighbouring chunks (Python str.rstrip/lstrip);
        // single_word is not applied (no SigLIP checkpoint sets it).
        var chunks = splitter.split(prefixed).map { (text: makeString(prefixed[$0.range]), isToken: $0.id != nil) }
        for i in chunks.indices where chunks[i].isToken {
            guard let added = addedByContent[chunks[i].text] else { continue }
            if added.rstrip && i + 1 < chunks.count && !chunks[i + 1].text.isEmpty { chunks[i + 1].text = pythonLStrip(chunks[i + 1].text) }
            if added.lstrip && i > 0 && !chunks[i - 1].text.isEmpty { chunks[i - 1].text = pythonRStrip(chunks[i - 1].text) }
        }
        var tokens: [String] = []
        for chunk in chunks where !chunk.text.isEmpty {
            if chunk.isToken || addedByContent[chunk.text] != nil || specialTokens.contains(chunk.text) {
                tokens.append(chunk.text)
                continue
            }
            tokens += pieces(canonicalize(chunk.text))
        }
        if tokens.count > 1 && tokens[0] == Self.underline && specialTokens.contains(tokens[1]) { tokens.removeFirst() }
        let ids = tokens.map { addedByContent[$0]?.id ?? processor.id(of: Array($0.utf8)) }
        return addSpecialTokens ? postProcess(ids) : ids
    }

    /// `_tokenize`: encode "<unk>" + text and drop the pieces "<unk>" alone gives.
    func pieces(_ text: String) -> [String] {
        let all = processor.encode(unkToken + text).map { String(decoding: $0.piece, as: UTF8.self) }
        return all.count >= unkPieceCount ? Array(all.dropFirst(unkPieceCount)) : all
    }

    /// canonicalize_text (big_vision's prompt engineering): lower(), string.punctuation removed, `\s+` -> " ",
    /// strip().
    func canonicalize(_ text: String) -> String {
        var s = doLowerCase ? pythonLower(text) : text
        let punctuation = Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".unicodeScalars)
        var out: [Unicode.Scalar] = []
        var inSpace = false
        for scalar in s.unicodeScalars where !punctuation.contains(scalar) {
            if isPythonSpace(scalar) {
                if !inSpace { out.append(" ") }
                inSpace = true
            } else {
                out.append(scalar)
                inSpace = false
            }
        }
        s = makeString(out)
        return pythonStrip(s)
    }

    /// build_inputs_with_special_tokens: "</s>" appended unless the ids already end with it.
    public func postProcess(_ ids: [Int]) -> [Int] {
        guard let eos = eosTokenID else { return ids }
        return ids.last == eos ? ids : ids + [eos]
    }

    public var specialTokenCount: Int { eosTokenID == nil ? 0 : 1 }

    // MARK: Decoding

    /// convert_ids_to_tokens (special ids skipped on request) then SiglipTokenizer.convert_tokens_to_string:
    /// special tokens verbatim (a space before the first of a run), the pieces between them through
    /// `sp.decode`, the whole stripped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var out = ""
        var pending: [[UInt8]] = []
        var previousSpecial = false
        for id in ids {
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            guard let token = token(for: id) else { continue }
            if specialTokens.contains(token) {
                if !previousSpecial { out += " " }
                out += processor.decode(pieces: pending) + token
                previousSpecial = true
                pending = []
            } else {
                pending.append(Array(token.utf8))
                previousSpecial = false
            }
        }
        out += processor.decode(pieces: pending)
        return pythonStrip(out)
    }
}

extension SpecialTokenValue {
    /// `AddedToken(content, rstrip=True, lstrip=True, normalized=False, special=True)`.
    init(content: String, strip: Bool) {
        self.init(content: content)
        lstrip = strip
        rstrip = strip
        normalized = false
        special = true
    }
}

/// Python's `str.isspace()`: White_Space plus U+001C...U+001F.
func isPythonSpace(_ s: Unicode.Scalar) -> Bool { (0x1C ... 0x1F).contains(s.value) || s.properties.isWhitespace }

func pythonLStrip(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard let first = scalars.firstIndex(where: { !isPythonSpace($0) }) else { return "" }
    return String(scalars[first...])
}

func pythonRStrip(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard let last = scalars.lastIndex(where: { !isPythonSpace($0) }) else { return "" }
    return String(scalars[...last])
}

/// Python's `str.lower()`: the full lowercase mapping per scalar, except that U+03A3 becomes final sigma U+03C2
/// after a cased letter not followed by one (case-ignorable scalars skipped both ways; unicodeobject.c
/// handle_capital_sigma). Swift's `lowercased()` has no final-sigma rule.
func pythonLower(_ text: String) -> String {
    let scalars = Array(text.unicodeScalars)
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(scalars.count)
    for (i, s) in scalars.enumerated() {
        if s.value == 0x3A3 {
            var j = i - 1
            while j >= 0 && scalars[j].properties.isCaseIgnorable { j -= 1 }
            var final = j >= 0 && scalars[j].properties.isCased
            if final && i + 1 < scalars.count {
                var k = i + 1
                while k < scalars.count && scalars[k].properties.isCaseIgnorable { k += 1 }
                final = k == scalars.count || !scalars[k].properties.isCased
            }
            out.append(final ? "\u{3C2}" : "\u{3C3}")
            continue
        }
        if s.value < 0x80 {
            out.append(s.value >= 0x41 && s.value <= 0x5A ? Unicode.Scalar(UInt8(s.value + 0x20)) : s)
        } else if s.properties.changesWhenLowercased {
            out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
        } else {
            out.append(s)
        }
    }
    return makeString(out)
}
