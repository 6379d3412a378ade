import Foundation
import VLMIndex

extension MilvusIndex {
    /// The server's face of the collection: every call awaits grpc-swift's async client directly, so a search
    /// holds no thread while its RPC is in flight (see `AsyncVectorIndex`).
    public func makeAsync() -> any AsyncVectorIndex { MilvusAsyncIndex(self) }
}

/// `AsyncVectorIndex` over a `MilvusIndex`, natively async. Milvus orders concurrent calls itself: there is no
/// local lock, and writes are idempotent upserts keyed by path.
final class MilvusAsyncIndex: AsyncVectorIndex {
    let index: MilvusIndex
    var base: any VectorIndex { index }

    let searches: SearchBatcher

    init(_ index: MilvusIndex) {
        self.index = index
        searches = SearchBatcher(index: index)
    }

    func summary() async throws -> (count: Int, strategy: String) {
        (try await index.countAsync(), index.searchStrategy)
    }

    func searchFiles(_ query: [Float], k: Int, minScore: Float) async throws -> [(file: StoredFile, score: Float)] {
        try await searches.search(query, k: k, minScore: minScore)
    }

    func file(id: Int64) async throws -> StoredFile? {
        try await index.rowsAsync(expr: "\(Schema.id) == \(id)", fast: true).first?.file
    }

    func files(paths: [String]) async throws -> [String: StoredFile] {
        let wanted = Set(paths)
        var out: [String: StoredFile] = [:]
        for row in try await index.rowsAsync(paths: paths, fast: true) where wanted.contains(row.path) { out[row.path] = row.file }
        return out
    }

    @discardableResult
    func add(_ records: [FileRecord]) async throws -> UpsertResult { try await index.addAsync(records) }

    @discardableResult
    func remove(paths: [String]) async throws -> [Int64] { try await index.removeAsync(paths: paths) }

    /// Nothing is deferred on the client (see `MilvusIndex.persist`).
    func persist() async throws {}
}

/// Merges the searches that arrive while Milvus is busy into one Search RPC (nq > 1). Each RPC costs Milvus a
/// fixed share (proxy, scheduling, fetching the output fields) that nq > 1 pays once; on a busy server that share,
/// not the graph search, was most of Milvus's CPU per query. A search waits only while `maxInFlight` RPCs are
/// already running: alone it goes out at once, as before; under load the queue empties into the next RPC (up to
/// `maxBatch` queries). A failed RPC fails exactly the searches it carried.
final class SearchBatcher: @unchecked Sendable {
    typealias Hits = [(file: StoredFile, score: Float)]
    struct Pending {
        let query: (vector: [Float], k: Int, minScore: Float)
        let continuation: CheckedContinuation<Hits, any Error>
    }

    let index: MilvusIndex
    let maxInFlight: Int
    let maxBatch: Int
    private let lock = NSLock()
    private var queue: [Pending] = []
    private var inFlight = 0
    /// RPCs sent and queries they carried (tests and the benchmark read them).
    private(set) var rpcs = 0
    private(set) var queries = 0

    init(index: MilvusIndex, maxInFlight: Int = 2, maxBatch: Int = 64) {
        (self.index, self.maxInFlight, self.maxBatch) = (index, max(1, maxInFlight), max(1, maxBatch))
    }

    func search(_ vector: [Float], k: Int, minScore: Float) async throws -> Hits {
        // A bad query fails alone, before it could share an RPC with others.
        guard k >= 1 else { throw IndexError.invalidArgument("k must be at least 1, got \(k)") }
        guard vector.count == index.identity.dim else {
            throw IndexError.dimensionMismatch(context: "search query", expected: index.identity.dim, actual: vector.count)
        }
        return try await withCheckedThrowingContinuation { continuation in
            let start: Bool = lock.withLock {
                queue.append(Pending(query: (vector, k, minScore), continuation: continuation))
                guard inFlight < maxInFlight else { return false }
                inFlight += 1
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Sends batches until the queue is empty, then gives its slot back.
    private func drain() async {
        while true {
            let batch: [Pending] = lock.withLock {
                let n = min(maxBatch, queue.count)
                let taken = Array(queue.prefix(n))
                queue.removeFirst(n)
                if taken.isEmpty { inFlight -= 1 } else { (rpcs, queries) = (rpcs + 1, queries + taken.count) }
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let results = try await index.searchBatchAsync(batch.map(\.query))
                for (p, hits) in zip(batch, results) { p.continuation.resume(returning: hits) }
            } catch {
                for p in batch { p.continuation.resume(throwing: error) }
            }
        }
    }

    var counts: (rpcs: Int, queries: Int) { lock.withLock { (rpcs, queries) } }
}
