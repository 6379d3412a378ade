import Foundation
import VLMTraining

/// Everything that defines a fine-tuning run (`vlm train vlm --from`); saved as train_args.json in every
/// checkpoint, so `--resume` continues the run from the checkpoint alone.
public struct VLMFineTuneArguments: Codable, Sendable {
    /// The base checkpoint directory (absolute path).
    public var from: String
    /// The JSONL conversations (absolute path).
    public var data: String
    public var steps: Int
    public var batch: Int = 4
    /// Peak learning rate (nil: 2e-4 with LoRA, 2e-5 in full).
    public var lr: Float?
    public var warmup: Int?
    public var wd: Float = 0
    public var clipGrad: Float = 1
    /// LoRA rank; nil trains the language model's weights in full.
    public var loraRank: Int?
    /// nil: 2 × rank.
    public var loraAlpha: Float?
    public var loraTargets: [String] = ["q_proj", "v_proj"]
    /// Train the projector (in full; with LoRA it is saved whole in the adapter as peft's modules_to_save).
    /// nil: frozen with LoRA, trained in full fine-tuning.
    public var trainProjector: Bool?
    public var seed: UInt64 = 0
    public var saveEvery: Int?

    public init(from: String, data: String, steps: Int) {
        self.from = from
        self.data = data
        self.steps = steps
    }

    public var learningRate: Float { lr ?? (loraRank != nil ? 2e-4 : 2e-5) }
    public var projectorTrains: Bool { trainProjector ?? (loraRank == nil) }

    /// The decoder's linear layers LoRA may target.
    public static let linearLayers = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    public func loraConfig() throws -> LoRAConfig? {
        guard let r = loraRank else { return nil }
        guard r >= 1, r <= 1024 else { throw PipelineError.invalidArgument("--lora \(r): the rank must be 1 ... 1024") }
        guard !loraTargets.isEmpty else { throw PipelineError.invalidArgument("--lora-targets is empty") }
        if let bad = loraTargets.first(where: { !Self.linearLayers.contains($0) }) {
            throw PipelineError.invalidArgument("--lora-targets: '\(bad)' is not a decoder linear layer (\(Self.linearLayers.joined(separator: ", ")))")
        }
        var c = LoRAConfig(r: r, alpha: loraAlpha ?? Float(2 * r), targets: .languageModel(loraTargets),
                           modulesToSave: projectorTrains ? ["multi_modal_projector"] : nil, base: from)
        c.taskType = nil
        try c.validate()
        return c
    }
}

/// Fine-tuning of a LLaVA-layout checkpoint on JSONL conversations: in full (language model and, by option, the
/// projector; the vision tower frozen) or with LoRA on named linear layers of the language model. AdamW
/// (β 0.9/0.999, eps 1e-8, no decay on 1-D tensors), warmup + cosine, global-norm clipping, batches of
/// conversations shuffled per epoch from `seed`. Checkpoints: with LoRA a peft adapter directory
/// (adapter_config.json + adapter_model.safetensors), in full a complete checkpoint with the base's tokenizer and
/// processor files; both plus optimizer.safetensors, trainer_state.json and train_args.json (resume), and
/// training_log.json + loss_curve.svg at the end.
public final class VLMFineTuner {
    public let args: VLMFineTuneArguments
    public let model: TrainableLlava
    public let lora: LoRALlava?
    public let optimizer: AdamW
    let examples: [(ids: [Int], labels: [Int], pixels: Tensor)]
    public private(set) var step = 0
    public private(set) var lossHistory: [Float] = []
    public var onProgress: ((TrainingProgress) -> Void)?

    struct State: Codable {
        var step: Int
        var lossHistory: [Float]
    }

    /// True when `directory` is a checkpoint of a fine-tuning run (its train_args.json names a base).
    public static func isFineTuneCheckpoint(_ directory: URL) -> Bool {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(SceneVLMTrainer.argsFile)),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return json["from"] != nil
    }

    public var baseURL: URL { URL(fileURLWithPath: args.from) }
    public var conversations: Int { examples.count }
    public var trainableParameters: Int {
        lora?.trainableParameters ?? model.parameters.names.filter(isTrainable).reduce(0) { $0 + model.parameters[$1].count }
    }

    /// A new run from the base checkpoint `args.from`.
    public convenience init(args: VLMFineTuneArguments) throws {
        try self.init(args: args, resume: nil)
    }

    /// Continues a run from a checkpoint written by `saveCheckpoint` (`steps` may extend it).
    public convenience init(resume directory: URL, steps: Int? = nil) throws {
        let url = directory.appendingPathComponent(SceneVLMTrainer.argsFile)
        var args: VLMFineTuneArguments
        do { args = try JSONDecoder().decode(VLMFineTuneArguments.self, from: Data(contentsOf: url)) } catch {
            throw PipelineError.invalidArgument("\(url.path): cannot read the run's arguments (\(error)); resume needs a checkpoint of `vlm train vlm --from`")
        }
        if let steps { args.steps = steps }
        try self.init(args: args, resume: directory)
    }

    init(args: VLMFineTuneArguments, resume: URL?) throws {
        guard args.steps >= 1, args.batch >= 1 else { throw PipelineError.invalidArgument("--steps and --batch must be >= 1") }
        self.args = args
        let base = URL(fileURLWithPath: args.from)
        let model = try TrainableLlava.load(directory: resume != nil && args.loraRank == nil ? resume ?? base : base)
        model.freezeVision = true
        self.model = model
        if let config = try args.loraConfig() {
            if let resume { lora = try LoRALlava.load(base: model, adapterDirectory: resume) } else { lora = try LoRALlava(base: model, config: config, seed: args.seed) }
        } else { lora = nil }
        optimizer = AdamW(learningRate: args.learningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: args.wd)
        optimizer.excludeFromDecay = { _, shape in shape.count < 2 }
        let encoder = try ChatEncoder(directory: base, config: model.config)
        examples = try ChatDataset.load(URL(fileURLWithPath: args.data)).map { example in
            guard example.images.count == 1 else {
                throw PipelineError.invalidArgument("\(args.data):\(example.line): \(example.images.count) images; LLaVA fine-tuning takes exactly one image per conversation")
            }
            return try encoder.encode(example)
        }
        if let resume {
            try optimizer.loadState(from: resume.appendingPathComponent(SceneVLMTrainer.optimizerFile), params: lora?.adapter ?? model.parameters)
            let stateURL = resume.appendingPathComponent(SceneVLMTrainer.stateFile)
            do {
                let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: stateURL))
                step = state.step
                lossHistory = state.lossHistory
            } catch { throw PipelineError.invalidArgument("\(stateURL.path): \(error)") }
        }
    }

    func isTrainable(_ name: String) -> Bool {
        !name.hasPrefix("vision_tower.") && (args.projectorTrains || !name.hasPrefix("multi_modal_projector."))
    }

    public var schedule: CosineSchedule {
        CosineSchedule(baseLR: args.learningRate, warmupSteps: args.warmup ?? max(1, args.steps / 20), totalSteps: args.steps)
    }

    /// Conversations of step `step`: epoch e = step·batch / count visits a permutation drawn from (seed, e).
    public func batch(step: Int) -> LlavaTrainingBatch {
        let n = examples.count
        var ids: [[Int]] = [], labels: [[Int]] = [], pixels: [Tensor] = []
        var orders: [Int: [Int]] = [:]
        for slot in 0 ..< args.batch {
            let k = step * args.batch + slot, epoch = k / n
            let order = orders[epoch] ?? {
                var rng = SplitMix64(seed: args.seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
                var order = Array(0 ..< n)
                for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                return order
            }()
            orders[epoch] = order
            let e = examples[order[k % n]]
            ids.append(e.ids)
            labels.append(e.labels)
            pixels.append(e.pixels)
        }
        let one = pixels[0].count
        let stacked = Tensor(uninitialized: [pixels.count] + Array(pixels[0].shape.dropFirst()))
        for (i, p) in pixels.enumerated() { (stacked.pointer + i * one).update(from: p.pointer, count: one) }
        return LlavaTrainingBatch(pixels: stacked, ids: ids, labels: labels)
    }

    /// One optimizer step on `batch`.
    func trainStep(_ batch: LlavaTrainingBatch, learningRate: Float) throws -> (loss: Float, gradientNorm: Float) {
        let clip: Float? = args.clipGrad > 0 ? args.clipGrad : nil
        if let lora {
            let r = try lora.trainStep(batch, optimizer: optimizer, learningRate: learningRate, maxGradNorm: clip)
            return (r.loss, r.gradientNorm)
        }
        let pass = try model.forward(batch)
        let all = model.backward(pass), grads = Gradients()
        for name in all.names where isTrainable(name) { if let g = all[name] { grads.add(name, g) } }
        let norm = clip.map { clipGradientNorm(grads, maxNorm: $0) } ?? Float(grads.globalNorm)
        optimizer.learningRate = learningRate
        optimizer.step(model.parameters, grads)
        return (pass.loss, norm)
    }

    /// Trains from the current step to args.steps (checkpoints under `out/checkpoints` every args.saveEvery
    /// steps), then writes the final checkpoint, the log and the loss curve into `out`.
    public func run(out: URL) throws -> SceneVLMRunSummary {
        let started = Date()
        let schedule = self.schedule
        while step < args.steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let lr = schedule.learningRate(step: step)
            let result = try trainStep(batch(step: step), learningRate: lr)
            step += 1
            lossHistory.append(result.loss)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            onProgress?(TrainingProgress(step: step, epoch: (step * args.batch) / max(examples.count, 1), loss: result.loss, learningRate: lr,
                                         gradientNorm: result.gradientNorm, samplesPerSecond: Double(args.batch) / max(seconds, 1e-9)))
            if let every = args.saveEvery, every > 0, step % every == 0, step < args.steps {
                try saveCheckpoint(to: out.appendingPathComponent("checkpoints/checkpoint-\(step)"))
            }
        }
        try saveCheckpoint(to: out)
        let seconds = Date().timeIntervalSince(started)
        let rates = (0 ..< lossHistory.count).map { schedule.learningRate(step: $0) }
        let log = TrainingLog(arguments: Array(CommandLine.arguments.dropFirst()), seed: args.seed, steps: step,
                              epochs: (step * args.batch) / max(examples.count, 1), batchSize: args.batch, samplesSeen: step * args.batch,
                              skippedSamples: 0, parameters: model.parameters.scalarCount, trainableParameters: trainableParameters,
                              seconds: seconds, finalLogitScale: 0, loss: lossHistory, learningRate: rates)
        try SceneVLMTrainer.encode(log).write(to: out.appendingPathComponent(SceneVLMTrainer.logFile), options: .atomic)
        let title = "vlm train vlm --from: \(lora.map { "LoRA r=\($0.config.r)" } ?? "full"), \(step) steps, batch \(args.batch)"
        try Data(LossCurveSVG.render(loss: lossHistory, learningRate: rates, title: title).utf8)
            .write(to: out.appendingPathComponent(SceneVLMTrainer.curveFile), options: .atomic)
        return SceneVLMRunSummary(steps: step, seconds: seconds, finalLoss: log.finalLossAverage, parameters: trainableParameters)
    }

    /// A resumable checkpoint: the adapter (LoRA) or the full model with the base's tokenizer/processor files.
    public func saveCheckpoint(to directory: URL) throws {
        var files: [String: Data] = [:]
        files[SceneVLMTrainer.optimizerFile] = try optimizer.stateData()
        files[SceneVLMTrainer.stateFile] = try SceneVLMTrainer.encode(State(step: step, lossHistory: lossHistory))
        files[SceneVLMTrainer.argsFile] = try SceneVLMTrainer.encode(args)
        if let lora { try lora.save(to: directory, extraFiles: files) } else {
            try model.save(to: directory, extraFiles: try baseFiles().merging(files) { $1 })
        }
    }

    /// A complete inference checkpoint: the base with the adapter merged (LoRA), or the fine-tuned model (full);
    /// float32, loadable through the registry and in transformers. Call after `run` (the adapter is read from `out`).
    public func export(out: URL, to directory: URL) throws {
        if lora != nil { try LoRAMerge.merge(base: baseURL, adapter: out, into: directory) } else {
            try model.save(to: directory, extraFiles: try baseFiles())
        }
    }

    /// The base checkpoint's files other than weights and config.json (tokenizer, template, processor, generation config).
    func baseFiles() throws -> [String: Data] {
        var out: [String: Data] = [:]
        let fm = FileManager.default
        for name in try fm.contentsOfDirectory(atPath: args.from) where !name.hasSuffix(".safetensors") && !name.hasPrefix(".")
            && !["config.json", "model.safetensors.index.json", "README.md"].contains(name) && !LoRAMerge.runFiles.contains(name) {
            let url = baseURL.appendingPathComponent(name)
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue { out[name] = try Data(contentsOf: url) }
        }
        return out
    }
}
