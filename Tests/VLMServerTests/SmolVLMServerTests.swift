import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// `POST /v1/chat/completions` with a SmolVLM2 checkpoint written by transformers 5.25 save_pretrained
/// (Tests/Fixtures/smolvlm/smolvlm2-tiny): two images as data URLs in one message give transformers' greedy
/// answer; the model list reports a chat model that takes images (with no fixed token count per image).
@Suite(.serialized) struct SmolVLMServerTests {
    struct Reference: Decodable {
        struct Case: Decodable { let name: String; let question: String; let greedy: [Int]; let text: String; let input_ids: [Int] }
        let cases: [Case]
    }

    @Test func twoImagesInOneMessageAnswerAsTransformers() async throws {
        let ref: Reference = try Fixtures.json("smolvlm/smolvlm2-tiny.reference.json")
        let c = try #require(ref.cases.first { $0.name == "two-images" })
        let dir = Fixtures.url("smolvlm/smolvlm2-tiny")
        let images = [try TestServer.dataURL("chelsea.jpg"), try TestServer.dataURL("astronaut.jpg")]
        try await ChatTestServer.withApp(ChatTestServer.config(dir)) { client in
            let list = try await client.get("/v1/models").json()
            let model = try #require((list["data"] as? [[String: Any]])?.first)
            #expect(model["kind"] as? String == "chat" && model["type"] as? String == "smolvlm")
            #expect(model["accepts_images"] as? Bool == true && model["image_tokens_per_image"] == nil)
            let content: [[String: Any]] = images.map { ["type": "image_url", "image_url": ["url": $0]] } + [["type": "text", "text": c.question]]
            let r = try await client.post("/v1/chat/completions", object: [
                "model": "smolvlm2-tiny", "max_tokens": c.greedy.count, "messages": [["role": "user", "content": content]],
            ])
            #expect(r.status == .ok, "\(r.text)")
            let (text, finish, usage) = try r.completion()
            #expect(c.text.hasPrefix(text) && !text.isEmpty, "\(text)")
            #expect(usage["prompt_tokens"] == c.input_ids.count)
            #expect(finish == "length" || finish == "stop")
            // One image for two placeholders is a 400 naming both counts.
            let one = try await client.post("/v1/chat/completions", object: [
                "model": "smolvlm2-tiny", "max_tokens": 2,
                "messages": [["role": "user", "content": [content[0], ["type": "text", "text": "and <image>?"]]]],
            ])
            #expect(one.status == .badRequest, "\(one.text)")
        }
    }
}
