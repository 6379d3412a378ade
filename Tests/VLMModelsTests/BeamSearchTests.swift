import Foundation
import SwiftVLM
import Testing
@testable import VLMModels
import VLMTestSupport

/// Beam search is generic over GenerativeModel: on the tiny llama-gqa decoder-only checkpoint against transformers
/// 5.25 generate(num_beams=...) (Scripts/fixtures/beam_search_fixtures.py): length penalties 1, 0.5, 2, -1,
/// early_stopping true / false / "never", no_repeat_ngram_size 0/2/3, with EOS ids that end hypotheses early and
/// without. Token ids identical (the EOS that ended the best hypothesis included).
@Suite struct BeamSearchTests {
    struct Options: Decodable {
        let num_beams: Int
        let length_penalty: Float
        let early_stopping: EarlyFlag
        let no_repeat_ngram_size: Int
    }
    enum EarlyFlag: Decodable {
        case flag(Bool), word(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .flag(b) } else { self = .word(try c.decode(String.self)) }
        }
        var value: EarlyStopping {
            switch self {
            case .flag(let b): return b ? .always : .heuristic
            case .word: return .never
            }
        }
    }
    struct Case: Decodable { let options: Options; let eos: Int?; let max_new_tokens: Int; let ids: [Int] }
    struct Reference: Decodable { let prompt: [Int]; let cases: [Case] }

    @Test func decoderOnlyBeamSearchMatchesTransformers() throws {
        let ref: Reference = try Fixtures.json("llama/beam_search.json")
        let model = try LlamaModel.load(directory: Fixtures.url("llama/llama-gqa"))
        #expect(ref.cases.count == 15)
        for c in ref.cases {
            var options = SamplingOptions()
            options.numBeams = c.options.num_beams
            options.lengthPenalty = c.options.length_penalty
            options.earlyStopping = c.options.early_stopping.value
            options.noRepeatNgramSize = c.options.no_repeat_ngram_size
            let state = model.makeState(capacity: 64)
            let logits = try model.prefill(PreparedInput(ids: ref.prompt), state: state)
            let search = BeamSearch(model: model, options: options, eos: c.eos.map { [$0] } ?? [])
            let found = try search.run(prompt: ref.prompt, state: state, logits: logits, budget: c.max_new_tokens)
            #expect(found.tokens == c.ids, "\(c.options) eos \(String(describing: c.eos))")
            #expect(found.stoppedByEOS == (c.eos.map { c.ids.last == $0 } ?? false))
        }
    }
}
