import Foundation
import Testing
@testable import VLMIndex

@Suite struct SearchIndexTests {
    static let dim = 8
    static let model = ModelIdentity(fingerprint: "test-model/1/8", dim: dim)
    static func config(threshold: Int = 50) -> SearchConfiguration {
        SearchConfiguration(hnswThreshold: threshold, hnsw: HNSWParameters(M: 8, efConstruction: 32, efSearch: 64, seed: 3))
    }

    static func records(_ vectors: [[Float]], from start: Int = 0) -> [FileRecord] {
        vectors.enumerated().map { TestData.record("/img/\(start + $0.offset).jpg", $0.element) }
    }

    @Test func switchesToHNSWAndPersists() throws {
        let path = try TestData.directory() + "/idx.sqlite"
        let vectors = TestData.unitVectors(120, dim: Self.dim, seed: 21)
        do {
            let index = try SearchIndex(path: path, model: Self.model, configuration: Self.config())
            try index.add(Self.records(Array(vectors[0..<30])))
            #expect(index.strategy == .exact && index.hnsw == nil)
            try index.add(Self.records(Array(vectors[30..<120]), from: 30))
            #expect(index.strategy == .hnsw && index.hnsw?.liveCount == 120)
            #expect(index.hnswOutcome == .rebuilt(reason: "no graph file"))
            try index.persist()
            let hits = try index.searchFiles(vectors[7], k: 3)
            #expect(hits.first?.file.path == "/img/7.jpg")
            #expect(abs((hits.first?.score ?? 0) - 1) < 1e-5)
        }
        // Reopen: the graph file is current, so it is loaded as is.
        do {
            let index = try SearchIndex(path: path, model: Self.model, configuration: Self.config())
            #expect(index.hnswOutcome == .loaded)
            #expect(try index.search(vectors[99], k: 1).first.map { $0.score > 0.9999 } == true)
            // Writes without persist(): the file lags behind the store...
            try index.remove(paths: ["/img/0.jpg", "/img/1.jpg"])
            try index.add([TestData.record("/img/new.jpg", vectors[0])])
        }
        // ...and is reconciled by id sets on the next open; removed files never come back.
        let index = try SearchIndex(path: path, model: Self.model, configuration: Self.config())
        #expect(index.hnswOutcome == .reconciled(inserted: 1, deleted: 2))
        let hits = try index.searchFiles(vectors[0], k: 5)
        #expect(hits.first?.file.path == "/img/new.jpg")
        #expect(!hits.contains { $0.file.path == "/img/0.jpg" || $0.file.path == "/img/1.jpg" })
        for q in vectors.prefix(20) {
            let got = try index.search(q, k: 10).map(\.id)
            let want = try index.exact.search(query: q, k: 10).map(\.id)
            #expect(Set(got).intersection(want).count >= 8)
        }
    }

    @Test func corruptOrForeignGraphIsRebuilt() throws {
        let dir = try TestData.directory()
        let path = dir + "/idx.sqlite"
        let vectors = TestData.unitVectors(80, dim: Self.dim, seed: 22)
        do {
            let index = try SearchIndex(path: path, model: Self.model, configuration: Self.config())
            try index.add(Self.records(vectors))
            try index.persist()
        }
        let graphPath = SearchConfiguration.defaultHNSWPath(forDatabase: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: graphPath))
        bytes[bytes.count / 3] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: graphPath))
        do {
            let index = try SearchIndex(path: path, model: Self.model, configuration: Self.config())
            guard case let .rebuilt(reason) = index.hnswOutcome else { Issue.record("corrupt graph was trusted: \(index.hnswOutcome)"); return }
            #expect(reason.contains("checksum"))
            #expect(try index.search(vectors[5], k: 1).first?.score ?? 0 > 0.9999)
            try index.persist()
        }
        // A graph of another store lineage (the store was rebuilt for another model) is not trusted.
        let other = ModelIdentity(fingerprint: "other/2/8", dim: Self.dim)
        let index = try SearchIndex(path: path, model: other, onMismatch: .rebuild, configuration: Self.config())
        #expect(index.count == 0 && index.hnsw == nil)
        try index.add(Self.records(vectors))
        #expect(index.hnswOutcome == .rebuilt(reason: "graph belongs to another store or model"))
    }

    @Test func tombstonesTriggerCompactionOrFallback() throws {
        let vectors = TestData.unitVectors(100, dim: Self.dim, seed: 23)
        let index = try SearchIndex(store: try VectorStore(path: try TestData.directory() + "/i.sqlite", model: Self.model),
                                    configuration: Self.config(threshold: 40))
        try index.add(Self.records(vectors))
        try index.remove(paths: (0..<25).map { "/img/\($0).jpg" })  // 25% > 20%: compacted
        #expect(index.hnsw?.deletedCount == 0 && index.hnsw?.count == 75)
        try index.remove(paths: (25..<70).map { "/img/\($0).jpg" })  // below the threshold: exact again
        #expect(index.strategy == .exact && index.count == 30)
        let present = Set((70..<90).map { "/img/\($0).jpg" })
        #expect(try index.removeMissing(present: present, under: "/img").count == 10)
        #expect(index.count == 20)
        #expect(try index.search(vectors[95], k: 1).first?.score ?? 0 < 0.9999)
        let pairs = try index.duplicates(threshold: 0.99999)
        #expect(pairs.isEmpty)
        try index.add([TestData.record("/copy.jpg", vectors[80])])
        let dupes = try index.duplicates(threshold: 0.99999)
        #expect(dupes.count == 1)
    }
}
