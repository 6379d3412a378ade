import Foundation
import XCTest
import VLMIndex
import VLMTestSupport
@testable import VLMMilvus

/// The Milvus backend against a real Milvus (VLM_TEST_MILVUS=host:port; Scripts/milvus-server.sh starts one):
/// add, search parity with the SQLite store's exact search on the same vectors, delete, sync, planning,
/// idempotent re-writes, and another model refused. Each test uses its own collection and drops it.
final class MilvusIndexTests: XCTestCase {
    static let dim = 32
    let model = ModelIdentity(fingerprint: "test-model/0123/32", dim: 32)
    var uri: MilvusURI!

    override func setUpWithError() throws {
        switch MilvusTestServer.address() {
        case .failure(let reason): throw XCTSkip(reason.message)
        case .success(let (host, port)): uri = MilvusURI(host: host, port: port, collection: MilvusTestServer.collectionName("vlmtest"))
        }
    }

    override func tearDownWithError() throws {
        if let uri { try? MilvusIndex.drop(uri: uri) }
    }

    /// Deterministic unit vectors (xorshift), one per path.
    static func records(_ n: Int, seed: UInt64 = 7, prefix: String = "/data/photos") -> [FileRecord] {
        var state = seed
        func next() -> Float {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state % 2_000_001) / 1_000_000 - 1
        }
        return (0 ..< n).map { i in
            var v = (0 ..< dim).map { _ in next() }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            v = v.map { $0 / norm }
            return FileRecord(stat: FileStat(path: "\(prefix)/d\(i % 5)/img\(i).jpg", size: Int64(1000 + i), mtime: 1_700_000_000 + Double(i)),
                              contentHash: String(format: "%064x", i), metadata: i % 2 == 0 ? "{\"name\":\"n\(i)\"}" : nil, vector: v)
        }
    }

    func testAddSearchParityWithTheSQLiteExactSearch() throws {
        let records = Self.records(600)
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(records)
        XCTAssertEqual(try milvus.entryCount(), 600)
        let sqlitePath = TestScratch.root.appendingPathComponent("vlm-parity-\(UUID().uuidString).sqlite").path
        let local = try SearchIndex(path: sqlitePath, model: model)
        try local.add(records)
        XCTAssertEqual(local.strategy, .exact)
        for q in Self.records(20, seed: 99, prefix: "/q") {
            let expected = try local.searchFiles(q.vector, k: 10)
            let got = try milvus.searchFiles(q.vector, k: 10, minScore: -.infinity)
            XCTAssertEqual(got.count, 10)
            for (e, g) in zip(expected, got) {
                XCTAssertEqual(e.score, g.score, accuracy: 1e-5)  // float32 dot products summed in another order
                // Equal paths, except where two neighbours tie within rounding and may swap.
                if e.file.path != g.file.path {
                    XCTAssertTrue(expected.contains { $0.file.path == g.file.path && abs($0.score - g.score) < 1e-5 }, "\(g.file.path)")
                }
            }
            let top = try XCTUnwrap(got.first)
            let record = try XCTUnwrap(records.first { $0.stat.path == top.file.path })
            XCTAssertEqual(top.file.size, record.stat.size)
            XCTAssertEqual(top.file.mtime, record.stat.mtime)
            XCTAssertEqual(top.file.contentHash, record.contentHash)
            XCTAssertEqual(top.file.metadata, record.metadata)
        }
        // minScore filters; the stored vector of a record is found first with score 1.
        let own = try milvus.searchFiles(records[42].vector, k: 3, minScore: 0.999)
        XCTAssertEqual(own.map(\.file.path), [records[42].stat.path])
        XCTAssertEqual(own.first?.score ?? 0, 1, accuracy: 1e-5)
    }

    /// A Go gRPC server PINGs after nearly every request it reads (BDP estimation); without the answerer below the
    /// HTTP/2 handler, swift-nio-http2 closed the connection as a PING flood after ~200 calls and failed the calls
    /// in flight (see PingAnsweringHandler). 600 calls must run on the one connection the client opened.
    func testOneConnectionCarriesManyCalls() throws {
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(Self.records(50))
        for q in Self.records(600, seed: 5, prefix: "/q") { XCTAssertEqual(try milvus.searchFiles(q.vector, k: 3, minScore: -.infinity).count, 3) }
        XCTAssertEqual(milvus.client.connections.value, 1)
    }

    /// Concurrent searches through the server's async face share Search RPCs (nq > 1) and each gets exactly the
    /// hits it would get alone: its own k, its own minScore, in order.
    func testConcurrentSearchesAreBatchedAndEachGetsItsOwnHits() async throws {
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(Self.records(300))
        let queries = Self.records(64, seed: 11, prefix: "/q").enumerated().map { (i, r) in (r.vector, 1 + i % 7, i % 3 == 0 ? Float(0.2) : -.infinity) }
        let alone = try queries.map { try milvus.searchFiles($0.0, k: $0.1, minScore: $0.2) }
        let async = try XCTUnwrap(milvus.makeAsync() as? MilvusAsyncIndex)
        let together = try await withThrowingTaskGroup(of: (Int, [(file: StoredFile, score: Float)]).self) { group in
            for (i, q) in queries.enumerated() { group.addTask { (i, try await async.searchFiles(q.0, k: q.1, minScore: q.2)) } }
            var out = [[(file: StoredFile, score: Float)]](repeating: [], count: queries.count)
            for try await (i, hits) in group { out[i] = hits }
            return out
        }
        for (i, (a, t)) in zip(alone, together).enumerated() {
            XCTAssertEqual(a.map(\.file.path), t.map(\.file.path), "query \(i)")
            XCTAssertEqual(a.map(\.score), t.map(\.score), "query \(i)")
            XCTAssertLessThanOrEqual(t.count, queries[i].1)
        }
        let counts = async.searches.counts
        XCTAssertEqual(counts.queries, 64)
        XCTAssertLessThan(counts.rpcs, 64, "no two searches shared an RPC")
        // A malformed query fails alone, next to good ones.
        async let bad = async.searchFiles([1, 0, 0], k: 3, minScore: -.infinity)
        async let good = async.searchFiles(queries[0].0, k: 3, minScore: -.infinity)
        do { _ = try await bad; XCTFail("a 3-d query was searched") } catch { XCTAssertTrue("\(error)".contains("dimension"), "\(error)") }
        let goodHits = try await good
        XCTAssertEqual(goodHits.map(\.file.path), try milvus.searchFiles(queries[0].0, k: 3, minScore: -.infinity).map(\.file.path))
    }

    func testUpsertsAreIdempotentAndFilesAreFoundByPathAndID() throws {
        let records = Self.records(50)
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(records)
        try milvus.add(records)  // a worker restarted after a batch it had written: nothing doubles
        try milvus.add(Array(records[10 ..< 20]))
        XCTAssertEqual(try milvus.entryCount(), 50)
        XCTAssertEqual(try milvus.allPaths(), records.map(\.stat.path).sorted())
        let file = try XCTUnwrap(try milvus.file(path: records[3].stat.path))
        XCTAssertEqual(file.contentHash, records[3].contentHash)
        XCTAssertEqual(try milvus.file(id: file.fileID)?.path, records[3].stat.path)
        XCTAssertNil(try milvus.file(path: "/nowhere.jpg"))
        XCTAssertNil(try milvus.file(id: 12345))
        XCTAssertEqual(try milvus.check(), [])
        let stats = try milvus.stats()
        XCTAssertEqual(stats.files, 50)
        XCTAssertEqual(stats.totalFileBytes, records.reduce(0) { $0 + $1.stat.size })
    }

    func testRemoveAndSyncDeleteOnlyWhatIsGone() throws {
        let records = Self.records(40) + Self.records(5, seed: 3, prefix: "/other")
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(records)
        let removed = try milvus.remove(paths: [records[0].stat.path, records[1].stat.path, "/not/stored.jpg"])
        XCTAssertEqual(removed.count, 2)
        XCTAssertEqual(try milvus.entryCount(), 43)
        XCTAssertTrue(try milvus.searchFiles(records[0].vector, k: 5, minScore: -.infinity).allSatisfy { $0.file.path != records[0].stat.path })
        // sync of /data/photos with 30 files still there: 8 more go, /other stays.
        let present = Set(records[2 ..< 32].map(\.stat.path))
        let gone = try milvus.removeMissing(present: present, under: "/data/photos")
        XCTAssertEqual(gone, records[32 ..< 40].map(\.stat.path).sorted())
        XCTAssertEqual(Set(try milvus.allPaths()), present.union(records[40...].map(\.stat.path)))
    }

    func testPlanSkipsUnchangedAndReembedsChangedFiles() throws {
        let records = Self.records(6)
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(Array(records[0 ..< 4]))
        let s = records.map(\.stat)
        let touched = FileStat(path: s[1].path, size: s[1].size, mtime: s[1].mtime + 10)  // same bytes, new mtime
        let changed = FileStat(path: s[2].path, size: s[2].size + 1, mtime: s[2].mtime + 10)
        let hashes = [s[1].path: records[1].contentHash, s[2].path: "changed"]
        let plan = try milvus.plan([s[0], touched, changed, s[3], s[4], s[5]]) { path in
            guard let h = hashes[path] else { throw IndexError.io(path: path, message: "hashed an unchanged file") }
            return h
        }
        XCTAssertEqual(plan.unchanged.map(\.path), [s[0].path, s[1].path, s[3].path])
        XCTAssertEqual(plan.changed.map(\.path), [s[2].path])
        XCTAssertEqual(plan.new.map(\.path), [s[4].path, s[5].path])
        XCTAssertEqual(try milvus.file(path: s[1].path)?.mtime, touched.mtime, "a touched file's mtime is refreshed")
    }

    func testAnotherModelIsRefusedAndRebuildStartsOver() throws {
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(Self.records(5))
        let other = ModelIdentity(fingerprint: "other-model/ffff/32", dim: 32)
        XCTAssertThrowsError(try MilvusIndex.open(uri: uri, model: other)) { error in
            guard case IndexError.modelMismatch = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("test-model/0123/32") && "\(error)".contains("other-model/ffff/32"), "\(error)")
        }
        let existing = try MilvusIndex.open(uri: uri, model: nil)
        XCTAssertEqual(existing.identity, model, "opened with the identity recorded in the collection")
        let rebuilt = try MilvusIndex.open(uri: uri, model: other, onMismatch: .rebuild)
        XCTAssertEqual(try rebuilt.entryCount(), 0)
        XCTAssertThrowsError(try rebuilt.add(Self.records(1).map { FileRecord(stat: $0.stat, contentHash: "", vector: [1, 0]) }))
    }

    func testDuplicatesAreFoundAcrossTheCollection() throws {
        var records = Self.records(30)
        let twin = records[7]
        records.append(FileRecord(stat: FileStat(path: "/data/photos/copy.jpg", size: 1, mtime: 1), contentHash: twin.contentHash, vector: twin.vector))
        let milvus = try MilvusIndex.open(uri: uri, model: model)
        try milvus.add(records)
        let pairs = try milvus.duplicateFiles(threshold: 0.9999, limit: 10)
        XCTAssertEqual(pairs.count, 1)
        XCTAssertEqual(Set([pairs[0].a.path, pairs[0].b.path]), [twin.stat.path, "/data/photos/copy.jpg"])
    }

    func testOpeningAMissingCollectionWithoutAModelNamesIt() throws {
        XCTAssertThrowsError(try MilvusIndex.open(uri: uri, model: nil)) { error in
            XCTAssertEqual(error as? MilvusError, .noCollection(uri.collection))
        }
    }
}
