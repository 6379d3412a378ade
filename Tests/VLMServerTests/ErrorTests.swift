import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
@testable import VLMServer

/// Every error status, each with the OpenAI error shape.
@Suite(.serialized) struct ErrorTests {
    static func expectError(_ r: TestResponse, _ status: HTTPResponse.Status, _ code: String,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(r.status == status, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
        let error = try #require(try r.json()["error"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(error["code"] as? String == code, "\(r.text)", sourceLocation: sourceLocation)
        #expect((error["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(error["type"] is String, sourceLocation: sourceLocation)
    }

    @Test func badRequests() async throws {
        let cases: [(String, String, String)] = [
            ("/v1/embeddings", #"{"input": "a cat""#, "malformed_json"),
            ("/v1/embeddings", "", "malformed_json"),
            ("/v1/embeddings", "[1, 2]", "malformed_json"),
            ("/v1/embeddings", #"{"model": "tiny-a"}"#, "malformed_json"),
            ("/v1/embeddings", #"{"input": 42}"#, "malformed_json"),
            ("/v1/embeddings", #"{"input": [1, 2, 3]}"#, "malformed_json"),
            ("/v1/embeddings", #"{"input": [{"type": "audio", "data": "x"}]}"#, "malformed_json"),
            ("/v1/embeddings", #"{"input": [{"foo": 1}]}"#, "malformed_json"),
            ("/v1/embeddings", #"{"input": []}"#, "invalid_request"),
            ("/v1/embeddings", #"{"input": "a", "encoding_format": "int8"}"#, "invalid_request"),
            ("/v1/embeddings", #"{"input": "a", "dimensions": 8}"#, "invalid_request"),
            ("/v1/embeddings", #"{"input": {"image": "%%% not base64 %%%"}}"#, "invalid_base64"),
            ("/v1/embeddings", #"{"input": {"image": "data:image/png,rawbytes"}}"#, "invalid_base64"),
            ("/v1/embeddings", #"{"input": {"image": ""}}"#, "invalid_base64"),
            ("/v1/embeddings", #"{"input": {"image": "aGVsbG8gd29ybGQ="}}"#, "invalid_image"),  // "hello world"
            ("/v1/embeddings", #"{"input": {"image": "/9j/4AAQSkZJRg=="}}"#, "invalid_image"),  // truncated JPEG
            ("/v1/embeddings", #"{"input": {"image_url": {"url": "http://169.254.169.254/x.png"}}}"#, "invalid_request"),
            ("/v1/embeddings", #"{"input": {"image_url": "file:///etc/passwd"}}"#, "invalid_request"),
            ("/v1/classify", #"{"image": "aGVsbG8=", "labels": ["a"]"#, "malformed_json"),
            ("/v1/classify", #"{"labels": ["cat"]}"#, "malformed_json"),
            ("/v1/classify", #"{"image": "aGVsbG8gd29ybGQ="}"#, "malformed_json"),
            ("/v1/classify", #"{"image": "aGVsbG8gd29ybGQ=", "labels": ["cat"]}"#, "invalid_image"),
        ]
        try await TestServer.withApp { client in
            for (uri, body, code) in cases {
                let r = try await client.post(uri, json: body)
                try Self.expectError(r, .badRequest, code)
            }
            let image = try TestServer.dataURL("chelsea.jpg")
            try Self.expectError(try await client.post("/v1/classify", object: ["image": image, "labels": [" ", ""]]), .badRequest, "invalid_request")
            try Self.expectError(try await client.post("/v1/classify", object: ["image": image, "labels": ["a"], "top_k": 0]), .badRequest, "invalid_request")
            // The server is still fine afterwards.
            #expect(try await client.post("/v1/embeddings", json: #"{"input": "a cat"}"#).status == .ok)
        }
    }

    @Test func tooManyInputsAndLabels() async throws {
        try await TestServer.withApp(TestServer.config { $0.maxInputsPerRequest = 3; $0.maxLabels = 2 }) { client in
            try Self.expectError(try await client.post("/v1/embeddings", object: ["input": ["a", "b", "c", "d"]]), .badRequest, "invalid_request")
            let image = try TestServer.dataURL("chelsea.jpg")
            try Self.expectError(try await client.post("/v1/classify", object: ["image": image, "labels": ["a", "b", "c"]]), .badRequest, "invalid_request")
        }
    }

    @Test func notFound() async throws {
        try await TestServer.withApp { client in
            try Self.expectError(try await client.post("/v1/embeddings", json: #"{"model": "gpt-4", "input": "a"}"#), .notFound, "model_not_found")
            let image = try TestServer.dataURL("chelsea.jpg")
            try Self.expectError(try await client.post("/v1/classify", object: ["model": "nope", "image": image, "labels": ["a"]]), .notFound, "model_not_found")
            try Self.expectError(try await client.get("/v1/models/gpt-4"), .notFound, "model_not_found")
            try Self.expectError(try await client.get("/v1/nothing-here"), .notFound, "not_found")
            try Self.expectError(try await client.get("/../../etc/passwd"), .notFound, "not_found")
            try Self.expectError(try await client.get("/v1/embeddings"), .notFound, "not_found")  // wrong method
        }
    }

    @Test func bodyOverLimitIs413() async throws {
        try await TestServer.withApp(TestServer.config { $0.maxBodyBytes = 1000 }) { client in
            let big = String(repeating: "a", count: 5000)
            try Self.expectError(try await client.post("/v1/embeddings", object: ["input": big]), .contentTooLarge, "payload_too_large")
            try Self.expectError(try await client.post("/v1/classify", object: ["image": big, "labels": ["a"]]), .contentTooLarge, "payload_too_large")
            #expect(try await client.post("/v1/embeddings", json: #"{"input": "small"}"#).status == .ok)
        }
    }

    static func stream(_ chunks: [ByteBuffer]) -> AsyncStream<ByteBuffer> {
        AsyncStream { c in
            for chunk in chunks { c.yield(chunk) }
            c.finish()
        }
    }

    /// Chunked bodies carry no Content-Length: the limit must hold while collecting, before buffering it all.
    @Test func streamedBodyStopsAtLimit() async throws {
        let chunks = (0 ..< 100).map { _ in ByteBuffer(string: String(repeating: "x", count: 100)) }
        let request = Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/v1/embeddings"),
                              body: RequestBody(asyncSequence: Self.stream(chunks)))
        await #expect(throws: ServerError.self) { _ = try await RequestInput.body(of: request, limit: 5000) }
        let fits = Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/v1/embeddings"),
                           body: RequestBody(asyncSequence: Self.stream(chunks)))
        #expect(try await RequestInput.body(of: fits, limit: 10_000).readableBytes == 10_000)
    }

    @Test func imageOverPixelLimitIs422() async throws {
        // chelsea.jpg is 150x100 = 15000 pixels.
        try await TestServer.withApp(TestServer.config { $0.maxImagePixels = 10_000 }) { client in
            let chelsea = try TestServer.dataURL("chelsea.jpg")
            try Self.expectError(try await client.post("/v1/embeddings", object: ["input": ["image": chelsea]]), .unprocessableContent, "image_too_large")
            try Self.expectError(try await client.post("/v1/classify", object: ["image": chelsea, "labels": ["a"]]), .unprocessableContent, "image_too_large")
            // 64x64 is under the limit.
            let small = try TestServer.dataURL("astronaut.jpg")
            #expect(try await client.post("/v1/embeddings", object: ["input": ["image": small]]).status == .ok)
        }
    }

    /// A full queue answers 503 with Retry-After, and the held requests still complete.
    @Test func fullQueueIs503WithRetryAfter() async throws {
        let pipeline = try TestServer.pipeline()
        let gate = Gate()
        let config = TestServer.config { $0.queueCapacity = 1; $0.maxBatch = 1; $0.maxWaitMilliseconds = 0; $0.retryAfterSeconds = 2 }
        try await TestServer.withApp(config, pipeline: pipeline, engine: gate.engine(pipeline)) { client in
            async let first = client.post("/v1/embeddings", json: #"{"input": "first"}"#)
            try await eventually("the worker holding the first batch") { gate.enteredCount == 1 }
            async let second = client.post("/v1/embeddings", json: #"{"input": "second"}"#)
            try await eventually("the second request queued") {
                let h = try await client.get("/healthz").json()
                return (h["queue"] as? [String: Int])?["text"] == 1
            }
            let third = try await client.post("/v1/embeddings", json: #"{"input": "third"}"#)
            try Self.expectError(third, .serviceUnavailable, "queue_full")
            #expect(third.headers[.retryAfter] == "2")
            // Images queue separately, but a queue of one takes a request when empty.
            gate.open()
            let (a, b) = try await (first, second)
            #expect(a.status == .ok)
            #expect(b.status == .ok)
            expectClose(try b.embeddings(), try pipeline.embed(texts: ["second"]))
            let metrics = try await client.get("/metrics").text
            #expect(metrics.contains(#"vlm_queue_rejected_items_total{kind="text"} 1"#))
            #expect(metrics.contains(#"vlm_http_requests_total{route="/v1/embeddings",method="POST",status="503"} 1"#))
        }
    }
}
