import Foundation

/// sentencepiece's SentencePieceProcessor (0.2.3) for a parsed spiece.model: normalizer.cc `Normalize`, the
/// unigram or BPE model, `EncodeOptimized` (unknown runs merged, or byte fallback) and `DecodeOptimized`. Works on
/// UTF-8 bytes, as the C++ does.
public struct SentencePieceProcessor: Sendable {
    public let model: SentencePieceModelFile
    let charsmap: PrecompiledCharsmap?
    /// USER_DEFINED pieces, matched whole before anything else (normalizer::PrefixMatcher).
    let userDefined: ByteTrie
    let hasUserDefined: Bool
    /// piece -> id over every piece (PieceToId; unknown strings map to unk_id).
    let pieceToID: [[UInt8]: Int]
    /// The lattice/merge vocabulary: NORMAL, USER_DEFINED and UNUSED pieces (the C++ `pieces_`).
    let trie: ByteTrie
    let minScore: Float
    static let space: [UInt8] = Array("\u{2581}".utf8)

    // MARK: Loading

    public init(model: SentencePieceModelFile, fileName: String) throws {
        self.model = model
        let spec = model.normalizer
        charsmap = spec.precompiledCharsmap.isEmpty
            ? nil : try PrecompiledCharsmap(blob: spec.precompiledCharsmap, file: fileName, key: "normalizer_spec.precompiled_charsmap")
        var user = ByteTrie()
        var anyUser = false
        var ids: [[UInt8]: Int] = [:]
        var trie = ByteTrie()
        var minScore = Float.greatestFiniteMagnitude
        for (i, p) in model.pieces.enumerated() {
            ids[p.bytes] = i
            switch p.type {
            case .userDefined: user.insert(p.bytes, value: i); anyUser = true; trie.insert(p.bytes, value: i)
            case .normal: trie.insert(p.bytes, value: i); minScore = min(minScore, p.score)
            case .unused: trie.insert(p.bytes, value: i)
            default: break
            }
        }
        userDefined = user
        hasUserDefined = anyUser
        unkID = model.pieces.firstIndex { $0.type == .unknown } ?? -1
        pieceToID = ids
        self.trie = trie
        self.minScore = minScore
    }

    public var pieceCount: Int { model.pieces.count }

    /// The id of `piece`, else the unknown id (PieceToId).
    public func id(of piece: [UInt8]) -> Int { pieceToID[piece] ?? unkID }
    public func piece(of id: Int) -> [UInt8]? { id >= 0 && id < model.pieces.count ? model.pieces[id].bytes : nil }
    /// The UNKNOWN piece's id, -1 when there is none (allowed with byte fallback).
    let unkID: Int

    func type(_ id: Int) -> SentencePieceModelFile.PieceType? { id >= 0 && id < model.pieces.count ? model.pieces[id].type : nil }

    // MARK: Normalization (normalizer.cc)

    /// Length of the user-defined piece at `start` (found) or of one UTF-8 char (PrefixMatcher::PrefixMatch).
    func prefixMatch(_ bytes: [UInt8], from start: Int) -> (length: Int, found: Bool) {
        if hasUserDefined {
            let n = userDefined.longestPrefix(bytes, from: start)
            if n > 0 { return (n, true) }
        }
        return (min(bytes.count - start, oneCharLength(bytes[start])), false)
    }

    /// NormalizePrefix: a user-defined piece as is, else the longest charsmap rule, else one char.
    private func normalizePrefix(_ input: [UInt8], from start: Int) -> (ArraySlice<UInt8>, Int) {
        let (length, found) = prefixMatch(input, from: start)
        if found { return (input[start ..< start + length], length) }
        if let rule = charsmap?.longestRule(input, from: start) { return (rule.replacement, rule.consumed) }
        return (input[start ..< start + length], length)  // Swift strings are valid UTF-8: no U+FFFD case
    }

    /// Normalizer::Normalize: rules, dummy prefix, whitespace collapsing and escaping to "▁".
    public func normalize(_ text: String) -> [UInt8] {
        let input = Array(text.utf8)
        let spec = model.normalizer
        var pos = 0
        if spec.removeExtraWhitespaces {
            while pos < input.count {
                let (p, n) = normalizePrefix(input, from: pos)
                guard p.elementsEqual([0x20]) else { break }
                pos += n
            }
        }
        if pos >= input.count { return [] }
        let ws: [UInt8] = spec.escapeWhitespaces ? Self.space : [0x20]
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 2)
        if !model.treatWhitespaceAsSuffix && spec.addDummyPrefix { out += ws }
        var isPrevSpace = spec.removeExtraWhitespaces
        while pos < input.count {
            var (sp, n) = normalizePrefix(input, from: pos)
            while isPrevSpace, sp.first == 0x20 { sp = sp.dropFirst() }
            if !sp.isEmpty {
                for b in sp { if b == 0x20 { out += ws } else { out.append(b) } }
                isPrevSpace = sp.last == 0x20
            }
            pos += n
            if !spec.removeExtraWhitespaces { isPrevSpace = false }
        }
        if spec.removeExtraWhitespaces {
            while out.count >= ws.count && out.suffix(ws.count).elementsEqual(ws) { out.removeLast(ws.count) }
        }
        if model.treatWhitespaceAsSuffix && spec.addDummyPrefix { out += ws }
        return out
    }

    // MARK: Encoding

    /// `sp.encode(text)`: (piece bytes, id) per output token — EncodeOptimized: unknown pieces become byte pieces
    /// with byte fallback, otherwise consecutive unknown pieces merge into one.
    public func encode(_ text: String) -> [(piece: [UInt8], id: Int)] {
        if text.isEmpty { return [] }
        let normalized = normalize(text)
        let result = model.algorithm == .bpe ? encodeBPE(normalized) : encodeUnigram(normalized)
        var out: [(piece: [UInt8], id: Int)] = []
        var previousUnk = false
        let unk = unkID
        for (range, pieceID) in result {
            let w = Array(normalized[range])
            if type(pieceID) == .control {
                out.append((w, pieceID))
                previousUnk = false
                continue
            }
            let isUnk = pieceID == unk || type(pieceID) == .unknown
            if isUnk && model.byteFallback {
                for b in w {
                    let piece = SentencePieceModelFile.bytePiece(b)
                    out.append((piece, self.id(of: piece)))
                }
            } else if previousUnk && isUnk, !out.isEmpty {
                out[out.count - 1].piece += w
            } else {
                out.append((w, pieceID))
            }
            previousUnk = isUnk
        }
        return out
    }

    /// unigram_model.cc EncodeOptimized, in Float like the C++.
    func encodeUnigram(_ normalized: [UInt8]) -> [(range: Range<Int>, id: Int)] {
        let pieces = model.pieces
        return unigramViterbi(
            normalized, trie: trie,
            score: { id, length -> Float? in
                switch pieces[id].type {
                case .unused: return nil
                case .userDefined: return Float(0.1 * Double(length - 1))  // GetUserDefinedScore
                default: return pieces[id].score
                }
            },
            unkID: unkID, unkScore: minScore - 10, resetThreshold: Float(100_000))
    }

    // MARK: Decoding (sentencepiece_processor.cc DecodeOptimized)

    /// `sp.decode(pieces)`: byte pieces gathered and decoded as UTF-8 (one U+FFFD per invalid byte), control
    /// pieces dropped, `<unk>` as unk_surface, "▁" as " " with the first one dropped at the start.
    public func decode(pieces: [[UInt8]]) -> String {
        var text: [UInt8] = []
        var byteQueue: [UInt8] = []
        func flush() {
            var offset = 0
            while offset < byteQueue.count {
                let n = validUTF8Length(byteQueue, at: offset)
                if n == 0 { text += [0xEF, 0xBF, 0xBD]; offset += 1 } else { text += byteQueue[offset ..< offset + n]; offset += n }
            }
            byteQueue.removeAll()
        }
        var isBosWS = true
        let spec = model.normalizer
        for piece in pieces {
            let id = self.id(of: piece)
            let t = type(id)
            if t == .byte, let b = SentencePieceModelFile.byteValue(piece) {
                byteQueue.append(b)
                continue
            }
            flush()
            if !text.isEmpty { isBosWS = false }
            if t == .control { continue }
            var p = piece[...]
            var hasBosWS = false
            if isBosWS && (spec.addDummyPrefix || spec.removeExtraWhitespaces) {
                if p.starts(with: Self.space) { p = p.dropFirst(Self.space.count); hasBosWS = true }
                if spec.removeExtraWhitespaces { hasBosWS = false }
            }
            if id == unkID || t == .unknown {
                text += (id >= 0 && model.pieces[id].bytes == piece) ? model.unkSurface : piece
            } else {
                text += replacingSpaces(p)
            }
            if hasBosWS || !text.isEmpty { isBosWS = false }
        }
        flush()
        return String(decoding: text, as: UTF8.self)
    }

    public func decode(ids: [Int]) -> String { decode(pieces: ids.compactMap { piece(of: $0) }) }

    private func replacingSpaces(_ p: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        var i = p.startIndex
        while i < p.endIndex {
            if p[i] == 0xE2, i + 2 < p.endIndex, p[i + 1] == 0x96, p[i + 2] == 0x81 { out.append(0x20); i += 3 } else { out.append(p[i]); i += 1 }
        }
        return out
    }
}

/// Length of the well-formed UTF-8 sequence at `offset`, 0 if it is not one (string_util::IsValidDecodeUTF8).
func validUTF8Length(_ bytes: [UInt8], at offset: Int) -> Int {
    let n = oneCharLength(bytes[offset])
    guard offset + n <= bytes.count else { return 0 }
    if n == 1 { return bytes[offset] < 0x80 ? 1 : 0 }
    return isValidUTF8(Array(bytes[offset ..< offset + n])) ? n : 0
}
