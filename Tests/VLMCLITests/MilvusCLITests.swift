import Foundation
import XCTest
import VLMTestSupport

/// `vlm index` against a real Milvus (VLM_TEST_MILVUS=host:port): two ingest processes filling one collection at
/// once (sharded and not), the same commands as with SQLite, another model refused, and Milvus restarted in the
/// middle of an ingest (with VLM_TEST_MILVUS_RESTART set to a command that restarts it, as `.ci/run` does).
final class MilvusCLITests: XCTestCase {
    let model = Fixtures.url("clip/tiny-a").path
    var index = ""

    struct Stats: Decodable { let files: Int; let embeddings: Int; let dim: Int; let problems: [String]? }
    struct Hit: Decodable { let path: String; let score: Float; let rank: Int }

    override func setUpWithError() throws {
        switch MilvusTestServer.address() {
        case .failure(let reason): throw XCTSkip(reason.message)
        case .success(let (host, port)): index = "milvus://\(host):\(port)/\(MilvusTestServer.collectionName("vlmcli"))"
        }
        guard Executables.vlm != nil else { throw XCTSkip("vlm executable not built") }
    }

    /// `count` distinct image files (the fixture photos, round robin) in nested folders.
    func library(_ count: Int) throws -> URL {
        let root = TestScratch.root.appendingPathComponent("vlm-milvus-\(UUID().uuidString)/images")
        let names = ["chelsea.jpg", "coffee.png", "astronaut.jpg"]
        for i in 0 ..< count {
            let dir = root.appendingPathComponent("d\(i % 4)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("clip/images/\(names[i % 3])"), to: dir.appendingPathComponent("\(i)-\(names[i % 3])"))
        }
        return root
    }

    func start(_ args: [String], environment extra: [String: String] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = Executables.vlm
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        (process.standardOutput, process.standardError) = (out, err)
        try process.run()
        return (process, out, err)
    }

    func finish(_ p: (Process, Pipe, Pipe)) -> (status: Int32, stdout: String, stderr: String) {
        let err = p.2.fileHandleForReading.readDataToEndOfFile()
        let out = p.1.fileHandleForReading.readDataToEndOfFile()
        p.0.waitUntilExit()
        return (p.0.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// Runs `sh -c command` to completion (posix_spawn + waitpid: Foundation's Process.waitUntilExit was seen to
    /// miss the exit of a shell whose children detach). Returns the wait status (0: exited with 0).
    static func shell(_ command: String) -> Int32 {
        var pid: pid_t = 0
        let words: [String] = ["/bin/sh", "-c", command]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ) == 0 else { return -1 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { return -1 }
        }
        return status
    }

    func stats() throws -> Stats {
        let r = try Executables.run(["index", "stats", "--index", index, "--json", "--check"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONDecoder().decode(Stats.self, from: Data(r.stdout.utf8))
    }

    func testTwoShardedWorkersFillOneCollectionThenSearchSyncAndRemoveWork() throws {
        let images = try library(24)
        let workers = try (0 ..< 2).map { k in
            try start(["index", "add", images.path, "--index", index, "--model", model, "--shard", "\(k)/2", "--batch", "4", "--quiet"])
        }
        let results = workers.map(finish)
        for r in results { XCTAssertEqual(r.status, 0, r.stderr) }
        let added = results.compactMap { r in r.stdout.split(separator: " ").dropFirst().first.flatMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) } }
        XCTAssertEqual(added.reduce(0, +), 24, "\(results.map(\.stdout))")
        XCTAssertTrue(added.allSatisfy { $0 > 0 }, "both shards got work: \(added)")
        let s = try stats()
        XCTAssertEqual(s.files, 24)
        XCTAssertEqual(s.dim, 12)
        XCTAssertEqual(s.problems, [])

        let again = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--quiet"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stdout.contains("added 0, re-embedded 0, unchanged 24"), again.stdout)

        let coffee = images.appendingPathComponent("d1/1-coffee.png").path
        let search = try Executables.run(["index", "search", "--image", coffee, "--index", index, "--model", model, "--json", "--top", "3"])
        XCTAssertEqual(search.status, 0, search.stderr)
        let hits = try JSONDecoder().decode([Hit].self, from: Data(search.stdout.utf8))
        XCTAssertEqual(hits.count, 3)
        XCTAssertTrue(hits.allSatisfy { $0.path.hasSuffix("coffee.png") && abs($0.score - 1) < 1e-4 }, "\(hits)")

        try FileManager.default.removeItem(atPath: coffee)
        let sync = try Executables.run(["index", "sync", images.path, "--index", index, "--model", model, "--quiet"])
        XCTAssertTrue(sync.stdout.contains("removed 1"), sync.stdout + sync.stderr)
        let remove = try Executables.run(["index", "remove", images.appendingPathComponent("d0").path, "--index", index])
        XCTAssertTrue(remove.stdout.contains("removed 6 image(s); index holds 17"), remove.stdout + remove.stderr)
        let dupes = try Executables.run(["index", "dupes", "--index", index, "--threshold", "0.999", "--json"])
        XCTAssertEqual(dupes.status, 0, dupes.stderr)
    }

    func testTwoUnshardedWorkersAtOnceStoreEveryFileOnce() throws {
        let images = try library(12)
        let workers = try (0 ..< 2).map { _ in try start(["index", "add", images.path, "--index", index, "--model", model, "--batch", "3", "--quiet"]) }
        for r in workers.map(finish) { XCTAssertEqual(r.status, 0, r.stderr) }
        let s = try stats()
        XCTAssertEqual(s.files, 12)
        XCTAssertEqual(s.problems, [])
    }

    func testCopyMovesASQLiteIndexIntoMilvusWithTheSameResults() throws {
        let images = try library(6)
        let sqlite = images.deletingLastPathComponent().appendingPathComponent("index.sqlite").path
        let add = try Executables.run(["index", "add", images.path, "--index", sqlite, "--model", model, "--quiet"])
        XCTAssertEqual(add.status, 0, add.stderr)
        let copy = try Executables.run(["index", "copy", sqlite, index])
        XCTAssertEqual(copy.status, 0, copy.stderr)
        XCTAssertTrue(copy.stdout.contains("copied 6 image(s)"), copy.stdout)
        XCTAssertEqual(try stats().files, 6)
        func search(_ where_: String) throws -> [Hit] {
            let r = try Executables.run(["index", "search", "a cat", "--index", where_, "--model", model, "--json", "--top", "6"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try JSONDecoder().decode([Hit].self, from: Data(r.stdout.utf8))
        }
        let (local, remote) = (try search(sqlite), try search(index))
        XCTAssertEqual(local.count, 6)
        XCTAssertEqual(remote.count, 6)
        for (a, b) in zip(local, remote) { XCTAssertEqual(a.score, b.score, accuracy: 1e-5) }
        XCTAssertEqual(Set(local.map(\.path)), Set(remote.map(\.path)))
        // A source of another model is refused by the destination.
        let other = images.deletingLastPathComponent().appendingPathComponent("other.sqlite").path
        _ = try Executables.run(["index", "add", images.path, "--index", other, "--model", Fixtures.url("clip/tiny-b").path, "--quiet"])
        let refused = try Executables.run(["index", "copy", other, index])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("tiny-a") && refused.stderr.contains("tiny-b"), refused.stderr)
    }

    func testAnotherModelIsRefused() throws {
        let images = try library(3)
        let first = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let other = try Executables.run(["index", "add", images.path, "--index", index, "--model", Fixtures.url("clip/tiny-b").path, "--quiet"])
        XCTAssertEqual(other.status, 1)
        XCTAssertTrue(other.stderr.contains("error: ") && other.stderr.contains("tiny-a") && other.stderr.contains("tiny-b"), other.stderr)
    }

    /// Milvus restarted while `vlm index add` runs: the run retries through the outage and finishes; every file is
    /// stored exactly once.
    func testMilvusRestartedMidIngestResumes() throws {
        guard let restart = ProcessInfo.processInfo.environment["VLM_TEST_MILVUS_RESTART"], !restart.isEmpty else {
            throw XCTSkip("VLM_TEST_MILVUS_RESTART (a command that restarts the test Milvus, e.g. `Scripts/milvus-server.sh restart`) is not set")
        }
        let images = try library(30)
        let worker = try start(["index", "add", images.path, "--index", index, "--model", model, "--batch", "3", "--quiet"],
                               environment: ["VLM_TEST_COMMIT_PAUSE_MS": "400"])
        // Wait for the second committed batch, then restart Milvus under the running ingest.
        var seen = ""
        while !seen.contains("vlm-test: committed 6") {
            let chunk = worker.2.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertEqual(Self.shell(restart), 0, "restart command failed: \(restart)")
        let r = finish(worker)
        XCTAssertEqual(r.status, 0, seen + r.stderr)
        let s = try stats()
        XCTAssertEqual(s.files, 30)
        XCTAssertEqual(s.problems, [])
    }
}
