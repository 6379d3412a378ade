import Foundation
import Testing
import VLMLayers
import VLMModels
import VLMTensor
import VLMTestSupport

/// The references of Scripts/fixtures/quant_fixtures.py.
struct QuantReference: Decodable {
    let prompt: [Int]
    let prefill_logits: [[Float]]
    let method: String
    let dequantized: [String]
    let transformers_logits: [[Float]]?
}

/// Quantized checkpoints (GPTQ v1 with and without act-order, AWQ GEMM, compressed-tensors pack-quantized and
/// int-quantized) load unchanged. Tolerances: dequantized weights bit-exact against s * (q - z); prefill logits
/// within 1e-3 of a transformers fp32 model holding those weights (the bound of the fp32 parity tests), one
/// decode step (the fused group GEMV, another summation order) within 1e-3 of the prefill's last row.
@Suite struct QuantizedCheckpointTests {
    static let fixtures = ["gptq-llama", "gptq-qwen2-act", "awq-llama", "ct-w4a16-qwen2", "ct-w4a16-asym-llama", "ct-w8a8-llama"]

    /// Layer key -> (out, in) of the fixtures (hidden 128, intermediate 384).
    static func shape(_ key: String) -> (Int, Int) { key.hasSuffix("down_proj") ? (128, 384) : (128, 128) }

    @Test(arguments: fixtures)
    func dequantizedWeightsAreExact(fixture: String) throws {
        let ref: QuantReference = try Fixtures.json("quant/\(fixture).reference.json")
        let dir = Fixtures.url("quant/\(fixture)")
        let loader = try WeightLoader(directory: dir, storage: .asStored)
        loader.quantization = try QuantizationScheme.load(directory: dir)
        for layer in ref.dequantized {
            let want = try Npy.readTensor(Fixtures.url("quant/\(fixture).\(layer).npy"))
            let (n, k) = Self.shape(layer)
            #expect(want.shape == [n, k])
            let packed = try loader.packedWeight(["\(layer).weight"], rows: [n], cols: k, storage: .asStored)
            // Act-order GPTQ scatters the groups of down_proj (k = 384, 3 groups) along k: kept as exact fp32 values;
            // its q_proj (k = 128) has one group, which maps. Every other layer maps onto our packed formats.
            let scattered = fixture == "gptq-qwen2-act" && layer.hasSuffix("down_proj")
            let expected: PackedLinearWeight.Storage = scattered ? .float32 : fixture == "ct-w8a8-llama" ? .int8 : .int4
            #expect(packed.storage == expected, "\(fixture) \(layer) packed as \(packed.storage)")
            var row = [Float](repeating: 0, count: k), mismatches = 0
            for r in 0 ..< n {
                row.withUnsafeMutableBufferPointer { packed.copyRow(r, into: $0.baseAddress!) }
                for c in 0 ..< k where row[c].bitPattern != want[r * k + c].bitPattern { mismatches += 1 }
            }
            #expect(mismatches == 0, "\(fixture) \(layer): \(mismatches) dequantized weights differ")
        }
    }

    @Test(arguments: fixtures)
    func logitsMatchTheDequantizedReference(fixture: String) throws {
        let ref: QuantReference = try Fixtures.json("quant/\(fixture).reference.json")
        let model = try LlamaModel.load(directory: Fixtures.url("quant/\(fixture)"))
        let vocab = model.vocabularySize
        let logits = try model.forward(ids: ref.prompt, cache: model.makeCache(capacity: 32), allLogits: true)
        var worst: Float = 0
        for (t, row) in ref.prefill_logits.enumerated() {
            for (v, want) in row.enumerated() { worst = max(worst, abs(logits[t * vocab + v] - want)) }
        }
        #expect(worst <= 1e-3, "\(fixture): max |logit diff| \(worst)")

        // The last token as a decode step after the others: the quantized GEMV path.
        let cache = model.makeCache(capacity: 32)
        _ = try model.forward(ids: Array(ref.prompt.dropLast()), cache: cache)
        let step = try model.forward(ids: [ref.prompt[ref.prompt.count - 1]], cache: cache)
        var stepWorst: Float = 0
        for v in 0 ..< vocab { stepWorst = max(stepWorst, abs(step[v] - ref.prefill_logits[ref.prompt.count - 1][v])) }
        #expect(stepWorst <= 1e-3, "\(fixture): decode step max |logit diff| \(stepWorst)")
    }

    /// compressed-tensors checkpoints as transformers itself runs them (it rounds the dequantized weights to
    /// the scales' bf16, and w8a8 also fake-quantizes activations per token): the same argmax at every
    /// position and logits within 0.15 (observed 0.056, 0.061 and 0.061).
    @Test(arguments: ["ct-w4a16-qwen2", "ct-w4a16-asym-llama", "ct-w8a8-llama"])
    func compressedTensorsAgreeWithTransformers(fixture: String) throws {
        let ref: QuantReference = try Fixtures.json("quant/\(fixture).reference.json")
        let theirs = try #require(ref.transformers_logits)
        let model = try LlamaModel.load(directory: Fixtures.url("quant/\(fixture)"))
        let vocab = model.vocabularySize
        let logits = try model.forward(ids: ref.prompt, cache: model.makeCache(capacity: 32), allLogits: true)
        var worst: Float = 0
        for (t, row) in theirs.enumerated() {
            for (v, want) in row.enumerated() { worst = max(worst, abs(logits[t * vocab + v] - want)) }
            let mine = argmax(logits.pointer + t * vocab, vocab)
            #expect(row[mine] == row.max(), "\(fixture) position \(t): argmax differs")
        }
        #expect(worst <= 0.15, "\(fixture): max |logit diff| vs transformers \(worst)")
    }

    @Test func fp32LoadsDequantizeAndOtherPrecisionsAreRefused() throws {
        let dir = Fixtures.url("quant/gptq-llama")
        let fp32 = try LlamaModel.load(directory: dir, storage: .float32)
        #expect(fp32.linearWeightFootprint.bytes > (try LlamaModel.load(directory: dir)).linearWeightFootprint.bytes)
        #expect(throws: Error.self) { try LlamaModel.load(directory: dir, storage: .bfloat16) }
        #expect(throws: Error.self) { try LlamaModel.load(directory: dir, storage: .int8) }
        _ = try LlamaModel.load(directory: dir, storage: .int4)  // the checkpoint's own format
    }

    @Test func unsupportedQuantizationConfigsNameTheMethodAndTheSupportedOnes() throws {
        let cases = [
            (#"{"quant_method":"bitsandbytes","load_in_4bit":true}"#, "bitsandbytes"),
            (#"{"quant_method":"gptq","bits":3,"group_size":128}"#, "gptq with 3 bits"),
            (#"{"quant_method":"awq","bits":4,"version":"exllama"}"#, "awq version 'exllama'"),
            (#"{"quant_method":"compressed-tensors","format":"float-quantized","config_groups":{"g":{"weights":{"num_bits":8,"type":"float"}}}}"#, "float"),
            (#"{"quant_method":"compressed-tensors","format":"marlin-24","config_groups":{"g":{"weights":{"num_bits":4,"type":"int"}}}}"#, "marlin-24"),
        ]
        for (json, named) in cases {
            let config = try JSONDecoder().decode(QuantizationConfig.self, from: Data(json.utf8))
            do {
                _ = try QuantizationScheme(config)
                Issue.record("\(json) was accepted")
            } catch {
                let text = "\(error)"
                #expect(text.contains(named), "\(text)")
                #expect(text.contains("supported: gptq") && text.contains("awq") && text.contains("pack-quantized"), "\(text)")
            }
        }
    }

    @Test func quantizedTensorsWithoutAConfigAreAnError() throws {
        let src = Fixtures.url("quant/awq-llama")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("quant-noconfig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        config["quantization_config"] = nil
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        do {
            _ = try LlamaModel.load(directory: dir)
            Issue.record("loaded quantized tensors without a quantization_config")
        } catch {
            #expect("\(error)".contains("quantization_config"), "\(error)")
        }
    }
}
