import ArgumentParser
import Dispatch
import Foundation
import SwiftVLM
import VLMLayers

/// `vlm bench-llm`: prefill and decode throughput of a Llama-family decoder, next to this machine's memory
/// bandwidth roofline for decode (every weight is read once per generated token). With `--model DIR --image
/// FILE`, any generative VLM the registry loads (LLaVA, SmolVLM, ...) answers one user turn through its own
/// processor, and the processor, the image encode, time to first token and decode are timed (GenerationTiming).
struct BenchLLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-llm",
        abstract: "Prefill and decode tokens/s of a Llama-family decoder or a LLaVA (random weights with --config).",
        discussion: "Compare with Benchmarks/bench_torch_llm.py (same configuration, prompt, tokens and threads).")

    @Option(help: "Checkpoint directory: a text LM (random prompt ids), or any VLM with --image.") var model: String?
    @Option(help: "Architecture with random weights: \(LlamaConfig.presetNames.joined(separator: ", ")).") var config: String?
    @Option(help: "Prompt tokens for prefill.") var prompt = 128
    @Option(help: "Tokens to decode after the prompt.") var tokens = 64
    @Option(help: "Timed prefills of the prompt, each into a fresh cache; the median is reported (one run moved by up to 25% on a shared VM).")
    var prefillRuns = 3
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "Linear weight storage: f32, bf16, f16, int8, int4 (group-wise, weight-only; random weights default f32) or as-stored (checkpoints; default).")
    var storage: String?
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Option(help: "With --model: one user turn with this image and --question through the checkpoint's own processor (any generative VLM): processor, image encode, time to first token, decode.")
    var image: String?
    @Option(help: "The question asked about --image.") var question = "Describe this image in detail, please."

    struct Result: Encodable {
        let engine: String
        let config: String
        let threads: Int
        let parameters: Int
        let weight_bytes: Int
        let prompt_tokens: Int
        let decode_tokens: Int
        let prefill_tokens_per_s: Double
        let decode_tokens_per_s: Double
        let memory_bandwidth_gb_s: Double
        let decode_roofline_tokens_per_s: Double
        let decode_roofline_fraction: Double
        /// Mean bytes of the KV cache each decode step reads (every layer's keys and values so far).
        let decode_kv_bytes_per_token: Int
        /// What the KV cache stores: fp32, or bf16 under a reduced precision (KVCachePrecision.standard).
        let kv_cache: String
        /// Roofline of what a decode step must read: the packed weights plus the KV cache.
        let decode_roofline_with_kv_tokens_per_s: Double
        let decode_roofline_with_kv_fraction: Double
        /// Per-step times: on a shared host other tenants only ever add time, so the median and the fastest step say
        /// what the code does when the total is moved by a burst of someone else's traffic.
        let decode_step_ms_median: Double
        let decode_step_ms_fastest: Double
        let storage: String
        let cpu: String
        let cpu_features: [String]
        let decode_kernel: String
        let prefill_kernel: String
    }

    func run() throws {
        try guarded {
            guard prompt >= 1, tokens >= 1, prompt + tokens <= 1 << 16 else {
                throw PipelineError.invalidArgument("--prompt and --tokens must be >= 1 and their sum <= 65536")
            }
            if let threads, threads > 0 { Kernels.threads = threads }
            if let image {
                guard let model else { throw PipelineError.invalidArgument("--image needs --model (a checkpoint with its processor files)") }
                return try runTurn(model: model, image: image)
            }
            let weightStorage: WeightStorage
            switch storage?.lowercased() ?? (model == nil ? "f32" : "as-stored") {
            case "f32", "float32": weightStorage = .float32
            case "bf16", "bfloat16": weightStorage = .bfloat16
            case "f16", "fp16", "float16": weightStorage = .float16
            case "int8", "i8": weightStorage = .int8
            case "int4", "i4": weightStorage = .int4
            case "as-stored", "asstored": weightStorage = .asStored
            default: throw PipelineError.invalidArgument("--storage must be f32, bf16, f16, int8, int4 or as-stored")
            }
            let lm: LlamaModel
            let name: String
            if let model {
                let url = URL(fileURLWithPath: (model as NSString).expandingTildeInPath)
                let family = try ModelRegistry.family(directory: url)
                guard case .generative(let loaded) = try (family.loadStored.map { try $0(url, weightStorage) } ?? family.load(url)) else {
                    throw PipelineError.invalidArgument("\(model) is an embedding model (\(family.name)); bench-llm times generative models (vlm bench times encoders)")
                }
                guard !loaded.supportsImages, let text = loaded as? LlamaModel else {
                    throw PipelineError.invalidArgument("\(model) is a vision-language model (\(family.name)): pass --image FILE to time a turn through its processor")
                }
                lm = text
                name = model
            } else {
                let preset = config ?? "smollm2-360m"
                guard let cfg = LlamaConfig.preset(preset) else {
                    throw PipelineError.invalidArgument("unknown --config '\(preset)' (known: \(LlamaConfig.presetNames.joined(separator: ", ")))")
                }
                lm = try LlamaModel.random(config: cfg, storage: weightStorage)
                name = preset
            }
            var rng = SplitMix64(seed: 7)
            let ids = (0 ..< prompt).map { _ in Int(rng.next() % UInt64(lm.vocabularySize)) }
            // Warm-up (page in weights, spin up threads): a short prefill and two decode steps.
            let warm = lm.makeCache(capacity: 16)
            _ = try lm.forward(ids: Array(ids.suffix(8)), cache: warm)
            for id in [1, 2] { _ = try lm.forward(ids: [id], cache: warm) }
            // The VM's read bandwidth moves between runs (27-54 GB/s measured on one machine in one hour): sweep before
            // and after the timed part and keep the higher figure, so the roofline is not understated.
            let bandwidthBefore = Self.memoryBandwidth()
            guard prefillRuns >= 1 else { throw PipelineError.invalidArgument("--prefill-runs must be >= 1, got \(prefillRuns)") }
            let embeddings = try lm.embed(ids)
            var cache = lm.makeCache(capacity: ids.count + tokens)
            var logits = try lm.forward(embeddings: embeddings, cache: cache)  // paged-in activations, as later runs see them
            var prefillNanos: [UInt64] = []
            for _ in 0 ..< prefillRuns {
                cache = lm.makeCache(capacity: ids.count + tokens)
                let start = DispatchTime.now().uptimeNanoseconds
                logits = try lm.forward(embeddings: embeddings, cache: cache)
                prefillNanos.append(DispatchTime.now().uptimeNanoseconds - start)
            }
            let prefillMedian = prefillNanos.sorted()[prefillNanos.count / 2]
            let t1 = DispatchTime.now().uptimeNanoseconds
            var stepNanos: [UInt64] = []
            stepNanos.reserveCapacity(tokens)
            for _ in 0 ..< tokens {
                let s0 = DispatchTime.now().uptimeNanoseconds
                var best = 0
                for i in 1 ..< lm.vocabularySize where logits[i] > logits[best] { best = i }
                logits = try lm.forward(ids: [best], cache: cache)
                stepNanos.append(DispatchTime.now().uptimeNanoseconds - s0)
            }
            let t2 = DispatchTime.now().uptimeNanoseconds
            stepNanos.sort()
            let stepMedian = Double(stepNanos[stepNanos.count / 2]) / 1e6, stepFastest = Double(stepNanos[0]) / 1e6
            let bandwidth = max(bandwidthBefore, Self.memoryBandwidth())
            // Decode streams every packed linear weight once per token (embedding lookups touch one row).
            let footprint = lm.linearWeightFootprint
            let weightBytes = footprint.bytes
            let bytesPerWeight = Double(footprint.bytes) / Double(max(footprint.parameters, 1))
            // The packed format (as-stored checkpoints: 16-bit when the weights average ~2 bytes).
            let packed = weightStorage == .asStored ? (bytesPerWeight < 3 ? .bfloat16 : .float32) : weightStorage.packedStorage(for: .f32)
            let decodeRate = Double(tokens) / (Double(t2 - t1) / 1e9), roofline = bandwidth / Double(weightBytes)
            // Step i (0-based) attends prompt + i + 1 positions: the mean context of the decode is prompt + (tokens + 1) / 2.
            let c = lm.config, kvWidth = c.kvHeads * c.resolvedHeadDim
            let kvBytes = Int(Double(2 * c.numHiddenLayers * kvWidth * lm.kvCachePrecision.bytes) * (Double(ids.count) + Double(tokens + 1) / 2))
            let rooflineWithKV = bandwidth / Double(weightBytes + kvBytes)
            // Reduced-precision compute for prefill (calls of 16+ rows): int8 in the chosen layers, bf16 when forced.
            let int8Prefill = packed == .int8 && Int8ComputeLayers.standard != .none
            let bf16Prefill = weightStorage == .bfloat16 && BF16Compute.standard
            // int4 decode in W4A8 where the CPU runs it (W4A8Decode), as the loader decided.
            let w4a8 = packed == .int4 && W4A8Decode.standard
            let compute = int8Prefill ? "int8 compute in \(Int8ComputeLayers.standard.rawValue) layers for prefill (\(PackedLinearWeight.int8ComputeKernel)), fp32 elsewhere"
                : bf16Prefill ? "bf16 compute for prefill (\(PackedLinearWeight.bf16ComputeKernel)), fp32 for decode"
                : w4a8 ? "W4A8 decode (int8 activations in blocks of 32), fp32 prefill" : "fp32 compute"
            let prefillKernel = int8Prefill && ids.count >= PackedLinearWeight.int8ComputeMinRows ? PackedLinearWeight.int8ComputeKernel
                : bf16Prefill && ids.count >= PackedLinearWeight.bf16ComputeMinRows ? PackedLinearWeight.bf16ComputeKernel
                : Kernels.kernel(for: packed, rows: ids.count)
            let result = Result(engine: String(format: "swiftvlm %@ weights (%.2f bytes/weight), %@", packed.rawValue, bytesPerWeight,
                                                  compute), config: name, threads: Kernels.threads, parameters: lm.parameterCount,
                                weight_bytes: weightBytes, prompt_tokens: ids.count, decode_tokens: tokens,
                                prefill_tokens_per_s: Double(ids.count) / (Double(prefillMedian) / 1e9),
                                decode_tokens_per_s: decodeRate,
                                memory_bandwidth_gb_s: bandwidth / 1e9, decode_roofline_tokens_per_s: roofline,
                                decode_roofline_fraction: decodeRate / roofline, decode_kv_bytes_per_token: kvBytes,
                                kv_cache: lm.kvCachePrecision.rawValue, decode_roofline_with_kv_tokens_per_s: rooflineWithKV,
                                decode_roofline_with_kv_fraction: decodeRate / rooflineWithKV,
                                decode_step_ms_median: stepMedian, decode_step_ms_fastest: stepFastest, storage: packed.rawValue,
                                cpu: Kernels.cpuModel ?? "unknown", cpu_features: Kernels.cpuFeatures,
                                decode_kernel: w4a8 ? PackedLinearWeight.w4a8Kernel : Kernels.kernel(for: packed, rows: 1),
                                prefill_kernel: prefillKernel)
            switch format {
            case .json: try printJSON(result)
            case .text:
                print("cpu: \(result.cpu) [\(result.cpu_features.joined(separator: " "))]; kernels: decode \(result.decode_kernel), prefill \(result.prefill_kernel)")
                print("config \(name): \(result.parameters / 1_000_000)M parameters, \(weightBytes >> 20) MiB of packed linear weights (\(result.engine)), \(result.threads) threads")
                print(String(format: "prefill: %8.1f tokens/s in the decoder (%d tokens)", result.prefill_tokens_per_s, ids.count))
                print(String(format: "decode:  %8.1f tokens/s (%d tokens); roofline %.1f tokens/s at %.1f GB/s measured read bandwidth (%.0f%%)",
                             result.decode_tokens_per_s, tokens, result.decode_roofline_tokens_per_s, result.memory_bandwidth_gb_s,
                             100 * result.decode_roofline_fraction))
                print(String(format: "         with the %@ KV cache read each step (%.1f MiB on average): roofline %.1f tokens/s (%.0f%%)",
                             result.kv_cache, Double(kvBytes) / 1048576, result.decode_roofline_with_kv_tokens_per_s,
                             100 * result.decode_roofline_with_kv_fraction))
                print(String(format: "         steps: median %.2f ms (%.1f tokens/s, %.0f%% of the roofline with the cache), fastest %.2f ms (%.0f%%)",
                             stepMedian, 1e3 / stepMedian, 100 * 1e3 / stepMedian / rooflineWithKV, stepFastest,
                             100 * 1e3 / stepFastest / rooflineWithKV))
            }
        }
    }

    struct TurnResult: Encodable {
        let engine: String
        let model: String
        let threads: Int
        let timing: GenerationTiming
        let decoder_weight_bytes: Int
        let memory_bandwidth_gb_s: Double
        let decode_roofline_tokens_per_s: Double
    }

    /// One image + question through GenerativePipeline (any family the registry loads).
    func runTurn(model: String, image: String) throws {
        let precision = try storage.map { name -> Precision in
            guard let p = Precision(name: name) else { throw Precision.unknown(name) }
            return p
        }
        let pipeline = try GenerativePipeline.load(directory: URL(fileURLWithPath: (model as NSString).expandingTildeInPath), precision: precision)
        let picture = try loadImage(image)
        let bandwidthBefore = Self.memoryBandwidth()
        let timing = try pipeline.benchmark(question: question, images: [picture], tokens: tokens)
        let bandwidth = max(bandwidthBefore, Self.memoryBandwidth())
        let bytes = pipeline.model.decodeWeightBytes
        let result = TurnResult(engine: "swiftvlm (\(pipeline.modelType)\(precision.map { ", " + $0.engineDescription } ?? ""))", model: model, threads: Kernels.threads, timing: timing,
                                decoder_weight_bytes: bytes, memory_bandwidth_gb_s: bandwidth / 1e9,
                                decode_roofline_tokens_per_s: bandwidth / Double(max(bytes, 1)))
        switch format {
        case .json: try printJSON(result)
        case .text:
            print("model \(model) (\(pipeline.modelType)), \(Kernels.threads) threads, \(bytes >> 20) MiB of decoder weights streamed per token")
            print(String(format: "processor: %8.3f s (%d prompt tokens, %d in image runs, %d tiles)", timing.processorSeconds,
                         timing.promptTokens, timing.imageTokens, timing.tiles))
            if let encode = timing.imageEncodeSeconds { print(String(format: "image:     %8.3f s to encode", encode)) }
            print(String(format: "first token: %6.3f s (prefill, image encode included)", timing.timeToFirstTokenSeconds))
            print(String(format: "decode:    %8.1f tokens/s (%d tokens); roofline %.1f tokens/s at %.1f GB/s measured read bandwidth",
                         timing.decodeTokensPerSecond, timing.decodeTokens, result.decode_roofline_tokens_per_s, result.memory_bandwidth_gb_s))
        }
    }

    /// Read bandwidth (bytes/s) over a 1 GiB buffer with all kernel threads, best of 3: the decode roofline (taken
    /// before and after the timed run; the higher one is used).
    static func memoryBandwidth() -> Double {
        let count = 1 << 28  // floats = 1 GiB, allocated as the packed weights are (huge pages where they use them)
        return Kernels.withWeightMemory(bytes: count * 4) { raw -> Double in
            let buffer = raw.bindMemory(to: Float.self, capacity: count)
            buffer.initialize(repeating: 1, count: count)
            let workers = max(Kernels.threads, 1)
            var best = 0.0
            for _ in 0 ..< 3 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let chunk = count / workers
                    let base = UnsafeRawPointer(buffer + w * chunk)
                    // glibc's vectorised memchr streams the chunk at full speed (1.0f is bytes 00 00 80 3F: no 0x55).
                    if memchr(base, 0x55, chunk * 4) != nil { print("") }
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                best = max(best, Double(count * 4) / seconds)
            }
            return best
        } ?? 0
    }
}
