import ArgumentParser
import Foundation
import VLMLayers
import SwiftVLM
import VLMTraining

/// `vlm train clip`: contrastive training (from scratch or fine-tuning) into a Hugging Face checkpoint directory.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train models (contrastive CLIP, generative VLM).", subcommands: [TrainCLIP.self, TrainVLM.self])
}

extension FreezeMode: ExpressibleByArgument {}

/// Everything that defines a run. Saved as train_args.json in every checkpoint, so `--resume` continues the
/// same run from the checkpoint alone.
struct TrainArguments: Codable {
    var data: String?
    var split: String?
    var scenes: Int?
    var scenesSeed: UInt64
    var scenesKind: String
    var from: String?
    var config: String?
    var patch: Int?
    var epochs: Int?
    var steps: Int?
    var batch: Int
    var lr: Float
    var warmup: Int?
    var wd: Float
    var clipGrad: Float
    var freeze: String
    var seed: UInt64
    var saveEvery: Int?
    var augment: Bool
    var hardNegatives: Bool?
    var contrastGroups: Int?
    var scenesSingleFraction: Double?
    var logitScale: Float?
    /// With --config: "sincos" adds 2-D sines and cosines of each patch's row and column to the tower's position
    /// rows (SceneVLM.addGridPositions) so the tower learns its features with positions present; nil: random rows.
    var visionPositionInit: String?
    var visionPositionAmplitude: Double?
    var out: String
    var export: String?
}

struct TrainCLIP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "Train a CLIP model with the symmetric contrastive loss (AdamW, warmup + cosine, open_clip decay rules).",
        discussion: """
        Data: --data (manifest.jsonl / *.jsonl with image+caption, or CSV with image,caption columns; a folder or \
        a file) or --scenes N (N synthetic scenes generated in memory). Model: --from DIR (fine-tune a Hugging Face \
        CLIP checkpoint, its tokenizer and image processor kept) or --config tiny|small (from scratch, 64x64 \
        images, a word-level tokenizer built from the captions). Writes --out: config.json, model.safetensors, \
        tokenizer and preprocessor files (a checkpoint every command loads), optimizer state, train_args.json, \
        training_log.json and loss_curve.svg. --save-every N also keeps --out/checkpoints/checkpoint-N; \
        --resume CKPT continues a run from any of these.
        """)

    @Option(help: "Training data: a .jsonl/.csv file or a folder with manifest.jsonl.") var data: String?
    @Option(help: "With --data: use samples of this split when the file has a 'split' field.") var split = "train"
    @Option(help: "Train on N synthetic scenes (generated in memory).") var scenes: Int?
    @Option(name: .customLong("scenes-seed"), help: "Seed of the scenes generator.") var scenesSeed: UInt64 = 0
    @Option(name: .customLong("scenes-kind"), help: "Scene kinds: single, multi or mixed.") var scenesKind = "mixed"
    @Option(name: .customLong("scenes-single-fraction"), help: "With --scenes-kind mixed: share of single-object scenes (generator default 0.25).") var scenesSingleFraction: Double?
    @Option(help: "Fine-tune this checkpoint directory.") var from: String?
    @Option(help: "Train from scratch with a preset architecture: \(CLIPPresets.names.joined(separator: ", ")).") var config: String?
    @Option(help: "With --config: override the preset's patch size (the image side must be a multiple).") var patch: Int?
    @Option(help: "Passes over the data (default 1 unless --steps).") var epochs: Int?
    @Option(help: "Optimizer steps (overrides --epochs; the schedule spans exactly these steps).") var steps: Int?
    @Option(help: "Pairs per batch.") var batch = 64
    @Option(help: "Peak learning rate.") var lr: Float = 5e-4
    @Option(help: "Linear warmup steps (default: 5% of the steps).") var warmup: Int?
    @Option(help: "AdamW weight decay (not on biases, norms, logit_scale: open_clip's rule).") var wd: Float = 0.2
    @Option(name: .customLong("clip-grad"), help: "Global gradient-norm clipping (0: off).") var clipGrad: Float = 1
    @Flag(name: .customLong("lock-image"), help: "Freeze the image tower and its projection (LiT).") var lockImage = false
    @Flag(name: .customLong("lock-text"), help: "Freeze the text tower and its projection.") var lockText = false
    @Flag(name: .customLong("projections-only"), help: "Train only the two projections and the temperature.") var projectionsOnly = false
    @Flag(help: "Augment images (small shifts, brightness; no flips) and sample paraphrased captions.") var augment = false
    @Flag(name: .customLong("hard-negatives"), help: "Add each sample's false captions (manifest 'negatives') as extra contrastive candidates (NegCLIP).") var hardNegatives = false
    @Option(name: .customLong("contrast-groups"), help: "With --scenes: build batches from groups of N minimally different scenes (another shape, swapped colours, mirrored layout) so shape, binding and relations decide the loss, not only colour (1: independent scenes; the batch must be a multiple).") var contrastGroups = 1
    @Option(name: .customLong("logit-scale"), help: "With --config: initial logit scale (the inverse temperature; CLIP's default is 1/0.07 = 14.3). Adam moves its logarithm by at most about --lr per step, so a short run keeps roughly the value it starts with.") var logitScale: Float?
    @Option(name: .customLong("vision-position-init"), help: "With --config: patch position rows random (default) or sincos (2-D sines and cosines of row and column added, so the tower keeps where things are for the generative models built on it).") var visionPositionInit: String?
    @Option(name: .customLong("vision-position-amplitude"), help: "Amplitude of each sine and cosine of --vision-position-init sincos (default 0.25).") var visionPositionAmplitude: Double?
    @Option(help: "Seed for initialisation, shuffling and augmentation.") var seed: UInt64 = 0
    @Option(name: .customLong("save-every"), help: "Also write a checkpoint every N steps.") var saveEvery: Int?
    @Option(help: "Continue from a checkpoint written by this command (its train_args.json defines the run).") var resume: String?
    @Option(help: "Output directory (the final checkpoint).") var out: String?
    @Option(help: "Also write an inference-only copy (fp16 weights, no optimizer state) to this directory.") var export: String?
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Flag(help: "No progress bar.") var quiet = false

    func arguments() throws -> TrainArguments {
        let locks = [lockImage, lockText, projectionsOnly].filter { $0 }.count
        guard locks <= 1 else { throw ValidationError("--lock-image, --lock-text and --projections-only exclude each other") }
        let freeze: FreezeMode = lockImage ? .lockImage : lockText ? .lockText : projectionsOnly ? .projectionsOnly : .none
        guard let out else { throw ValidationError("--out DIR is required") }
        if let logitScale, !(logitScale >= 1 && logitScale <= 100) { throw ValidationError("--logit-scale \(logitScale) must be in 1...100 (training clamps it at 100)") }
        guard contrastGroups >= 1, batch % contrastGroups == 0 else {
            throw ValidationError("--contrast-groups \(contrastGroups) must be >= 1 and divide --batch \(batch)")
        }
        guard contrastGroups == 1 || scenes != nil else { throw ValidationError("--contrast-groups needs --scenes (groups come from the generator)") }
        if let positionInit = visionPositionInit {
            guard ["random", "sincos"].contains(positionInit) else { throw ValidationError("--vision-position-init must be random or sincos, got '\(positionInit)'") }
            guard config != nil else { throw ValidationError("--vision-position-init needs --config (a tower trained from scratch)") }
        }
        if let a = visionPositionAmplitude, !(visionPositionInit == "sincos" && a > 0 && a <= 10) {
            throw ValidationError("--vision-position-amplitude \(a) needs --vision-position-init sincos and must be in (0, 10]")
        }
        return TrainArguments(data: data, split: split, scenes: scenes, scenesSeed: scenesSeed, scenesKind: scenesKind, from: from,
                              config: config, patch: patch, epochs: epochs, steps: steps, batch: batch, lr: lr, warmup: warmup, wd: wd,
                              clipGrad: clipGrad, freeze: freeze.rawValue, seed: seed, saveEvery: saveEvery, augment: augment,
                              hardNegatives: hardNegatives, contrastGroups: contrastGroups, scenesSingleFraction: scenesSingleFraction, logitScale: logitScale,
                              visionPositionInit: visionPositionInit, visionPositionAmplitude: visionPositionAmplitude, out: out, export: export)
    }

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            var args: TrainArguments
            var resumeDir: URL? = nil
            if let resume {
                let dir = expand(resume)
                let url = dir.appendingPathComponent(TrainRunner.argsFile)
                do { args = try JSONDecoder().decode(TrainArguments.self, from: Data(contentsOf: url)) } catch {
                    throw TrainingError.checkpoint("\(url.path): cannot read the run's arguments (\(error.localizedDescription)); resume needs a checkpoint written by `vlm train clip`")
                }
                if let out { args.out = out }
                if let export { args.export = export }
                resumeDir = dir
            } else {
                args = try arguments()
            }
            try TrainRunner(args: args, resumeFrom: resumeDir, quiet: quiet).run()
        }
    }
}

func expand(_ path: String) -> URL { URL(fileURLWithPath: (path as NSString).expandingTildeInPath) }

/// The training run behind `vlm train clip`.
struct TrainRunner {
    static let argsFile = "train_args.json"
    static let logFile = "training_log.json"
    static let curveFile = "loss_curve.svg"

    let args: TrainArguments
    let resumeFrom: URL?
    let quiet: Bool

    func run() throws {
        let started = Date()
        let outDir = expand(args.out)
        // 1. Data.
        let source = try trainingSource()
        // 2. Model + tokenizer/preprocessor files.
        var assets: [String: Data]
        let model: TrainableCLIP?
        if let resumeFrom {
            assets = CheckpointAssets.copyable(from: resumeFrom)
            model = nil
        } else if let from = args.from {
            guard args.config == nil else { throw ValidationError("--from and --config exclude each other") }
            let dir = expand(from)
            model = try TrainableCLIP.load(directory: dir)
            assets = CheckpointAssets.copyable(from: dir)
        } else {
            guard let preset = args.config else { throw ValidationError("give --from DIR (fine-tune) or --config \(CLIPPresets.names.joined(separator: "|")) (from scratch)") }
            let corpus = try vocabularyCorpus(source)
            let words = CheckpointAssets.words(in: corpus)
            let maxLength = 32
            assets = try CheckpointAssets.wordLevelTokenizerFiles(words: words, maxLength: maxLength)
            let (vocab, bos, eos, pad) = CheckpointAssets.vocabulary(words: words)
            var config = try CLIPPresets.config(preset, vocabSize: vocab.count, maxLength: maxLength, bosID: bos, eosID: eos, padID: pad)
            if let patch = args.patch {
                guard patch > 0, config.visionConfig.imageSize % patch == 0 else {
                    throw ValidationError("--patch \(patch) does not divide the image size \(config.visionConfig.imageSize)")
                }
                config.visionConfig.patchSize = patch
            }
            if let scale = args.logitScale { config.logitScaleInitValue = log(scale) }
            assets["preprocessor_config.json"] = try CheckpointAssets.preprocessorConfig(imageSize: config.visionConfig.imageSize)
            model = try TrainableCLIP.random(config: config, seed: args.seed)
            if args.visionPositionInit == "sincos", let m = model {
                SceneVLM.addGridPositions(m.parameters["vision_model.embeddings.position_embedding.weight"],
                                          grid: config.visionConfig.imageSize / config.visionConfig.patchSize,
                                          amplitude: args.visionPositionAmplitude ?? 0.25)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        assets[Self.argsFile] = try encoder.encode(args)
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-train-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        for (name, data) in assets { try data.write(to: staging.appendingPathComponent(name)) }
        let tokenizer = try TokenizerLoader.load(directory: staging)
        let processor = try ImageProcessor.load(directory: staging)

        // 3. Trainer.
        var options = TrainerOptions()
        options.baseLearningRate = args.lr
        options.maxGradNorm = args.clipGrad > 0 ? args.clipGrad : nil
        options.freeze = FreezeMode(rawValue: args.freeze) ?? .none
        options.extraCheckpointFiles = assets
        if let every = args.saveEvery, every > 0 {
            options.checkpointEvery = every
            options.checkpointDirectory = outDir.appendingPathComponent("checkpoints")
        }
        let optimizer = AdamW(learningRate: args.lr, weightDecay: args.wd)
        let trainer: Trainer
        if let resumeFrom { trainer = try Trainer.resume(from: resumeFrom, options: options, optimizer: optimizer) } else {
            guard let model else { throw TrainingError.invalidConfig("no model") }
            trainer = Trainer(model: model, optimizer: optimizer, options: options)
        }
        let clip = trainer.model
        let maxLength = min(TokenizerLoader.modelMaxLength(directory: staging) ?? clip.config.textConfig.maxPositionEmbeddings,
                            clip.config.textConfig.maxPositionEmbeddings)
        var pipeline = try BatchPipeline(source: source, processor: processor, tokenizer: tokenizer, maxTextLength: maxLength,
                                         batchSize: args.batch, seed: args.seed,
                                         augmentation: args.augment ? Augmentation(maxShift: 3, brightness: 0.06, randomCaption: true) : .none)
        pipeline.hardNegatives = args.hardNegatives ?? false
        pipeline.groupSize = args.contrastGroups ?? 1
        let bpe = pipeline.batchesPerEpoch
        let totalSteps = args.steps ?? bpe * max(args.epochs ?? 1, 1)
        trainer.options.totalSteps = totalSteps
        trainer.options.epochs = args.steps == nil ? max(args.epochs ?? 1, 1) : 0
        trainer.options.warmupSteps = args.warmup ?? max(1, totalSteps / 20)
        var skippedWarnings = 0
        pipeline.onSkip = { reason in
            skippedWarnings += 1
            if skippedWarnings <= 5 { warn("warning: \(reason)") } else if skippedWarnings == 6 { warn("warning: more samples skipped (counted in the log)") }
        }
        let trainable = clip.parameters.names.filter { options.freeze.isTrainable($0) }.reduce(0) { $0 + clip.parameters[$1].count }
        warn("training \(clip.parameters.scalarCount) parameters (\(trainable) trainable) on \(source.count) samples, \(bpe) batches of \(pipeline.batchSize) per epoch, \(totalSteps) steps\(trainer.step > 0 ? ", resuming at step \(trainer.step)" : "")")
        let progress = ProgressBar(total: totalSteps, startStep: trainer.step, enabled: !quiet)
        trainer.onProgress = { p in progress.update(p) }
        try trainer.run(&pipeline)
        progress.finish()

        // 4. Final checkpoint, log, curve.
        let schedule = trainer.schedule(batchesPerEpoch: bpe)
        try trainer.saveCheckpoint(to: outDir, schedule: schedule)
        let seconds = Date().timeIntervalSince(started)
        let log = TrainingLog(arguments: Array(CommandLine.arguments.dropFirst()), seed: args.seed, steps: trainer.step, epochs: trainer.epoch,
                              batchSize: pipeline.batchSize, samplesSeen: trainer.step * pipeline.batchSize, skippedSamples: pipeline.skipped,
                              parameters: clip.parameters.scalarCount, trainableParameters: trainable, seconds: seconds,
                              finalLogitScale: clip.parameters["logit_scale"][0], loss: trainer.lossHistory,
                              learningRate: (0 ..< trainer.lossHistory.count).map { schedule.learningRate(step: $0) })
        try writeFile(encoder.encode(log), outDir.appendingPathComponent(Self.logFile))
        try writeFile(Data(LossCurveSVG.render(loss: trainer.lossHistory, learningRate: log.learningRate,
                                               title: "vlm train clip: \(trainer.step) steps, batch \(pipeline.batchSize)").utf8),
                      outDir.appendingPathComponent(Self.curveFile))
        if let export = args.export {
            var files = assets
            files[Self.argsFile] = nil
            files[Self.logFile] = try encoder.encode(log)
            try clip.save(to: expand(export), extraFiles: files, dtype: .f16)
            warn("exported \(expand(export).path) (fp16)")
        }
        let lossText = log.finalLossAverage.map { String(format: "%.4f", Double($0)) } ?? "-"
        print("trained \(trainer.step) steps in \(formatDuration(seconds)) (\(String(format: "%.0f", log.samplesPerSecond)) samples/s), final loss \(lossText), \(pipeline.skipped) samples skipped")
        print("checkpoint: \(outDir.path)")
    }

    /// Captions (true and false) the word-level tokenizer must cover.
    func vocabularyCorpus(_ source: any PairedDataSource) throws -> [String] {
        if let scenes = source as? ScenesTrainingSource { return try scenes.vocabularyCorpus() }
        var corpus: [String] = []
        for i in 0 ..< source.count {
            let s = try source.sample(at: i)
            corpus += s.captions + s.negatives.map(\.caption)
            if let l = s.label { corpus.append(l) }
        }
        return corpus
    }

    func trainingSource() throws -> any PairedDataSource {
        switch (args.data, args.scenes) {
        case (.some, .some): throw ValidationError("--data and --scenes exclude each other")
        case (nil, nil): throw ValidationError("give training data: --data FILE|DIR or --scenes N")
        case (let data?, nil):
            let all = try PairedDataLoader.load(path: expand(data))
            guard let split = args.split, all.splits.contains(split) else { return all }
            return all.filtered(split: split)
        case (nil, let n?):
            var config = SceneConfig()
            if let f = args.scenesSingleFraction { config.singleFraction = f }
            return try ScenesTrainingSource(count: n, seed: args.scenesSeed, kind: args.scenesKind, groupSize: args.contrastGroups ?? 1, config: config)
        }
    }
}

func writeFile(_ data: Data, _ url: URL) throws {
    do { try data.write(to: url, options: .atomic) } catch { throw TrainingError.io(path: url.path, reason: error.localizedDescription) }
}

func warn(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// One-line progress on stderr: redrawn in place on a terminal, a line every ~5% otherwise (logs stay short).
final class ProgressBar {
    let total: Int, enabled: Bool, isTTY: Bool
    let started = Date()
    let startStep: Int
    var lastLine = Date.distantPast
    var smoothedLoss: Float?

    init(total: Int, startStep: Int, enabled: Bool) {
        self.total = max(total, 1)
        self.startStep = startStep
        self.enabled = enabled
        isTTY = isatty(2) != 0
    }

    func update(_ p: TrainingProgress) {
        guard enabled else { return }
        smoothedLoss = smoothedLoss.map { 0.9 * $0 + 0.1 * p.loss } ?? p.loss
        let elapsed = Date().timeIntervalSince(started)
        let done = p.step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - p.step) : 0
        let width = 24, filled = min(width, width * p.step / total)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(format: "[%@] %d/%d loss %.4f (avg %.4f) lr %.2e %.0f samples/s ETA %@", bar, p.step, total, p.loss,
                          smoothedLoss ?? p.loss, p.learningRate, p.samplesPerSecond, formatDuration(eta))
        if isTTY {
            FileHandle.standardError.write(Data(("\r" + line + "\u{1B}[K").utf8))
        } else if p.step == total || p.step % max(1, total / 20) == 0 || Date().timeIntervalSince(lastLine) > 60 {
            lastLine = Date()
            warn(line)
        }
    }

    func finish() { if enabled && isTTY { FileHandle.standardError.write(Data("\n".utf8)) } }
}

// MARK: - vlm eval

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: a CLIP's zero-shot accuracy, recall@1/5/10 and binding; a generative VLM's answers (--generative).",
        discussion: """
        --generative --scenes: a generative checkpoint (default: the embedded scenes VLM) answers every turn of \
        --count fresh scenes per split, greedily: exact match per question kind, captions scored by meaning (every \
        object's attributes right, nothing extra), object hallucination POPE-style (balanced yes/no questions about \
        present and absent objects, random and adversarial negatives: accuracy, precision, recall, yes-ratio) and \
        "where is the ...?" boxes (IoU >= 0.5 rate) when the tokenizer has location tokens.

        --scenes: fresh scenes of each --splits split (seed --seed): zero-shot over --single single-object scenes \
        (all colour-shape classes, prompt "a {}"), retrieval and the binding test (true caption vs its \
        attribute-swapped twin) over --multi multi-object scenes with distinct captions. --data: a manifest \
        (JSONL with caption, optional captions/negatives/label/split), evaluated per split present.
        """)

    @Option(help: "Checkpoint directory (default: the embedded scenes model).") var model: String?
    @Option(help: "Evaluation data: a .jsonl/.csv file or folder.") var data: String?
    @Flag(help: "Evaluate on generated scenes.") var scenes = false
    @Option(help: "Scene splits, comma-separated.") var splits = "test,heldout"
    @Option(help: "Seed of the evaluation scenes (use one the model was not trained on).") var seed: UInt64 = 1
    @Option(help: "Single-object scenes per split (zero-shot).") var single = 500
    @Option(help: "Multi-object scenes per split (retrieval, binding).") var multi = 1000
    @Option(help: "Zero-shot prompt template.") var template = "a {}"
    @Flag(help: "Evaluate a generative VLM on scene questions, captions, POPE probes and boxes (with --scenes).") var generative = false
    @Option(help: "With --generative: scenes per split.") var count = 100
    @Option(help: "With --generative: list up to N wrong answers per question kind, with the scene's objects.") var mistakes = 0
    @Option(help: "Output: text (table) or json.") var format: OutputFormat = .text
    @Option(help: "Also write the JSON report to this file.") var output: String?
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "\(Precision.helpText) Evaluate in this precision (default: fp32 for embedding models, the checkpoint's own for generative ones); compare with an fp32 run to measure its cost.") var precision: String?

    /// The --precision asked for, or nil.
    var chosenPrecision: Precision? {
        get throws {
            try precision.map { name in
                guard let p = Precision(name: name) else { throw ValidationError(Precision.unknown(name).description) }
                return p
            }
        }
    }

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            if generative { return try runGenerative() }
            let modelDir = try DefaultModel.resolve(model)
            let chosen = try chosenPrecision
            let evaluator = try EvalModel(directory: modelDir, precision: chosen)
            let started = Date()
            var reports: [SplitEvaluation] = []
            let dataName: String
            switch (data, scenes) {
            case (.some, true): throw ValidationError("--data and --scenes exclude each other")
            case (nil, false): throw ValidationError("give evaluation data: --data FILE|DIR or --scenes")
            case (let path?, false):
                let all = try PairedDataLoader.load(path: expand(path))
                dataName = path
                let splitNames = all.splits.isEmpty ? ["all"] : all.splits
                for split in splitNames {
                    let part = split == "all" ? all : all.filtered(split: split)
                    let classes = Array(Set(all.samples.compactMap(\.label))).sorted()
                    reports.append(try evaluator.evaluate(split: split, classification: part.samples, retrieval: part.samples,
                                                          classNames: classes.isEmpty ? nil : classes, template: template))
                }
            case (nil, true):
                dataName = "scenes seed \(seed)"
                for split in splits.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    let (singles, multis, classes) = try ScenesEvalSet.make(split: split, seed: seed, single: single, multi: multi)
                    reports.append(try evaluator.evaluate(split: split, classification: singles, retrieval: multis, classNames: classes,
                                                          template: template))
                }
            }
            let report = EvaluationReport(model: modelDir.path, data: dataName, splits: reports, seconds: Date().timeIntervalSince(started),
                                          precision: (chosen ?? .fp32).rawValue, engine: (chosen ?? .fp32).dualEncoderEngineDescription)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            if let output { try writeFile(encoder.encode(report), expand(output)) }
            if format == .json { print(String(decoding: try encoder.encode(report), as: UTF8.self)) } else {
                print("precision: \(report.engine ?? "fp32")")
                print(report.table())
                print(String(format: "(%.1f s)", report.seconds))
            }
        }
    }
}

extension EvalCommand {
    func runGenerative() throws {
        guard scenes, data == nil else { throw ValidationError("--generative evaluates on --scenes (no --data)") }
        guard count >= 1 else { throw ValidationError("--count must be >= 1") }
        guard mistakes >= 0 else { throw ValidationError("--mistakes must be >= 0") }
        let modelDir = try DefaultModel.resolve(model, generative: true)
        let started = Date()
        var reports: [SceneVLMEvaluation.Report] = []
        for name in splits.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let split = SceneSplit(rawValue: name) else {
                throw ValidationError("unknown split '\(name)'; use \(SceneSplit.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let report = try SceneVLMEvaluation.evaluate(directory: modelDir, split: split, scenesSeed: seed, count: count,
                                                         precision: try chosenPrecision, mistakes: mistakes)
            if format == .text { print(report.table()) }
            reports.append(report)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(GenerativeEvaluationReport(model: modelDir.path, seed: seed, precision: try chosenPrecision?.rawValue ?? "as stored",
                                                                 splits: reports, seconds: Date().timeIntervalSince(started)))
        if let output { try writeFile(json, expand(output)) }
        if format == .json { print(String(decoding: json, as: UTF8.self)) } else {
            print(String(format: "(%.1f s)", Date().timeIntervalSince(started)))
        }
    }
}

struct GenerativeEvaluationReport: Encodable {
    let model: String
    let seed: UInt64
    let precision: String
    let splits: [SceneVLMEvaluation.Report]
    let seconds: Double
}

// MARK: - Scenes adapters

extension GeneratedScene {
    /// The scene as a training/eval sample: canonical caption first, paraphrases, typed negatives, label.
    func pairedSample() throws -> PairedSample {
        PairedSample(image: .pixels(try image.rgbImage()), caption: text.caption, captions: text.captions.map(\.text),
                     negatives: text.negatives.map { NegativeCaption(type: $0.kind.rawValue, caption: $0.caption.text) },
                     label: text.label, split: scene.split.rawValue, origin: "scene \(scene.split.rawValue) #\(scene.index)")
    }
}

/// Train-split scenes by index, rendered on demand (a pure function of seed and index, so shuffled epochs and
/// resume need no stored data). --scenes N draws scenes 0..<N.
struct ScenesTrainingSource: PairedDataSource {
    let count: Int
    let generator: SceneGenerator
    let kind: KindSelection
    /// > 1: indices g*groupSize ..< (g+1)*groupSize are contrast group g (minimal pairs).
    var groupSize = 1
    /// Groups built once for all their members (nil without groups).
    let groups: ContrastGroupCache?

    init(count: Int, seed: UInt64, kind: String, groupSize: Int = 1, config: SceneConfig = SceneConfig()) throws {
        guard count >= 2 else { throw ValidationError("--scenes needs at least 2 scenes") }
        guard let k = KindSelection(rawValue: kind) else { throw ValidationError("--scenes-kind must be single, multi or mixed") }
        self.count = count
        self.kind = k
        self.groupSize = max(1, groupSize)
        generator = try SceneGenerator(seed: seed, config: config)
        groups = self.groupSize > 1 ? ContrastGroupCache(generator: generator, size: self.groupSize, split: .train, kind: k) : nil
    }

    func sample(at index: Int) throws -> PairedSample {
        guard let groups else { return try generator.generate(index: index, split: .train, kind: kind).pairedSample() }
        return try groups.member(group: index / groupSize, member: index % groupSize).pairedSample()
    }

    /// Every word the generator can say: all class names, relation and count words, and the texts of a few
    /// thousand scenes of every split (held-out scenes use the same words, so their captions tokenize fully).
    func vocabularyCorpus() throws -> [String] {
        var corpus = SceneVocabulary.allTypes.map(\.name) + SceneShape.allCases.map(\.plural)
        corpus += SceneRelation.allCases.map(\.phrase) + SceneRelation.allCases.map(\.rawValue) + SceneVocabulary.countWords
        corpus += ObjectSize.allCases.map(\.rawValue) + SceneColour.allCases.map(\.rawValue)
        for split in SceneSplit.allCases {
            for g in try SceneDataset.generate(count: 1500, seed: generator.seed, split: split, threads: 2) {
                corpus += g.text.captions.map(\.text) + g.text.negatives.map(\.caption.text)
                corpus += g.text.questions.flatMap { [$0.question, $0.answer] }
            }
        }
        return corpus
    }
}

/// What `vlm eval --scenes` measures on one split: single-object scenes (zero-shot over every colour-shape
/// class) and multi-object scenes with distinct canonical captions (retrieval, binding).
enum ScenesEvalSet {
    static func make(split name: String, seed: UInt64, single: Int, multi: Int) throws -> ([PairedSample], [PairedSample], [String]?) {
        guard let split = SceneSplit(rawValue: name) else { throw ValidationError("unknown split '\(name)'; use train, test or heldout") }
        let singles = try SceneDataset.generate(count: single, seed: seed, split: split, kind: .single, threads: 2).map { try $0.pairedSample() }
        let multis = try SceneDataset.uniqueCaptionScenes(count: multi, seed: seed, split: split, kind: .multi).map { try $0.pairedSample() }
        return (singles, multis, SceneVocabulary.allTypes.map(\.name))
    }
}
