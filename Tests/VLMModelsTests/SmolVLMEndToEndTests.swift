import Foundation
import Testing
import SwiftVLM
import VLMImage
import VLMModels
import VLMTensor
import VLMTestSupport
import VLMTokenizers

/// SmolVLM as a user runs it (GenerativePipeline: the checkpoint's template, tokenizer and Idefics3 image
/// processor, then greedy generation), against transformers' processor + generate() on the same photos
/// (Scripts/fixtures/smolvlm_fixtures.py): prompt ids identical, pixel values within 1e-5 of the PIL backend,
/// 32 greedy tokens identical; split, unsplit (a copy of the checkpoint with do_image_splitting false, as a user
/// would set it), two images in one message, text only.
@Suite struct SmolVLMEndToEndTests {
    /// The checkpoint, or a copy whose image processor config has `do_image_splitting: false`.
    static func directory(_ name: String, split: Bool) throws -> URL {
        let dir = Fixtures.url("smolvlm/\(name)")
        if split { return dir }
        let copy = TestScratch.root.appendingPathComponent("smolvlm-unsplit-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: dir, to: copy)
        for file in ["preprocessor_config.json", "processor_config.json"] {
            let url = copy.appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: url.path),
                  var object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { continue }
            if var inner = object["image_processor"] as? [String: Any] {
                inner["do_image_splitting"] = false
                object["image_processor"] = inner
            } else if object["do_image_splitting"] != nil {
                object["do_image_splitting"] = false
            }
            try JSONSerialization.data(withJSONObject: object).write(to: url)
        }
        return copy
    }

    @Test(arguments: Idefics3ParityTests.checkpoints)
    func answersEqualTransformers(name: String) throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/\(name).reference.json")
        for c in ref.cases {
            let pipeline = try GenerativePipeline.load(directory: Self.directory(name, split: c.name != "unsplit"))
            let images = try c.images.map { try ImageDecoder.load(Fixtures.url($0)) }
            let parts = images.map { _ in ChatContentPart(type: "image") } + [.text(c.question)]
            let messages = [ChatMessage(role: "user", parts: parts)]
            let input = try pipeline.prepare(messages: messages, images: images)
            #expect(input.ids == c.input_ids, "\(name) \(c.name)")
            if let file = c.pixel_values_file {
                let want = try Npy.readTensor(Fixtures.url("smolvlm/\(file)"))
                let got = try #require(input.pixels?.pixelValues)
                #expect(got.shape == want.shape, "\(name) \(c.name)")
                var worst: Float = 0
                for i in 0 ..< min(got.count, want.count) { worst = max(worst, abs(got[i] - want[i])) }
                #expect(worst <= 1e-5, "\(name) \(c.name): max |pixel diff| \(worst)")
            }
            var options = SamplingOptions()
            options.maxTokens = c.greedy.count
            options.stopAtEOS = false
            let result = try pipeline.generate(input, options: options)
            #expect(result.tokens == c.greedy, "\(name) \(c.name)")
        }
    }
}
