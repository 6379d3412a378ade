import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport

struct LlavaReference: Decodable {
    let input_ids: [Int]
    let pixel_values: [Float]
    let pixel_values_shape: [Int]
    let prefill_logits: [[Float]]
    let greedy: [Int]
    let image_tokens: Int
}

/// Tiny LLaVA checkpoints in the Hub's llava-hf layout (Scripts/fixtures/llava_fixtures.py). Tolerances as for
/// Llama: prefill logits within 1e-3; greedy 32 tokens identical (every step's top-2 margin >= 1e-3).
@Suite struct LlavaParityTests {
    @Test(arguments: ["llava-default", "llava-full"])
    func prefillAndGreedyMatchTransformers(config: String) throws {
        let ref: LlavaReference = try Fixtures.json("llava/\(config).reference.json")
        let model = try LlavaModel.load(directory: Fixtures.url("llava/\(config)"))
        #expect(model.config.imageTokensPerImage == ref.image_tokens)
        let pixels = Tensor(shape: ref.pixel_values_shape, values: ref.pixel_values)
        let cache = model.language.makeCache(capacity: 128)
        let logits = try model.forward(ids: ref.input_ids, pixelValues: pixels, cache: cache, allLogits: true)
        let vocab = model.language.vocabularySize
        var worst: Float = 0
        for (t, row) in ref.prefill_logits.enumerated() {
            for (v, want) in row.enumerated() { worst = max(worst, abs(logits[t * vocab + v] - want)) }
        }
        #expect(worst <= 1e-3, "max |logit diff| \(worst)")
        var next = argmax(logits.pointer + (ref.input_ids.count - 1) * vocab, vocab)
        var generated = [next]
        while generated.count < ref.greedy.count {
            let step = try model.language.forward(ids: [next], cache: cache)
            next = argmax(step.pointer, vocab)
            generated.append(next)
        }
        #expect(generated == ref.greedy)
    }

    @Test func imageTokenCountMismatchIsAnError() throws {
        let ref: LlavaReference = try Fixtures.json("llava/llava-default.reference.json")
        let model = try LlavaModel.load(directory: Fixtures.url("llava/llava-default"))
        let pixels = Tensor(shape: ref.pixel_values_shape, values: ref.pixel_values)
        let image = model.config.imageTokenIndex
        let message: String
        do {
            _ = try model.embed(ids: [1, image, image, 5], pixelValues: pixels)
            message = ""
        } catch { message = "\(error)" }
        #expect(message.contains("2 image tokens") && message.contains("\(ref.image_tokens)"))
        #expect(throws: ModelError.self) { try model.embed(ids: ref.input_ids, pixelValues: nil) }
        #expect(throws: ModelError.self) { try model.embed(ids: [1, 2, 3], pixelValues: Tensor(zeros: [1, 3, 27, 27])) }
    }
}
