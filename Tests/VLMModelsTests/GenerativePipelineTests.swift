import Foundation
import SwiftVLM
import Testing
import VLMTestSupport

struct LlavaChatReference: Decodable {
    struct Case: Decodable {
        let question: String
        let prompt: String
        let input_ids: [Int]
        let pixel_values: [Float]
        let greedy: [Int]
        let text: String
    }
    let image: String
    let image_token: Int
    let cases: [Case]
}

/// End to end against transformers (LlavaProcessor -> generate -> decode) on a complete tiny llava-hf checkpoint
/// with a real photograph: chat-template string, expanded input ids and pixel values, greedy tokens and decoded
/// text must all be identical (pixels within 1e-5).
@Suite struct GenerativePipelineTests {
    let directory = Fixtures.url("llava/llava-chat")

    @Test func askMatchesTransformersEndToEnd() throws {
        let ref: LlavaChatReference = try Fixtures.json("llava/llava-chat.reference.json")
        let pipeline = try GenerativePipeline.load(directory: directory)
        let image = try ImageDecoder.load(Fixtures.url(ref.image), alpha: .compositeOnWhite)
        for c in ref.cases {
            let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(c.question)])]
            #expect(try pipeline.prompt(for: messages) == c.prompt)
            let (ids, pixels) = try pipeline.inputs(messages: messages, images: [image])
            #expect(ids == c.input_ids)
            let p = try #require(pixels)
            #expect(zip(p.scalars, c.pixel_values).allSatisfy { abs($0 - $1) <= 1e-5 })
            var options = SamplingOptions()
            options.maxTokens = c.greedy.count
            options.stopAtEOS = false
            var streamed = ""
            let result = try pipeline.generate(messages: messages, images: [image], options: options) { streamed += $0; return true }
            #expect(result.tokens == c.greedy)
            #expect(result.text == c.text)
            #expect(streamed == result.text)
            #expect(result.finishReason == "length")
        }
    }

    @Test func stopStringsCancellationAndErrors() throws {
        let ref: LlavaChatReference = try Fixtures.json("llava/llava-chat.reference.json")
        let pipeline = try GenerativePipeline.load(directory: directory)
        let image = try ImageDecoder.load(Fixtures.url(ref.image), alpha: .compositeOnWhite)
        let c = ref.cases[0]
        let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(c.question)])]
        var options = SamplingOptions()
        options.maxTokens = c.greedy.count
        options.stopAtEOS = false
        // A stop string taken from the middle of the known answer cuts it there.
        let full = c.text
        let start = full.index(full.startIndex, offsetBy: full.count / 2)
        let stop = String(full[start...].prefix(3))
        options.stop = [stop]
        let stopped = try pipeline.generate(messages: messages, images: [image], options: options)
        #expect(stopped.finishReason == "stop")
        #expect(stopped.text == String(full[..<(full.range(of: stop)?.lowerBound ?? full.endIndex)]))
        // Cancelling from the callback after the first piece of text.
        options.stop = []
        let cancelled = try pipeline.generate(messages: messages, images: [image], options: options) { _ in false }
        #expect(cancelled.finishReason == "cancelled")
        #expect(cancelled.tokens.count < c.greedy.count)
        // Two images for one placeholder; text-only prompt with an image; bad sampling values.
        #expect(throws: ModelError.self) { try pipeline.generate(messages: messages, images: [image, image], options: options) }
        let textOnly = [ChatMessage(role: "user", text: "hello")]
        #expect(throws: ModelError.self) { try pipeline.generate(messages: textOnly, images: [image], options: options) }
        var bad = SamplingOptions()
        bad.topP = 1.5
        #expect(throws: PipelineError.self) { try pipeline.generate(messages: textOnly, options: bad) }
    }

    @Test func samplingIsSeededAndRespectsTopK() throws {
        let pipeline = try GenerativePipeline.load(directory: directory)
        let messages = [ChatMessage(role: "user", text: "Say something.")]
        var options = SamplingOptions()
        options.maxTokens = 12
        options.temperature = 0.8
        options.topK = 5
        options.seed = 42
        options.stopAtEOS = false
        let a = try pipeline.generate(messages: messages, options: options)
        let b = try pipeline.generate(messages: messages, options: options)
        #expect(a.tokens == b.tokens)
        options.topK = 1  // top-1 sampling is greedy
        let greedyLike = try pipeline.generate(messages: messages, options: options)
        options.temperature = 0
        options.topK = nil
        let greedy = try pipeline.generate(messages: messages, options: options)
        #expect(greedyLike.tokens == greedy.tokens)
    }
}
