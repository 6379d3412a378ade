import Foundation

// MARK: - Byte trie

/// Keys of bytes -> values; the lookups the Viterbi and the prefix matchers need (a Darts double array in the
/// references; a hashed edge map gives the same answers).
struct ByteTrie: Sendable {
    private var edges: [UInt64: Int32] = [:]
    private var values: [Int32] = [-1]

    mutating func insert<C: Collection>(_ key: C, value: Int) where C.Element == UInt8 {
        var node = 0
        for b in key {
            let edge = UInt64(node) << 8 | UInt64(b)
            if let next = edges[edge] {
                node = Int(next)
            } else {
                values.append(-1)
                node = values.count - 1
                edges[edge] = Int32(node)
            }
        }
        values[node] = Int32(value)
    }

    /// Calls `body(end, value)` for every key that is a prefix of `bytes[start..<limit]`, shortest first.
    @inline(__always)
    func forEachPrefix(_ bytes: [UInt8], from start: Int, limit: Int? = nil, _ body: (Int, Int) -> Void) {
        var node = 0
        var i = start
        let end = limit ?? bytes.count
        while i < end {
            guard let next = edges[UInt64(node) << 8 | UInt64(bytes[i])] else { return }
            node = Int(next)
            i += 1
            let v = values[node]
            if v >= 0 { body(i, Int(v)) }
        }
    }

    /// Length of the longest key that is a prefix of `bytes[start...]` (0 if none).
    func longestPrefix(_ bytes: [UInt8], from start: Int) -> Int {
        var longest = 0
        forEachPrefix(bytes, from: start) { end, _ in longest = end - start }
        return longest
    }

    func lookup<C: Collection>(_ key: C) -> Int? where C.Element == UInt8 {
        var node = 0
        for b in key {
            guard let next = edges[UInt64(node) << 8 | UInt64(b)] else { return nil }
            node = Int(next)
        }
        return values[node] >= 0 ? Int(values[node]) : nil
    }
}

/// UTF-8 sequence length from the lead byte (sentencepiece's string_util::OneCharLen table).
@inline(__always)
func oneCharLength(_ lead: UInt8) -> Int {
    switch lead >> 4 {
    case 0xC, 0xD: return 2
    case 0xE: return 3
    case 0xF: return 4
    default: return 1
    }
}

// MARK: - Viterbi

/// The best segmentation of `bytes` by total score: sentencepiece's unigram_model.cc `EncodeOptimized`, which
/// tokenizers' unigram/model.rs `encode_optimized` ports. Each position keeps the best path ending there; from
/// every char start the trie yields the pieces starting there; a char no single piece covers gets an unknown node
/// (`unkID`, `unkScore`). `score(id, length)` is nil for pieces the path must skip (sentencepiece's UNUSED).
/// `S` is the references' arithmetic: Float in sentencepiece, f64 in tokenizers. `resetThreshold` is
/// sentencepiece 0.2.3's rebasing of scores beyond ±1e5 (kScoreResetThreshold), nil for tokenizers.
func unigramViterbi<S: BinaryFloatingPoint>(
    _ bytes: [UInt8], trie: ByteTrie, score: (Int, Int) -> S?, unkID: Int, unkScore: S, resetThreshold: S?
) -> [(range: Range<Int>, id: Int)] {
    let size = bytes.count
    if size == 0 { return [] }
    var bestScore = [S](repeating: 0, count: size + 1)
    var startsAt = [Int](repeating: -1, count: size + 1)
    var bestID = [Int](repeating: -1, count: size + 1)
    var maxFrontier = 0
    var start = 0
    while start < size {
        var tillHere = bestScore[start]
        if let threshold = resetThreshold, tillHere < -threshold || tillHere > threshold {
            let offset = tillHere
            if start <= maxFrontier {
                for i in start ... maxFrontier where i == start || startsAt[i] != -1 { bestScore[i] -= offset }
            }
            tillHere = 0
        }
        var hasSingleNode = false
        let mblen = min(oneCharLength(bytes[start]), size - start)
        trie.forEachPrefix(bytes, from: start) { end, id in
            guard let s = score(id, end - start) else { return }
            maxFrontier = max(maxFrontier, end)
            let candidate = s + tillHere
            if startsAt[end] == -1 || candidate > bestScore[end] {
                bestScore[end] = candidate
                startsAt[end] = start
                bestID[end] = id
            }
            if end - start == mblen { hasSingleNode = true }
        }
        if !hasSingleNode {
            let end = start + mblen
            maxFrontier = max(maxFrontier, end)
            let candidate = unkScore + tillHere
            if startsAt[end] == -1 || candidate > bestScore[end] {
                bestScore[end] = candidate
                startsAt[end] = start
                bestID[end] = unkID
            }
        }
        start += mblen
    }
    var out: [(range: Range<Int>, id: Int)] = []
    var end = size
    while end > 0 {
        let s = startsAt[end]
        guard s >= 0 && s < end else { break }  // unreachable: every char start reaches the next
        out.append((s ..< end, bestID[end]))
        end = s
    }
    return out.reversed()
}

// MARK: - tokenizer.json Unigram

/// tokenizer.json's `{"type": "Unigram", "vocab": [[piece, score], ...], "unk_id": n, "byte_fallback": b}`
/// (tokenizers' models/unigram): every vocabulary entry is in the lattice, scores are f64, the unknown score is
/// min(score) - 10, consecutive unknown nodes are fused (fuse_unk is always on), and a result not in the
/// vocabulary becomes byte-fallback `<0xXX>` tokens when all exist, else the unk id.
public struct UnigramModel: TokenizerModel {
    public let pieces: [(piece: String, score: Double)]
    public let unkID: Int?
    public let byteFallback: Bool
    private let tokenToID: [TokenString: Int]
    private let trie: ByteTrie
    private let minScore: Double

    public init(vocabulary: [(String, Double)], unkID: Int?, byteFallback: Bool, source: String = "tokenizer.json") throws {
        pieces = vocabulary.map { (piece: $0.0, score: $0.1) }
        if let unkID, unkID < 0 || unkID >= vocabulary.count {
            throw TokenizerError.invalidValue(
                file: source, key: "model.unk_id", reason: "\(unkID) is outside the vocabulary (\(vocabulary.count) entries)")
        }
        self.unkID = unkID
        self.byteFallback = byteFallback
        var map: [TokenString: Int] = [:]
        var trie = ByteTrie()
        var minScore = Double.infinity
        for (id, (piece, score)) in vocabulary.enumerated() {
            map[TokenString(piece)] = id  // later duplicates win, as the Rust HashMap insert does
            minScore = min(minScore, score)
        }
        // The trie's value is the id the token maps to (tokenizers looks the piece up in token_to_ids).
        for (token, id) in map { trie.insert(Array(token.value.utf8), value: id) }
        tokenToID = map
        self.trie = trie
        self.minScore = minScore
    }

    public var vocabularySize: Int { pieces.count }
    public func tokenID(for token: String) -> Int? { tokenToID[TokenString(token)] }
    public func token(for id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id].piece : nil }

    public func tokenize(_ piece: [Unicode.Scalar]) throws -> [Int] {
        let bytes = Array(makeString(piece).utf8)
        if bytes.isEmpty { return [] }
        let unk = unkID ?? -1
        let path = unigramViterbi(
            bytes, trie: trie, score: { id, _ in pieces[id].score }, unkID: unk, unkScore: minScore - 10,
            resetThreshold: nil as Double?)
        // Fuse runs of unknown nodes into one string (encode_optimized with fuse_unk).
        var strings: [ArraySlice<UInt8>] = []
        var pendingUnk: Range<Int>? = nil
        for node in path {
            if unkID != nil && node.id == unk {
                pendingUnk = pendingUnk.map { $0.lowerBound ..< node.range.upperBound } ?? node.range
                continue
            }
            if let r = pendingUnk { strings.append(bytes[r]); pendingUnk = nil }
            strings.append(bytes[node.range])
        }
        if let r = pendingUnk { strings.append(bytes[r]) }
        var ids: [Int] = []
        for s in strings {
            let text = String(decoding: s, as: UTF8.self)
            if let id = tokenToID[TokenString(text)] { ids.append(id); continue }
            if byteFallback {
                let byteIDs = s.map { tokenToID[TokenString(BPEModel.byteTokens[Int($0)])] }
                if byteIDs.allSatisfy({ $0 != nil }) { ids += byteIDs.compactMap { $0 }; continue }
            }
            guard let unkID else { throw TokenizerError.unknownTokenNotInVocabulary(token: "<unk_id missing>") }
            ids.append(unkID)
        }
        return ids
    }
}
