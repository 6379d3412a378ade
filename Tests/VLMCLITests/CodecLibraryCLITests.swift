import Foundation
import Testing
import VLMTestSupport

/// A machine without one of the run-time loaded codec libraries (libwebp, libheif, libtiff, libgif), as
/// VLM_DISABLE_CODECS makes it look: the image is refused with one line naming the library, nothing else
/// breaks, and `vlm index add` skips that file with a warning and adds the rest.
@Suite(.serialized) struct CodecLibraryCLITests {
    let model = Fixtures.url("clip/tiny-a").path
    static let cases = [("alpha_lossy.webp", "libwebp"), ("alpha.heic", "libheif"), ("grey.tif", "libtiff"), ("grey.gif", "libgif")]

    @Test(arguments: cases)
    func aMissingLibraryIsNamed(file: String, library: String) throws {
        let image = Fixtures.url("images/formats/\(file)").path
        let works = try Executables.run(["embed", "--model", model, "--image", image])
        #expect(works.status == 0, "\(works.stderr)")
        let missing = try Executables.run(["embed", "--model", model, "--image", image], environment: ["VLM_DISABLE_CODECS": library])
        #expect(missing.status == 1, "\(missing.stderr)")
        #expect(missing.stderr.hasPrefix("error: ") && missing.stderr.contains("\(library).so"), "\(missing.stderr)")
        #expect(missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
    }

    @Test func indexAddSkipsWhatCannotBeDecodedAndGoesOn() throws {
        let root = TestScratch.root.appendingPathComponent("vlm-codecs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.url("clip/images/chelsea.jpg"), to: root.appendingPathComponent("chelsea.jpg"))
        try FileManager.default.copyItem(at: Fixtures.url("images/formats/alpha_lossy.webp"), to: root.appendingPathComponent("a.webp"))
        let index = root.appendingPathComponent("index.sqlite").path
        let r = try Executables.run(["index", "add", root.path, "--index", index, "--model", model, "--quiet"],
                                    environment: ["VLM_DISABLE_CODECS": "libwebp"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("added 1"), "\(r.stdout)")
        #expect(r.stderr.contains("a.webp") && r.stderr.contains("libwebp"), "\(r.stderr)")
    }
}
