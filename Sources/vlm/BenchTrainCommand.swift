import ArgumentParser
import Foundation
import SwiftVLM
import VLMTraining

/// Training-step throughput on synthetic data (no data pipeline): what the kernels, backward passes and
/// optimizer cost, comparable with Benchmarks/bench_torch_train.py on the same architecture, batch and threads.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-train",
        abstract: "Contrastive training steps per second of a from-scratch CLIP preset on synthetic batches.",
        discussion: """
        Times forward + backward + gradient clipping + AdamW (one `trainStep`) on Gaussian pixels and fixed-length \
        captions, after warm-up steps. Compare with Benchmarks/bench_torch_train.py (transformers CLIPModel, \
        torch.optim.AdamW) via Benchmarks/train_vs_torch.sh.
        """)

    @Option(help: "Preset: \(CLIPPresets.names.joined(separator: ", ")).") var config = "tiny"
    @Option(help: "Batch size.") var batch = 64
    @Option(help: "Caption length in tokens, BOS and EOS included.") var tokens = 12
    @Option(help: "Vocabulary size of the synthetic tokenizer.") var vocab = 69
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "Seconds to time (after 3 warm-up steps).") var seconds: Double = 10
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    struct Result: Encodable {
        let engine: String
        let config: String
        let batch: Int
        let tokens: Int
        let threads: Int
        let isa: String
        let steps: Int
        let step_ms: Double
        let samples_per_s: Double
    }

    func run() throws {
        try guarded {
            guard (2 ... 4096).contains(batch) else { throw PipelineError.invalidArgument("--batch must be in 2...4096") }
            guard (3 ... 77).contains(tokens) else { throw PipelineError.invalidArgument("--tokens must be in 3...77") }
            guard (4 ... 1_000_000).contains(vocab) else { throw PipelineError.invalidArgument("--vocab must be in 4...1000000") }
            guard seconds > 0, seconds <= 3600 else { throw PipelineError.invalidArgument("--seconds must be in (0, 3600]") }
            if let threads, threads > 0 { Kernels.threads = threads }
            let cfg = try CLIPPresets.config(config, vocabSize: vocab, maxLength: max(tokens, 16), bosID: vocab - 3, eosID: vocab - 2, padID: vocab - 1)
            let model = try TrainableCLIP.random(config: cfg, seed: 0)
            let v = cfg.visionConfig
            var rng = SplitMix64(seed: 42)
            let pixels = Tensor(uninitialized: [batch, v.numChannels, v.imageSize, v.imageSize])
            for i in 0 ..< pixels.count { pixels[i] = rng.nextGaussian() }
            // Distinct captions (a repeated caption would make the contrastive targets ambiguous, not slower).
            let ids = (0 ..< batch).map { b in [vocab - 3] + (0 ..< tokens - 2).map { (b * 7 + $0 * 13) % (vocab - 3) } + [vocab - 2] }
            let optimizer = AdamW(learningRate: 1e-4, weightDecay: 0.1)
            let step = { _ = try model.trainStep(pixels: pixels, ids: ids, optimizer: optimizer, learningRate: 1e-4, maxGradNorm: 1) }
            let times = try Bench.timings(seconds: seconds, warmUp: 3, minRuns: 5, step)
            let median = times[times.count / 2]
            let result = Result(engine: "swiftvlm fp32", config: config, batch: batch, tokens: tokens, threads: Kernels.threads,
                                isa: Kernels.isa, steps: times.count, step_ms: median * 1000, samples_per_s: Double(batch) / median)
            switch format {
            case .json: try printJSON(result)
            case .text:
                print("config \(config), batch \(batch), \(tokens) tokens, \(result.threads) threads, \(result.isa)")
                print(String(format: "train step: %.1f ms median of %d  (%.1f samples/s)", result.step_ms, result.steps, result.samples_per_s))
            }
        }
    }
}
