import Foundation
import SwiftVLM
import Testing
import VLMTraining

/// `vlm train vlm`'s library path end to end on the micro preset: train, resume, load through the registry, answer.
@Suite("Scene VLM training")
struct SceneVLMTrainingTests {
    @Test("train 3 steps, resume to 5, the checkpoint loads through the registry and answers")
    func trainResumeAsk() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("scene-vlm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var args = SceneVLMArguments(scenes: 20, steps: 3)
        args.preset = "micro"
        args.batch = 4
        let trainer = try SceneVLMTrainer(args: args)
        let out = root.appendingPathComponent("run")
        let summary = try trainer.run(out: out)
        #expect(summary.steps == 3)
        #expect(trainer.lossHistory.allSatisfy { $0.isFinite && $0 > 0 })
        // Same seed, same first loss (batches and initialisation are pure functions of the seed).
        let again = try SceneVLMTrainer(args: args)
        let first = try again.model.forward(try batches(again, root: root).batch(step: 0)).loss
        #expect(first == trainer.lossHistory[0], "first loss \(first) vs \(trainer.lossHistory[0])")

        let resumed = try SceneVLMTrainer(resume: out, steps: 5)
        #expect(resumed.step == 3)
        _ = try resumed.run(out: out)
        #expect(resumed.lossHistory.count == 5 && Array(resumed.lossHistory.prefix(3)) == trainer.lossHistory)
        for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
                     "chat_template.json", "optimizer.safetensors", "trainer_state.json", "training_log.json", "loss_curve.svg"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(name).path), "\(name) missing")
        }
        let export = root.appendingPathComponent("model")
        try resumed.export(to: export)
        let pipeline = try GenerativePipeline.load(directory: export)
        let scene = try SceneGenerator(seed: 0).generate(index: 0, split: .test)
        var options = SamplingOptions()
        options.maxTokens = 6
        let answer = try pipeline.generate(messages: [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text("how many objects are there?")])],
                                           images: [try scene.image.rgbImage()], options: options)
        #expect(answer.promptTokens == 16 + 11, "prompt: BOS, question, :, 16 image tokens, how many objects are there ?, answer, : = \(answer.promptTokens)")
        #expect(!answer.tokens.isEmpty)
    }

    func batches(_ trainer: SceneVLMTrainer, root: URL) throws -> SceneVLMBatches {
        let dir = root.appendingPathComponent("assets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, data) in trainer.assets { try data.write(to: dir.appendingPathComponent(name)) }
        return try SceneVLMBatches(directory: dir, seed: trainer.args.seed, scenesSeed: trainer.args.scenesSeed, count: trainer.args.scenes,
                                   batchSize: trainer.args.batch, config: trainer.model.config)
    }
}
