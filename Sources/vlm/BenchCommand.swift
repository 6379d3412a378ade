import ArgumentParser
import Dispatch
import Foundation
import SwiftVLM
import VLMLayers

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Throughput of the image and text encoders (images/s, texts/s); random weights with --config.",
        discussion: "Compare with Benchmarks/bench_torch_clip.py, which times PyTorch on the same configuration, batch and threads.")

    @Option(help: "Checkpoint directory of any embedding model the registry loads (CLIP, SigLIP, SigLIP2); its weights are used.") var model: String?
    @Option(help: "Architecture with random weights: \(CLIPConfig.presetNames.joined(separator: ", ")).") var config: String?
    @Option(help: "Batch size.") var batch = 8
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "Seconds to time each encoder (after one warm-up).") var seconds: Double = 5
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Option(help: "\(Precision.helpText) Default fp32.") var precision: String?

    /// Short prompts, "a photo of a {label}." with BOS/EOS: the lengths bench_torch_clip.py uses.
    static let promptLengths = [7, 8, 9, 7, 10, 8, 7, 9]

    struct Result: Encodable {
        let engine: String
        let config: String
        let batch: Int
        let threads: Int
        let isa: String
        let image_per_s: Double
        let text_per_s: Double
        let image_batch_ms: Double
        let text_batch_ms: Double
    }

    func run() throws {
        try guarded {
            guard batch >= 1, batch <= 4096 else { throw PipelineError.invalidArgument("--batch must be in 1...4096") }
            guard seconds > 0, seconds <= 3600 else { throw PipelineError.invalidArgument("--seconds must be in (0, 3600]") }
            if let threads, threads > 0 { Kernels.threads = threads }
            let chosen = try precision.map { name -> Precision in
                guard let p = Precision(name: name) else { throw Precision.unknown(name) }
                return p
            } ?? .fp32
            if let model {
                try benchmark(EmbeddingPipeline.load(directory: expand(model), precision: chosen), name: model)
                return
            }
            let clip: CLIPModel
            let name: String
            do {
                let preset = config ?? "b32"
                guard let cfg = CLIPConfig.preset(preset) else {
                    throw PipelineError.invalidArgument("unknown --config '\(preset)' (known: \(CLIPConfig.presetNames.joined(separator: ", ")))")
                }
                clip = try CLIPModel.random(config: cfg, storage: chosen.weightStorage)
                name = preset
            }
            let v = clip.config.visionConfig
            var rng = SplitMix64(seed: 42)
            let pixels = Tensor(uninitialized: [batch, v.numChannels, v.imageSize, v.imageSize])
            for i in 0 ..< pixels.count { pixels[i] = rng.nextGaussian() }
            let vocab = clip.config.textConfig.vocabSize
            let ids = Self.syntheticPrompts(batch: batch, vocabularySize: vocab, maxLength: clip.maxTextLength)
            let imageTime = try Self.median(seconds: seconds) { _ = try clip.imageFeatures(pixels) }
            let textTime = try Self.median(seconds: seconds) { _ = try clip.textFeatures(ids) }
            report(name: name, imageTime: imageTime, textTime: textTime)
        }
    }

    /// Any dual encoder from its files: pixel inputs from the checkpoint's own processor on a synthetic photo-sized
    /// image (NaFlex: a square image fills max_num_patches), texts as the model's policy pads them (SigLIP: 64).
    func benchmark(_ pipeline: EmbeddingPipeline, name: String) throws {
        var rng = SplitMix64(seed: 42)
        var rgb = [UInt8](repeating: 0, count: 512 * 512 * 3)
        for i in rgb.indices { rgb[i] = UInt8(truncatingIfNeeded: Int(rng.next() >> 56)) }
        let image = try RGBImage(width: 512, height: 512, pixels: rgb)
        let pixels = try pipeline.processor.pixelInputs(Array(repeating: image, count: batch))
        let vocab = pipeline.tokenizer.vocabularySize
        let ids = try pipeline.padded(Self.syntheticPrompts(batch: batch, vocabularySize: vocab, maxLength: pipeline.maxTextLength))
        let model = pipeline.model
        let imageTime = try Self.median(seconds: seconds) { _ = try model.imageFeatures(pixels) }
        let textTime = try Self.median(seconds: seconds) { _ = try model.textFeatures(ids) }
        report(name: "\(name) (\(model.modelType), \(pixels.pixelValues.shape.dropFirst().map(String.init).joined(separator: "x")) pixel input, \(ids.first?.count ?? 0) tokens)",
               imageTime: imageTime, textTime: textTime)
    }

    func report(name: String, imageTime: Double, textTime: Double) {
        let result = Result(engine: "swiftvlm \(Precision(name: precision ?? "fp32")?.dualEncoderEngineDescription ?? "fp32")", config: name, batch: batch, threads: Kernels.threads, isa: Kernels.isa,
                            image_per_s: Double(batch) / imageTime, text_per_s: Double(batch) / textTime,
                            image_batch_ms: imageTime * 1000, text_batch_ms: textTime * 1000)
        do {
            switch format {
            case .json: try printJSON(result)
            case .text:
                print("config \(name), batch \(batch), \(result.threads) threads, \(result.isa)")
                print(String(format: "image: %8.2f images/s  (%.1f ms per batch)", result.image_per_s, result.image_batch_ms))
                print(String(format: "text:  %8.2f texts/s   (%.1f ms per batch)", result.text_per_s, result.text_batch_ms))
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        }
    }

    /// The token ids bench_torch_clip.py builds: BOS, (n - 2) ordinary tokens, EOS.
    static func syntheticPrompts(batch: Int, vocabularySize vocab: Int, maxLength: Int) -> [[Int]] {
        let bos = min(49406, vocab - 2), eos = min(49407, vocab - 1), span = max(vocab - 2, 1)
        return (0 ..< batch).map { b -> [Int] in
            let n = min(promptLengths[b % promptLengths.count], maxLength)
            var row = [bos]
            for i in 0 ..< max(n - 2, 0) { row.append((320 + 7 * i) % span) }
            row.append(eos)
            return row
        }
    }

    /// Median wall time of `body` after one warm-up run, repeated for `seconds` (at least 3 runs).
    static func median(seconds: Double, _ body: () throws -> Void) throws -> Double {
        let times = try timings(seconds: seconds, warmUp: 1, minRuns: 3, body)
        return times[times.count / 2]
    }

    /// Sorted wall times (seconds) of `body`, after `warmUp` untimed runs, repeated for `seconds` and at least
    /// `minRuns` (>= 1) times.
    static func timings(seconds: Double, warmUp: Int, minRuns: Int, _ body: () throws -> Void) throws -> [Double] {
        for _ in 0 ..< warmUp { try body() }
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while times.count < max(minRuns, 1) || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()
    }
}
