import ArgumentParser
import Foundation
import SwiftVLM
import VLMModels
import VLMTraining

/// Generative (LLaVA) training-step throughput on a fixed synthetic batch: what the kernels, backward passes and
/// optimizer cost for a checkpoint's architecture, comparable with Benchmarks/bench_torch_train_vlm.py on the
/// same model, batch and threads.
extension TrainingCompute: ExpressibleByArgument {}

struct BenchTrainVLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train-vlm",
        abstract: "Generative VLM training steps per second (a LLaVA checkpoint's architecture, synthetic batch).",
        discussion: """
        Times forward + backward + gradient clipping + AdamW (one `trainStep`, the step `vlm train vlm` takes) on \
        Gaussian pixels and fixed-length sequences: BOS, two prompt tokens, the image run, then text, the last \
        --answer tokens scored. Weights start from --model (default: the embedded Models/scenes-vlm). Compare with \
        Benchmarks/bench_torch_train_vlm.py (transformers LlavaForConditionalGeneration, torch.optim.AdamW) via \
        Benchmarks/train_vlm_vs_torch.sh.
        """)

    @Option(help: "LLaVA checkpoint directory (default: the embedded generative model).") var model: String?
    @Option(help: "Sequences per batch.") var batch = 32
    @Option(help: "Tokens per sequence, image run included.") var tokens = 110
    @Option(help: "Scored tokens at the end of each sequence.") var answer = 24
    @Flag(name: .customLong("freeze-vision"), help: "Keep the vision tower frozen (as the embedded model's recipe does).") var freezeVision = false
    @Option(help: "Precision of the linear layers' products: fp32 (exact) or bf16 (operands rounded, fp32 sums; AVX512_BF16's rate).") var compute: TrainingCompute = .fp32
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "Seconds to time (after 3 warm-up steps).") var seconds: Double = 10
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    struct Result: Encodable {
        let engine: String
        let batch: Int
        let tokens: Int
        let answer: Int
        let freeze_vision: Bool
        let threads: Int
        let isa: String
        let steps: Int
        let step_ms: Double
        let samples_per_s: Double
        let tokens_per_s: Double
    }

    func run() throws {
        try guarded {
            guard (1 ... 4096).contains(batch) else { throw PipelineError.invalidArgument("--batch must be in 1...4096") }
            guard seconds > 0, seconds <= 3600 else { throw PipelineError.invalidArgument("--seconds must be in (0, 3600]") }
            if let threads, threads > 0 { Kernels.threads = threads }
            let directory = try DefaultModel.resolve(model, generative: true)
            let trainable = try TrainableLlava.load(directory: directory)
            trainable.freezeVision = freezeVision
            let config = trainable.config, image = config.imageTokensPerImage, vocab = config.textConfig.vocabSize
            guard tokens >= image + 4, tokens <= config.textConfig.maxPositionEmbeddings else {
                throw PipelineError.invalidArgument("--tokens must be in \(image + 4)...\(config.textConfig.maxPositionEmbeddings) (the image run is \(image) tokens)")
            }
            guard (1 ... tokens - image - 3).contains(answer) else { throw PipelineError.invalidArgument("--answer must be in 1...\(tokens - image - 3)") }
            let batchData = Self.batch(config: config, batch: batch, tokens: tokens, answer: answer, vocab: vocab)
            let optimizer = AdamW(learningRate: 1e-4, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.05)
            optimizer.excludeFromDecay = { _, shape in shape.count < 2 }
            let step = {
                _ = try LinearOp.$compute.withValue(compute) {
                    try trainable.trainStep(batchData, optimizer: optimizer, learningRate: 1e-4, maxGradNorm: 1)
                }
            }
            let times = try Bench.timings(seconds: seconds, warmUp: 3, minRuns: 5, step)
            let median = times[times.count / 2]
            let result = Result(engine: "swiftvlm \(compute.rawValue)", batch: batch, tokens: tokens, answer: answer, freeze_vision: freezeVision,
                                threads: Kernels.threads, isa: Kernels.isa, steps: times.count, step_ms: median * 1000,
                                samples_per_s: Double(batch) / median, tokens_per_s: Double(batch * tokens) / median)
            switch format {
            case .json: try printJSON(result)
            case .text:
                print("\(directory.lastPathComponent): batch \(batch) x \(tokens) tokens (\(answer) scored), vision \(freezeVision ? "frozen" : "trained"), \(compute.rawValue) products, \(result.threads) threads, \(result.isa)")
                print(String(format: "train step: %.1f ms median of %d  (%.1f samples/s, %.0f tokens/s)", result.step_ms, result.steps,
                             result.samples_per_s, result.tokens_per_s))
            }
        }
    }

    /// The batch bench_torch_train_vlm.py builds too: pixels N(0, 1) from SplitMix64(42) (the same values are not
    /// needed, only the same shapes); token ids (b * 7 + t * 13) % (image - 3) + 3 below the image token.
    static func batch(config: LlavaConfig, batch: Int, tokens: Int, answer: Int, vocab: Int) -> LlavaTrainingBatch {
        let v = config.visionConfig, image = config.imageTokensPerImage, imageID = config.imageTokenIndex
        var rng = SplitMix64(seed: 42)
        let pixels = Tensor(uninitialized: [batch, v.numChannels, v.imageSize, v.imageSize])
        for i in 0 ..< pixels.count { pixels[i] = rng.nextGaussian() }
        let words = max(1, min(imageID, vocab) - 3)
        var ids: [[Int]] = [], labels: [[Int]] = []
        for b in 0 ..< batch {
            let text = (0 ..< tokens - image - 1).map { t in (b * 7 + t * 13) % words + 3 }
            let seq = [config.textConfig.bosTokenID ?? 1] + Array(text.prefix(2)) + Array(repeating: imageID, count: image) + Array(text.dropFirst(2))
            ids.append(seq)
            labels.append(seq.enumerated().map { $0.offset >= tokens - answer ? $0.element : LlavaTrainingBatch.ignoreIndex })
        }
        return LlavaTrainingBatch(pixels: pixels, ids: ids, labels: labels)
    }
}
