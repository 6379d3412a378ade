import Foundation
import VLMScenes
import VLMLayers
import VLMModels
import VLMTensor
import VLMTraining

/// Everything that defines a `vlm train vlm` run; saved as train_args.json in every checkpoint, so a resume
/// continues the same run from the checkpoint alone.
public struct SceneVLMArguments: Codable, Sendable {
    public var scenes: Int
    public var scenesSeed: UInt64 = 0
    public var preset: String = "tiny"
    public var steps: Int
    public var batch: Int = 32
    public var lr: Float = 2e-3
    public var warmup: Int?
    public var wd: Float = 0.05
    public var clipGrad: Float = 1
    public var freezeVision = false
    /// The vision tower's learning rate as a fraction of --lr when it trains (nil: 1), so a pretrained tower
    /// adapts instead of being overwritten while the projector and decoder are still random.
    public var visionLRScale: Float?
    public var seed: UInt64 = 0
    public var saveEvery: Int?
    /// A CLIP checkpoint whose vision tower (config, weights, image processor) replaces the preset's, as LLaVA
    /// starts from a pretrained CLIP: the embedded contrastive model already tells colours, shapes and places apart.
    public var visionFrom: String?
    /// PaliGemma's 1024 location tokens in the vocabulary and "where is the ...?" turns (nil: yes; optional so
    /// the train_args.json of runs from before it still decode).
    public var locationTokens: Bool?
    /// Question-answer turns per sequence (see `SceneVLMBatches.turns`; nil: 1, as runs before it trained).
    public var turns: Int?
    /// Vision tower layers whose hidden states feed the projector (LLaVA's vision_feature_layer; nil: [-1]).
    /// A contrastive tower's last-layer patch states get no gradient in its own training (only the pooled CLS
    /// does), which is why LLaVA reads the penultimate layer (-2).
    public var visionFeatureLayers: [Int]?
    /// LLaVA's vision_feature_select_strategy: "default" drops the CLS state, "full" keeps it next to the patches
    /// (nil: "full" with --vision-from, "default" otherwise, as runs before the option trained).
    public var visionFeatureStrategy: String?
    /// Each user turn's text before its image in the chat template (`SceneVLM.questionFirstChatTemplate`; nil: no).
    public var questionFirst: Bool?
    /// How the 1024 location tokens' embedding rows start: "random" (nil, as runs before it) or "fourier"
    /// (`SceneVLM.fourierLocationEmbeddings`: neighbouring bins start out similar).
    public var locationInit: String?
    /// Standard deviation, in bins, of the Gaussian targets that location-token labels score against
    /// (`OrdinalTargetSmoothing`; nil or 0: one-hot, as runs before it trained).
    public var locationSigma: Float?
    /// How the tower's patch position embeddings start: nil/"as-trained" (copied as they are) or "sincos"
    /// (`SceneVLM.addGridPositions`: 2-D sines and cosines of the patch row and column added to their mean).
    public var visionPositionInit: String?
    /// Amplitude of each sine and cosine of "sincos" (nil: 0.25, a code of norm 2 at width 128); smaller codes
    /// perturb the pretrained tower's attention less.
    public var visionPositionAmplitude: Double?
    /// A learned position row per image token added after the projector (`LlavaConfig.imagePositionEmbedding`):
    /// nil/"none" (LLaVA as transformers has it), "random" (N(0, 0.02)) or "sincos" (the 2-D code of
    /// `SceneVLM.addGridPositions`, scaled by `imagePositionAmplitude`), so the decoder learns where things are
    /// while the tower keeps the attention its features were trained with.
    public var imagePositions: String?
    /// Amplitude of each sine and cosine of imagePositions "sincos" (nil: 0.25).
    public var imagePositionAmplitude: Double?
    /// Precision of the linear layers' products (`TrainingCompute`; nil: fp32, as runs before it trained).
    public var compute: TrainingCompute?
    /// `SceneVLMBatches.locateShare` (nil: uniform over kinds).
    public var locateShare: Double?
    /// `SceneVLMBatches.locateShareFrom` (nil: from the first step).
    public var locateShareFrom: Int?
    /// `SceneVLMBatches.countShare` (nil: uniform over kinds).
    public var countShare: Double?
    /// `SceneVLMBatches.kindWeights` (nil: uniform over kinds).
    public var kindWeights: [String: Double]?
    /// `SceneVLMBatches.patchLabelShare` (nil: image tokens unscored).
    public var patchLabels: Double?
    /// `SceneVLMBatches.patchLabelPlace` (nil: decoder).
    public var patchLabelPlace: PatchLabelPlace?
    /// Weight of the projector-row patch labels' loss (`TrainableLlava.imageTargetWeight`; nil: 1).
    public var patchLabelWeight: Float?
    /// `SceneVLMBatches.locateReferences` (nil: `.type`).
    public var locateReferences: LocateReference?
    /// A checkpoint of the same vocabulary and architecture (e.g. the embedded default) whose weights replace the
    /// seeded initialisation (and the --vision-from tower): a new schedule that continues from a trained model.
    public var initFrom: String?
    /// Decay of an exponential moving average of the weights (`ParameterAverage`; nil: none), which --export
    /// writes instead of the last step's weights; checkpoints carry both.
    public var ema: Float?
    /// The step after which the average starts (nil: 0, from the first step).
    public var emaFrom: Int?

    public init(scenes: Int, steps: Int) {
        self.scenes = scenes
        self.steps = steps
    }
}

extension SceneVLMArguments {
    /// `--kind-weights colour=2,shape=2,relation=0.5`: a weight per named kind (`SceneVLMBatches.kindNames`).
    public static func parseKindWeights(_ text: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let w = Double(parts[1].trimmingCharacters(in: .whitespaces)) else {
                throw PipelineError.invalidArgument("--kind-weights wants kind=weight pairs separated by commas (e.g. colour=2,shape=2), got '\(item)'")
            }
            let kind = parts[0].trimmingCharacters(in: .whitespaces)
            guard out[kind] == nil else { throw PipelineError.invalidArgument("--kind-weights names '\(kind)' twice") }
            out[kind] = w
        }
        try validate(kindWeights: out)
        return out
    }

    static func validate(kindWeights: [String: Double]) throws {
        for (kind, w) in kindWeights.sorted(by: { $0.key < $1.key }) {
            guard SceneVLMBatches.kindNames.contains(kind) else {
                throw PipelineError.invalidArgument("--kind-weights: unknown kind '\(kind)' (kinds: \(SceneVLMBatches.kindNames.joined(separator: ", ")))")
            }
            guard w.isFinite, w >= 0, w <= 1000 else { throw PipelineError.invalidArgument("--kind-weights: the weight of \(kind) must be in 0...1000, got \(w)") }
        }
    }
}

/// What `train` reports.
public struct SceneVLMRunSummary: Sendable {
    public let steps: Int
    public let seconds: Double
    public let finalLoss: Float?
    public let parameters: Int
}

/// `vlm train vlm` from scratch: a LLaVA of a preset trained on scene turns with AdamW (no decay on 1-D tensors),
/// warmup + cosine, global-norm clipping; resumable checkpoints (model + tokenizer/processor files +
/// optimizer.safetensors + trainer_state.json + train_args.json) every --save-every steps and at the end;
/// training_log.json and loss_curve.svg in the output directory.
public final class SceneVLMTrainer {
    public let args: SceneVLMArguments
    public let model: TrainableLlava
    public let optimizer: AdamW
    /// The weights' moving average when args.ema is set.
    public let average: ParameterAverage?
    public let assets: [String: Data]
    public private(set) var step = 0
    public private(set) var lossHistory: [Float] = []
    /// Per-step loss of the projector-row patch labels (`--patch-labels-at projector|both`), logged apart from the
    /// language-model loss in `lossHistory`.
    public private(set) var patchLabelLossHistory: [Float] = []
    public var onProgress: ((TrainingProgress) -> Void)?

    public static let argsFile = "train_args.json"
    public static let stateFile = "trainer_state.json"
    public static let optimizerFile = "optimizer.safetensors"
    public static let averageFile = "ema.safetensors"
    public static let logFile = "training_log.json"
    public static let curveFile = "loss_curve.svg"

    struct State: Codable {
        var step: Int
        var lossHistory: [Float]
        /// Per-step loss of the projector-row patch labels (nil in runs without them and in older checkpoints).
        var patchLabelLoss: [Float]?
    }

    /// A new run: vocabulary from the generator, preset architecture, seeded initialisation.
    public init(args: SceneVLMArguments) throws {
        guard args.steps >= 1, args.batch >= 1, args.scenes >= 1 else { throw PipelineError.invalidArgument("--steps, --batch and --scenes must be >= 1") }
        if let a = args.visionPositionAmplitude {
            guard a > 0 && a <= 4 else { throw PipelineError.invalidArgument("--vision-position-amplitude must be in (0, 4], got \(a)") }
            guard args.visionPositionInit == "sincos" else { throw PipelineError.invalidArgument("--vision-position-amplitude needs --vision-position-init sincos") }
        }
        let imagePositions = args.imagePositions ?? "none"
        guard ["none", "random", "sincos"].contains(imagePositions) else {
            throw PipelineError.invalidArgument("--image-positions must be none, random or sincos, got '\(imagePositions)'")
        }
        if let a = args.imagePositionAmplitude {
            guard a > 0 && a <= 64 else { throw PipelineError.invalidArgument("--image-position-amplitude must be in (0, 64], got \(a)") }
            guard imagePositions == "sincos" else { throw PipelineError.invalidArgument("--image-position-amplitude needs --image-positions sincos") }
        }
        if let share = args.locateShare, !(share >= 0 && share <= 1) { throw PipelineError.invalidArgument("--locate-share must be in 0...1, got \(share)") }
        if let share = args.countShare, !(share >= 0 && share <= 1) { throw PipelineError.invalidArgument("--count-share must be in 0...1, got \(share)") }
        if let share = args.patchLabels, !(share > 0 && share <= 1) { throw PipelineError.invalidArgument("--patch-labels must be in (0, 1], got \(share)") }
        if args.patchLabels == nil && (args.patchLabelPlace != nil || args.patchLabelWeight != nil) {
            throw PipelineError.invalidArgument("--patch-labels-at and --patch-label-weight need --patch-labels")
        }
        if let w = args.patchLabelWeight, !(w > 0 && w <= 100) { throw PipelineError.invalidArgument("--patch-label-weight must be in (0, 100], got \(w)") }
        if let weights = args.kindWeights { try SceneVLMArguments.validate(kindWeights: weights) }
        if let from = args.locateShareFrom, from < 0 { throw PipelineError.invalidArgument("--locate-share-from must be >= 0, got \(from)") }
        if let sigma = args.locationSigma, !(sigma >= 0 && sigma <= 256) { throw PipelineError.invalidArgument("--location-sigma must be in 0...256 bins, got \(sigma)") }
        if let scale = args.visionLRScale, !(scale > 0 && scale <= 1) { throw PipelineError.invalidArgument("--vision-lr-scale must be in (0, 1], got \(scale)") }
        if let decay = args.ema, !(decay > 0 && decay < 1) { throw PipelineError.invalidArgument("--ema must be in (0, 1), e.g. 0.999, got \(decay)") }
        if let from = args.emaFrom {
            guard args.ema != nil else { throw PipelineError.invalidArgument("--ema-from needs --ema") }
            guard from >= 0, from < args.steps else { throw PipelineError.invalidArgument("--ema-from must be in 0..<\(args.steps) (--steps), got \(from)") }
        }
        self.args = args
        average = try args.ema.map { try ParameterAverage(decay: $0) }
        let words = CheckpointAssets.words(in: try SceneVLM.corpus(seed: args.scenesSeed))
        let tower = try args.visionFrom.map { try PretrainedTower(directory: URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath)) }
        let patch = tower?.config.patchSize ?? 16
        // Room for the image run ((64 / patch)² tokens), the question and the answer.
        let maxLength = max(96, (64 / patch) * (64 / patch) + 64)
        // A pretrained contrastive tower's CLS state carries the scene summary its training shaped (LLaVA's
        // "full" strategy keeps it next to the patches); a tower trained from scratch has nothing there yet.
        let strategy = args.visionFeatureStrategy ?? (tower == nil ? "default" : "full")
        guard ["default", "full"].contains(strategy) else {
            throw PipelineError.invalidArgument("--vision-feature-strategy must be default or full, got '\(strategy)'")
        }
        let probe = try SceneVLM.assets(words: words, imageSize: 64, maxLength: maxLength, patchSize: patch, strategy: strategy,
                                        locationTokens: args.locationTokens ?? true, questionFirst: args.questionFirst ?? false)
        var config = try SceneVLM.config(preset: args.preset, vocabSize: probe.vocabSize, bos: probe.bos, eos: probe.eos, image: probe.image,
                                         vision: tower?.config, maxLength: maxLength, strategy: strategy,
                                         featureLayers: args.visionFeatureLayers ?? [-1])
        // A checkpoint continued with --init-from keeps its position rows (and their trained values) unasked.
        let initPath = args.initFrom.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
        let source: TrainableLlava? = try initPath.map { path in
            do { return try TrainableLlava.load(directory: path) } catch { throw PipelineError.invalidArgument("--init-from \(path.path): \(error)") }
        }
        config.imagePositionEmbedding = imagePositions != "none" || source?.config.imagePositionEmbedding == true
        let depth = config.visionConfig.numHiddenLayers
        if let bad = config.visionFeatureLayers.first(where: { $0 < -depth || $0 > depth }) {
            throw PipelineError.invalidArgument("--vision-feature-layers: layer \(bad) is outside the tower's \(depth) layers (use -\(depth) ... \(depth))")
        }
        var files = probe.files
        if let tower { files["preprocessor_config.json"] = tower.preprocessor }
        files[Self.argsFile] = try Self.encode(args)
        assets = files
        model = try TrainableLlava.random(config: config, seed: args.seed)
        if let tower { try tower.copy(into: model) }
        var positionsLoaded = false
        if let source, let path = initPath {
            for name in model.parameters.names {
                if name == TrainableLlava.imagePositions {
                    // A checkpoint without image positions gains them, started as --image-positions says.
                    guard source.parameters.tensor(name) != nil else { continue }
                    positionsLoaded = true
                }
                if name == Self.projectorInput, let t = source.parameters.tensor(name), t.shape != model.parameters[name].shape,
                   let widened = Self.widenProjector(t, from: source.config.visionFeatureLayers, to: config.visionFeatureLayers,
                                                     width: config.visionConfig.hiddenSize, depth: depth) {
                    model.parameters.set(name, widened)
                    continue
                }
                guard let t = source.parameters.tensor(name), t.shape == model.parameters[name].shape else {
                    throw PipelineError.invalidArgument("--init-from \(path.path): '\(name)' is missing or has another shape than this run's \(model.parameters[name].shape) (same preset and vocabulary needed; --vision-feature-layers may add layers, not drop them)")
                }
                model.parameters.set(name, t.copy())
            }
        }
        switch args.locationInit ?? "random" {
        case "random": break
        case "fourier":
            guard args.locationTokens ?? true else { throw PipelineError.invalidArgument("--location-init fourier needs the location tokens") }
            SceneVLM.fourierLocationEmbeddings(model.parameters[TrainableLlava.embeddingName], firstID: probe.image + 1)
        case let other: throw PipelineError.invalidArgument("--location-init must be random or fourier, got '\(other)'")
        }
        switch args.visionPositionInit ?? "as-trained" {
        case "as-trained": break
        case "sincos":
            let grid = config.visionConfig.imageSize / config.visionConfig.patchSize
            SceneVLM.addGridPositions(model.parameters["vision_tower.vision_model.embeddings.position_embedding.weight"], grid: grid,
                                      amplitude: args.visionPositionAmplitude ?? 0.25)
        case let other: throw PipelineError.invalidArgument("--vision-position-init must be as-trained or sincos, got '\(other)'")
        }
        if imagePositions == "sincos", !positionsLoaded {
            SceneVLM.setImagePositions(model.parameters[TrainableLlava.imagePositions], grid: config.visionConfig.patchesPerSide,
                                       amplitude: args.imagePositionAmplitude ?? 0.25)
        }
        optimizer = Self.makeOptimizer(args)
    }

    static let projectorInput = "multi_modal_projector.linear_1.weight"

    /// --init-from into a run that feeds the projector more tower layers than the checkpoint did: the checkpoint's
    /// columns go to its layers' places (LLaVA concatenates `hidden_states[l]` in the order of vision_feature_layer),
    /// the new layers' columns start at zero, so the widened model computes exactly what the checkpoint did until
    /// training moves them. weight: [out, width * source.count] -> [out, width * target.count]; nil unless every
    /// source layer is among the target's (narrowing would drop what the checkpoint learned).
    static func widenProjector(_ weight: Tensor, from source: [Int], to target: [Int], width: Int, depth: Int) -> Tensor? {
        // hidden_states has depth + 1 entries (embeddings first): -1 and depth name the same one.
        let normal = { (l: Int) in l < 0 ? depth + 1 + l : l }
        let places = source.map { l in target.firstIndex { normal($0) == normal(l) } }
        guard weight.shape.count == 2, weight.shape[1] == width * source.count, !places.contains(nil) else { return nil }
        let out = weight.shape[0], inNew = width * target.count
        let widened = Tensor(zeros: [out, inNew])
        for (j, place) in places.enumerated() {
            guard let k = place else { return nil }
            for r in 0 ..< out {
                (widened.pointer + r * inNew + k * width).update(from: weight.pointer + r * weight.shape[1] + j * width, count: width)
            }
        }
        return widened
    }

    /// The vision tower of a CLIP checkpoint: its vision_config, its image processor file and its
    /// `vision_model.*` tensors (copied to `vision_tower.vision_model.*`, every tensor of the tower strictly).
    struct PretrainedTower {
        let directory: URL
        let config: CLIPVisionConfig
        let preprocessor: Data

        init(directory: URL) throws {
            self.directory = directory
            do {
                let clip = try ConfigFile.decode(CLIPConfig.self, in: directory)
                guard clip.visionConfig.imageSize == 64, 64 % clip.visionConfig.patchSize == 0 else {
                    throw PipelineError.invalidArgument("the scenes are 64x64: --vision-from needs a 64-pixel CLIP tower (\(directory.path) has image_size \(clip.visionConfig.imageSize), patch \(clip.visionConfig.patchSize))")
                }
                config = clip.visionConfig
                preprocessor = try Data(contentsOf: directory.appendingPathComponent("preprocessor_config.json"))
            } catch let error as PipelineError { throw error } catch {
                throw PipelineError.invalidArgument("--vision-from \(directory.path): \(error)")
            }
        }

        func copy(into model: TrainableLlava) throws {
            let store: WeightStore
            do { store = try WeightStore(directory: directory) } catch { throw PipelineError.invalidArgument("--vision-from \(directory.path): \(error)") }
            for name in model.parameters.names where name.hasPrefix("vision_tower.") {
                let key = String(name.dropFirst("vision_tower.".count))
                guard let entry = store.entry(key) else { throw PipelineError.invalidArgument("--vision-from \(directory.path) lacks tensor '\(key)'") }
                let target = model.parameters[name]
                guard entry.shape == target.shape else {
                    throw PipelineError.invalidArgument("--vision-from: tensor '\(key)' has shape \(entry.shape), the tower needs \(target.shape)")
                }
                do { model.parameters.set(name, try store.tensor(key).copy()) } catch { throw PipelineError.invalidArgument("\(key): \(error)") }
            }
        }
    }

    /// Continues a run from a checkpoint written by `saveCheckpoint` (its train_args.json defines the run;
    /// `steps` may extend it).
    public init(resume directory: URL, steps: Int? = nil) throws {
        let url = directory.appendingPathComponent(Self.argsFile)
        var args: SceneVLMArguments
        do { args = try JSONDecoder().decode(SceneVLMArguments.self, from: Data(contentsOf: url)) } catch {
            throw PipelineError.invalidArgument("\(url.path): cannot read the run's arguments (\(error)); resume needs a checkpoint of `vlm train vlm`")
        }
        if let steps { args.steps = steps }
        self.args = args
        model = try TrainableLlava.load(directory: directory)
        optimizer = Self.makeOptimizer(args)
        try optimizer.loadState(from: directory.appendingPathComponent(Self.optimizerFile), params: model.parameters)
        let stateURL = directory.appendingPathComponent(Self.stateFile)
        do {
            let state = try JSONDecoder().decode(State.self, from: Data(contentsOf: stateURL))
            step = state.step
            lossHistory = state.lossHistory
            patchLabelLossHistory = state.patchLabelLoss ?? []
        } catch { throw PipelineError.invalidArgument("\(stateURL.path): \(error)") }
        average = try args.ema.map { try ParameterAverage(decay: $0) }
        let averageURL = directory.appendingPathComponent(Self.averageFile)
        if let average, FileManager.default.fileExists(atPath: averageURL.path) {
            try average.loadState(from: averageURL, params: model.parameters)
        } else if average != nil, step > (args.emaFrom ?? 0) {
            // The average had started: restarting it from these weights would export something else, silently.
            throw PipelineError.invalidArgument("\(directory.path): the run keeps a weight average (--ema) but \(Self.averageFile) is missing")
        }
        var files = CheckpointAssets.copyable(from: directory)
        for name in ["generation_config.json", "chat_template.json"] {
            if let data = try? Data(contentsOf: directory.appendingPathComponent(name)) { files[name] = data }
        }
        files[Self.argsFile] = try Self.encode(args)
        assets = files
    }

    static func makeOptimizer(_ args: SceneVLMArguments) -> AdamW {
        let adam = AdamW(learningRate: args.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: args.wd)
        adam.excludeFromDecay = { _, shape in shape.count < 2 }
        if let scale = args.visionLRScale { adam.learningRateScale = { $0.hasPrefix("vision_tower.") ? scale : 1 } }
        return adam
    }

    public var schedule: CosineSchedule {
        CosineSchedule(baseLR: args.lr, warmupSteps: args.warmup ?? max(1, args.steps / 20), totalSteps: args.steps)
    }

    /// Trains from the current step to args.steps, writing checkpoints under `out/checkpoints` every
    /// args.saveEvery steps, then the final checkpoint into `out`, the log and the loss curve.
    public func run(out: URL) throws -> SceneVLMRunSummary {
        let started = Date()
        model.freezeVision = args.freezeVision
        // The processor reads the checkpoint's own tokenizer / template / image processor files.
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-train-vlm-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        for (name, data) in assets { try data.write(to: staging.appendingPathComponent(name)) }
        var data = try SceneVLMBatches(directory: staging, seed: args.seed, scenesSeed: args.scenesSeed, count: args.scenes,
                                       batchSize: args.batch, config: model.config, turns: args.turns ?? 1)
        data.locateShare = args.locateShare
        data.locateShareFrom = args.locateShareFrom ?? 0
        data.countShare = args.countShare
        data.kindWeights = args.kindWeights
        data.patchLabelShare = args.patchLabels
        data.patchLabelPlace = args.patchLabelPlace ?? .decoder
        model.imageTargetWeight = args.patchLabelWeight ?? 1
        data.locateReferences = args.locateReferences ?? .type
        if let sigma = args.locationSigma, sigma > 0, let first = data.locationFirstID {
            model.targetSmoothing = OrdinalTargetSmoothing(firstID: first, count: LocationTokens.bins, sigma: sigma)
        }
        let schedule = self.schedule
        while step < args.steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let batch = try data.batch(step: step)
            let lr = schedule.learningRate(step: step)
            let result = try LinearOp.$compute.withValue(args.compute ?? .fp32) {
                try model.trainStep(batch, optimizer: optimizer, learningRate: lr, maxGradNorm: args.clipGrad > 0 ? args.clipGrad : nil)
            }
            step += 1
            lossHistory.append(result.loss)
            if let patch = result.imageTargetLoss { patchLabelLossHistory.append(patch) }
            if let average, step > args.emaFrom ?? 0 { average.update(model.parameters) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            onProgress?(TrainingProgress(step: step, epoch: 0, loss: result.loss, learningRate: lr, gradientNorm: result.gradientNorm,
                                         samplesPerSecond: Double(batch.size) / max(seconds, 1e-9)))
            if let every = args.saveEvery, every > 0, step % every == 0, step < args.steps {
                try saveCheckpoint(to: out.appendingPathComponent("checkpoints/checkpoint-\(step)"))
            }
        }
        try saveCheckpoint(to: out)
        let seconds = Date().timeIntervalSince(started)
        var log = TrainingLog(arguments: Array(CommandLine.arguments.dropFirst()), seed: args.seed, steps: step, epochs: 0, batchSize: args.batch,
                              samplesSeen: step * args.batch, skippedSamples: 0, parameters: model.parameters.scalarCount,
                              trainableParameters: model.parameters.names.filter(model.isTrainable).reduce(0) { $0 + model.parameters[$1].count },
                              seconds: seconds, finalLogitScale: 0, loss: lossHistory,
                              learningRate: (0 ..< lossHistory.count).map { schedule.learningRate(step: $0) })
        if !patchLabelLossHistory.isEmpty { log.auxiliaryLoss = patchLabelLossHistory }
        try write(Self.encode(log), out.appendingPathComponent(Self.logFile))
        try write(Data(LossCurveSVG.render(loss: lossHistory, learningRate: log.learningRate,
                                           title: "vlm train vlm: \(step) steps, batch \(args.batch)").utf8), out.appendingPathComponent(Self.curveFile))
        return SceneVLMRunSummary(steps: step, seconds: seconds, finalLoss: log.finalLossAverage, parameters: model.parameters.scalarCount)
    }

    /// A complete, resumable checkpoint: every command loads it (LLaVA layout + tokenizer, template, processor).
    public func saveCheckpoint(to directory: URL) throws {
        var files = assets
        files[Self.optimizerFile] = try optimizer.stateData()
        if let average, average.average != nil { files[Self.averageFile] = try average.stateData() }
        files[Self.stateFile] = try Self.encode(State(step: step, lossHistory: lossHistory,
                                                            patchLabelLoss: patchLabelLossHistory.isEmpty ? nil : patchLabelLossHistory))
        try model.save(to: directory, extraFiles: files)
    }

    /// An inference-only copy (fp16 weights, no optimizer or trainer state): the weights' moving average when the
    /// run keeps one (--ema), the last step's weights otherwise.
    public func export(to directory: URL) throws {
        var files = assets
        files[Self.argsFile] = nil
        try model.save(to: directory, extraFiles: files, dtype: .f16, weights: average?.average)
    }

    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do { return try encoder.encode(value) } catch { throw PipelineError.invalidArgument("cannot encode \(T.self): \(error)") }
    }

    func write(_ data: Data, _ url: URL) throws {
        do { try data.write(to: url, options: .atomic) } catch { throw PipelineError.invalidArgument("\(url.path): \(error.localizedDescription)") }
    }
}
