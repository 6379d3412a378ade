import Dispatch
import Foundation
import VLMLayers
import VLMModels
import VLMTensor

/// Florence-2 timing with random weights (issue 12 part 7): one square image through the encoder side (DaViT,
/// projector, BART encoder) and whole task answers with beam search, prompt lengths as <CAPTION> and <OD> build
/// them. Compare with Benchmarks/bench_torch_florence2.py (same configuration, image side, beams and tokens).
public enum Florence2Benchmark {
    /// Florence-2-base and -large as their config.json set them (vocabulary padded as the Hub's).
    public static func config(_ name: String) throws -> Florence2Config {
        var c = Florence2Config()
        c.imageTokenId = 51289
        c.textConfig.vocabSize = 51328
        c.textConfig.maxPositionEmbeddings = 1024
        switch name {
        case "base":
            c.visionConfig.embedDim = [128, 256, 512, 1024]
            c.visionConfig.numHeads = [4, 8, 16, 32]
            c.visionConfig.numGroups = [4, 8, 16, 32]
            c.visionConfig.projectionDim = 768
            (c.textConfig.dModel, c.textConfig.encoderLayers, c.textConfig.decoderLayers) = (768, 6, 6)
            (c.textConfig.encoderAttentionHeads, c.textConfig.decoderAttentionHeads) = (12, 12)
            (c.textConfig.encoderFfnDim, c.textConfig.decoderFfnDim) = (3072, 3072)
        case "large":
            c.visionConfig.embedDim = [256, 512, 1024, 2048]
            c.visionConfig.numHeads = [8, 16, 32, 64]
            c.visionConfig.numGroups = [8, 16, 32, 64]
            c.visionConfig.projectionDim = 1024
            (c.textConfig.dModel, c.textConfig.encoderLayers, c.textConfig.decoderLayers) = (1024, 12, 12)
            (c.textConfig.encoderAttentionHeads, c.textConfig.decoderAttentionHeads) = (16, 16)
            (c.textConfig.encoderFfnDim, c.textConfig.decoderFfnDim) = (4096, 4096)
        default: throw PipelineError.invalidArgument("unknown Florence-2 configuration '\(name)' (base, large)")
        }
        return c
    }

    public struct Result: Encodable {
        public let engine = "swiftvlm"
        public let config: String
        /// fp32 (exact), bf16, int8 or int4 (`--precision`), and what it computes with on this CPU.
        public let precision: String
        public let compute: String
        public let image_side: Int
        public let encoder_seconds: Double
        public let caption_seconds: Double
        public let od_seconds: Double
        public let beams: Int
        public let new_tokens: Int
        /// What the precision costs, against the fp32 model of the same seed on the same image (nil for fp32):
        /// ||a - b|| / ||b|| of the encoder output and of the first decoder step's logits, and whether that step's
        /// top token is the same.
        public var encoder_rel_l2_vs_fp32: Double?
        public var first_logits_rel_l2_vs_fp32: Double?
        public var first_token_same_as_fp32: Bool?
    }

    static func relativeL2(_ a: Tensor, _ b: Tensor) -> Double {
        var d = 0.0, n = 0.0
        for i in 0 ..< min(a.count, b.count) {
            let x = Double(a.pointer[i]), y = Double(b.pointer[i])
            d += (x - y) * (x - y)
            n += y * y
        }
        return n > 0 ? (d / n).squareRoot() : 0
    }

    static func argmax(_ t: Tensor) -> Int {
        var best = 0
        for i in 0 ..< t.count where t.pointer[i] > t.pointer[best] { best = i }
        return best
    }

    /// Median of `repeats` runs each: the encoder side, then <CAPTION> (7 prompt words) and <OD> (10) answers of
    /// exactly `newTokens` tokens with `beams` beams (EOS ignored, as the PyTorch script's min_new_tokens).
    public static func run(config name: String, side: Int = 768, beams: Int = 3, newTokens: Int = 20, repeats: Int = 3,
                           precision: Precision = .fp32) throws -> Result {
        let config = try config(name)
        let model = try Florence2Model.random(config: config, seed: 0, storage: precision.weightStorage)
        let imageTokens = model.vision.imageTokenCount(height: side, width: side)
        let pixels = Tensor(uninitialized: [1, 3, side, side])
        var rng = SplitMix64(seed: 1)
        for i in 0 ..< pixels.count { pixels.pointer[i] = rng.nextUniform() * 4 - 2 }
        func prompt(_ words: Int) -> [Int] { Array(repeating: config.imageTokenId, count: imageTokens) + [0] + (0 ..< words).map { 100 + $0 } + [2] }
        func median(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0 ..< max(repeats, 1) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return times.sorted()[times.count / 2]
        }
        let encoder = try median { _ = try model.encode(ids: prompt(7), pixelValues: pixels) }
        var options = SamplingOptions()
        options.numBeams = beams
        options.noRepeatNgramSize = 3
        func answer(_ words: Int) throws {
            let state = model.makeState(capacity: newTokens + 1)
            let logits = try model.prefill(PreparedInput(ids: prompt(words), pixels: PixelInputs(pixelValues: pixels)), state: state)
            _ = try BeamSearch(model: model, options: options, eos: []).run(prompt: [config.textConfig.decoderStartTokenId], state: state,
                                                                         logits: logits, budget: newTokens)
        }
        let caption = try median { try answer(7) }
        let od = try median { try answer(10) }
        var result = Result(config: name, precision: precision.rawValue, compute: precision.engineDescription, image_side: side,
                            encoder_seconds: encoder, caption_seconds: caption, od_seconds: od, beams: beams, new_tokens: newTokens)
        if precision != .fp32 {
            let exact = try Florence2Model.random(config: config, seed: 0, storage: .float32)
            result.encoder_rel_l2_vs_fp32 = relativeL2(try model.encode(ids: prompt(7), pixelValues: pixels),
                                                       try exact.encode(ids: prompt(7), pixelValues: pixels))
            let input = PreparedInput(ids: prompt(7), pixels: PixelInputs(pixelValues: pixels))
            let a = try model.prefill(input, state: model.makeState(capacity: 2))
            let b = try exact.prefill(input, state: exact.makeState(capacity: 2))
            result.first_logits_rel_l2_vs_fp32 = relativeL2(a, b)
            result.first_token_same_as_fp32 = argmax(a) == argmax(b)
        }
        return result
    }
}
