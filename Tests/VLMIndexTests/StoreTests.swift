import Foundation
import GRDB
import Testing
@testable import VLMIndex
import VLMTestSupport

@Suite struct StoreTests {
    let model = ModelIdentity(fingerprint: "clip-test/abc123/4", dim: 4)

    @Test func roundTripAndWAL() throws {
        let dir = try TestData.directory()
        let path = dir + "/index.sqlite"
        do {
            let store = try VectorStore(path: path, model: model)
            #expect(try store.journalMode() == "wal")
            let result = try store.upsert([TestData.record("/a.jpg", [1, 0, 0, 0]), TestData.record("/b.jpg", [0, 1, 0, 0])])
            #expect(result.inserted.count == 2 && result.replaced.isEmpty)
        }
        let store = try VectorStore(path: path, model: model)
        #expect(try store.allPaths() == ["/a.jpg", "/b.jpg"])
        let ids = try store.embeddingIDs()
        #expect(ids.count == 2)
        #expect(try store.vector(embeddingID: ids[1]) == [0, 1, 0, 0])
        let files = try store.files(embeddingIDs: ids)
        #expect(files[ids[0]]?.path == "/a.jpg")
        #expect(files[ids[0]]?.metadata == "{\"w\":1}")
        #expect(files[ids[0]]?.contentHash == "h-/a.jpg")
        let stats = try store.stats()
        #expect(stats.files == 2 && stats.embeddings == 2 && stats.dim == 4 && stats.totalFileBytes == 200)
        #expect(try VectorStore.storedIdentity(path: path) == model)
    }

    @Test func reembeddingGetsNewIDAndReportsReplacement() throws {
        let store = try VectorStore(path: try TestData.directory() + "/i.sqlite", model: model)
        let first = try store.upsert([TestData.record("/a.jpg", [1, 0, 0, 0])])
        let second = try store.upsert([TestData.record("/a.jpg", [0, 0, 1, 0], size: 5)])
        #expect(second.replaced == [first.inserted[0].id])
        #expect(second.inserted[0].id > first.inserted[0].id)
        #expect(try store.embeddingIDs() == [second.inserted[0].id])
        // The same path twice in one batch keeps only the last, and reports only that.
        let third = try store.upsert([TestData.record("/b.jpg", [1, 0, 0, 0]), TestData.record("/b.jpg", [0, 1, 0, 0])])
        #expect(third.inserted.count == 1 && third.replaced.isEmpty)
        #expect(try store.vector(embeddingID: third.inserted[0].id) == [0, 1, 0, 0])
    }

    @Test func modelMismatchRefusedOrRebuilt() throws {
        let path = try TestData.directory() + "/i.sqlite"
        let oldID: String
        do {
            let store = try VectorStore(path: path, model: model)
            try store.upsert([TestData.record("/a.jpg", [1, 0, 0, 0])])
            oldID = store.storeID
        }
        let other = ModelIdentity(fingerprint: "siglip/zzz/4", dim: 4)
        #expect(throws: IndexError.self) { try VectorStore(path: path, model: other) }
        do {
            _ = try VectorStore(path: path, model: other)
        } catch let error as IndexError {
            guard case let .modelMismatch(p, stored, requested) = error else { Issue.record("wrong error \(error)"); return }
            #expect(p == path && stored.contains("clip-test") && requested.contains("siglip"))
        }
        // Same fingerprint, other dim: also refused.
        #expect(throws: IndexError.self) { try VectorStore(path: path, model: ModelIdentity(fingerprint: model.fingerprint, dim: 8)) }
        // Nothing was touched by the refusals.
        #expect(try VectorStore(path: path, model: model).allPaths() == ["/a.jpg"])
        let rebuilt = try VectorStore(path: path, model: other, onMismatch: .rebuild)
        #expect(try rebuilt.allPaths().isEmpty)
        #expect(rebuilt.storeID != oldID)
        #expect(try VectorStore.storedIdentity(path: path) == other)
    }

    @Test func dimensionAndFinitenessChecked() throws {
        let store = try VectorStore(path: try TestData.directory() + "/i.sqlite", model: model)
        #expect(throws: IndexError.dimensionMismatch(context: "/x.jpg", expected: 4, actual: 3)) {
            try store.upsert([TestData.record("/x.jpg", [1, 0, 0])])
        }
        #expect(throws: IndexError.self) { try store.upsert([TestData.record("/y.jpg", [.nan, 0, 0, 0])]) }
        #expect(try store.allPaths().isEmpty)
    }

    @Test func incrementalPlanning() throws {
        let store = try VectorStore(path: try TestData.directory() + "/i.sqlite", model: model)
        try store.upsert([
            TestData.record("/d/same.jpg", [1, 0, 0, 0], size: 10, mtime: 1, hash: "H1"),
            TestData.record("/d/touched.jpg", [0, 1, 0, 0], size: 20, mtime: 2, hash: "H2"),
            TestData.record("/d/edited.jpg", [0, 0, 1, 0], size: 30, mtime: 3, hash: "H3"),
            TestData.record("/d/gone.jpg", [0, 0, 0, 1], size: 40, mtime: 4, hash: "H4"),
        ])
        let onDisk = [
            FileStat(path: "/d/same.jpg", size: 10, mtime: 1),
            FileStat(path: "/d/touched.jpg", size: 20, mtime: 99),  // mtime changed, content did not
            FileStat(path: "/d/edited.jpg", size: 31, mtime: 3),
            FileStat(path: "/d/new.jpg", size: 50, mtime: 5),
        ]
        let contents = ["/d/touched.jpg": "H2", "/d/edited.jpg": "H3-new"]
        var hashed: [String] = []
        let plan = try store.plan(onDisk) { path in
            hashed.append(path)
            return contents[path] ?? "?"
        }
        #expect(plan.new.map(\.path) == ["/d/new.jpg"])
        #expect(plan.changed.map(\.path) == ["/d/edited.jpg"])
        #expect(Set(plan.unchanged.map(\.path)) == ["/d/same.jpg", "/d/touched.jpg"])
        #expect(plan.hashes == ["/d/edited.jpg": "H3-new"])
        #expect(Set(hashed) == ["/d/touched.jpg", "/d/edited.jpg"])  // unchanged size+mtime: never read
        // The touch was recorded: the next plan does not hash it again.
        hashed = []
        _ = try store.plan(onDisk) { path in
            hashed.append(path)
            return contents[path] ?? "?"
        }
        #expect(hashed == ["/d/edited.jpg"])
        // sync: gone.jpg is not on disk any more; files outside the root are kept.
        try store.upsert([TestData.record("/elsewhere/x.jpg", [1, 0, 0, 0])])
        let removed = try store.removeMissing(present: Set(onDisk.map(\.path)), under: "/d")
        #expect(removed.paths == ["/d/gone.jpg"] && removed.embeddingIDs.count == 1)
        #expect(try store.allPaths() == ["/d/edited.jpg", "/d/same.jpg", "/d/touched.jpg", "/elsewhere/x.jpg"])
        #expect(try store.remove(paths: ["/elsewhere/x.jpg", "/not/there"]).count == 1)
    }

    @Test func batchIsAtomic() throws {
        let path = try TestData.directory() + "/i.sqlite"
        let store = try VectorStore(path: path, model: model)
        try store.upsert([TestData.record("/1.jpg", [1, 0, 0, 0])])
        // A bad record anywhere in a batch: nothing of that batch is written.
        #expect(throws: IndexError.self) {
            try store.upsert([TestData.record("/2.jpg", [0, 1, 0, 0]), TestData.record("/3.jpg", [0, 1])])
        }
        #expect(try store.allPaths() == ["/1.jpg"])
    }

    /// An interrupted writer (a transaction left open when its connection goes away, as after
    /// kill -9) leaves what was committed before and nothing of the open transaction.
    @Test func uncommittedTransactionLeavesNoTrace() throws {
        let path = try TestData.directory() + "/i.sqlite"
        do {
            let store = try VectorStore(path: path, model: model)
            try store.upsert([TestData.record("/committed.jpg", [1, 0, 0, 0])])
        }
        do {
            var config = Configuration()
            config.allowsUnsafeTransactions = true
            let raw = try DatabaseQueue(path: path, configuration: config)
            try raw.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(sql: "INSERT INTO files (path, size, mtime, content_hash, added_at, updated_at) VALUES ('/half.jpg', 1, 1, 'x', 0, 0)")
                try db.execute(sql: "INSERT INTO embeddings (file_id, vector) VALUES (last_insert_rowid(), x'00000000')")
            }
            // The connection is dropped with the transaction open: SQLite rolls it back.
        }
        let store = try VectorStore(path: path, model: model)
        #expect(try store.allPaths() == ["/committed.jpg"])
        #expect(try store.embeddingIDs().count == 1)
        var seen = 0
        try store.forEachEmbedding { _, v in
            seen += 1
            #expect(Array(v) == [1, 0, 0, 0])
        }
        #expect(seen == 1)
    }

    @Test func sha256KnownVectors() throws {
        #expect(SHA256Hasher.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hasher.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hasher.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd pieces equals one shot; a file hashes like its bytes.
        let bytes = Data((0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var h = SHA256Hasher()
        var i = 0
        for piece in [1, 63, 64, 65, 1000, 7] {
            h.update(bytes[i..<(i + piece)])
            i += piece
        }
        h.update(bytes[i...])
        #expect(h.finalize().map { String(format: "%02x", $0) }.joined() == SHA256Hasher.hex(bytes))
        let file = try TestData.directory() + "/blob.bin"
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect(try SHA256Hasher.hex(fileAt: file) == SHA256Hasher.hex(bytes))
        #expect(throws: IndexError.self) { try SHA256Hasher.hex(fileAt: file + ".missing") }
    }

    /// The digests stored in indexes made before swift-crypto replaced our own SHA-256 stay the same: the
    /// expected values come from outside (Python's hashlib, `sha256sum`), not from either implementation.
    @Test func sha256MatchesDigestsOfExistingIndexes() throws {
        let pattern = Data((0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        #expect(SHA256Hasher.hex(pattern) == "6175386a783431614d8e89d2b2f8e8fd1ef28f0c97308740a0f17dfac7ec5031")  // hashlib
        #expect(SHA256Hasher.hex(Data(repeating: 0x61, count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")  // FIPS 180-2, one million "a"
        let photo = Fixtures.url("clip/images/chelsea.jpg").path
        #expect(try SHA256Hasher.hex(fileAt: photo) == "de3a22b2477e730c8ccece80584d7290d1d44db5fb75e0291d81cf98cb4951aa")  // sha256sum
    }
}
