import Foundation
import Testing
import VLMTestSupport

/// `vlm index` as a user runs it: incremental add, search, dupes, stats, sync and model mismatch, on the tiny
/// CLIP fixture and its real photographs.
@Suite(.serialized) struct IndexCLITests {
    let model = Fixtures.url("clip/tiny-a").path

    struct Hit: Decodable { let path: String; let score: Float; let rank: Int }
    struct Pair: Decodable { let score: Float; let a: String; let b: String }
    struct Stats: Decodable { let files: Int; let embeddings: Int; let dim: Int }

    /// A folder with the fixture photos, a duplicate in a subfolder and a non-image file.
    func library() throws -> (root: URL, index: String) {
        let root = TestScratch.root.appendingPathComponent("vlm-index-\(UUID().uuidString)")
        let images = root.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for name in ["chelsea.jpg", "coffee.png", "astronaut.jpg"] {
            try FileManager.default.copyItem(at: Fixtures.url("clip/images/\(name)"), to: images.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: Fixtures.url("clip/images/chelsea.jpg"), to: images.appendingPathComponent("sub/copy.jpg"))
        try Data("notes".utf8).write(to: images.appendingPathComponent("notes.txt"))
        return (images, root.appendingPathComponent("index.sqlite").path)
    }

    @Test func addIsIncrementalAndSearchFindsTheImages() throws {
        let (images, index) = try library()
        let first = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--quiet"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("added 4"))
        #expect(first.stderr.contains("non-image"))
        let again = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--quiet"])
        #expect(again.status == 0 && again.stdout.contains("unchanged 4") && again.stdout.contains("added 0"))

        let search = try Executables.run(["index", "search", "a cat", "--index", index, "--model", model, "--json", "--top", "3"])
        #expect(search.status == 0, "\(search.stderr)")
        let hits = try JSONDecoder().decode([Hit].self, from: Data(search.stdout.utf8))
        #expect(hits.count == 3 && hits.map(\.rank) == [1, 2, 3])
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })

        let byImage = try Executables.run(["index", "search", "--image", images.appendingPathComponent("coffee.png").path,
                                           "--index", index, "--model", model, "--json", "--top", "1"])
        let top = try JSONDecoder().decode([Hit].self, from: Data(byImage.stdout.utf8))
        #expect(top.first?.path.hasSuffix("coffee.png") == true)
        #expect(abs((top.first?.score ?? 0) - 1) < 1e-4)

        let dupes = try Executables.run(["index", "dupes", "--index", index, "--threshold", "0.999", "--json"])
        let pairs = try JSONDecoder().decode([Pair].self, from: Data(dupes.stdout.utf8))
        #expect(pairs.count == 1)
        #expect(Set([pairs.first?.a ?? "", pairs.first?.b ?? ""].map { URL(fileURLWithPath: $0).lastPathComponent }) == ["chelsea.jpg", "copy.jpg"])

        let stats = try Executables.run(["index", "stats", "--index", index, "--json"])
        let s = try JSONDecoder().decode(Stats.self, from: Data(stats.stdout.utf8))
        #expect(s.files == 4 && s.embeddings == 4 && s.dim == 12)
    }

    @Test func syncRemovesDeletedFilesAndAnotherModelIsRefused() throws {
        let (images, index) = try library()
        _ = try Executables.run(["index", "add", images.path, "--index", index, "--model", model, "--quiet"])
        try FileManager.default.removeItem(at: images.appendingPathComponent("sub/copy.jpg"))
        let sync = try Executables.run(["index", "sync", images.path, "--index", index, "--model", model, "--quiet"])
        #expect(sync.status == 0, "\(sync.stderr)")
        let stats = try Executables.run(["index", "stats", "--index", index, "--json"])
        #expect(try JSONDecoder().decode(Stats.self, from: Data(stats.stdout.utf8)).files == 3)

        let other = try Executables.run(["index", "add", images.path, "--index", index, "--model", Fixtures.url("clip/tiny-b").path, "--quiet"])
        #expect(other.status == 1)
        #expect(other.stderr.contains("error: ") && other.stderr.contains("tiny-a") && other.stderr.contains("tiny-b"))
    }
}
