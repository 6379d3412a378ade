import Foundation
import Testing
import VLMLayers
import VLMModels
import VLMTensor
import VLMTestSupport

/// The bf16 KV cache of decoders loaded at a reduced precision: chosen by the load and close to the fp32 cache
/// (prefill against decode steps over it: LlamaParityTests.incrementalDecodeEqualsOneLongPrefill).
@Suite struct KVCachePrecisionTests {
    static let fixture = "llama/llama-gqa"

    @Test func reducedPrecisionLoadsKeepABF16Cache() throws {
        guard ProcessInfo.processInfo.environment["VLM_KV_CACHE"] == nil else {
            Issue.record("VLM_KV_CACHE is set: the default cache precision is overridden, nothing to check")
            return
        }
        let exact = try LlamaModel.load(directory: Fixtures.url(Self.fixture))
        #expect(exact.kvCachePrecision == .float32 && exact.makeCache().precision == .float32)
        for storage in [WeightStorage.bfloat16, .int8, .int4] {
            let model = try LlamaModel.load(directory: Fixtures.url(Self.fixture), storage: storage)
            #expect(model.kvCachePrecision == .bfloat16, "\(storage)")
            let cache = model.makeCache(capacity: 32)
            #expect(cache.precision == .bfloat16 && cache.layers.allSatisfy { $0.precision == .bfloat16 }, "\(storage)")
            #expect(model.makeCache(capacity: 32, precision: .float32).precision == .float32)
        }
    }

    /// The exact model over a bf16 cache against the same model over an fp32 cache, teacher-forced on the fixture's
    /// greedy continuation: every logit within 2% of the largest |logit| of the fp32 cache's (measured: 0.044 at a
    /// largest |logit| of 4.57 -- keys and values carry bf16's 2^-9 relative rounding through two layers of random
    /// weights), never equal to them (the rounding is real), and the same greedy token at every generated position.
    @Test func bf16CacheStaysCloseToTheFP32Cache() throws {
        let ref: LlamaReference = try Fixtures.json("llama/llama-gqa.reference.json")
        let model = try LlamaModel.load(directory: Fixtures.url(Self.fixture))
        let ids = ref.prompt + ref.greedy.prefix(12)
        let v = model.vocabularySize
        func logits(_ precision: KVCachePrecision) throws -> [[Float]] {
            let cache = model.makeCache(capacity: 64, precision: precision)
            let first = try model.forward(ids: ref.prompt, cache: cache, allLogits: true)
            var rows = (0 ..< ref.prompt.count).map { t in (0 ..< v).map { first[t * v + $0] } }
            for id in ref.greedy.prefix(12) {
                let step = try model.forward(ids: [id], cache: cache)
                rows.append((0 ..< v).map { step[$0] })
            }
            return rows
        }
        let exact = try logits(.float32), half = try logits(.bfloat16)
        #expect(exact.count == ids.count && half.count == ids.count)
        var worst: Float = 0, largest: Float = 0
        for (a, b) in zip(exact, half) {
            for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)); largest = max(largest, abs(x)) }
        }
        #expect(worst > 0, "a bf16 cache rounds: its logits cannot all equal the fp32 cache's")
        #expect(worst <= 0.02 * largest, "max |logit diff| \(worst) (largest |logit| \(largest))")
        // The positions the reference's greedy tokens come from agree on the argmax.
        let start = ref.prompt.count - 1
        for t in start ..< ids.count {
            #expect(half[t].indices.max { half[t][$0] < half[t][$1] } == exact[t].indices.max { exact[t][$0] < exact[t][$1] },
                    "greedy token at \(t)")
        }
    }
}
