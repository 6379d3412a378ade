import Foundation
import SwiftVLM
import Testing
import VLMImage
@testable import VLMModels
import VLMTensor
import VLMTestSupport
import VLMTokenizers

/// Florence-2's language side, processor, generation and post-processing against transformers 5.25
/// (Scripts/fixtures/florence2_fixtures.py; tiny random checkpoint, chelsea.jpg).
/// Tolerances: encoder output and teacher-forced logits 1e-4 x max(1, max |reference|) absolute (float32 GEMMs,
/// LayerNorms and attention against PyTorch's); input ids, greedy and beam-search ids identical; post-processed
/// JSON equal.
@Suite struct Florence2LanguageTests {
    static let tiny = Fixtures.url("florence2/tiny")
    static let image = "clip/images/chelsea.jpg"

    struct Generated: Decodable { let ids: [Int]; let text: String }
    struct Case: Decodable {
        let task: String
        let text: String?
        let input_ids: [Int]
        let greedy: Generated
        let beam: Generated
    }
    struct Generation: Decodable { let image_size: [Int]; let max_new_tokens: Int; let cases: [Case] }
    struct Language: Decodable { let input_ids: [Int]; let decoder_ids: [Int] }

    static func json<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: Fixtures.url("florence2/\(name)")))
    }

    /// The parsed results of a fixture (raw JSON: `parsed` fields per case, in order).
    static func parsed(_ name: String, key: String? = nil) throws -> [Any] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("florence2/\(name)"))) as? [String: Any]
        let cases = root?["cases"] as? [[String: Any]] ?? []
        return cases.compactMap { c in key.map { (c[$0] as? [String: Any])?["parsed"] } ?? c["parsed"] } as [Any]
    }

    static func worst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    static func firstImagePixels() throws -> Tensor {
        let all = try Npy.readTensor(Fixtures.url("florence2/pixel_values.npy"))
        let per = all.count / all.shape[0]
        let one = Tensor(uninitialized: [1] + Array(all.shape.dropFirst()))
        one.pointer.update(from: all.pointer, count: per)
        return one
    }

    @Test func encoderOutputAndLogitsMatchTransformers() throws {
        let model = try Florence2Model.load(directory: Self.tiny)
        let language = try Self.json("language.json", as: Language.self)
        let pixels = try Self.firstImagePixels()
        let encoded = try model.encode(ids: language.input_ids, pixelValues: pixels)
        let refEncoded = try Npy.readTensor(Fixtures.url("florence2/encoder_output.npy"))
        #expect(encoded.shape == refEncoded.shape)
        let scaleE = max(1, refEncoded.scalars.map(abs).max() ?? 0)
        let diffE = Self.worst(encoded.scalars, refEncoded.scalars)
        #expect(diffE <= 1e-4 * scaleE, "encoder output max |diff| \(diffE) (scale \(scaleE))")

        let logits = try model.logits(ids: language.input_ids, pixelValues: pixels, decoderIDs: language.decoder_ids)
        let ref = try Npy.readTensor(Fixtures.url("florence2/decoder_logits.npy"))
        let vocab = ref.shape[1]
        let scale = max(1, ref.scalars.map(abs).max() ?? 0)
        for (r, row) in logits.enumerated() {
            let diff = Self.worst(row.scalars, Array(ref.scalars[(r * vocab) ..< ((r + 1) * vocab)]))
            #expect(diff <= 1e-4 * scale, "decoder row \(r): max |diff| \(diff) (scale \(scale))")
        }
    }

    @Test func processorBuildsTransformersInputIDs() throws {
        let generation = try Self.json("generation.json", as: Generation.self)
        let pipeline = try GenerativePipeline.load(directory: Self.tiny)
        let image = try ImageDecoder.load(Fixtures.url(Self.image))
        for c in generation.cases {
            let prompt = try Florence2Tasks.taskPrompt(task: c.task, text: c.text)
            let prepared = try pipeline.prepare(messages: [ChatMessage(role: "user", text: prompt)], images: [image])
            #expect(prepared.ids == c.input_ids, "\(c.task)")
        }
    }

    @Test(arguments: ["greedy", "beam"]) func generationMatchesTransformers(strategy: String) throws {
        let generation = try Self.json("generation.json", as: Generation.self)
        let pipeline = try GenerativePipeline.load(directory: Self.tiny)
        let image = try ImageDecoder.load(Fixtures.url(Self.image))
        let parsed = try Self.parsed("generation.json", key: strategy)
        let post = try Florence2PostProcessor(config: Florence2PostProcessorConfig.load(directory: Self.tiny))
        for (i, c) in generation.cases.enumerated() {
            // generate()'s defaults: the checkpoint's generation_config.json (3 beams, no_repeat_ngram_size 3,
            // forced EOS); greedy overrides num_beams only.
            var options = SamplingOptions(defaults: pipeline.defaults)
            #expect(options.numBeams == 3 && options.noRepeatNgramSize == 3 && options.forcedEOSTokenID == 2)
            options.maxTokens = generation.max_new_tokens
            if strategy == "greedy" { options.numBeams = 1 }
            let prompt = try Florence2Tasks.taskPrompt(task: c.task, text: c.text)
            let result = try pipeline.generate(messages: [ChatMessage(role: "user", text: prompt)], images: [image], options: options)
            let expected = strategy == "beam" ? c.beam : c.greedy
            // transformers' sequence: decoder_start_token_id, the answer, the EOS that ended it.
            let full = [2] + result.tokens + (result.finishReason == "stop" ? [2] : [])
            #expect(full == expected.ids, "\(c.task) \(strategy)")
            let text = pipeline.tokenizer.decode(expected.ids, skipSpecialTokens: false)
            #expect(text == expected.text, "\(c.task) decode")
            let mine = try post.process(text: expected.text, task: c.task, imageSize: (generation.image_size[0], generation.image_size[1]))
            #expect(NSDictionary(dictionary: mine).isEqual(parsed[i]), "\(c.task) post-processing: \(mine) vs \(parsed[i])")
        }
    }

    @Test func postProcessingMatchesTransformersOnHandWrittenAnswers() throws {
        struct Hand: Decodable { let task: String; let text: String; let image_size: [Int] }
        struct Hands: Decodable { let cases: [Hand] }
        let cases = try Self.json("postprocess.json", as: Hands.self).cases
        let parsed = try Self.parsed("postprocess.json")
        let post = try Florence2PostProcessor(config: Florence2PostProcessorConfig.load(directory: Self.tiny))
        #expect(cases.count == parsed.count && cases.count >= 10)
        for (c, expected) in zip(cases, parsed) {
            let mine = try post.process(text: c.text, task: c.task, imageSize: (c.image_size[0], c.image_size[1]))
            #expect(NSDictionary(dictionary: mine).isEqual(expected), "\(c.task): \(mine) vs \(expected)")
        }
    }

    @Test func taskErrorsNameTheProblem() throws {
        #expect(throws: ModelError.self) { try Florence2Tasks.taskPrompt(task: "<DETECT>", text: nil) }
        #expect(throws: ModelError.self) { try Florence2Tasks.taskPrompt(task: "<CAPTION_TO_PHRASE_GROUNDING>", text: nil) }
        #expect(throws: ModelError.self) { try Florence2Tasks.taskPrompt(task: "<OD>", text: "cat") }
        #expect(throws: ModelError.self) { try Florence2Tasks.regionTokens(box: [10, 10, 700, 20], imageSize: (640, 480)) }
        #expect(throws: ModelError.self) { try Florence2Tasks.regionTokens(box: [30, 10, 20, 20], imageSize: (640, 480)) }
        #expect(try Florence2Tasks.regionTokens(box: [33.6, 160, 392.4, 470.5], imageSize: (640, 480)) == "<loc_52><loc_333><loc_613><loc_980>")
        do {
            _ = try Florence2Tasks.taskPrompt(task: "<DETECT>", text: nil)
        } catch {
            #expect("\(error)".contains("unknown Florence-2 task '<DETECT>'"))
        }
    }

    @Test func registryLoadsFlorenceAsGenerative() throws {
        let family = try ModelRegistry.family(directory: Self.tiny)
        #expect(family.name == "Florence-2" && family.kind == .chat)
        guard case .generative(let model) = try ModelRegistry.load(directory: Self.tiny) else {
            Issue.record("florence2 did not load as a generative model")
            return
        }
        #expect(model.decoderStartTokenID == 2 && model.isEncoderDecoder)
        // 16-bit storage (bf16, weights rounded, float32 compute): the first logits within 5e-2 x scale.
        guard case .generative(let half) = try family.load(Self.tiny, precision: .bf16) else { return }
        let processor = try model.makeInputProcessor(directory: Self.tiny)
        let input = try processor.prepare(messages: [ChatMessage(role: "user", text: "<CAPTION>")],
                                          images: [try ImageDecoder.load(Fixtures.url(Self.image))])
        let a = try model.prefill(input, state: model.makeState(capacity: 8))
        let b = try half.prefill(input, state: half.makeState(capacity: 8))
        let scale = max(1, a.scalars.map(abs).max() ?? 0)
        #expect(Self.worst(a.scalars, b.scalars) <= 5e-2 * scale, "bf16 storage max |diff| \(Self.worst(a.scalars, b.scalars)) (scale \(scale))")
    }
}
