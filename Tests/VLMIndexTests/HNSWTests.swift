import Foundation
import Testing
@testable import VLMIndex

@Suite struct HNSWTests {
    static let dim = 16
    static let params = HNSWParameters(M: 8, efConstruction: 32, efSearch: 64, seed: 7)

    static func build(_ vectors: [[Float]], params: HNSWParameters = params) throws -> HNSWIndex {
        let g = try HNSWIndex(dim: vectors[0].count, parameters: params)
        for (i, v) in vectors.enumerated() { try g.insert(label: Int64(i), vector: v) }
        return g
    }

    static func recall(_ g: HNSWIndex, _ vectors: [[Float]], ids: [Int64], queries: [[Float]], k: Int = 10) throws -> Double {
        var hit = 0
        for q in queries {
            let want = Set(TestData.naiveTopK(q, ids, vectors, k: k).map(\.id))
            hit += try g.search(query: q, k: k).filter { want.contains($0.id) }.count
        }
        return Double(hit) / Double(queries.count * k)
    }

    @Test func recallAt10On5k() throws {
        let vectors = TestData.unitVectors(5000, dim: Self.dim, seed: 11)
        let g = try Self.build(vectors)
        let queries = TestData.unitVectors(100, dim: Self.dim, seed: 12)
        let r = try Self.recall(g, vectors, ids: (0..<5000).map(Int64.init), queries: queries)
        #expect(r >= 0.95, "recall@10 = \(r)")
        // Scores are exact inner products, best first.
        let hits = try g.search(query: queries[0], k: 10)
        #expect(hits.count == 10)
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
        let v = vectors[Int(hits[0].id)]
        #expect(abs(hits[0].score - zip(v, queries[0]).reduce(0) { $0 + $1.0 * $1.1 }) < 1e-5)
    }

    @Test func parallelBatchInsert() throws {
        let vectors = TestData.unitVectors(2000, dim: Self.dim, seed: 19)
        let g = try HNSWIndex(dim: Self.dim, parameters: Self.params)
        try g.insert(labels: [5000], vectors: vectors[0].withUnsafeBufferPointer { $0 }, threads: 2)  // into an empty graph
        let rest = Array(vectors[1...])
        try rest.flatMap { $0 }.withUnsafeBufferPointer { buf in
            try g.insert(labels: (1..<2000).map(Int64.init), vectors: buf, threads: 2)
        }
        #expect(g.count == 2000 && g.concurrentLocks == nil)
        var ids = (0..<Int64(2000)).map { $0 }
        ids[0] = 5000
        let r = try Self.recall(g, vectors, ids: ids, queries: TestData.unitVectors(50, dim: Self.dim, seed: 20))
        #expect(r >= 0.95, "recall@10 after a parallel build = \(r)")
        #expect(throws: IndexError.self) { try g.insert(labels: [1], vectors: vectors[1].withUnsafeBufferPointer { $0 }, threads: 2) }
        #expect(throws: IndexError.self) { try g.insert(labels: [7000, 7001], vectors: vectors[1].withUnsafeBufferPointer { $0 }, threads: 2) }
    }

    @Test func deterministicForSeed() throws {
        let vectors = TestData.unitVectors(400, dim: 8, seed: 13)
        let a = try Self.build(vectors), b = try Self.build(vectors)
        let dir = try TestData.directory()
        let info = HNSWIndex.FileInfo(storeID: "s", fingerprint: "f")
        try a.save(to: dir + "/a.hnsw", info: info)
        try b.save(to: dir + "/b.hnsw", info: info)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/a.hnsw")) == Data(contentsOf: URL(fileURLWithPath: dir + "/b.hnsw")))
    }

    @Test func deletedNeverReturned() throws {
        let vectors = TestData.unitVectors(1000, dim: Self.dim, seed: 14)
        let g = try Self.build(vectors)
        var live = Set(0..<Int64(1000))
        for id in stride(from: Int64(0), to: 1000, by: 3) {
            #expect(g.markDeleted(label: id))
            live.remove(id)
        }
        #expect(!g.markDeleted(label: 0))
        for q in vectors.prefix(50) {  // querying with deleted vectors themselves: their own node is best
            let hits = try g.search(query: q, k: 10)
            #expect(hits.count == 10)
            #expect(hits.allSatisfy { live.contains($0.id) })
        }
        let liveIDs = live.sorted()
        let r = try Self.recall(g, liveIDs.map { vectors[Int($0)] }, ids: liveIDs, queries: TestData.unitVectors(50, dim: Self.dim, seed: 15))
        #expect(r >= 0.9, "recall after deletes \(r)")
        let c = try g.compacted()
        #expect(c.count == live.count && c.deletedCount == 0)
        #expect(Set(c.liveLabels) == live)
        // Re-adding a deleted label works; a live one is refused.
        try g.insert(label: 0, vector: vectors[0])
        #expect(try g.search(query: vectors[0], k: 1).first?.id == 0)
        #expect(throws: IndexError.self) { try g.insert(label: 1, vector: vectors[1]) }
    }

    @Test func persistenceRoundTrip() throws {
        let vectors = TestData.unitVectors(800, dim: Self.dim, seed: 16)
        let g = try Self.build(vectors)
        g.markDeleted(label: 5)
        let path = try TestData.directory() + "/g.hnsw"
        try g.save(to: path, info: .init(storeID: "store-1", fingerprint: "model-x"))
        let (h, info) = try HNSWIndex.load(from: path)
        #expect(info == .init(storeID: "store-1", fingerprint: "model-x"))
        #expect(h.count == g.count && h.deletedCount == 1 && h.parameters == g.parameters)
        for q in TestData.unitVectors(20, dim: Self.dim, seed: 17) {
            #expect(try h.search(query: q, k: 5) == g.search(query: q, k: 5))
        }
        // Inserting after a reload continues the same level sequence as without the reload.
        try g.insert(label: 9999, vector: vectors[0])
        try h.insert(label: 9999, vector: vectors[0])
        #expect(h.levels.last == g.levels.last)
    }

    @Test func corruptFilesAreRejected() throws {
        let vectors = TestData.unitVectors(200, dim: 8, seed: 18)
        let g = try Self.build(vectors)
        let path = try TestData.directory() + "/g.hnsw"
        try g.save(to: path, info: .init(storeID: "s", fingerprint: "f"))
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        for (name, bytes) in [("flipped", flipped), ("truncated", good.prefix(good.count - 100)), ("empty", Data()), ("junk", Data(repeating: 7, count: 4096))] {
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: IndexError.self, "\(name)") { try HNSWIndex.load(from: path) }
        }
        #expect(throws: IndexError.self) { try HNSWIndex.load(from: path + ".missing") }
    }

    @Test func emptyAndTinyGraphs() throws {
        let g = try HNSWIndex(dim: 3, parameters: Self.params)
        #expect(try g.search(query: [1, 0, 0], k: 3).isEmpty)
        try g.insert(label: 42, vector: [1, 0, 0])
        #expect(try g.search(query: [0, 1, 0], k: 3).map(\.id) == [42])
        #expect(try g.search(query: [1, 0, 0], k: 3, minScore: 1.5).isEmpty)
        #expect(throws: IndexError.self) { try g.insert(label: 43, vector: [1, 0]) }
        #expect(throws: IndexError.self) { try HNSWIndex(dim: 3, parameters: HNSWParameters(M: 1)) }
        let path = try TestData.directory() + "/tiny.hnsw"
        try HNSWIndex(dim: 3).save(to: path, info: .init(storeID: "", fingerprint: ""))
        #expect(try HNSWIndex.load(from: path).index.count == 0)
    }
}
