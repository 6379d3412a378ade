import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// Every way a chat request can be wrong gets its status and an OpenAI error body naming the problem, before
/// anything is queued.
@Suite(.serialized) struct ChatErrorTests {
    static func expectError(_ r: TestResponse, _ status: HTTPResponse.Status, _ code: String, mentioning words: [String] = [],
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        try ErrorTests.expectError(r, status, code, sourceLocation: sourceLocation)
        let message = ((try r.json()["error"] as? [String: Any])?["message"] as? String) ?? ""
        for w in words { #expect(message.contains(w), "'\(message)' should mention '\(w)'", sourceLocation: sourceLocation) }
    }

    @Test func malformedAndInvalidRequests() async throws {
        let user = #"[{"role": "user", "content": "hi"}]"#
        let cases: [(String, String, [String])] = [
            (#"{"messages": [{"role": "user", "content": "hi"}]"#, "malformed_json", []),
            ("", "malformed_json", []),
            (#"{"model": "llava-chat"}"#, "malformed_json", ["messages"]),
            (#"{"messages": "hi"}"#, "malformed_json", ["messages"]),
            (#"{"messages": [{"content": "hi"}]}"#, "malformed_json", ["role"]),
            (#"{"messages": [{"role": "user", "content": [{"type": "audio", "data": "x"}]}]}"#, "malformed_json", ["audio"]),
            (#"{"messages": [{"role": "user", "content": 42}]}"#, "malformed_json", ["content"]),
            (#"{"messages": \#(user), "stop": 3}"#, "malformed_json", ["stop"]),
            (#"{"messages": []}"#, "invalid_request", ["empty"]),
            (#"{"messages": [{"role": "wizard", "content": "hi"}]}"#, "invalid_request", ["wizard"]),
            (#"{"messages": [{"role": "user"}]}"#, "invalid_request", ["content"]),
            (#"{"messages": \#(user), "n": 2}"#, "invalid_request", ["'n'"]),
            (#"{"messages": \#(user), "max_tokens": 0}"#, "invalid_request", ["max_tokens"]),
            (#"{"messages": \#(user), "temperature": -1}"#, "invalid_request", ["temperature"]),
            (#"{"messages": \#(user), "top_p": 1.5}"#, "invalid_request", ["top-p"]),
            (#"{"messages": \#(user), "min_p": 2}"#, "invalid_request", ["min-p"]),
            (#"{"messages": \#(user), "repetition_penalty": 0}"#, "invalid_request", ["repetition"]),
            (#"{"messages": \#(user), "frequency_penalty": 0.5}"#, "invalid_request", ["frequency_penalty", "repetition_penalty"]),
            (#"{"messages": \#(user), "logprobs": true}"#, "invalid_request", ["logprobs"]),
            (#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}"#,
             "invalid_request", ["remote", "data:"]),
            (#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]}]}"#,
             "invalid_base64", []),
            (#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "aGVsbG8gd29ybGQ="}}]}]}"#,
             "invalid_image", []),
        ]
        try await ChatTestServer.withApp { client in
            for (body, code, words) in cases {
                try Self.expectError(try await client.post("/v1/chat/completions", json: body), .badRequest, code, mentioning: words)
            }
            try Self.expectError(try await client.post("/v1/chat/completions", json: #"{"model": "gpt-4o", "messages": \#(user)}"#),
                                 .notFound, "model_not_found", mentioning: ["gpt-4o"])
            try Self.expectError(try await client.get("/v1/models/gpt-4o"), .notFound, "model_not_found")
            // Still serving.
            #expect(try await client.post("/v1/chat/completions", json: #"{"max_tokens": 2, "messages": \#(user)}"#).status == .ok)
        }
    }

    @Test func imageTokenCountMustMatchTheImages() async throws {
        let image = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp { client in
            // "<image>" typed in the text is the image token: two placeholders, one image.
            let twoTokens = try await client.post("/v1/chat/completions", object: [
                "messages": [ChatTestServer.imageQuestion("what is <image>?", image: image)]])
            try Self.expectError(twoTokens, .badRequest, "invalid_request", mentioning: ["2 image token(s)", "<image>", "556", "1 image(s)"])
            let noImage = try await client.post("/v1/chat/completions", object: [
                "messages": [["role": "user", "content": "<image> describe it"]]])
            try Self.expectError(noImage, .badRequest, "invalid_request", mentioning: ["1 image token(s)", "0 image(s)"])
        }
    }

    @Test func promptLongerThanTheContextNamesBothLengths() async throws {
        let image = try ChatTestServer.imageURL()
        let long = Array(repeating: "hello world", count: 200).joined(separator: " ")
        try await ChatTestServer.withApp { client in
            let r = try await client.post("/v1/chat/completions", object: ["messages": [ChatTestServer.imageQuestion(long, image: image)]])
            try Self.expectError(r, .badRequest, "invalid_request", mentioning: ["16 of them image tokens", "context is 256 tokens"])
            let message = ((try r.json()["error"] as? [String: Any])?["message"] as? String) ?? ""
            let count = Int(message.split(separator: " ").dropFirst(3).first ?? "") ?? 0
            #expect(count > 256, "\(message)")
        }
    }

    @Test func tokenizerWithoutTheImageTokenIsNamed() async throws {
        let dir = try GenerativeFixtures.withoutImageToken()
        let image = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp(ChatTestServer.config(dir)) { client in
            let r = try await client.post("/v1/chat/completions", object: ["messages": [ChatTestServer.imageQuestion("what?", image: image)]])
            try Self.expectError(r, .badRequest, "invalid_request", mentioning: ["no token for image_token_index 556"])
            // Text-only chat still works with this checkpoint.
            #expect(try await client.post("/v1/chat/completions", object: ["max_tokens": 2, "messages": [["role": "user", "content": "hi"]]]).status == .ok)
        }
    }

    @Test func textOnlyModelRefusesImagesAndTheTemplateRefusesOrder() async throws {
        let dir = try GenerativeFixtures.textOnly()
        let image = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp(ChatTestServer.config(dir)) { client in
            let r = try await client.post("/v1/chat/completions", object: ["messages": [ChatTestServer.imageQuestion("what?", image: image)]])
            try Self.expectError(r, .badRequest, "invalid_request", mentioning: ["text-only", "does not take images"])
            // The checkpoint's template raises on an assistant first: its message comes back.
            let order = try await client.post("/v1/chat/completions", object: ["messages": [
                ["role": "assistant", "content": "Hi!"], ["role": "user", "content": "hello"]]])
            try Self.expectError(order, .badRequest, "invalid_request", mentioning: ["Conversation roles must start with user or system, not assistant"])
            let lateSystem = try await client.post("/v1/chat/completions", object: ["messages": [
                ["role": "user", "content": "hello"], ["role": "system", "content": "Be brief."]]])
            try Self.expectError(lateSystem, .badRequest, "invalid_request", mentioning: ["only allowed first"])
            #expect(try await client.post("/v1/chat/completions", object: ["max_tokens": 2, "messages": [
                ["role": "system", "content": "Be brief."], ["role": "user", "content": "hello"]]]).status == .ok)
        }
    }

    @Test func imageOverThePixelLimitIs422AndBodyOverTheLimitIs413() async throws {
        let chelsea = try ChatTestServer.imageURL()  // 150x100
        try await ChatTestServer.withApp(ChatTestServer.config { $0.maxImagePixels = 10_000; $0.maxBodyBytes = 200_000 }) { client in
            let big = try await client.post("/v1/chat/completions", object: ["messages": [ChatTestServer.imageQuestion("what?", image: chelsea)]])
            try Self.expectError(big, .unprocessableContent, "image_too_large", mentioning: ["150x100"])
            let huge = String(repeating: "a", count: 300_000)
            try Self.expectError(try await client.post("/v1/chat/completions", object: ["messages": [["role": "user", "content": huge]]]),
                                 .contentTooLarge, "payload_too_large")
            let small = try ChatTestServer.imageURL("astronaut.jpg")  // 64x64
            let ok = try await client.post("/v1/chat/completions", object: ["max_tokens": 2, "messages": [ChatTestServer.imageQuestion("what?", image: small)]])
            #expect(ok.status == .ok, "\(ok.text)")
        }
    }

    /// A visual-search index needs an embedding model: `--index` with a generative checkpoint is refused at
    /// start-up with the reason, not started half-working.
    @Test func indexWithAGenerativeModelIsRefused() async throws {
        let config = ChatTestServer.config { $0.indexPath = URL(fileURLWithPath: "/tmp/vlm-chat-index-\(getpid()).sqlite") }
        do {
            _ = try await buildApplication(config: config)
            Issue.record("a generative model with --index should be refused")
        } catch let error as ServerError {
            #expect("\(error)".contains("embedding model"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/vlm-chat-index-\(getpid()).sqlite"))
    }
}
