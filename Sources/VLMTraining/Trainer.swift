import Foundation
import VLMTensor

/// One batch of matched pairs: pixels [B, channels, S, S] (preprocessed like CLIPImageProcessor) and B token
/// sequences (BOS ... EOS, unpadded).
public struct TrainingBatch {
    public let pixels: Tensor
    public let ids: [[Int]]
    /// Extra false captions (hard negatives), image->text candidates only.
    public let negativeIDs: [[Int]]
    public init(pixels: Tensor, ids: [[Int]], negativeIDs: [[Int]] = []) {
        self.pixels = pixels
        self.ids = ids
        self.negativeIDs = negativeIDs
    }
    public var size: Int { ids.count }
}

/// Where batches come from (image files, the scenes generator, synthetic tensors...).
public protocol TrainingDataSource {
    /// Batches per epoch, for the schedule's total step count.
    var batchesPerEpoch: Int { get }
    /// Called before each epoch (0-based); a source may reshuffle here.
    mutating func startEpoch(_ epoch: Int) throws
    /// The next batch of the epoch, or nil when the epoch is over.
    mutating func nextBatch() throws -> TrainingBatch?
    /// Skips batches of the current epoch (resume); sources that can skip without loading data should.
    mutating func skipBatches(_ n: Int) throws
}

extension TrainingDataSource {
    public mutating func skipBatches(_ n: Int) throws { for _ in 0 ..< n { _ = try nextBatch() } }
}

/// Progress after each optimizer step.
public struct TrainingProgress: Sendable {
    public let step: Int
    public let epoch: Int
    public let loss: Float
    public let learningRate: Float
    public let gradientNorm: Float
    /// Image-text pairs per second over this step.
    public let samplesPerSecond: Double

    public init(step: Int, epoch: Int, loss: Float, learningRate: Float, gradientNorm: Float, samplesPerSecond: Double) {
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.learningRate = learningRate
        self.gradientNorm = gradientNorm
        self.samplesPerSecond = samplesPerSecond
    }
}

public struct TrainerOptions: Sendable {
    public var epochs: Int = 1
    public var baseLearningRate: Float = 5e-4
    public var warmupSteps: Int = 0
    /// Global gradient-norm clipping (nil: none).
    public var maxGradNorm: Float? = 1
    /// Write a checkpoint every N steps (and at the end) under `checkpointDirectory` (nil: never).
    public var checkpointEvery: Int? = nil
    public var checkpointDirectory: URL? = nil
    public var freeze: FreezeMode = .none
    /// Stop (after checkpointing, if a directory is set) once this many steps are done in total.
    public var stopAtStep: Int? = nil
    /// Length of the cosine schedule in steps (nil: epochs x batches per epoch). With it, training also ends there.
    public var totalSteps: Int? = nil
    /// Files written into every checkpoint besides the weights (tokenizer, preprocessor config, run arguments),
    /// so each checkpoint is a complete Hugging Face directory every command loads.
    public var extraCheckpointFiles: [String: Data] = [:]
    public init() {}
}

/// What a checkpoint records besides the weights and the optimizer moments, to resume where it stopped.
struct TrainerState: Codable {
    var step: Int
    var epoch: Int
    /// Batches of `epoch` already consumed (the data source must replay an epoch in the same order).
    var batchInEpoch: Int
    var lossHistory: [Float]
    var schedule: CosineSchedule
}

/// Runs epochs of `trainStep` over a data source with open_clip's warmup + cosine schedule, keeps the loss
/// history, reports progress, and writes resumable checkpoints (HF layout + optimizer.safetensors +
/// trainer_state.json) that the inference CLIPModel loads as they are.
public final class Trainer {
    public let model: TrainableCLIP
    public let optimizer: AdamW
    public var options: TrainerOptions
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var batchInEpoch = 0
    /// Loss of every step taken (for plotting).
    public private(set) var lossHistory: [Float] = []
    public var onProgress: ((TrainingProgress) -> Void)?

    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "trainer_state.json"

    public init(model: TrainableCLIP, optimizer: AdamW = AdamW(), options: TrainerOptions = TrainerOptions()) {
        self.model = model
        self.optimizer = optimizer
        self.options = options
        model.freeze = options.freeze
    }

    /// Continues from a checkpoint written by `saveCheckpoint`: weights, optimizer moments, step, epoch, history.
    public static func resume(from directory: URL, options: TrainerOptions, optimizer: AdamW = AdamW()) throws -> Trainer {
        let model = try TrainableCLIP.load(directory: directory)
        try optimizer.loadState(from: directory.appendingPathComponent(optimizerFile), params: model.parameters)
        let trainer = Trainer(model: model, optimizer: optimizer, options: options)
        let url = directory.appendingPathComponent(stateFile)
        do {
            let state = try JSONDecoder().decode(TrainerState.self, from: Data(contentsOf: url))
            trainer.step = state.step
            trainer.epoch = state.epoch
            trainer.batchInEpoch = state.batchInEpoch
            trainer.lossHistory = state.lossHistory
        } catch { throw TrainingError.checkpoint("\(url.path): \(error)") }
        return trainer
    }

    public func schedule(batchesPerEpoch: Int) -> CosineSchedule {
        CosineSchedule(baseLR: options.baseLearningRate, warmupSteps: options.warmupSteps,
                       totalSteps: max(options.totalSteps ?? batchesPerEpoch * options.epochs, 1))
    }

    /// Trains from where the trainer stands (a resumed trainer skips the batches its epoch already consumed) to
    /// `options.epochs`, or to `options.stopAtStep`.
    public func run<Source: TrainingDataSource>(_ data: inout Source) throws {
        let schedule = schedule(batchesPerEpoch: data.batchesPerEpoch)
        func checkpoint() throws {
            if let dir = options.checkpointDirectory {
                try saveCheckpoint(to: dir.appendingPathComponent("checkpoint-\(step)"), schedule: schedule)
            }
        }
        while epoch < options.epochs || (options.totalSteps.map { step < $0 } ?? false) {
            try data.startEpoch(epoch)
            try data.skipBatches(batchInEpoch)
            let stepAtEpochStart = step
            while let batch = try data.nextBatch() {
                if let stop = options.stopAtStep, step >= stop { return try checkpoint() }
                if let total = options.totalSteps, step >= total { return try checkpoint() }
                let start = DispatchTime.now().uptimeNanoseconds
                let lr = schedule.learningRate(step: step)
                let result = try model.trainStep(pixels: batch.pixels, ids: batch.ids, negativeIDs: batch.negativeIDs, optimizer: optimizer, learningRate: lr,
                                                 maxGradNorm: options.maxGradNorm)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                step += 1
                batchInEpoch += 1
                lossHistory.append(result.loss)
                onProgress?(TrainingProgress(step: step, epoch: epoch, loss: result.loss, learningRate: lr,
                                             gradientNorm: result.gradientNorm, samplesPerSecond: Double(batch.size) / max(seconds, 1e-9)))
                if let every = options.checkpointEvery, every > 0, step % every == 0 { try checkpoint() }
            }
            // An epoch without a single batch (every sample undecodable) would otherwise loop forever.
            guard step > stepAtEpochStart || batchInEpoch > 0 else { throw TrainingError.dataset("epoch \(epoch) produced no batch") }
            epoch += 1
            batchInEpoch = 0
        }
        try checkpoint()
    }

    /// Writes the model (config.json + model.safetensors), the optimizer state and the trainer state into one
    /// directory, atomically (TrainableCLIP.save).
    public func saveCheckpoint(to directory: URL, schedule: CosineSchedule? = nil) throws {
        let state = TrainerState(step: step, epoch: epoch, batchInEpoch: batchInEpoch, lossHistory: lossHistory,
                                 schedule: schedule ?? CosineSchedule(baseLR: options.baseLearningRate, warmupSteps: options.warmupSteps, totalSteps: 1))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let stateData: Data, optimizerData: Data
        do {
            stateData = try encoder.encode(state)
            optimizerData = try optimizer.stateData()
        } catch { throw TrainingError.checkpoint("cannot encode training state: \(error)") }
        var files = options.extraCheckpointFiles
        files[Self.optimizerFile] = optimizerData
        files[Self.stateFile] = stateData
        try model.save(to: directory, extraFiles: files)
    }
}

/// A fixed list of batches (tests, tiny experiments).
public struct InMemoryDataSource: TrainingDataSource {
    public let batches: [TrainingBatch]
    private var position = 0
    public init(batches: [TrainingBatch]) { self.batches = batches }
    public var batchesPerEpoch: Int { batches.count }
    public mutating func startEpoch(_ epoch: Int) throws { position = 0 }
    public mutating func nextBatch() throws -> TrainingBatch? {
        guard position < batches.count else { return nil }
        defer { position += 1 }
        return batches[position]
    }
}
