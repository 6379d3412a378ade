import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// The server keeps the last conversations' states: a client resending the conversation with one more turn
/// (OpenAI's API) gets the same answer as from a fresh state, with the earlier turns' tokens reused
/// (`usage.prompt_tokens_details.cached_tokens`, /metrics).
@Suite(.serialized) struct ChatCacheTests {
    @Test func resentConversationReusesTheKeptState() async throws {
        let image = try ChatTestServer.imageURL()
        let pipeline = try ChatTestServer.pipeline()
        try await ChatTestServer.withApp { client in
            let first: [[String: Any]] = [ChatTestServer.imageQuestion("What is in the picture?", image: image)]
            let a = try await client.post("/v1/chat/completions", object: ["max_tokens": 8, "messages": first])
            let (answer, _, usageA) = try a.completion()
            #expect(usageA["cached_tokens"] == 0)
            let second = first + [["role": "assistant", "content": answer], ["role": "user", "content": "And the colour?"]]
            let b = try await client.post("/v1/chat/completions", object: ["max_tokens": 8, "messages": second])
            let (text, _, usageB) = try b.completion()
            let cached = try #require(usageB["cached_tokens"])
            #expect(cached > 16, "the image and the first turn are reused: \(cached)")
            // The same answer as a fresh run of the whole conversation.
            let picture = try ImageDecoder.load(Fixtures.url("clip/images/chelsea.jpg"), alpha: .compositeOnWhite)
            let messages = [
                ChatMessage(role: "user", parts: [.image, .text("What is in the picture?")]),
                ChatMessage(role: "assistant", text: answer), ChatMessage(role: "user", text: "And the colour?"),
            ]
            var options = SamplingOptions(defaults: pipeline.defaults)
            options.maxTokens = 8
            let fresh = try pipeline.generate(messages: messages, images: [picture], options: options)
            #expect(text == fresh.text)
            #expect(usageB["prompt_tokens"] == fresh.promptTokens)
            let samples = try parsePrometheus(try await client.get("/metrics").text)
            func value(_ series: String) -> Double? { samples.first { $0.series == series }?.value }
            #expect(value("vlm_chat_prompt_tokens_reused_total") == Double(cached))
            #expect(value("vlm_chat_prompt_tokens_prefilled_total") == Double(usageA["prompt_tokens"]! + usageB["prompt_tokens"]! - cached))
        }
    }
}
