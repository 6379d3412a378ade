import Foundation
import VLMTensor

/// One search result: an embedding id and its inner product with the query (cosine for unit vectors).
public struct SearchHit: Sendable, Equatable, Codable {
    public let id: Int64
    public let score: Float
    public init(id: Int64, score: Float) {
        self.id = id
        self.score = score
    }

    /// Result order everywhere in the module: higher score first, then lower id (deterministic ties).
    @inline(__always)
    static func isBetter(_ a: Float, _ aID: Int64, than b: Float, _ bID: Int64) -> Bool {
        a > b || (a == b && aID < bID)
    }
}

/// Bounded selection of the k best (score, id) pairs: a binary min-heap whose root is the worst
/// kept element, so a candidate costs one comparison unless it enters the top k.
struct TopK {
    let k: Int
    private(set) var scores: [Float] = []
    private(set) var ids: [Int64] = []

    init(k: Int) {
        self.k = k
        scores.reserveCapacity(k)
        ids.reserveCapacity(k)
    }

    /// Score a candidate must beat (ties resolved by `offer`); -inf until the heap is full.
    var threshold: Float { scores.count < k ? -.infinity : scores[0] }

    @inline(__always)
    mutating func offer(_ score: Float, _ id: Int64) {
        if scores.count < k {
            scores.append(score)
            ids.append(id)
            siftUp(scores.count - 1)
        } else if SearchHit.isBetter(score, id, than: scores[0], ids[0]) {
            scores[0] = score
            ids[0] = id
            siftDown(0)
        }
    }

    /// Worst-of-two in heap order: the root must be the element every other beats.
    @inline(__always)
    private func worse(_ i: Int, _ j: Int) -> Bool { SearchHit.isBetter(scores[j], ids[j], than: scores[i], ids[i]) }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard worse(i, parent) else { break }
            scores.swapAt(i, parent)
            ids.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = scores.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && worse(l, m) { m = l }
            if r < n && worse(r, m) { m = r }
            if m == i { return }
            scores.swapAt(i, m)
            ids.swapAt(i, m)
            i = m
        }
    }

    /// Best first.
    func sorted() -> [SearchHit] {
        zip(scores, ids).map { SearchHit(id: $1, score: $0) }.sorted { SearchHit.isBetter($0.score, $0.id, than: $1.score, $1.id) }
    }
}

/// Brute-force inner-product search over every vector, kept in memory as contiguous float rows.
///
/// Rows live in fixed-size chunks (`chunkRows` x dim, 64-byte aligned) so that adding never copies
/// the whole matrix and every chunk is directly a GEMM operand: a block of queries times a chunk^T
/// gives a score block, then a bounded heap per query keeps the best k. Removal moves the last row
/// into the hole (O(dim)), so the matrix stays dense.
public final class ExactSearch: @unchecked Sendable {
    public let dim: Int
    public let chunkRows: Int
    private var chunks: [TensorStorage] = []
    private var slotIDs: [Int64] = []
    private var slotOf: [Int64: Int] = [:]
    /// Queries per GEMM call; bounds the score block at queryBlock x chunkRows floats.
    public var queryBlock = 256
    /// Keep each chunk also in the GEMM's packed layout (built lazily, dropped when the chunk
    /// changes), so searches skip re-packing the database on every call: that copy would cost as
    /// much as the arithmetic for small query batches. Doubles the memory of the matrix.
    public var packDatabase = true
    private var packed: [PackedLinearWeight?] = []
    private let packLock = NSLock()

    public init(dim: Int, chunkRows: Int = 4096) throws {
        guard dim > 0 else { throw IndexError.invalidArgument("dimension must be positive, got \(dim)") }
        guard chunkRows > 0 else { throw IndexError.invalidArgument("chunkRows must be positive, got \(chunkRows)") }
        self.dim = dim
        self.chunkRows = chunkRows
    }

    public var count: Int { slotIDs.count }
    public var ids: [Int64] { slotIDs }
    public func contains(_ id: Int64) -> Bool { slotOf[id] != nil }

    @inline(__always)
    private func row(_ slot: Int) -> UnsafeMutablePointer<Float> {
        chunks[slot / chunkRows].pointer + (slot % chunkRows) * dim
    }

    /// The stored vector of `id`, or nil.
    public func vector(_ id: Int64) -> [Float]? {
        guard let slot = slotOf[id] else { return nil }
        return Array(UnsafeBufferPointer(start: row(slot), count: dim))
    }

    /// Adds (or replaces) one vector.
    public func add(id: Int64, vector: UnsafeBufferPointer<Float>) throws {
        guard vector.count == dim else { throw IndexError.dimensionMismatch(context: "exact search add id \(id)", expected: dim, actual: vector.count) }
        guard let base = vector.baseAddress else { return }
        if let slot = slotOf[id] {
            row(slot).update(from: base, count: dim)
            invalidate(slot)
            return
        }
        let slot = slotIDs.count
        if slot / chunkRows >= chunks.count {
            chunks.append(TensorStorage(count: chunkRows * dim))
            packed.append(nil)
        }
        row(slot).update(from: base, count: dim)
        invalidate(slot)
        slotIDs.append(id)
        slotOf[id] = slot
    }

    public func add(id: Int64, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try add(id: id, vector: $0) }
    }

    /// Removes ids (unknown ids are ignored). Returns how many were removed.
    @discardableResult
    public func remove(_ ids: [Int64]) -> Int {
        var removed = 0
        for id in ids {
            guard let slot = slotOf.removeValue(forKey: id) else { continue }
            let last = slotIDs.count - 1
            invalidate(slot)
            invalidate(last)
            if slot != last {
                row(slot).update(from: row(last), count: dim)
                let moved = slotIDs[last]
                slotIDs[slot] = moved
                slotOf[moved] = slot
            }
            slotIDs.removeLast()
            removed += 1
        }
        // Release chunks that became empty (keep one spare to avoid thrash on add/remove cycles).
        let needed = (slotIDs.count + chunkRows - 1) / chunkRows
        if chunks.count > needed + 1 {
            chunks.removeLast(chunks.count - needed - 1)
            packed.removeLast(packed.count - chunks.count)
        }
        return removed
    }

    @inline(__always) private func invalidate(_ slot: Int) {
        let c = slot / chunkRows
        if c < packed.count { packed[c] = nil }
    }

    /// The packed form of chunk `c` holding `rows` rows, built on first use after a change.
    private func packedChunk(_ c: Int, rows: Int) throws -> PackedLinearWeight {
        packLock.lock()
        defer { packLock.unlock() }
        if let p = packed[c], p.outFeatures == rows { return p }
        let p: PackedLinearWeight
        do { p = try PackedLinearWeight(weight: Tensor(shape: [rows, dim], storage: chunks[c]), name: "index chunk \(c)") } catch {
            throw IndexError.invalidArgument("cannot pack index chunk \(c) (\(rows) x \(dim)): \(error)")
        }
        packed[c] = p
        return p
    }

    /// Top-k for each query. `queries` holds nq rows of `dim` floats. Hits below `minScore` are
    /// dropped; fewer than k hits come back when the index is smaller or the filter bites.
    public func search(queries: [Float], k: Int, minScore: Float = -.infinity) throws -> [[SearchHit]] {
        guard k > 0 else { throw IndexError.invalidArgument("k must be at least 1, got \(k)") }
        guard queries.count % dim == 0 else { throw IndexError.dimensionMismatch(context: "exact search query", expected: dim, actual: queries.count % dim) }
        let nq = queries.count / dim
        let n = count
        var results = [[SearchHit]](repeating: [], count: nq)
        guard n > 0, nq > 0 else { return results }
        let kk = min(k, n)
        let workers = max(1, min(Kernels.threads, 64))
        for q0 in stride(from: 0, to: nq, by: queryBlock) {
            let qn = min(queryBlock, nq - q0)
            let qTensor = Tensor(shape: [qn, dim], values: Array(queries[(q0 * dim)..<((q0 + qn) * dim)]))
            var heaps = (0..<qn).map { _ in TopK(k: kk) }
            for c in 0..<chunks.count {
                let rows = min(chunkRows, n - c * chunkRows)
                guard rows > 0 else { break }
                let scores: Tensor  // [qn, rows]
                if packDatabase {
                    scores = Ops.linear(qTensor, try packedChunk(c, rows: rows), bias: nil)
                } else {
                    scores = Ops.matmul(qTensor, Tensor(shape: [rows, dim], storage: chunks[c]), transposeB: true)
                }
                let baseSlot = c * chunkRows
                // Selection is per query and independent: split the queries over the kernel threads.
                heaps.withUnsafeMutableBufferPointer { hp in
                    let heapsBase = hp
                    let ids = slotIDs
                    let pieces = min(workers, qn)
                    DispatchQueue.concurrentPerform(iterations: pieces) { piece in
                        let lo = piece * qn / pieces, hi = (piece + 1) * qn / pieces
                        for q in lo..<hi {
                            let s = scores.pointer + q * rows
                            var threshold = max(heapsBase[q].threshold, minScore)
                            for j in 0..<rows where s[j] >= threshold {
                                let score = s[j]
                                if score < minScore { continue }
                                heapsBase[q].offer(score, ids[baseSlot + j])
                                threshold = max(heapsBase[q].threshold, minScore)
                            }
                        }
                    }
                }
            }
            for q in 0..<qn { results[q0 + q] = heaps[q].sorted() }
        }
        return results
    }

    /// Single query convenience.
    public func search(query: [Float], k: Int, minScore: Float = -.infinity) throws -> [SearchHit] {
        guard query.count == dim else { throw IndexError.dimensionMismatch(context: "exact search query", expected: dim, actual: query.count) }
        return try search(queries: query, k: k, minScore: minScore)[0]
    }

    /// Calls `body(chunkIndex, rowsInChunk, tensor, firstSlot)` for each chunk: for blocked self-GEMMs.
    func forEachChunk(_ body: (Int, Tensor, Int) throws -> Void) rethrows {
        let n = count
        for c in 0..<chunks.count {
            let rows = min(chunkRows, n - c * chunkRows)
            guard rows > 0 else { break }
            try body(c, Tensor(shape: [rows, dim], storage: chunks[c]), c * chunkRows)
        }
    }

    func id(atSlot slot: Int) -> Int64 { slotIDs[slot] }
    func row(slot: Int) -> UnsafePointer<Float> { UnsafePointer(row(slot)) }

    /// Loads every embedding of `store` (one pass over SQLite).
    public static func load(from store: VectorStore, chunkRows: Int = 4096) throws -> ExactSearch {
        let exact = try ExactSearch(dim: store.identity.dim, chunkRows: chunkRows)
        try store.forEachEmbedding { id, v in try exact.add(id: id, vector: v) }
        return exact
    }
}
