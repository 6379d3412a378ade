import Foundation
import Testing
import VLMTestSupport

/// `vlm task / detect / ocr / ground / describe-region` on the tiny Florence-2 checkpoint
/// (Tests/Fixtures/florence2/tiny): `task --format json` prints exactly transformers' post_process_generation
/// result for the generated answer (generation.json, beam search as recorded there), and bad input exits 1 naming it.
@Suite(.serialized) struct TaskCLITests {
    let model = Fixtures.url("florence2/tiny").path
    let image = Fixtures.url("clip/images/chelsea.jpg").path

    /// The recorded beam-search result of `task` (generation.json's `parsed`).
    func expected(_ task: String) throws -> Any? {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("florence2/generation.json"))) as? [String: Any]
        let cases = root?["cases"] as? [[String: Any]] ?? []
        return (cases.first { $0["task"] as? String == task }?["beam"] as? [String: Any])?["parsed"]
    }

    @Test(arguments: [("<OD>", [String]()), ("<CAPTION>", []), ("<OCR_WITH_REGION>", []),
                      ("<CAPTION_TO_PHRASE_GROUNDING>", ["--text", "a cat on a sofa"]),
                      ("<REGION_TO_DESCRIPTION>", ["--text", "<loc_52><loc_333><loc_613><loc_980>"])])
    func taskJSONIsPostProcessGeneration(task: String, extra: [String]) throws {
        // The checkpoint's generation_config.json (beam search) decides the decoding, as generate()'s defaults.
        let r = try Executables.run(["task", "--model", model, image, "--task", task, "--format", "json", "--max-tokens", "16"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        let printed = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? NSDictionary
        let reference = try #require(try expected(task))
        #expect(printed?.isEqual(reference) == true, "\(r.stdout) vs \(reference)")
    }

    @Test func friendlyCommandsAndDrawing() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-task-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("boxes.png").path
        let detect = try Executables.run(["detect", "--model", model, image, "--draw", png, "--max-tokens", "16"])
        #expect(detect.status == 0, "\(detect.stderr)")
        #expect(FileManager.default.fileExists(atPath: png))
        for args in [["ocr", "--model", model, image, "--regions"], ["ground", "--model", model, image, "a cat"],
                     ["describe-region", "--model", model, image, "--box", "10,20,120,90"]] {
            let r = try Executables.run(args + ["--max-tokens", "8"])
            #expect(r.status == 0, "\(args[0]): \(r.stderr)")
        }
    }

    @Test func badInputExitsOneNamingTheProblem() throws {
        let unknown = try Executables.run(["task", "--model", model, image, "--task", "<DETECT>"])
        #expect(unknown.status == 1 && unknown.stderr.contains("unknown Florence-2 task '<DETECT>'"), "\(unknown.stderr)")
        let noText = try Executables.run(["task", "--model", model, image, "--task", "<CAPTION_TO_PHRASE_GROUNDING>"])
        #expect(noText.status == 1 && noText.stderr.contains("needs text"), "\(noText.stderr)")
        let outside = try Executables.run(["describe-region", "--model", model, image, "--box", "10,20,5000,180"])
        #expect(outside.status == 1 && outside.stderr.contains("not inside"), "\(outside.stderr)")
        let badBox = try Executables.run(["describe-region", "--model", model, image, "--box", "10,20"])
        #expect(badBox.status == 1 && badBox.stderr.contains("--box"), "\(badBox.stderr)")
        let clip = try Executables.run(["detect", "--model", Fixtures.url("clip/tiny-a").path, image])
        #expect(clip.status == 1, "\(clip.stderr)")
    }
}
