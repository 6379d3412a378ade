import Foundation
import Testing
import VLMTestSupport

/// The embedded generative default (Models/scenes-vlm, trained by Benchmarks/train_scenes_vlm.sh) as a user meets
/// it: `vlm caption` / `vlm ask` with no --model on a scene the generator draws, and a clear error when the
/// default is pointed somewhere empty.
@Suite(.serialized) struct DefaultGenerativeCLITests {
    static let model = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models/scenes-vlm")
    static let present = Executables.vlm != nil && FileManager.default.fileExists(atPath: model.appendingPathComponent("config.json").path)

    struct Shown: Decodable { let caption: String }

    /// Test-split single-object scene `index` of seed 1 (never trained on) as a PNG in `dir`, with its caption.
    func scene(_ index: Int, in dir: URL) throws -> (path: String, caption: String) {
        let path = dir.appendingPathComponent("scene-\(index).png").path
        let r = try Executables.run(["scenes", "show", "--seed", "1", "--split", "test", "--kind", "single", "--index", "\(index)",
                                     "--image", path, "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        return (path, try JSONDecoder().decode(Shown.self, from: Data(r.stdout.utf8)).caption)
    }

    /// Single-object scenes are the part of the scenes world the model reads reliably (its card: ~100% on them),
    /// so its captions must be the generator's own, word for word, on at least 5 of 6.
    @Test(.enabled(if: present, "Models/scenes-vlm or the vlm executable is missing"))
    func captionAndAskWithoutModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-default-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var right = 0
        for index in 0 ..< 6 {
            let (path, caption) = try scene(index, in: dir)
            let r = try Executables.run(["caption", path, "--threads", "1"])
            #expect(r.status == 0, "\(r.stderr)")
            if r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == caption { right += 1 }
        }
        #expect(right >= 5, "\(right) of 6 captions right")
        let (path, _) = try scene(0, in: dir)
        let r = try Executables.run(["ask", path, "how many objects are there?", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "one")
    }

    /// VLM_GENERATIVE_MODEL_DIR overrides the lookup; pointing it at nothing is one clear line, not a crash.
    @Test(.enabled(if: Executables.vlm != nil, "vlm executable not built"))
    func missingDefaultIsNamed() throws {
        let r = try Executables.run(["caption", "/nonexistent.png"], environment: ["VLM_GENERATIVE_MODEL_DIR": "/nonexistent-vlm-model"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("VLM_GENERATIVE_MODEL_DIR") && r.stderr.contains("/nonexistent-vlm-model"), "\(r.stderr)")
    }
}
