import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

@Suite("Optimizer, schedule and trainer")
struct OptimizerTests {
    @Test("cosine schedule with warmup follows open_clip's cosine_lr")
    func schedule() {
        let s = CosineSchedule(baseLR: 1e-3, warmupSteps: 4, totalSteps: 12)
        #expect(abs(s.learningRate(step: 0) - 2.5e-4) < 1e-9)       // base · 1/4
        #expect(abs(s.learningRate(step: 3) - 1e-3) < 1e-9)         // end of warmup
        #expect(abs(s.learningRate(step: 4) - 1e-3) < 1e-9)         // cos(0)
        #expect(abs(s.learningRate(step: 8) - 5e-4) < 1e-9)         // halfway: 0.5 · (1 + cos(π/2))
        #expect(s.learningRate(step: 12) < 1e-12)                   // cos(π) -> 0
    }

    @Test("weight-decay groups follow open_clip's rule")
    func decayGroups() {
        #expect(isExcludedFromWeightDecay(name: "logit_scale", shape: []))
        #expect(isExcludedFromWeightDecay(name: "vision_model.embeddings.class_embedding", shape: [8]))
        #expect(isExcludedFromWeightDecay(name: "text_model.encoder.layers.0.layer_norm1.weight", shape: [8]))
        #expect(isExcludedFromWeightDecay(name: "text_model.encoder.layers.0.mlp.fc1.bias", shape: [8]))
        #expect(!isExcludedFromWeightDecay(name: "text_model.encoder.layers.0.mlp.fc1.weight", shape: [8, 8]))
        #expect(!isExcludedFromWeightDecay(name: "text_model.embeddings.token_embedding.weight", shape: [64, 8]))
        #expect(!isExcludedFromWeightDecay(name: "vision_model.embeddings.patch_embedding.weight", shape: [8, 3, 2, 2]))
    }

    /// torch parameter groups with their own lr: a scaled parameter moves by scale x the unscaled one's step (first
    /// AdamW step: lr / (1 - β1) · m / (sqrt(v / (1 - β2)) + eps) = lr · g / (|g| + eps) per element, decay by lr·wd).
    @Test("per-parameter learning-rate scale (a slower tower) follows AdamW with that group's lr")
    func learningRateScale() {
        let params = ParameterSet()
        params.set("vision_tower.w", Tensor(shape: [2, 2], values: [1, -2, 3, 0.5]))
        params.set("decoder.w", Tensor(shape: [2, 2], values: [1, -2, 3, 0.5]))
        let grads = Gradients()
        let g: [Float] = [0.3, -1.5, 2, 0.01]
        grads.add("vision_tower.w", Tensor(shape: [2, 2], values: g))
        grads.add("decoder.w", Tensor(shape: [2, 2], values: g))
        let adam = AdamW(learningRate: 1e-2, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.1)
        adam.learningRateScale = { $0.hasPrefix("vision_tower.") ? 0.1 : 1 }
        adam.step(params, grads)
        let start: [Float] = [1, -2, 3, 0.5]
        for (name, lr) in [("vision_tower.w", Float(1e-3)), ("decoder.w", Float(1e-2))] {
            let got = params[name]
            for i in 0 ..< 4 {
                let expected = start[i] * (1 - lr * 0.1) - lr * g[i] / (abs(g[i]) + 1e-8)
                #expect(abs(got.pointer[i] - expected) < 1e-6, "\(name)[\(i)]: \(got.pointer[i]) vs \(expected)")
            }
        }
    }

    @Test("gradient clipping scales to the global norm like clip_grad_norm_")
    func clipping() {
        let g = Gradients()
        g.add("a", Tensor(shape: [2], values: [3, 0]))
        g.add("b", Tensor(shape: [1], values: [4]))
        #expect(clipGradientNorm(g, maxNorm: 1) == 5)
        #expect(abs(Float(g.globalNorm) - 1) < 1e-5)
        #expect(clipGradientNorm(g, maxNorm: 10) < 1.0001)  // below the limit: untouched
    }

    @Test("trainer runs epochs, checkpoints, and resumes to the same weights as an uninterrupted run")
    func trainerResume() throws {
        // Bit-for-bit comparison of a resumed run: no other test may force a kernel path meanwhile.
        try KernelPaths.exclusiveThrowing { try trainerResumeBody() }
    }

    func trainerResumeBody() throws {
        let batches = (0 ..< 3).map { i -> TrainingBatch in
            let (p, ids) = microBatch(4, seed: UInt64(200 + i))
            return TrainingBatch(pixels: p, ids: ids)
        }
        var options = TrainerOptions()
        options.epochs = 2
        options.baseLearningRate = 2e-3
        options.warmupSteps = 2
        let root = TestScratch.root.appendingPathComponent("vlm-trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }

        // Uninterrupted: 2 epochs x 3 batches.
        let full = Trainer(model: try microModel(), options: options)
        var progress: [TrainingProgress] = []
        full.onProgress = { progress.append($0) }
        var data = InMemoryDataSource(batches: batches)
        try full.run(&data)
        #expect(full.step == 6 && full.lossHistory.count == 6 && progress.count == 6)
        #expect(progress.allSatisfy { $0.samplesPerSecond > 0 && $0.loss.isFinite })

        // Interrupted in the middle of epoch 2 (step 4 of 6), checkpointed, then resumed.
        var first = options
        first.stopAtStep = 4
        first.checkpointDirectory = root
        first.checkpointEvery = 2
        let part = Trainer(model: try microModel(), options: first)
        var data1 = InMemoryDataSource(batches: batches)
        try part.run(&data1)
        #expect(part.step == 4)
        let dir = root.appendingPathComponent("checkpoint-4")
        for name in ["config.json", "model.safetensors", Trainer.optimizerFile, Trainer.stateFile] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "\(name)")
        }
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("checkpoint-2/model.safetensors").path))
        _ = try CLIPModel.load(directory: dir)  // the extra files do not disturb the inference loader

        let resumed = try Trainer.resume(from: dir, options: options)
        #expect(resumed.step == 4 && resumed.epoch == 1 && resumed.lossHistory == Array(full.lossHistory.prefix(4)))
        var data2 = InMemoryDataSource(batches: batches)
        try resumed.run(&data2)
        for name in full.model.parameters.names {
            let a = full.model.parameters[name], b = resumed.model.parameters[name]
            var d: Float = 0
            for i in 0 ..< a.count { d = max(d, abs(a[i] - b[i])) }
            #expect(d < 1e-6, "\(name) differs by \(d) after resume")
        }
    }
}

@Suite("Step timing")
struct StepTimingTests {
    /// Prints the time of one training step; timed, not asserted. By default the parity fixture's tiny CLIP
    /// (B = 4, fast in debug); with VLM_TRAINING_BENCH=1 a small ViT-like config (B = 8, 32px images, 4px patches
    /// -> 65 tokens, width 64, MLP 256, 2 layers per tower).
    @Test("step time")
    func stepTime() throws {
        let bench = ProcessInfo.processInfo.environment["VLM_TRAINING_BENCH"] == "1"
        let model: TrainableCLIP
        let pixels: Tensor, ids: [[Int]]
        if bench {
            var config = microConfig()
            config.visionConfig.hiddenSize = 64
            config.visionConfig.intermediateSize = 256
            config.visionConfig.numAttentionHeads = 4
            config.visionConfig.imageSize = 32
            config.visionConfig.patchSize = 4
            config.textConfig.hiddenSize = 64
            config.textConfig.intermediateSize = 256
            config.textConfig.numAttentionHeads = 4
            config.textConfig.maxPositionEmbeddings = 16
            config.projectionDim = 32
            model = try TrainableCLIP.random(config: config, seed: 1)
            (pixels, ids) = microBatch(8, seed: 3, config: config)
        } else {
            let ref = try TrainingReference.load()
            model = try TrainableCLIP.load(directory: Fixtures.url("training/tiny"))
            pixels = try fixtureTensors("batch.safetensors").tensor("pixel_values")
            ids = ref.input_ids
        }
        let adam = AdamW(learningRate: 1e-3)
        _ = try model.trainStep(pixels: pixels, ids: ids, optimizer: adam, learningRate: 1e-3)
        let steps = 5
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0 ..< steps { _ = try model.trainStep(pixels: pixels, ids: ids, optimizer: adam, learningRate: 1e-3, maxGradNorm: 1) }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6 / Double(steps)
        print("step time: \(ms) ms per step (B=\(ids.count), \(model.parameters.scalarCount) parameters, \(bench ? "bench" : "parity tiny") config)")
    }
}
