import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

/// `LlavaConfig.imagePositionEmbedding` (a SwiftVLM extension: a learned row per image token added after the
/// projector), on the tiny LLaVA of Scripts/fixtures/llava_training_fixtures.py with random position rows.
@Suite("Image-token positions after the projector")
struct ImagePositionTests {
    /// The tied fixture (CLS kept, layers [1, -1]) with positions N(0, 0.5), large enough to change every answer.
    static func model() throws -> (TrainableLlava, LlavaTrainingBatch) {
        let dir = "llava_training/tied"
        let base = try TrainableLlava.load(directory: Fixtures.url("\(dir)/model"))
        var config = base.config
        config.imagePositionEmbedding = true
        let set = base.parameters.copy()
        let positions = Tensor(zeros: [config.imageTokensPerImage, config.textConfig.hiddenSize])
        var rng = SplitMix64(seed: 3)
        for i in 0 ..< positions.count { positions[i] = rng.nextGaussian() * 0.5 }
        set.set(TrainableLlava.imagePositions, positions)
        let ref: LlavaTrainingReference = try Fixtures.json("\(dir)/reference.json")
        let pixels = try SafeTensorsFile(path: Fixtures.url("\(dir)/batch.safetensors").path).tensor("pixel_values")
        return (try TrainableLlava(config: config, parameters: set), LlavaTrainingBatch(pixels: pixels, ids: ref.input_ids, labels: ref.labels))
    }

    @Test("the rows' gradient: finite differences, and it sums to the projector bias's gradient")
    func gradient() throws {
        let (model, batch) = try Self.model()
        let grads = model.backward(try model.forward(batch))
        let dPos = try #require(grads[TrainableLlava.imagePositions])
        let dBias = try #require(grads["multi_modal_projector.linear_2.bias"])
        // Every position row is added where linear_2's bias is: summed over rows they are the same gradient
        // (up to fp32 summation order: 1e-5 of the largest entry).
        let c = dBias.count, rows = dPos.count / c
        #expect(rows == model.config.imageTokensPerImage && rows >= 2)
        let scale = (0 ..< dBias.count).map { abs(dBias[$0]) }.max() ?? 0
        #expect(scale > 1e-4, "the bias gradient is ~0 (\(scale)): the check would not test anything")
        for j in 0 ..< c {
            let sum = (0 ..< rows).reduce(Float(0)) { $0 + dPos[$1 * c + j] }
            #expect(abs(sum - dBias[j]) <= 1e-5 * scale, "channel \(j): rows sum to \(sum), bias gradient \(dBias[j])")
        }
        // Central differences on a few entries (fp32 forward, step 1e-2: agreement to 2e-3 absolute or 3%).
        let table = model.parameters[TrainableLlava.imagePositions]
        for i in Set([0, c + 5, dPos.count / 2 + 3, dPos.count - 1]).sorted() {
            let saved = table[i]
            table[i] = saved + 1e-2
            let up = try model.forward(batch).exactLoss
            table[i] = saved - 1e-2
            let down = try model.forward(batch).exactLoss
            table[i] = saved
            let numeric = Float((up - down) / 2e-2)
            #expect(abs(numeric - dPos[i]) <= max(2e-3, 0.03 * abs(numeric)), "entry \(i): analytic \(dPos[i]), numeric \(numeric)")
        }
    }

    @Test("saved with the config key, the inference model loads the rows and computes the training loss")
    func exportLoads() throws {
        let (model, batch) = try Self.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llava-positions-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.save(to: dir)
        let inference = try LlavaModel.load(directory: dir, storage: .float32)
        #expect(inference.config.imagePositionEmbedding)
        let ids = batch.ids[0], labels = batch.labels[0], pixels = batch.pixels.rows(0 ..< 1)
        let logits = try inference.forward(ids: ids, pixelValues: pixels, cache: inference.language.makeCache(), allLogits: true)
        let inferenceLoss = LlavaParityTests.scoredLoss(logits: logits, labels: labels)
        let pass = try model.forward(LlavaTrainingBatch(pixels: pixels, ids: [ids], labels: [labels]))
        #expect(abs(Double(pass.loss) - inferenceLoss) < 1e-4, "training loss \(pass.loss) vs inference \(inferenceLoss)")
        // Without the rows the answer changes: the test above would catch an inference model that dropped them.
        let plain = try LlavaModel.load(directory: Fixtures.url("llava_training/tied/model"), storage: .float32)
        let other = try plain.forward(ids: ids, pixelValues: pixels, cache: plain.language.makeCache(), allLogits: true)
        let moved = (0 ..< logits.count).map { abs(logits[$0] - other[$0]) }.max() ?? 0
        #expect(moved > 1e-2, "the position rows changed no logit (max change \(moved))")
    }

    @Test("a checkpoint that declares the rows but lacks the tensor is refused, naming it")
    func missingTensor() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llava-positions-missing-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("llava_training/tied/model"), to: dir)
        let url = dir.appendingPathComponent("config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        json["image_position_embedding"] = true
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        #expect { try LlavaModel.load(directory: dir, storage: .float32) } throws: { "\($0)".contains("position_embedding") }
        #expect { try TrainableLlava.load(directory: dir) } throws: { "\($0)".contains("position_embedding") }
    }
}
