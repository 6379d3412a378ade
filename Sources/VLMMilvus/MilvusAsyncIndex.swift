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

    init(_ index: MilvusIndex) { self.index = index }

    func summary() async throws -> (count: Int, strategy: String) {
        (try await index.countAsync(), index.searchStrategy)
    }

    func searchFiles(_ query: [Float], k: Int, minScore: Float) async throws -> [(file: StoredFile, score: Float)] {
        try await index.searchAsync(query, k: k, minScore: minScore)
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
