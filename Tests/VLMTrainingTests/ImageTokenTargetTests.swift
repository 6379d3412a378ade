import Foundation
import Testing
import VLMTensor
@testable import VLMTraining

/// `LlavaTrainingBatch.imageLabels`: the projector's output rows classified by the language model's head
/// (`ImageTokenTargets.swift`), on the tied fixture with position rows (which the targets must not see).
@Suite("Image-token targets on the projector's rows")
struct ImageTokenTargetTests {
    /// Every third image token of each image labelled with a pseudo-random vocabulary id.
    static func labels(_ model: TrainableLlava, batch: LlavaTrainingBatch) -> [Int] {
        let n = batch.size * model.config.imageTokensPerImage, vocab = model.config.textConfig.vocabSize
        var rng = TestRandom(11)
        return (0 ..< n).map { $0 % 3 == 1 ? rng.index(vocab) : LlavaTrainingBatch.ignoreIndex }
    }

    @Test("loss = LM loss + weight x target loss: finite differences on the projector, the tied head and the tower")
    func gradient() throws {
        let (model, plain) = try ImagePositionTests.model()
        model.imageTargetWeight = 0.7
        let batch = LlavaTrainingBatch(pixels: plain.pixels, ids: plain.ids, labels: plain.labels, imageLabels: Self.labels(model, batch: plain))
        let pass = try model.forward(batch)
        let target = try #require(pass.imageTargetLoss)
        #expect(target > 1, "random ids score near log(vocab): \(target)")
        // The LM loss is the same number with or without the targets.
        let plainLoss = try model.forward(plain).exactLoss
        #expect(pass.exactLoss == plainLoss)
        let grads = model.backward(pass)
        func total() throws -> Double {
            let p = try model.forward(batch)
            return p.exactLoss + 0.7 * (p.imageTargetLoss ?? .nan)
        }
        for name in ["multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_1.bias", TrainableLlava.embeddingName,
                     "vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight"] {
            let g = try #require(grads[name], "no gradient for \(name)")
            try checkGradient(name, value: model.parameters[name], analytic: g, samples: 6, h: 1e-2, atol: 2e-3, rtol: 3e-2, loss: total)
        }
        // The targets read the rows before the position rows: those get the LM loss's gradient only.
        let plainGrads = model.backward(try model.forward(plain))
        let a = try #require(grads[TrainableLlava.imagePositions]), b = try #require(plainGrads[TrainableLlava.imagePositions])
        #expect((0 ..< a.count).allSatisfy { a[$0] == b[$0] })
        // And the targets do move the projector's gradient.
        let w1 = try #require(grads["multi_modal_projector.linear_2.weight"]), w0 = try #require(plainGrads["multi_modal_projector.linear_2.weight"])
        #expect((0 ..< w1.count).contains { abs(w1[$0] - w0[$0]) > 1e-4 })
    }

    @Test("image labels of the wrong count or outside the vocabulary are refused by name; all -100 adds nothing")
    func validation() throws {
        let (model, plain) = try ImagePositionTests.model()
        let n = plain.size * model.config.imageTokensPerImage
        for (bad, culprit) in [(Array(repeating: 1, count: n - 1), "image-token labels"),
                               (Array(repeating: model.config.textConfig.vocabSize, count: n), "image-token label")] {
            let batch = LlavaTrainingBatch(pixels: plain.pixels, ids: plain.ids, labels: plain.labels, imageLabels: bad)
            do {
                _ = try model.forward(batch)
                Issue.record("accepted \(culprit)")
            } catch { #expect("\(error)".contains(culprit), "\(error)") }
        }
        let none = LlavaTrainingBatch(pixels: plain.pixels, ids: plain.ids, labels: plain.labels,
                                      imageLabels: Array(repeating: LlavaTrainingBatch.ignoreIndex, count: n))
        let pass = try model.forward(none), plainLoss = try model.forward(plain).exactLoss
        #expect(pass.imageTargetLoss == nil && pass.exactLoss == plainLoss)
    }
}
