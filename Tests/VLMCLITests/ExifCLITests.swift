import Foundation
import Testing
import VLMTestSupport

/// `--no-exif-transpose`: by default a photo with an EXIF orientation is embedded upright (as transformers'
/// load_image gives it); with the flag, its stored pixel grid is embedded, which is the same as embedding an
/// image without the tag whose pixels are that grid.
@Suite(.serialized) struct ExifCLITests {
    let model = Fixtures.url("clip/tiny-a").path

    func embedding(_ args: [String]) throws -> [Float] {
        let r = try Executables.run(["embed", "--model", model, "--format", "json"] + args)
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONDecoder().decode([EmbedRow].self, from: Data(r.stdout.utf8)).first?.embedding ?? []
    }

    @Test func orientationIsAppliedUnlessTheFlagSaysOtherwise() throws {
        let rotated = Fixtures.url("images/good/exif_orientation6.jpg").path
        let upright = try embedding(["--image", rotated])
        let raw = try embedding(["--image", rotated, "--no-exif-transpose"])
        #expect(upright.count == raw.count && !upright.isEmpty)
        // The two grids differ (portrait vs landscape), so must their embeddings.
        #expect(maxAbsDiff(upright, raw) > 1e-3)
    }
}
