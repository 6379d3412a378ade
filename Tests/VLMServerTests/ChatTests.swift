import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// `POST /v1/chat/completions` on the tiny llava-hf checkpoint: answers identical to transformers' greedy
/// generate(), streamed or not; usage; stop strings and max_tokens; the model list; queueing and cancellation.
@Suite(.serialized) struct ChatTests {
    @Test func answerEqualsTransformersGolden() async throws {
        let ref = try ChatTestServer.reference()
        let image = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp { client in
            for c in ref.cases {
                let r = try await client.post("/v1/chat/completions", object: [
                    "model": "llava-chat", "max_tokens": c.greedy.count,
                    "messages": [ChatTestServer.imageQuestion(c.question, image: image)],
                ])
                #expect(r.status == .ok, "\(r.text)")
                #expect(r.headers[.contentType] == "application/json")
                let json = try r.json()
                #expect(json["object"] as? String == "chat.completion")
                #expect((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
                #expect(json["model"] as? String == "llava-chat")
                #expect(json["created"] is Int)
                let (content, finish, usage) = try r.completion()
                #expect(content == c.text)
                #expect(finish == "length")
                #expect(usage["prompt_tokens"] == c.input_ids.count)  // 16 image tokens included
                #expect(usage["completion_tokens"] == c.greedy.count)
                #expect(usage["total_tokens"] == c.input_ids.count + c.greedy.count)
                let message = try #require(((json["choices"] as? [[String: Any]])?.first)?["message"] as? [String: Any])
                #expect(message["role"] as? String == "assistant")
            }
        }
    }

    @Test func streamedDeltasConcatenateToTheGolden() async throws {
        let ref = try ChatTestServer.reference()
        let image = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp { client in
            for c in ref.cases {
                let r = try await client.post("/v1/chat/completions", object: [
                    "max_completion_tokens": c.greedy.count, "stream": true, "stream_options": ["include_usage": true],
                    "messages": [ChatTestServer.imageQuestion(c.question, image: image)],
                ])
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/event-stream") == true)
                let stream = try EventStream(r.text)
                #expect(stream.done)
                #expect(stream.events.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
                #expect(Set(stream.events.compactMap { $0["id"] as? String }).count == 1)
                #expect(stream.deltas.first?["role"] as? String == "assistant")
                #expect(stream.content == c.text)
                #expect(stream.deltas.count > 2, "the text arrives in pieces")
                #expect(stream.finishReasons == ["length"])
                // The usage chunk comes last, with no choices; the others carry "usage": null.
                let last = try #require(stream.events.last)
                #expect((last["choices"] as? [Any])?.isEmpty == true)
                let usage = try #require(last["usage"] as? [String: Any]).compactMapValues { $0 as? Int }
                #expect(usage["prompt_tokens"] == c.input_ids.count && usage["completion_tokens"] == c.greedy.count)
                #expect(usage["total_tokens"] == c.input_ids.count + c.greedy.count)
                #expect(stream.events.dropLast().allSatisfy { $0["usage"] is NSNull })
            }
            // Without include_usage there is no usage field at all.
            let plain = try await client.post("/v1/chat/completions", object: [
                "max_tokens": 3, "stream": true, "messages": [["role": "user", "content": "hi"]],
            ])
            let stream = try EventStream(plain.text)
            #expect(stream.done && stream.events.allSatisfy { $0["usage"] == nil })
            #expect(stream.finishReasons.count == 1)
        }
    }

    @Test func stopStringsAndMaxTokensSetFinishReason() async throws {
        let ref = try ChatTestServer.reference()
        let image = try ChatTestServer.imageURL()
        let c = ref.cases[1]  // the longer, mostly-ASCII answer
        let full = c.text
        let stop = "quick brown"
        let expected = String(full[..<(try #require(full.range(of: stop))).lowerBound])
        try await ChatTestServer.withApp { client in
            let messages = [ChatTestServer.imageQuestion(c.question, image: image)]
            for stopValue: Any in [stop, ["zzz-never", stop]] {
                let r = try await client.post("/v1/chat/completions", object: ["max_tokens": c.greedy.count, "stop": stopValue, "messages": messages])
                let (content, finish, usage) = try r.completion()
                #expect(content == expected)
                #expect(finish == "stop")
                #expect(usage["completion_tokens"].map { $0 < c.greedy.count } == true)
                // Streamed: the text held back while it might be the stop string never reaches the client.
                let s = try await client.post("/v1/chat/completions", object: ["max_tokens": c.greedy.count, "stop": stopValue,
                                                                                "stream": true, "messages": messages])
                let stream = try EventStream(s.text)
                #expect(stream.content == expected)
                #expect(stream.finishReasons == ["stop"])
            }
            let short = try await client.post("/v1/chat/completions", object: ["max_tokens": 5, "messages": messages])
            let (content, finish, usage) = try short.completion()
            #expect(finish == "length" && usage["completion_tokens"] == 5)
            #expect(full.hasPrefix(content) && content.count < full.count)
        }
    }

    @Test func seededSamplingRepeatsAndTextOnlyTurnsWork() async throws {
        try await ChatTestServer.withApp { client in
            let body: [String: Any] = ["max_tokens": 8, "temperature": 0.9, "top_p": 0.95, "top_k": 20, "min_p": 0.01,
                                       "repetition_penalty": 1.1, "seed": 1234,
                                       "messages": [["role": "system", "content": "Be brief."], ["role": "user", "content": "Say something."],
                                                    ["role": "assistant", "content": "Hello."], ["role": "user", "content": "More."]]]
            let a = try await client.post("/v1/chat/completions", object: body).completion()
            let b = try await client.post("/v1/chat/completions", object: body).completion()
            #expect(a.content == b.content && a.usage["prompt_tokens"] == b.usage["prompt_tokens"])
            #expect(a.usage["completion_tokens"] == b.usage["completion_tokens"])
            // The repeated conversation comes from the kept state: all but its last prompt token.
            #expect(a.usage["cached_tokens"] == 0 && b.usage["cached_tokens"] == (b.usage["prompt_tokens"] ?? 0) - 1)
            #expect(a.usage["completion_tokens"].map { $0 >= 1 } == true)
        }
    }

    @Test func modelListShowsTheChatModel() async throws {
        try await ChatTestServer.withApp { client in
            let list = try await client.get("/v1/models").json()
            let model = try #require((list["data"] as? [[String: Any]])?.first)
            #expect(model["id"] as? String == "llava-chat")
            #expect(model["kind"] as? String == "chat")
            #expect(model["type"] as? String == "llava")
            #expect(model["context_length"] as? Int == 256)
            #expect(model["accepts_images"] as? Bool == true)
            #expect(model["image_tokens_per_image"] as? Int == 16)
            #expect(try await client.get("/v1/models/llava-chat").status == .ok)
            let health = try await client.get("/healthz").json()
            #expect(health["status"] as? String == "ok" && health["kind"] as? String == "chat")
            // The embedding endpoints are not served for a generative checkpoint.
            #expect(try await client.post("/v1/embeddings", json: #"{"input": "a"}"#).status == .notFound)
        }
        let textOnly = try GenerativeFixtures.textOnly()
        try await ChatTestServer.withApp(ChatTestServer.config(textOnly) { $0.modelID = "tiny-lm" }) { client in
            let model = try #require((try await client.get("/v1/models").json()["data"] as? [[String: Any]])?.first)
            #expect(model["id"] as? String == "tiny-lm" && model["type"] as? String == "llama")
            #expect(model["accepts_images"] as? Bool == false && model["image_tokens_per_image"] == nil)
            // A list of text parts reaches a string-content template as one string.
            let r = try await client.post("/v1/chat/completions", object: [
                "model": "tiny-lm", "max_tokens": 4, "messages": [["role": "user", "content": [["type": "text", "text": "hi"]]]],
            ])
            #expect(r.status == .ok, "\(r.text)")
            let prompt = try GenerativePipeline.load(directory: textOnly).prompt(for: [ChatMessage(role: "user", parts: [.text("hi")])])
            #expect(prompt == "<|user|>\nhi\n<|assistant|>\n")
        }
    }

    /// One generator: requests wait in order; past the queue's capacity they get 503 with Retry-After, and
    /// /metrics counts requests, tokens and the queue.
    @Test func fullQueueIs503AndMetricsCountTokens() async throws {
        let gate = Gate()
        let engine = ChatEngine.pipeline(try ChatTestServer.pipeline()).holding { gate.pass() }
        let config = ChatTestServer.config { $0.queueCapacity = 1; $0.retryAfterSeconds = 3 }
        try await ChatTestServer.withApp(config, engine: engine) { client in
            let body: [String: Any] = ["max_tokens": 4, "messages": [["role": "user", "content": "hello"]]]
            async let first = client.post("/v1/chat/completions", object: body)
            try await eventually("the generator holding the first request") { gate.enteredCount == 1 }
            async let second = client.post("/v1/chat/completions", object: body)
            try await eventually("the second request queued") {
                (try await client.get("/healthz").json()["queue"] as? [String: Int])?["chat"] == 1
            }
            let third = try await client.post("/v1/chat/completions", object: body)
            try ErrorTests.expectError(third, .serviceUnavailable, "queue_full")
            #expect(third.headers[.retryAfter] == "3")
            gate.open()
            let (a, b) = try await (first, second)
            #expect(a.status == .ok && b.status == .ok)
            let tokens = try a.completion().usage["completion_tokens"]! + b.completion().usage["completion_tokens"]!
            let prompt = try a.completion().usage["prompt_tokens"]! + b.completion().usage["prompt_tokens"]!
            let samples = try parsePrometheus(try await client.get("/metrics").text)
            func value(_ series: String) -> Double? { samples.first { $0.series == series }?.value }
            #expect(value("vlm_chat_completion_tokens_total") == Double(tokens))
            #expect(value("vlm_chat_prompt_tokens_total") == Double(prompt))
            #expect(value("vlm_chat_rejected_total") == 1)
            #expect(value("vlm_chat_queue_depth") == 0)
            #expect(value("vlm_chat_queue_capacity") == 1)
            #expect(value(#"vlm_queue_depth{kind="chat"}"#) == 0)
            let finished = ["stop", "length"].compactMap { value("vlm_chat_requests_total{finish_reason=\"\($0)\"}") }.reduce(0, +)
            #expect(finished == 2)
            #expect(value("vlm_chat_request_duration_seconds_count") == 2)
            #expect(value(#"vlm_http_requests_total{route="/v1/chat/completions",method="POST",status="503"}"#) == 1)
            #expect(value(#"vlm_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#) == 2)
        }
    }

    /// A consumer that goes away (the client disconnected) stops its generation between tokens, and a queued
    /// request whose client left never runs.
    @Test func droppedConsumerCancelsGeneration() async throws {
        let pipeline = try ChatTestServer.pipeline()
        let firstPiece = Gate()
        var engine = ChatEngine.pipeline(pipeline)
        let real = engine.generate
        engine.generate = { prepared, options, onText, shouldStop in
            try real(prepared, options, { piece in
                let ok = onText(piece)
                firstPiece.pass()  // the first piece waits here until the test has cancelled
                return ok
            }, shouldStop)
        }
        let service = ChatService(config: ChatTestServer.config { $0.queueCapacity = 4 }, engine: engine, modelID: "m")
        let prepared = try engine.prepare([ChatMessage(role: "user", text: "Tell me a long story.")], [])
        var options = SamplingOptions()
        options.maxTokens = 200
        options.stopAtEOS = false
        let running = try service.start(prepared, options: options)
        let queued = try service.start(prepared, options: options)
        let consumer = Task { () -> Int in
            var pieces = 0
            for try await event in running.events { if case .text = event { pieces += 1 } }
            return pieces
        }
        try await eventually("the first piece") { firstPiece.enteredCount == 1 }
        #expect(service.scheduler.depth == 1)
        queued.cancel()  // its client left while it waited: removed from the queue
        #expect(service.scheduler.depth == 0)
        consumer.cancel()
        firstPiece.open()
        try await eventually("both cancelled") { service.metrics.outcomeCount("cancelled") == 2 }
        try await eventually("the generator free") { !service.scheduler.isBusy }
        #expect(service.metrics.outcomeCount("length") == 0)
        _ = try? await consumer.value
        // The generator serves the next request normally.
        options.maxTokens = 3
        var next = 0
        for try await event in try service.start(prepared, options: options).events { if case .finished(let r) = event { next = r.tokens.count } }
        #expect(next == 3)
    }
}
