// Reduced-precision compute vs weight-only vs fp32 in one process (release build), so every pair runs back to back
// on the same machine state: CLIP image-embedding throughput (a checkpoint with --clip-model, else random weights of
// the b32 preset) and Llama-family prefill (random weights of a preset). Models of every variant are loaded first;
// then each round times one call of each variant in turn, and the median per variant is reported.
//   swift build -c release --product vlm-bench-precision
//   .build/release/vlm-bench-precision [--threads 2] [--rounds 9] [--batch 8] [--clip-model DIR] [--clip-config b32]
//                                      [--llm-config smollm2-360m] [--prompt 128] [--skip-clip] [--skip-llm]
//                                      [--variants fp32,bf16,int8-mlp,...]
// Variants: fp32; bf16-weights (bf16 weights, fp32 compute: VLM_BF16_COMPUTE=none); bf16 (bf16 compute, what
// --precision bf16 runs); int8-weights (int8 weight-only: VLM_INT8_COMPUTE=none); int8-mlp (int8 compute in the
// MLPs, what --precision int8 ran on decoders before session 16); int8-all (int8 compute in the MLPs and attention
// projections, with bf16 attention in decoder prefill: what --precision int8 runs). fp32 is always
// run first: the others are compared with it.
import Foundation
import VLMLayers
import VLMModels
import VLMTensor

func option(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func flag(_ name: String) -> Bool { CommandLine.arguments.contains(name) }

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

func cpuModel() -> String {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    return info.split(separator: "\n").first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces) } ?? "?"
}

struct Variant {
    let name: String, storage: WeightStorage, int8: Int8ComputeLayers, bf16: Bool
}
let allVariants = [
    Variant(name: "fp32", storage: .float32, int8: .none, bf16: false),
    Variant(name: "bf16-weights", storage: .bfloat16, int8: .none, bf16: false),
    Variant(name: "bf16", storage: .bfloat16, int8: .none, bf16: true),
    Variant(name: "int8-weights", storage: .int8, int8: .none, bf16: false),
    Variant(name: "int8-mlp", storage: .int8, int8: .mlp, bf16: false),
    Variant(name: "int8-all", storage: .int8, int8: .all, bf16: false),
]
let variants: [Variant] = {
    guard let list = option("--variants") else { return allVariants }
    let names = Set(list.split(separator: ",").map(String.init) + ["fp32"])
    for n in names where !allVariants.contains(where: { $0.name == n }) {
        FileHandle.standardError.write(Data("error: unknown variant \(n) (known: \(allVariants.map(\.name).joined(separator: ", ")))\n".utf8))
        exit(2)
    }
    return allVariants.filter { names.contains($0.name) }
}()

/// Loads one model per variant (the environment variables pick the reduced-precision compute at load).
func load<M>(_ make: (WeightStorage) throws -> M) throws -> [M] {
    try variants.map { v in
        setenv("VLM_INT8_COMPUTE", v.int8.rawValue, 1)
        setenv("VLM_BF16_COMPUTE", v.bf16 ? "all" : "none", 1)
        return try make(v.storage)
    }
}

/// Median seconds per variant, rounds interleaved.
func time(rounds: Int, _ bodies: [() throws -> Void]) throws -> [Double] {
    for body in bodies { try body() }  // warm-up
    var times = Array(repeating: [Double](), count: bodies.count)
    for _ in 0 ..< rounds {
        for (i, body) in bodies.enumerated() {
            let t0 = now()
            try body()
            times[i].append(now() - t0)
        }
    }
    return times.map { $0.sorted()[$0.count / 2] }
}

let threads = Int(option("--threads") ?? "") ?? 0
if threads > 0 { Kernels.threads = threads }
let rounds = max(Int(option("--rounds") ?? "") ?? 9, 1)
print("CPU \(cpuModel()), features \(Kernels.cpuFeatures.joined(separator: " ")), \(Kernels.threads) threads, int8 kernel \(PackedLinearWeight.int8ComputeKernel), bf16 kernel \(PackedLinearWeight.bf16ComputeKernel)")

do {
    if !flag("--skip-clip") {
        let batch = max(Int(option("--batch") ?? "") ?? 8, 1)
        let models: [CLIPModel]
        let label: String
        if let dir = option("--clip-model") {
            models = try load { try CLIPModel.load(directory: URL(fileURLWithPath: dir), storage: $0) }
            label = dir
        } else {
            let preset = option("--clip-config") ?? "b32"
            guard let cfg = CLIPConfig.preset(preset) else { throw ModelError.invalidInput("unknown CLIP preset \(preset)") }
            models = try load { try CLIPModel.random(config: cfg, storage: $0) }
            label = "\(preset) (random weights)"
        }
        let v = models[0].config.visionConfig
        var rng = SplitMix64(seed: 42)
        let pixels = Tensor(uninitialized: [batch, v.numChannels, v.imageSize, v.imageSize])
        for i in 0 ..< pixels.count { pixels[i] = rng.nextGaussian() }
        let before = loadAverage()
        let t = try time(rounds: rounds, models.map { m in { _ = try m.imageFeatures(pixels) } })
        print("CLIP \(label), image tower, batch \(batch), \(rounds) rounds, load \(before) -> \(loadAverage())")
        // The same pixels' embeddings against fp32's: per-image cosine, min and mean (random pixels: a smoke
        // figure; `vlm quant-report` measures real photos).
        let features = try models.map { try $0.imageFeatures(pixels) }
        let p = features[0].shape[1]
        func cosine(_ a: Tensor, _ b: Tensor, _ i: Int) -> Double {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for j in 0 ..< p {
                let x = Double(a[i * p + j]), y = Double(b[i * p + j])
                ab += x * y; aa += x * x; bb += y * y
            }
            return ab / max((aa * bb).squareRoot(), 1e-30)
        }
        for (k, (variant, s)) in zip(variants, t).enumerated() {
            let cos = (0 ..< batch).map { cosine(features[k], features[0], $0) }
            print("  " + variant.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: " %8.2f images/s  (%.1f ms per batch, %.2fx fp32)  cosine to fp32 min %.6f mean %.6f",
                                                                                          Double(batch) / s, s * 1000, t[0] / s, cos.min() ?? 0, cos.reduce(0, +) / Double(batch)))
        }
    }
    if !flag("--skip-llm") {
        let preset = option("--llm-config") ?? "smollm2-360m", prompt = max(Int(option("--prompt") ?? "") ?? 128, 1)
        guard let cfg = LlamaConfig.preset(preset) else { throw ModelError.invalidInput("unknown Llama preset \(preset)") }
        let models = try load { try LlamaModel.random(config: cfg, storage: $0) }
        let ids = (0 ..< prompt).map { (17 + 31 * $0) % models[0].vocabularySize }
        let before = loadAverage()
        let t = try time(rounds: rounds, models.map { m in { _ = try m.forward(ids: ids, cache: m.makeCache(capacity: prompt + 1)) } })
        print("\(preset) (random weights), prefill of \(prompt) tokens, \(rounds) rounds, load \(before) -> \(loadAverage())")
        // Next-token argmax agreement with fp32 over every prompt position (random weights: flat distributions, so
        // a harsh smoke figure; `vlm quant-report` measures a real checkpoint).
        let vocab = models[0].vocabularySize
        let logits = try models.map { try $0.forward(ids: ids, cache: $0.makeCache(capacity: prompt + 1), allLogits: true) }
        func argmax(_ l: Tensor, _ row: Int) -> Int {
            var best = 0
            for v in 1 ..< vocab where l[row * vocab + v] > l[row * vocab + best] { best = v }
            return best
        }
        let reference = (0 ..< prompt).map { argmax(logits[0], $0) }
        for (k, (variant, s)) in zip(variants, t).enumerated() {
            let agree = Double((0 ..< prompt).filter { argmax(logits[k], $0) == reference[$0] }.count) / Double(prompt)
            print("  " + variant.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: " %8.1f tokens/s  (%.0f ms, %.2fx fp32)  top-1 agreement with fp32 %.4f",
                                                                                          Double(prompt) / s, s * 1000, t[0] / s, agree))
        }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
