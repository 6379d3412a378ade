import Foundation
@testable import SwiftVLM
import Testing
@testable import VLMModels
import VLMTensor
import VLMTestSupport

/// Beam search feeds all running beams in one decoder pass (BatchedStepModel). On the tiny Florence-2 checkpoint
/// (text-only prompt, so no image is needed): each row of the batched step equals the one-state step on an
/// identical fork, bit for bit (the same GEMM tiles and summation order for every row), over several steps with
/// beams that diverge; states of different prompts fall back to one-by-one steps with the same result.
@Suite struct Florence2BatchedStepTests {
    static func model() throws -> Florence2Model { try Florence2Model.load(directory: Fixtures.url("florence2/tiny")) }

    @Test func batchedStepEqualsOneStateSteps() throws {
        // Bit-for-bit comparisons of two runs: no other test may force a kernel path meanwhile.
        try KernelPaths.exclusiveThrowing { try batchedStepEqualsOneStateStepsBody() }
    }

    func batchedStepEqualsOneStateStepsBody() throws {
        let model = try Self.model()
        let prompt = PreparedInput(ids: [0, 100, 101, 102, 103, 2])
        let root = model.makeState(capacity: 16)
        _ = try model.prefill(prompt, state: root)
        let batched = try (0 ..< 3).map { _ in try root.fork() }
        let single = try (0 ..< 3).map { _ in try root.fork() }
        let tokens = [[5, 7, 9], [11, 11, 4], [300, 6, 8]]
        for step in tokens {
            let all = try model.step(tokens: step, states: batched)
            let vocab = model.vocabularySize
            #expect(all.shape == [3, vocab])
            for b in 0 ..< 3 {
                let one = try model.step(token: step[b], state: single[b])
                let row = Array(UnsafeBufferPointer(start: all.pointer + b * vocab, count: vocab))
                #expect(row == one.scalars, "beam \(b) after \(batched[b].length) rows")
            }
        }
    }

    @Test func statesOfDifferentPromptsAreSteppedOneByOne() throws {
        let model = try Self.model()
        let a = model.makeState(capacity: 8), b = model.makeState(capacity: 8)
        _ = try model.prefill(PreparedInput(ids: [0, 100, 2]), state: a)
        _ = try model.prefill(PreparedInput(ids: [0, 200, 201, 2]), state: b)
        let (a2, b2) = (try a.fork(), try b.fork())
        let all = try model.step(tokens: [5, 6], states: [a, b])
        let vocab = model.vocabularySize
        let first = try model.step(token: 5, state: a2), second = try model.step(token: 6, state: b2)
        #expect(Array(UnsafeBufferPointer(start: all.pointer, count: vocab)) == first.scalars)
        #expect(Array(UnsafeBufferPointer(start: all.pointer + vocab, count: vocab)) == second.scalars)
        #expect(throws: ModelError.self) { try model.step(tokens: [5], states: [a, b]) }
    }

    /// The one-pass top-k keeps torch.topk's order: largest first, ties by lower index.
    @Test func topKMatchesAFullSort() {
        var rng = SplitMix64(seed: 7)
        for n in [1, 2, 5, 17, 1000] {
            // Few distinct values, so ties are everywhere; -inf and k > n included.
            let values = (0 ..< n).map { _ -> Float in
                let r = Int(rng.nextUniform() * 6)
                return r == 0 ? -.infinity : Float(r)
            }
            for k in [1, 3, 6, n + 2] {
                let sorted = values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
                #expect(BeamSearch.topK(values, k: k) == Array(sorted.prefix(k)), "n \(n) k \(k)")
            }
        }
    }
}
