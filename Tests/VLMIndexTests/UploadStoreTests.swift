import Foundation
import Testing
@testable import VLMIndex

/// The uploads directory against the index: what `vlm index stats --check` reports and what the server's
/// start-up sweep removes (the kill -9 end-to-end test is ServerKillTests).
@Suite struct UploadStoreTests {
    static let model = ModelIdentity(fingerprint: "test-model/1/8", dim: 8)

    /// An index with two uploads written through the store, and the store.
    func setUp() throws -> (SearchIndex, UploadStore, [String]) {
        let dir = try TestData.directory()
        let index = try SearchIndex(path: dir + "/idx.sqlite", model: Self.model)
        let store = UploadStore(directory: dir + "/idx.sqlite.uploads")
        try FileManager.default.createDirectory(atPath: store.directory, withIntermediateDirectories: true)
        var paths: [String] = []
        for (i, v) in TestData.unitVectors(2, dim: 8, seed: 5).enumerated() {
            let data = Data("image \(i)".utf8)
            let hash = SHA256Hasher.hex(data)
            let path = store.directory + "/" + UploadStore.fileName(hash: hash, ext: "png")
            try store.write(data, to: path)
            try index.add([TestData.record(path, v, size: Int64(data.count), hash: hash)])
            paths.append(path)
        }
        return (index, store, paths)
    }

    @Test func consistentStoreHasNoProblemsAndNothingToSweep() throws {
        let (index, store, _) = try setUp()
        #expect(try store.check(index: index) == [])
        #expect(try store.sweep(index: index) == [])
        #expect(try index.check() == [])
    }

    /// A crash between writing a file and committing it (or committing a delete and unlinking), and one inside
    /// the write (a temporary left): reported, then swept; files that are not the store's are left alone.
    @Test func orphansAndTemporariesAreReportedThenSwept() throws {
        let (index, store, paths) = try setUp()
        let orphan = store.directory + "/" + String(repeating: "ab", count: 16) + ".jpg"
        try Data("orphan".utf8).write(to: URL(fileURLWithPath: orphan))
        try Data("half".utf8).write(to: URL(fileURLWithPath: store.directory + "/.upload-X.tmp"))
        try Data("user".utf8).write(to: URL(fileURLWithPath: store.directory + "/notes.txt"))
        try index.remove(paths: [paths[1]])  // committed delete, file not yet unlinked
        let problems = try store.check(index: index)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("2 file(s)") && $0.contains("with no index entry") })
        #expect(problems.contains { $0.hasPrefix("1 unfinished temporary") })
        let swept = try store.sweep(index: index)
        #expect(Set(swept) == [".upload-X.tmp", (orphan as NSString).lastPathComponent, (paths[1] as NSString).lastPathComponent])
        #expect(try store.check(index: index) == [])
        #expect(FileManager.default.fileExists(atPath: store.directory + "/notes.txt"))
        #expect(FileManager.default.fileExists(atPath: paths[0]))
    }

    /// An indexed upload missing or with other bytes than its content hash: reported (never swept: the entry
    /// is the truth, the file is what is wrong).
    @Test func missingAndDamagedUploadsAreReported() throws {
        let (index, store, paths) = try setUp()
        try FileManager.default.removeItem(atPath: paths[0])
        try Data("image 1 but cut".utf8).write(to: URL(fileURLWithPath: paths[1]))
        let problems = try store.check(index: index)
        #expect(problems.count == 2, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("1 indexed upload(s) missing") })
        #expect(problems.contains { $0.hasPrefix("1 upload(s) whose bytes differ") })
        #expect(try store.sweep(index: index) == [])
    }

    /// A graph file that is not a whole graph (a write cut short) is reported by the index's own check.
    @Test func unusableGraphFileIsReported() throws {
        let (index, _, _) = try setUp()
        let graph = try #require(index.configuration.hnswPath)
        try Data("VLMHNSW\0 cut short".utf8).write(to: URL(fileURLWithPath: graph))
        let problems = try index.check()
        #expect(problems.count == 1 && problems[0].contains("is unusable"), "\(problems)")
    }
}
