import Foundation
import Testing
import SwiftVLM
import VLMImage
import VLMLayers
import VLMModels
import VLMTensor
import VLMTestSupport

/// 16-bit weight storage at the model level: bf16/fp16 checkpoints loaded as stored keep 2 bytes per linear
/// weight parameter, and (the kernels widen exactly and keep the f32 FMA order) give the logits of the same
/// checkpoint widened to float32.
@Suite struct WeightStorageTests {
    @Test(arguments: [("llama-gqa", PackedLinearWeight.Storage.bfloat16), ("llama-mqa", .float16), ("qwen2-lin", .float32)])
    func asStoredKeepsCheckpointTypeAndMatchesFloat32Bitwise(config: String, expected: PackedLinearWeight.Storage) throws {
        let url = Fixtures.url("llama/\(config)")
        let stored = try LlamaModel.load(directory: url, storage: .asStored)
        let wide = try LlamaModel.load(directory: url, storage: .float32)
        let fp = stored.linearWeightFootprint, fpWide = wide.linearWeightFootprint
        #expect(fp.parameters == fpWide.parameters)
        // Same panels (rows padded to multiples of 32), elements of 2 instead of 4 bytes.
        #expect(fp.bytes * 4 == fpWide.bytes * expected.bytesPerElement, "\(config): \(fp.bytes) vs \(fpWide.bytes) bytes")
        if config == "llama-gqa" {
            // Every width of this fixture is a multiple of 32: exactly 2 bytes per parameter.
            #expect(fp.bytes == 2 * fp.parameters)
        }

        let ref: LlamaReference = try Fixtures.json("llama/\(config).reference.json")
        let a = try stored.forward(ids: ref.prompt, cache: stored.makeCache(capacity: 64), allLogits: true)
        let b = try wide.forward(ids: ref.prompt, cache: wide.makeCache(capacity: 64), allLogits: true)
        // Bit-for-bit equality holds on one code path (KernelsGemm16Tests checks it under the ISA lock); here
        // other suites in the same process may switch the ISA between the two forwards (the AVX-512 and AVX2
        // kernels sum in different orders), so allow float rounding only.
        #expect(a.count == b.count)
        var worst: Float = 0
        for i in 0 ..< min(a.count, b.count) { worst = max(worst, abs(a[i] - b[i])) }
        #expect(worst <= 1e-4, "\(config): as-stored logits differ from float32 logits by \(worst)")
    }

    @Test func randomModelInBF16UsesTwoBytesPerParameter() throws {
        guard var config = LlamaConfig.preset("smollm2-135m") else { Issue.record("preset"); return }
        config.numHiddenLayers = 1
        config.vocabSize = 1024
        let m = try LlamaModel.random(config: config, seed: 1, storage: .bfloat16)
        let fp = m.linearWeightFootprint
        // Tied head: the embedding table is packed once and shared.
        #expect(fp.parameters == 1024 * 576 + 576 * (576 + 2 * 192) + 576 * 576 + 3 * 576 * 1536)
        #expect(Double(fp.bytes) / Double(fp.parameters) < 2.01)
        let logits = try m.forward(ids: [1, 2, 3], cache: m.makeCache(capacity: 8))
        #expect(logits.shape == [1, 1024] && (0 ..< 1024).allSatisfy { logits[$0].isFinite })
    }

    /// int8 / int4 weights (group-wise, weight-only) through the whole decoder: every linear weight and the
    /// tied embedding table packed quantized (the kernels are checked exactly in KernelsQuantTests); here the
    /// logits must stay within the quantization noise these formats give on this fixture. Per weight, round to
    /// nearest on groups of 64 N(0, 0.02) values leaves ~0.55% (int8) and ~9% (int4) rms error; through the
    /// fixture's layers that measured 2.6% and 34% relative L2 on the logits (2026-12-05), so the bounds are
    /// 2x those, and int8 must keep the argmax.
    @Test(arguments: [(WeightStorage.int8, 0.05), (.int4, 0.7)])
    func quantizedStorageStaysCloseToFloat32(storage: WeightStorage, bound: Double) throws {
        let url = Fixtures.url("llama/llama-gqa")
        let q = try LlamaModel.load(directory: url, storage: storage)
        let wide = try LlamaModel.load(directory: url, storage: .float32)
        let fq = q.linearWeightFootprint, fw = wide.linearWeightFootprint
        #expect(fq.parameters == fw.parameters)
        let perWeight = Double(fq.bytes) / Double(fq.parameters)
        #expect(storage == .int8 ? perWeight < 1.1 : perWeight < 0.6, "\(storage): \(perWeight) bytes per weight")
        let ref: LlamaReference = try Fixtures.json("llama/llama-gqa.reference.json")
        let a = try q.forward(ids: ref.prompt, cache: q.makeCache(capacity: 64))
        let b = try wide.forward(ids: ref.prompt, cache: wide.makeCache(capacity: 64))
        var err = 0.0, norm = 0.0, am = 0, bm = 0
        for i in 0 ..< b.count {
            err += Double((a[i] - b[i]) * (a[i] - b[i])); norm += Double(b[i] * b[i])
            if a[i] > a[am] { am = i }
            if b[i] > b[bm] { bm = i }
        }
        let rel = (err / max(norm, 1e-30)).squareRoot()
        #expect(rel < bound, "\(storage): relative L2 error of the logits \(rel)")
        #expect(storage == .int4 || am == bm, "\(storage): argmax \(am) vs \(bm)")
    }

    /// --precision maps to storage in the library; a family that cannot run a precision says so by name.
    @Test func precisionNamesAndFamilies() throws {
        #expect(Precision(name: "INT4") == .int4 && Precision(name: "f32") == .fp32 && Precision(name: "q8") == .int8)
        #expect(Precision(name: "int2") == nil)
        #expect(Precision.int4.weightStorage == .int4 && Precision.fp32.weightStorage == .float32)
        #expect(LlamaModel.family.precisions == Precision.allCases)
        #expect(CLIPModel.family.precisions == Precision.allCases && SigLIPModel.family.precisions == Precision.allCases)
        // A family without a reduced-precision load runs fp32 only and says so.
        let fp32Only = ModelFamily(name: "Plain", modelTypes: ["plain"], architectures: [], kind: .embedding) { _ in
            throw ModelError.unsupported("not loadable")
        }
        #expect(throws: Never.self) { try fp32Only.check(precision: .fp32) }
        do {
            try fp32Only.check(precision: .int4)
            Issue.record("a fp32-only family accepted int4")
        } catch {
            #expect("\(error)".contains("Plain") && "\(error)".contains("fp32 only"), "\(error)")
        }
        let url = Fixtures.url("llama/llama-gqa")
        guard case .generative(let m) = try ModelRegistry.load(directory: url, precision: .int8) else { Issue.record("kind"); return }
        #expect(m.modelType == "llama")
    }
}

/// `--precision` on dual encoders: both towers' weights kept in bf16/int8/int4 (weight-only), embeddings close to
/// fp32's (how close is what `vlm quant-report` measures), never equal to them (the storage really changed), and
/// an index records the precision it was built with.
@Suite struct DualEncoderPrecisionTests {
    static func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test(arguments: [("clip/tiny-a", Precision.bf16, Float(0.9999)), ("clip/tiny-a", .int8, 0.999), ("clip/tiny-a", .int4, 0.9),
                      ("siglip/siglip-tiny", .int8, 0.999)])
    func reducedWeightsEmbedCloseToFp32(model: String, precision: Precision, bound: Float) throws {
        let url = Fixtures.url(model)
        let exact = try EmbeddingPipeline.load(directory: url)
        let reduced = try EmbeddingPipeline.load(directory: url, precision: precision)
        #expect(exact.precision == .fp32 && reduced.precision == precision)
        let image = try ImageDecoder.load(Fixtures.url("clip/images/chelsea.jpg"))
        let texts = ["a photo of a cat", "two dogs on a beach"]
        let a = try exact.embed(images: [image]) + exact.embed(texts: texts)
        let b = try reduced.embed(images: [image]) + reduced.embed(texts: texts)
        for (x, y) in zip(a, b) {
            let c = Self.cosine(x, y)
            #expect(c > bound, "\(model) \(precision): cosine to fp32 \(c)")
            #expect(x != y, "\(model) \(precision): the same vector as fp32, so the weights were not reduced")
        }
        #expect(exact.indexIdentity().fingerprint.hasSuffix("/\(exact.embeddingDim)"))
        #expect(reduced.indexIdentity().fingerprint == exact.indexIdentity().fingerprint + "/\(precision.rawValue)")
    }
}
