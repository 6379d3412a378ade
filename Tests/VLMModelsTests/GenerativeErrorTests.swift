import Foundation
import SwiftVLM
import Testing
import VLMTestSupport

/// Issue 5 part 10: each bad input to a generative checkpoint gives one clear error naming the problem.
@Suite struct GenerativeErrorTests {
    let image: RGBImage

    init() throws {
        image = try ImageDecoder.load(Fixtures.url("clip/images/chelsea.jpg"), alpha: .compositeOnWhite)
    }

    func message(_ body: () throws -> Any) -> String? {
        do { _ = try body(); return nil } catch { return "\(error)" }
    }

    @Test func imageTokenCountMustMatchImages() throws {
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let two = [ChatMessage(role: "user", parts: [.image, .image, .text("compare")])]
        let m = try #require(message { try p.prepare(messages: two, images: [image]) })
        #expect(m == "the prompt has 2 image token(s) '<image>' (id 556) but 1 image(s) were given")
        let typed = [ChatMessage(role: "user", parts: [.text("what is <image>?")])]
        #expect(message { try p.prepare(messages: typed, images: []) }?.contains("1 image token(s)") == true)
        // The right count prepares: 16 image tokens per image.
        let ok = try p.prepare(messages: two, images: [image, image])
        #expect(ok.ids.filter { $0 == 556 }.count == 32 && ok.imageCount == 2)
        #expect(ok.pixels?.pixelValues.shape == [2, 3, 28, 28])
    }

    @Test func promptLongerThanContextNamesLengths() throws {
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let long = [ChatMessage(role: "user", parts: [.image, .text(Array(repeating: "hello world", count: 200).joined(separator: " "))])]
        let m = try #require(message { try p.prepare(messages: long, images: [image]) })
        #expect(m.hasPrefix("the prompt has ") && m.contains("(16 of them image tokens); the model's context is 256 tokens"))
        // generate() from raw ids checks too.
        let ids = Array(repeating: 5, count: 256)
        #expect(message { try p.generate(ids: ids, pixels: nil, options: SamplingOptions()) }?.contains("256 tokens") == true)
    }

    @Test func tokenizerWithoutImageTokenIsNamed() throws {
        let p = try GenerativePipeline.load(directory: try GenerativeFixtures.withoutImageToken())
        let messages = [ChatMessage(role: "user", parts: [.image, .text("what?")])]
        let m = try #require(message { try p.prepare(messages: messages, images: [image]) })
        #expect(m.contains("has no token for image_token_index 556; this checkpoint cannot take images"))
        // Text alone is fine.
        #expect(try p.prepare(messages: [ChatMessage(role: "user", text: "hi")], images: []).pixels == nil)
    }

    @Test func conversationOrderRolesAndTextOnlyModels() throws {
        let llava = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        #expect(message { try llava.prompt(for: []) } == "invalid chat: the message list is empty")
        #expect(message { try llava.prompt(for: [ChatMessage(role: "tool", text: "x")]) }?.contains("role 'tool'") == true)
        // LLaVA templates read content parts: a string turn becomes one text part (not silently dropped).
        #expect(try llava.prompt(for: [ChatMessage(role: "user", text: "hi")]) == "USER: hi ASSISTANT:")
        let lm = try GenerativePipeline.load(directory: try GenerativeFixtures.textOnly())
        #expect(!lm.supportsImages && lm.modelType == "llama")
        let assistantFirst = [ChatMessage(role: "assistant", text: "Hi"), ChatMessage(role: "user", text: "hello")]
        #expect(message { try lm.prompt(for: assistantFirst) } == "invalid chat: Conversation roles must start with user or system, not assistant")
        let m = try #require(message { try lm.prepare(messages: [ChatMessage(role: "user", parts: [.image, .text("x")])], images: [image]) })
        #expect(m.contains("is text-only; it does not take images"))
        // The same weights answer the same as the LLaVA's language model on the same ids.
        var options = SamplingOptions()
        options.maxTokens = 6
        options.stopAtEOS = false
        let ids = try llava.tokenizer.encode("USER: hi ASSISTANT:", addSpecialTokens: true)
        #expect(try lm.generate(ids: ids, pixels: nil, options: options).tokens == llava.generate(ids: ids, pixels: nil, options: options).tokens)
    }

    /// Streamed pieces never include text that turns out to be part of a stop string.
    @Test func streamedTextWithStopStringsEqualsTheAnswer() throws {
        let ref = try Fixtures.json("llava/llava-chat.reference.json", as: LlavaChatReference.self)
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let c = ref.cases[1]
        let messages = [ChatMessage(role: "user", parts: [.image, .text(c.question)])]
        var options = SamplingOptions()
        options.maxTokens = c.greedy.count
        options.stopAtEOS = false
        // Stops that start inside earlier tokens' text, one that never completes, and one that completes.
        for stops in [["quick brown"], ["the quick brownie", "fox jumps"], [" over", "xyz"], ["hello to the wor"]] {
            options.stop = stops
            var streamed = ""
            let r = try p.generate(messages: messages, images: [image], options: options) { streamed += $0; return true }
            #expect(streamed == r.text, "\(stops)")
            let cut = stops.compactMap { c.text.range(of: $0)?.lowerBound }.min()
            #expect(r.text == String(c.text[..<(cut ?? c.text.endIndex)]), "\(stops)")
            #expect(r.finishReason == (cut == nil ? "length" : "stop"))
        }
    }
}
