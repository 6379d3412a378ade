import Foundation
import Testing
import VLMTestSupport
import XCTest

/// `vlm index add` on a real-looking photo library (PhotoTree), as its owner runs it: one warning line per
/// problem, the good photos indexed, a summary by format and by reason at the end, exit 0.
@Suite(.serialized) struct RealTreeCLITests {
    /// The checkpoint, readable by whoever runs vlm: as nobody, a world-readable copy next to the tree (the
    /// checkout's own files may be private to their owner).
    func checkpoint(_ tree: PhotoTree) throws -> String {
        let source = Fixtures.url("clip/tiny-a")
        guard geteuid() == 0 else { return source.path }
        let copy = tree.base.appendingPathComponent("model")
        if !FileManager.default.fileExists(atPath: copy.path) {
            // File by file, following the fixture's symlinks (its tokenizer files link to a shared folder).
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
            chmod(copy.path, 0o755)
            for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
                let target = copy.appendingPathComponent(name)
                try FileManager.default.copyItem(at: source.appendingPathComponent(name).resolvingSymlinksInPath(), to: target)
                chmod(target.path, 0o644)
            }
        }
        return copy.path
    }

    /// chmod 000 stops no one running as root: then `vlm` runs as nobody (setpriv), so the mode-000 file and
    /// folder really are unreadable to it.
    func launcher(_ tree: PhotoTree) throws -> [String] {
        guard geteuid() == 0 else { return [] }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw XCTSkip("running as root without /usr/bin/setpriv: cannot make a file unreadable to vlm")
        }
        chmod(tree.base.path, 0o777)  // nobody writes the index there
        return ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    }

    @Test func indexAddWarnsOncePerProblemAndSummarises() throws {
        let tree = try PhotoTree(unreadable: true)
        defer { tree.remove() }
        let run = try launcher(tree)
        let model = try checkpoint(tree)
        let r = try Executables.run(["index", "add", tree.root.path, "--index", tree.index, "--model", model, "--quiet", "--batch", "2"],
                                    environment: ["HOME": tree.base.path], launcher: run)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("added 5, re-embedded 0, unchanged 0, failed 2;") == true, "\(r.stdout)")
        #expect(lines.contains("by format: bmp 1, jpeg 2, png 2"), "\(r.stdout)")
        #expect(lines.contains("skipped: 2 hidden, 1 not an image, 2 unreadable, 1 name not UTF-8, 3 symlink loop, 1 folder seen twice, "
            + "1 broken symlink, 1 not a regular file, 1 not decodable"), "\(r.stdout)")
        let warnings = r.stderr.split(separator: "\n").map(String.init)
        #expect(warnings.allSatisfy { $0.hasPrefix("warning: ") }, "\(r.stderr)")
        let named: [(String, String)] = [("loop", "symlink loop"), ("sub/up", "symlink loop"), ("self.jpg", "symlink loop"),
                                         ("zz_alias", "same folder"), ("broken.jpg", "broken symlink"), ("fifo.jpg", "not a regular file"),
                                         ("bad\\xFF\\xFE.jpg", "not valid UTF-8"), ("text.jpg", "skipped"),
                                         ("fake.jpg", "the content is PNG"), ("locked.jpg", "Permission denied"),
                                         ("lockeddir", "Permission denied")]
        for (name, what) in named {
            let hits = warnings.filter { $0.contains(tree.root.path + "/" + name + ":") }
            #expect(hits.count == 1 && hits[0].contains(what), "\(name): \(hits)")
        }
        #expect(warnings.count == named.count + 1, "\(r.stderr)")  // + the hidden/non-image count line

        // Unchanged on the next run; the index holds the five photos.
        let again = try Executables.run(["index", "add", tree.root.path, "--index", tree.index, "--model", model, "--quiet"],
                                        environment: ["HOME": tree.base.path], launcher: run)
        #expect(again.status == 0 && again.stdout.hasPrefix("added 0, re-embedded 0, unchanged 5, failed 2; index holds 5 images"), "\(again.stdout)\(again.stderr)")
    }
}
