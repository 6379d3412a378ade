import Foundation
import SwiftVLM
import Testing
import VLMImage
import VLMIndex
import VLMModels
import VLMTestSupport

/// `IndexIngestion.collect` + `ingest` on a real-looking photo library (PhotoTree), with a file that changes
/// and one that vanishes while the run is under way: each problem is one warning line naming the file, the run
/// goes on, and the summary counts the formats and the skips.
@Suite(.serialized) struct LibraryIngestTests {
    @Test func aRealTreeIsIndexedWithOneWarningPerProblem() throws {
        // chmod 000 stops no one running as root: the mode-000 entries are then left out here (the CLI test
        // runs `vlm` as another user to cover them).
        let unreadable = geteuid() != 0
        let tree = try PhotoTree(unreadable: unreadable)
        defer { tree.remove() }
        let changes = tree.root.appendingPathComponent("zz_changes.jpg"), vanishes = tree.root.appendingPathComponent("zz_vanishes.jpg")
        try FileManager.default.copyItem(at: Fixtures.url("clip/images/chelsea.jpg"), to: changes)
        try FileManager.default.copyItem(at: Fixtures.url("clip/images/chelsea.jpg"), to: vanishes)

        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let warnings = Lines()
        let (files, roots, walked) = try IndexIngestion.collect([tree.root.path], warn: { warnings.all.append($0) })
        #expect(roots == [tree.root.path])
        let expected = PhotoTree.good + ["text.jpg", "zz_changes.jpg", "zz_vanishes.jpg"] + (unreadable ? ["locked.jpg"] : [])
        #expect(Set(files.map(\.relative)) == Set(expected))

        let pipeline = try EmbeddingPipeline.load(directory: Fixtures.url("clip/tiny-a"))
        let index = try SearchIndex(path: tree.index, model: pipeline.indexIdentity())
        // After the first committed batch (a.jpg): one later file is rewritten, another deleted.
        var first = true
        let observer = IndexIngestion.Observer(warn: { warnings.all.append($0) }, committed: { _ in
            guard first else { return }
            first = false
            try? FileManager.default.removeItem(at: vanishes)
            try? Data(contentsOf: Fixtures.url("clip/images/coffee.png")).write(to: changes)
        })
        let outcome = try IndexIngestion.ingest(files.map(\.path), index: index, pipeline: pipeline, batch: 1, observer: observer)
        #expect(outcome.added == PhotoTree.good.count)
        #expect(outcome.failed == 3 + (unreadable ? 1 : 0))
        #expect(Set(try index.allPaths()) == Set(PhotoTree.good.map { tree.root.path + "/" + $0 }))

        var summary = walked
        summary.merge(outcome.summary)
        #expect(summary.formats == PhotoTree.goodFormats)
        var skips: [SkipReason: Int] = [.hidden: 2, .nonImage: 1, .badName: 1, .symlinkLoop: 3, .repeatedFolder: 1, .brokenLink: 1,
                                        .notRegular: 1, .undecodable: 1, .changed: 1, .vanished: 1]
        if unreadable { skips[.unreadable] = 2 }
        #expect(summary.skipped == skips)
        #expect(summary.lines.first == "by format: bmp 1, jpeg 2, png 2")

        // One line per problem, naming it; nothing for the good files but the PNG named .jpg.
        let named: [(String, String)] = [("loop", "symlink loop"), ("sub/up", "symlink loop"), ("self.jpg", "symlink loop"),
                                         ("zz_alias", "same folder"), ("broken.jpg", "broken symlink"), ("fifo.jpg", "not a regular file"),
                                         ("bad\\xFF\\xFE.jpg", "not valid UTF-8"), ("text.jpg", "skipped"),
                                         ("zz_changes.jpg", "changed while"), ("zz_vanishes.jpg", "vanished"),
                                         ("fake.jpg", "the content is PNG although the extension says .jpg")]
            + (unreadable ? [("locked.jpg", "Permission denied"), ("lockeddir", "Permission denied")] : [])
        for (name, what) in named {
            let lines = warnings.all.filter { $0.contains(tree.root.path + "/" + name + ":") }
            #expect(lines.count == 1 && lines[0].contains(what), "\(name): \(lines)")
        }
        for name in ["a.jpg", "b.png", "sub/c.jpg", "sub/d.bmp"] {
            #expect(!warnings.all.contains { $0.contains(tree.root.path + "/" + name) }, "\(name)")
        }
        #expect(warnings.all.contains { $0.hasPrefix(tree.root.path + ": skipped 2 hidden") && $0.contains("1 non-image") })
        #expect(warnings.all.allSatisfy { !$0.contains("\n") })

        // The next run keeps what was indexed and takes the file that changed.
        let (again, _, _) = try IndexIngestion.collect([tree.root.path])
        let second = try IndexIngestion.ingest(again.map(\.path), index: index, pipeline: pipeline, batch: 4)
        #expect(second.unchanged == PhotoTree.good.count && second.added == 1, "\(second)")
    }

    @Test func formatsAreSniffedAndExtensionsMapped() {
        #expect(ImageFormat.sniff(Data([0xFF, 0xD8, 0xFF, 0xE0])) == .jpeg)
        #expect(ImageFormat.sniff(Data("GIF89a".utf8)) == .gif)
        #expect(ImageFormat.sniff(Data("hello".utf8)) == nil)
        #expect(ImageFormat(fileExtension: "JPE") == .jpeg && ImageFormat(fileExtension: "avif") == .heif)
        let avif = Data([0, 0, 0, 0x1C] + Array("ftypavif".utf8) + [0, 0, 0, 0])
        #expect(ImageFormat.sniff(avif) == .heif)
        #expect(ImageFormat.displayName(.heif, header: avif, fileExtension: "heic") == "avif")
        let generic = Data([0, 0, 0, 0x1C] + Array("ftypmif1".utf8) + [0, 0, 0, 0])
        #expect(ImageFormat.displayName(.heif, header: generic, fileExtension: "avif") == "avif")
        #expect(ImageFormat.displayName(.heif, header: generic, fileExtension: "HEIC") == "heic")
    }
}
