import Foundation
@testable import SwiftVLM
import Testing
import VLMTestSupport
import VLMTraining

/// `vlm train vlm`'s library path end to end on the micro preset: train, resume, load through the registry, answer.
@Suite("Scene VLM training")
struct SceneVLMTrainingTests {
    @Test("train 3 steps, resume to 5, the checkpoint loads through the registry and answers")
    func trainResumeAsk() throws {
        // Bit-for-bit comparisons of two runs: no other test may force a kernel path meanwhile.
        try KernelPaths.exclusiveThrowing { try trainResumeAskBody() }
    }

    func trainResumeAskBody() throws {
        let root = Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        var args = Self.micro(scenes: 20, steps: 3, batch: 4)
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

    /// A fresh scratch directory (the caller removes it).
    static func scratch() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("scene-vlm-\(UUID().uuidString)")
    }

    /// A run of the micro preset.
    static func micro(scenes: Int, steps: Int, batch: Int) -> SceneVLMArguments {
        var args = SceneVLMArguments(scenes: scenes, steps: steps)
        args.preset = "micro"
        args.batch = batch
        return args
    }

    func batches(_ trainer: SceneVLMTrainer, root: URL) throws -> SceneVLMBatches {
        let dir = root.appendingPathComponent("assets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, data) in trainer.assets { try data.write(to: dir.appendingPathComponent(name)) }
        return try SceneVLMBatches(directory: dir, seed: trainer.args.seed, scenesSeed: trainer.args.scenesSeed, count: trainer.args.scenes,
                                   batchSize: trainer.args.batch, config: trainer.model.config, turns: trainer.args.turns ?? 1)
    }

    /// Multi-turn sequences: the image once, then distinct turns rendered exactly as the chat template renders the
    /// conversation, every answer (and its EOS) scored and nothing else, within the context length.
    /// With `questionFirst` the template puts the first question before the image run.
    @Test("multi-turn batches render the conversation as the chat template does and score every answer", arguments: [false, true])
    func multiTurnBatches(questionFirst: Bool) throws {
        let root = Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        var args = Self.micro(scenes: 20, steps: 1, batch: 6)
        args.turns = 4
        args.questionFirst = questionFirst
        let trainer = try SceneVLMTrainer(args: args)
        let data = try batches(trainer, root: root)
        let batch = try data.batch(step: 3)
        let context = trainer.model.config.textConfig.maxPositionEmbeddings
        let tokenizer = data.processor.tokenizer
        var multi = 0
        for slot in 0 ..< args.batch {
            let (scene, turns) = try data.draw(step: 3, slot: slot, turns: 4)
            #expect(Set(turns.map { "\($0.prompt)|\($0.answer)" }).count == turns.count, "turns repeat")
            let ids = batch.ids[slot], labels = batch.labels[slot]
            #expect(ids.count <= context)
            // The scored tokens are the answers (with EOS) of the turns that fit, in order.
            let scored = zip(ids, labels).filter { $0.1 != LlavaTrainingBatch.ignoreIndex }.map(\.0)
            #expect(zip(ids, labels).allSatisfy { $0.1 == LlavaTrainingBatch.ignoreIndex || $0.1 == $0.0 })
            var expected: [Int] = [], kept = 0
            for turn in turns {
                let answer = try tokenizer.encode(turn.answer, addSpecialTokens: false) + [data.eos]
                if expected.count + answer.count > scored.count { break }
                expected += answer
                kept += 1
            }
            #expect(scored == expected)
            if kept > 1 { multi += 1 }
            // The whole sequence is the template's rendering of those turns (image run expanded).
            var messages: [ChatMessage] = []
            for (n, turn) in turns.prefix(kept).enumerated() {
                messages.append(ChatMessage(role: "user", parts: (n == 0 ? [ChatContentPart(type: "image")] : []) + [.text(turn.prompt)]))
                messages.append(ChatMessage(role: "assistant", parts: [.text(turn.answer)]))
            }
            let rendered = try data.processor.prepare(messages: messages, images: [try scene.image.rgbImage()]).ids
            #expect(rendered == ids, "slot \(slot)")
            // Where the image run sits: right after "question :" or after the first question's words.
            let question = try tokenizer.encode("question : \(turns[0].prompt)", addSpecialTokens: false)
            let image = trainer.model.config.imageTokenIndex
            let firstImage = ids.firstIndex(of: image) ?? -1
            #expect(firstImage == 1 + (questionFirst ? question.count : 2), "image run at \(firstImage)")
        }
        #expect(multi >= args.batch / 2, "only \(multi) of \(args.batch) sequences hold several turns")
    }

    /// LLaVA's vision_feature_layer: several tower layers concatenated feed the projector; out-of-range layers are refused.
    @Test("vision feature layers: concatenated into the projector, out-of-range refused")
    func visionFeatureLayers() throws {
        let root = Self.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        var args = Self.micro(scenes: 10, steps: 2, batch: 2)
        args.visionFeatureLayers = [-2, -1]
        let trainer = try SceneVLMTrainer(args: args)
        #expect(trainer.model.config.visionFeatureLayers == [-2, -1])
        let width = trainer.model.config.visionConfig.hiddenSize
        #expect(trainer.model.parameters["multi_modal_projector.linear_1.weight"].shape[1] == 2 * width)
        let summary = try trainer.run(out: root.appendingPathComponent("run"))
        #expect(summary.steps == 2 && trainer.lossHistory.allSatisfy(\.isFinite))
        let config = try String(contentsOf: root.appendingPathComponent("run/config.json"), encoding: .utf8)
        #expect(config.contains("\"vision_feature_layer\""))
        args.visionFeatureLayers = [-9]
        #expect { try SceneVLMTrainer(args: args) } throws: { "\($0)".contains("--vision-feature-layers") }
        args.visionFeatureLayers = nil
        args.visionLRScale = 0
        #expect { try SceneVLMTrainer(args: args) } throws: { "\($0)".contains("--vision-lr-scale") }
        args.visionLRScale = nil
        args.visionFeatureStrategy = "mean"
        #expect { try SceneVLMTrainer(args: args) } throws: { "\($0)".contains("--vision-feature-strategy") }
        args.visionFeatureStrategy = nil

        // --init-from: a new run starts from the trained checkpoint's weights, every tensor; an architecture that
        // differs (here the projector's input width) is refused naming the tensor.
        var next = Self.micro(scenes: 10, steps: 1, batch: 2)
        next.seed = 9
        next.visionFeatureLayers = [-2, -1]
        next.initFrom = root.appendingPathComponent("run").path
        let continued = try SceneVLMTrainer(args: next)
        for name in trainer.model.parameters.names {
            #expect(continued.model.parameters[name].scalars == trainer.model.parameters[name].scalars, "\(name)")
        }
        next.visionFeatureLayers = [-1]
        #expect { try SceneVLMTrainer(args: next) } throws: { "\($0)".contains("multi_modal_projector.linear_1.weight") }

        // Widening: layer 0 added in front; the checkpoint's columns move to layers -2/-1's places, layer 0's are 0.
        next.visionFeatureLayers = [0, -2, -1]
        let widened = try SceneVLMTrainer(args: next)
        let name = "multi_modal_projector.linear_1.weight"
        let old = trainer.model.parameters[name], new = widened.model.parameters[name]
        #expect(new.shape == [old.shape[0], 3 * width])
        for r in 0 ..< old.shape[0] {
            #expect(Array(new.scalars[(r * 3 * width) ..< (r * 3 * width + width)]).allSatisfy { $0 == 0 })
            #expect(Array(new.scalars[(r * 3 * width + width) ..< ((r + 1) * 3 * width)]) == Array(old.scalars[(r * 2 * width) ..< ((r + 1) * 2 * width)]))
        }
        for other in trainer.model.parameters.names where other != name {
            #expect(widened.model.parameters[other].scalars == trainer.model.parameters[other].scalars, "\(other)")
        }
    }
}
