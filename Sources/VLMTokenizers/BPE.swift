import Foundation

/// tokenizer.json's `model` stage: turns one pre-token into ids.
public protocol TokenizerModel: Sendable {
    func tokenize(_ piece: [Unicode.Scalar]) throws -> [Int]
    func tokenID(for token: String) -> Int?
    func token(for id: Int) -> String?
    /// Number of entries in the model's vocabulary (added tokens not included).
    var vocabularySize: Int { get }
}

/// Byte-pair encoding as tokenizers' models/bpe does it (no dropout: inference only).
public final class BPEModel: TokenizerModel, @unchecked Sendable {  // immutable but for the locked cache
    public let vocabulary: [TokenString: Int]
    /// id -> token: an array for the usual dense ids, a dictionary if a file uses sparse huge ids.
    private let denseTokens: [String?]
    private let sparseTokens: [Int: String]
    /// (left id, right id) packed into a UInt64 -> (rank, merged id). Rank = line order in the merges list.
    private let merges: [UInt64: Merge]
    public let unkToken: String?
    public let continuingSubwordPrefix: String?
    public let endOfWordSuffix: String?
    public let fuseUnk: Bool
    public let byteFallback: Bool
    public let ignoreMerges: Bool
    private let cache = WordCache(capacity: 10_000)  // tokenizers' DEFAULT_CACHE_CAPACITY

    struct Merge {
        let rank: Int32
        let newID: Int32
    }

    /// - Parameters:
    ///   - merges: pairs in rank order (rank 0 merges first), as in merges.txt / tokenizer.json.
    ///   - source: file name used in errors.
    public init(
        vocabulary: [TokenString: Int], merges: [(String, String)], unkToken: String? = nil,
        continuingSubwordPrefix: String? = nil, endOfWordSuffix: String? = nil, fuseUnk: Bool = false,
        byteFallback: Bool = false, ignoreMerges: Bool = false, source: String = "tokenizer.json"
    ) throws {
        self.vocabulary = vocabulary
        let maxID = vocabulary.values.max() ?? -1
        let dense = maxID < 2 * vocabulary.count + 1024
        var table = [String?](repeating: nil, count: dense ? maxID + 1 : 0)
        var sparse: [Int: String] = [:]
        for (token, id) in vocabulary {
            // tokenizers ids are u32; the merge machinery here packs them in 32 bits.
            guard id >= 0 && id <= Int(Int32.max) else {
                throw TokenizerError.invalidValue(file: source, key: "model.vocab.\(token)", reason: "id \(id) out of range")
            }
            if dense { table[id] = token.value } else { sparse[id] = token.value }
        }
        denseTokens = table
        sparseTokens = sparse
        // tokenizers' BpeBuilder::build: the merged token is `a + b` with b's continuing-subword prefix removed,
        // and both parts and the result must be in the vocabulary (MergeTokenOutOfVocabulary otherwise).
        let prefixCount = continuingSubwordPrefix?.unicodeScalars.count ?? 0
        var map = [UInt64: Merge](minimumCapacity: merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = vocabulary[TokenString(a)], let ib = vocabulary[TokenString(b)] else {
                throw TokenizerError.invalidValue(
                    file: source, key: "model.merges[\(rank)]", reason: "merge '\(a) \(b)' uses a token not in the vocabulary")
            }
            // Rust slices b by the prefix's byte length without checking it is there; dropping it only when
            // present is the same on every real vocabulary (continuation tokens all carry the prefix).
            let merged = a + (prefixCount > 0 && b.hasScalarPrefix(continuingSubwordPrefix ?? "") ? b.droppingScalarPrefix(prefixCount) : b)
            guard let id = vocabulary[TokenString(merged)] else {
                throw TokenizerError.invalidValue(
                    file: source, key: "model.merges[\(rank)]", reason: "merged token '\(merged)' is not in the vocabulary")
            }
            // Later duplicates overwrite earlier ones, as collecting into Rust's HashMap does.
            map[Self.key(ia, ib)] = Merge(rank: Int32(rank), newID: Int32(id))
        }
        self.merges = map
        self.unkToken = unkToken
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
    }

    /// The same vocabulary and merges with other options (transformers' GemmaTokenizer/Siglip2Tokenizer rebuild
    /// `BPE(vocab, merges, fuse_unk=True, byte_fallback=True, unk_token=...)` from tokenizer.json's model).
    init(reconfiguring other: BPEModel, unkToken: String?, fuseUnk: Bool, byteFallback: Bool) {
        vocabulary = other.vocabulary
        denseTokens = other.denseTokens
        sparseTokens = other.sparseTokens
        merges = other.merges
        self.unkToken = unkToken
        continuingSubwordPrefix = nil
        endOfWordSuffix = nil
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        ignoreMerges = false
    }

    /// "<0x00>" ... "<0xFF>", the byte-fallback tokens (tokenizers formats them with `{:#04X}` inside <>).
    static let byteTokens: [String] = (0 ..< 256).map { b in
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    @inline(__always)
    static func key(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(truncatingIfNeeded: a)) << 32 | UInt64(UInt32(truncatingIfNeeded: b)) }

    public var vocabularySize: Int { vocabulary.count }
    public func tokenID(for token: String) -> Int? { vocabulary[TokenString(token)] }
    public func token(for id: Int) -> String? {
        id >= 0 && id < denseTokens.count ? denseTokens[id] : sparseTokens[id]
    }

    public func tokenize(_ piece: [Unicode.Scalar]) throws -> [Int] {
        if piece.isEmpty { return [] }
        if let hit = cache.get(piece) { return hit }
        if ignoreMerges, let id = vocabulary[TokenString(makeString(piece))] { return [id] }
        let ids = try mergeWord(piece)
        if piece.count < 256 { cache.set(piece, ids) }  // tokenizers caches words shorter than MAX_LENGTH
        return ids
    }

    /// tokenizers' `BPE::merge_word`: one symbol per char (prefix on non-first, suffix on last), unknown chars
    /// to byte-fallback `<0xXX>` tokens or the (optionally fused) unk token, then `Word::merge_all`.
    private func mergeWord(_ piece: [Unicode.Scalar]) throws -> [Int] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var pendingUnk: Int32? = nil
        let last = piece.count - 1
        for (i, scalar) in piece.enumerated() {
            var s = String(scalar)
            if i > 0, let prefix = continuingSubwordPrefix { s = prefix + s }
            if i == last, let suffix = endOfWordSuffix { s += suffix }
            if let id = vocabulary[TokenString(s)] {
                if let unk = pendingUnk { symbols.append(unk); pendingUnk = nil }
                symbols.append(Int32(id))
                continue
            }
            if byteFallback {
                let byteIDs = s.utf8.map { vocabulary[TokenString(Self.byteTokens[Int($0)])] }
                if byteIDs.allSatisfy({ $0 != nil }) {
                    // tokenizers does not flush a pending unk here (it lands after the bytes); kept as is.
                    symbols += byteIDs.compactMap { $0.map(Int32.init) }
                    continue
                }
            }
            guard let unkToken else { continue }  // no unk token: the char is dropped, as in tokenizers
            guard let unkID = vocabulary[TokenString(unkToken)] else { throw TokenizerError.unknownTokenNotInVocabulary(token: unkToken) }
            if let unk = pendingUnk, !fuseUnk { symbols.append(unk) }
            pendingUnk = Int32(unkID)  // fused: consecutive unknowns stay one pending unk
        }
        if let unk = pendingUnk { symbols.append(unk) }
        return mergeAll(symbols)
    }

    /// tokenizers' `Word::merge_all`: a min-heap of candidate merges ordered by (rank, position); stale entries
    /// (a side already merged away, or the pair no longer producing the same id) are skipped. O(n log n).
    private func mergeAll(_ initial: [Int32]) -> [Int] {
        let n = initial.count
        if n < 2 { return initial.map(Int.init) }
        var ids = initial
        var prev = [Int32](repeating: -1, count: n)
        var next = [Int32](repeating: -1, count: n)
        var alive = [Bool](repeating: true, count: n)
        for i in 0 ..< n {
            prev[i] = Int32(i - 1)
            next[i] = i + 1 < n ? Int32(i + 1) : -1
        }
        var heap = MergeHeap()
        for i in 0 ..< n - 1 {
            if let m = merges[Self.key(Int(ids[i]), Int(ids[i + 1]))] {
                heap.push(rank: m.rank, pos: Int32(i), newID: m.newID)
            }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = Int(next[pos])
            guard let current = merges[Self.key(Int(ids[pos]), Int(ids[right]))], current.newID == top.newID else { continue }
            ids[pos] = top.newID
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
            if prev[pos] >= 0 {
                let p = Int(prev[pos])
                if let m = merges[Self.key(Int(ids[p]), Int(ids[pos]))] { heap.push(rank: m.rank, pos: Int32(p), newID: m.newID) }
            }
            if next[pos] >= 0 {
                let q = Int(next[pos])
                if let m = merges[Self.key(Int(ids[pos]), Int(ids[q]))] { heap.push(rank: m.rank, pos: Int32(pos), newID: m.newID) }
            }
        }
        var out: [Int] = []
        out.reserveCapacity(n)
        for i in 0 ..< n where alive[i] { out.append(Int(ids[i])) }
        return out
    }
}

/// Binary min-heap on (rank, pos), the order of tokenizers' `Merge` (`Ord` reversed for its max-heap).
struct MergeHeap {
    struct Entry {
        let key: UInt64  // rank << 32 | pos: lower rank first, then leftmost
        let newID: Int32
        var pos: Int32 { Int32(truncatingIfNeeded: key & 0xFFFF_FFFF) }
    }

    private var items: [Entry] = []

    mutating func push(rank: Int32, pos: Int32, newID: Int32) {
        items.append(Entry(key: UInt64(UInt32(rank)) << 32 | UInt64(UInt32(pos)), newID: newID))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].key <= items[i].key { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let lastItem = items.removeLast()
        if !items.isEmpty {
            items[0] = lastItem
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count && items[l].key < items[smallest].key { smallest = l }
                if r < items.count && items[r].key < items[smallest].key { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return first
    }
}

/// Word -> ids cache shared by concurrent encodes (results do not depend on it).
final class WordCache: @unchecked Sendable {  // state guarded by `lock`
    private var storage: [[Unicode.Scalar]: [Int]] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func get(_ key: [Unicode.Scalar]) -> [Int]? {
        lock.lock(); defer { lock.unlock() }
        return storage[key]
    }

    func set(_ key: [Unicode.Scalar], _ value: [Int]) {
        lock.lock(); defer { lock.unlock() }
        if storage.count < capacity { storage[key] = value }  // like tokenizers' Cache: stop inserting when full
    }
}
