import Foundation
import Testing
import VLMLayers
import VLMModels
import VLMTensor
import VLMTestSupport

/// transformers' outputs for the tiny Llama-family checkpoints (Scripts/fixtures/llama_fixtures.py).
struct LlamaReference: Decodable {
    let prompt: [Int]
    let prefill_logits: [[Float]]
    let greedy: [Int]
    let min_margin: Float
}

func argmax(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for i in 1 ..< n where p[i] > p[best] { best = i }
    return best
}

/// Tolerances (issue): prefill logits within 1e-3 absolute; greedy continuations token-identical for 32 tokens
/// (the fixture guarantees every step's top-2 margin is >= 1e-3, so this is a real check, not luck).
@Suite struct LlamaParityTests {
    @Test(arguments: ["llama-gqa", "llama-mqa", "qwen2-lin", "mistral-swa"])
    func prefillLogitsAndGreedyDecodeMatchTransformers(config: String) throws {
        let ref: LlamaReference = try Fixtures.json("llama/\(config).reference.json")
        let model = try LlamaModel.load(directory: Fixtures.url("llama/\(config)"))
        let cache = model.makeCache(capacity: 64)
        let logits = try model.forward(ids: ref.prompt, cache: cache, allLogits: true)
        #expect(logits.shape == [ref.prompt.count, model.vocabularySize])
        var worst: Float = 0
        for (t, row) in ref.prefill_logits.enumerated() {
            for (v, want) in row.enumerated() { worst = max(worst, abs(logits[t * row.count + v] - want)) }
        }
        #expect(worst <= 1e-3, "max |logit diff| \(worst)")

        // Greedy: reuse the prefill's cache, then one token at a time.
        let vocab = model.vocabularySize
        var next = argmax(logits.pointer + (ref.prompt.count - 1) * vocab, vocab)
        var generated = [next]
        while generated.count < ref.greedy.count {
            let step = try model.forward(ids: [next], cache: cache)
            next = argmax(step.pointer, vocab)
            generated.append(next)
        }
        #expect(generated == ref.greedy)
    }

    /// Over an fp32 or a bf16 cache (prefill widens a bf16 cache's rows for the long-call kernels, decode steps read
    /// them in place): the same logits to float summation order.
    @Test(arguments: KVCachePrecision.allCases)
    func incrementalDecodeEqualsOneLongPrefill(precision: KVCachePrecision) throws {
        let ref: LlamaReference = try Fixtures.json("llama/llama-gqa.reference.json")
        let model = try LlamaModel.load(directory: Fixtures.url("llama/llama-gqa"))
        let ids = ref.prompt + ref.greedy.prefix(5)
        let whole = try model.forward(ids: ids, cache: model.makeCache(precision: precision), allLogits: true)
        let cache = model.makeCache(precision: precision)
        _ = try model.forward(ids: Array(ids.prefix(10)), cache: cache)
        var last = Tensor(zeros: [1])
        for id in ids.dropFirst(10) { last = try model.forward(ids: [id], cache: cache) }
        let v = model.vocabularySize
        var worst: Float = 0
        for i in 0 ..< v { worst = max(worst, abs(last[i] - whole[(ids.count - 1) * v + i])) }
        #expect(worst <= 1e-4)
    }

    @Test func contextOverflowAndBadIDsAreErrors() throws {
        let model = try LlamaModel.load(directory: Fixtures.url("llama/llama-gqa"))
        let cache = model.makeCache(capacity: 8)
        #expect(throws: ModelError.self) { try model.forward(ids: Array(repeating: 5, count: 9), cache: cache) }
        #expect(throws: ModelError.self) { try model.forward(ids: [5, 100_000], cache: model.makeCache()) }
        #expect(throws: ModelError.self) { try model.forward(ids: [], cache: model.makeCache()) }
    }

    @Test func legacyRopeScalingKeysDecode() throws {
        let json = #"{"model_type":"llama","rope_theta":500000.0,"head_dim":64,"rope_scaling":{"type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}"#
        let config = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect(config.rope.ropeType == "llama3")
        let inv = try config.inverseFrequencies()
        #expect(inv.count == 32)
        // Highest frequency is unscaled (wavelength 2*pi < high_freq_wavelen), lowest is divided by the factor.
        #expect(inv[0] == 1)
        let unscaledLast = 1 / powf(500000, 62.0 / 64.0)
        #expect(abs(inv[31] - unscaledLast / 8) <= 1e-12)
        let yarn = try JSONDecoder().decode(LlamaConfig.self, from: Data(#"{"rope_scaling":{"rope_type":"yarn","factor":4}}"#.utf8))
        #expect(throws: ModelError.self) { try yarn.inverseFrequencies() }
    }
}
