import Foundation
import Testing
import VLMTestSupport

/// `vlm index add` killed with SIGKILL mid-run: the index must open cleanly with every committed batch intact
/// and nothing half-written, and the next run must skip what was committed and finish the rest.
///
/// Determinism: VLM_TEST_COMMIT_PAUSE_MS makes the CLI report each committed batch on stderr (and pause), so
/// the kill lands at a known point instead of after a guessed delay. The assertions hold wherever the kill
/// lands (batches are transactions), so the test cannot flake on timing.
@Suite(.serialized) struct IndexCrashTests {
    let model = Fixtures.url("clip/tiny-a").path
    static let batch = 4
    static let files = 48

    struct Stats: Decodable { let files: Int; let embeddings: Int; let problems: [String]? }

    /// `files` distinct paths (the three fixture photos, round robin) in nested folders.
    func library() throws -> (images: URL, index: String) {
        let root = TestScratch.root.appendingPathComponent("vlm-crash-\(UUID().uuidString)")
        let names = ["chelsea.jpg", "coffee.png", "astronaut.jpg"]
        for i in 0 ..< Self.files {
            let name = names[i % names.count]
            let dir = root.appendingPathComponent("images/d\(i % 5)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("clip/images/\(name)"),
                                            to: dir.appendingPathComponent("\(i)-\(name)"))
        }
        return (root.appendingPathComponent("images"), root.appendingPathComponent("index.sqlite").path)
    }

    /// Starts `vlm index add` with the commit hook, waits for the `after`-th committed batch, SIGKILLs it.
    /// Returns the images the last observed commit reported.
    func killAdd(images: URL, index: String, pauseMilliseconds: Int, after: Int) throws -> Int {
        let vlm = try #require(Executables.vlm, "vlm executable not built")
        let process = Process()
        process.executableURL = vlm
        process.arguments = ["index", "add", images.path, "--index", index, "--model", model, "--batch", "\(Self.batch)", "--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["VLM_TEST_COMMIT_PAUSE_MS"] = "\(pauseMilliseconds)"
        process.environment = environment
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var seen = "", committed: [Int] = []
        let handle = err.fileHandleForReading
        while committed.count < after {
            let chunk = handle.availableData  // blocks until output or EOF
            if chunk.isEmpty { break }  // exited before the kill point (it must not: there are many batches)
            seen += String(decoding: chunk, as: UTF8.self)
            committed = seen.split(separator: "\n").compactMap { line in
                line.hasPrefix("vlm-test: committed ") ? Int(line.dropFirst("vlm-test: committed ".count)) : nil
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
                "the run ended on its own before the kill: \(seen)")
        return committed.last ?? -1
    }

    func stats(_ index: String) throws -> Stats {
        let r = try Executables.run(["index", "stats", "--index", index, "--json", "--check"])
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONDecoder().decode(Stats.self, from: Data(r.stdout.utf8))
    }

    /// Killed while paused (4 s) right after the second commit: exactly the reported batches are in the index.
    @Test func killAfterACommitKeepsItAndResumes() throws {
        let (images, index) = try library()
        defer { try? FileManager.default.removeItem(at: images.deletingLastPathComponent()) }
        let reported = try killAdd(images: images, index: index, pauseMilliseconds: 4000, after: 2)
        #expect(reported == 2 * Self.batch)
        // The WAL and shared-memory files of the killed writer are still there; opening recovers them.
        #expect(FileManager.default.fileExists(atPath: index + "-wal"))
        let s = try stats(index)
        #expect(s.problems == [])
        #expect(s.files == reported && s.embeddings == reported)

        let resumed = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--batch", "\(Self.batch)", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("added \(Self.files - reported),") && resumed.stdout.contains("unchanged \(reported),"), "\(resumed.stdout)")
        let done = try stats(index)
        #expect(done.problems == [] && done.files == Self.files && done.embeddings == Self.files)
        let search = try Executables.run(["index", "search", "a cat", "--index", index, "--model", model, "--top", "3"])
        #expect(search.status == 0 && search.stdout.split(separator: "\n").count == 3)
    }

    /// Killed without a pause, i.e. somewhere in the next batch (encoding or inside its transaction): whatever
    /// was committed is whole batches, and the rerun completes.
    @Test func killMidBatchLeavesWholeBatchesAndResumes() throws {
        let (images, index) = try library()
        defer { try? FileManager.default.removeItem(at: images.deletingLastPathComponent()) }
        let reported = try killAdd(images: images, index: index, pauseMilliseconds: 0, after: 1)
        #expect(reported >= Self.batch)
        let s = try stats(index)
        #expect(s.problems == [])
        #expect(s.files == s.embeddings)
        #expect(s.files >= reported && s.files < Self.files && s.files % Self.batch == 0, "\(s.files) images after the kill")

        let resumed = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--batch", "\(Self.batch)", "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("unchanged \(s.files),"), "\(resumed.stdout)")
        let done = try stats(index)
        #expect(done.problems == [] && done.files == Self.files)
    }
}
