import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// `vlm serve --model A --model B`: one process serves an embedding model and a chat model; requests route by
/// their "model" field, the first model of the right kind answers when it is omitted, and a wrong or unknown
/// model is a clear 4xx in the OpenAI error shape.
@Suite struct MultiModelTests {
    static func config() -> ServerConfig {
        var c = ServerConfig(modelDirectories: [Fixtures.url("clip/tiny-a"), Fixtures.url("llava/llava-chat"), Fixtures.url("clip/tiny-b")])
        c.port = 0
        return c
    }

    @Test func routesByModelAndListsEveryModelWithItsKind() async throws {
        let app = try await buildApplication(config: Self.config())
        let direct = try EmbeddingPipeline.load(directory: Fixtures.url("clip/tiny-b"))
        let expected = try direct.embed(texts: ["a photo of a cat"])
        try await app.test(.router) { client in
            let models = try await client.get("/v1/models")
            #expect(models.status == .ok)
            let list = try #require(try models.json()["data"] as? [[String: Any]])
            #expect(list.map { $0["id"] as? String } == ["tiny-a", "llava-chat", "tiny-b"])
            #expect(list.map { $0["kind"] as? String } == ["embedding", "chat", "embedding"])
            #expect(list[0]["scoring"] as? String == "softmax")

            // Named: the second embedding model answers; omitted: the first.
            let named = try await client.post("/v1/embeddings", object: ["model": "tiny-b", "input": "a photo of a cat"])
            #expect(named.status == .ok)
            expectClose(try named.embeddings(), expected, tolerance: 1e-5)
            #expect(try named.json()["model"] as? String == "tiny-b")
            let omitted = try await client.post("/v1/embeddings", object: ["input": "a photo of a cat"])
            #expect(try omitted.json()["model"] as? String == "tiny-a")

            // The chat model answers chat; the embedding model is refused there, and the other way round.
            let chat = try await client.post("/v1/chat/completions", object: [
                "messages": [["role": "user", "content": "Hello"]], "max_tokens": 3, "temperature": 0,
            ])
            #expect(chat.status == .ok)
            #expect(try chat.json()["model"] as? String == "llava-chat")
            let wrongKind = try await client.post("/v1/embeddings", object: ["model": "llava-chat", "input": "x"])
            #expect(wrongKind.status == .badRequest)
            let chatOnEmbedding = try await client.post("/v1/chat/completions", object: [
                "model": "tiny-a", "messages": [["role": "user", "content": "Hello"]],
            ])
            #expect(chatOnEmbedding.status == .badRequest)
            #expect(String(buffer: chatOnEmbedding.body).contains("embedding model"))

            // Unknown model: 404 in the OpenAI shape.
            let unknown = try await client.post("/v1/embeddings", object: ["model": "gpt-4", "input": "x"])
            #expect(unknown.status == .notFound)
            #expect(try unknown.errorCode() == "model_not_found")
            #expect(try await client.get("/v1/models/gpt-4").status == .notFound)
            #expect(try await client.get("/v1/models/llava-chat").status == .ok)

            let health = try await client.get("/healthz").json()
            #expect((health["models"] as? [[String: Any]])?.count == 3)
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
        }
    }

    @Test func duplicateIdsAndAnIndexWithoutAnEmbeddingModelAreRefusedAtStart() async throws {
        var twice = ServerConfig(modelDirectories: [Fixtures.url("clip/tiny-a"), Fixtures.url("clip/tiny-a")])
        #expect(throws: ServerError.self) { try twice.validate() }
        twice.modelIDs = ["one", "two"]
        try twice.validate()
        let dir = try TemporaryDirectory()
        var chatOnly = ServerConfig(modelDirectory: Fixtures.url("llava/llava-chat"))
        chatOnly.indexPath = dir.url.appendingPathComponent("i.sqlite")
        await #expect(throws: ServerError.self) { _ = try await buildApplication(config: chatOnly) }
    }

    /// `--precision` per model: the chat model loads int4 and answers, the embedding model int8 (its vectors close
    /// to the fp32 pipeline's), /v1/models says which; more precisions than models are refused at start.
    @Test func perModelPrecision() async throws {
        var c = Self.config()
        c.modelPrecisions = [.int8, .int4]
        let app = try await buildApplication(config: c)
        let exact = try EmbeddingPipeline.load(directory: Fixtures.url("clip/tiny-a")).embed(texts: ["a cat"])[0]
        try await app.test(.router) { client in
            let chat = try await client.post("/v1/chat/completions", object: [
                "model": "llava-chat", "max_tokens": 2, "messages": [["role": "user", "content": "hello"]],
            ])
            #expect(chat.status == .ok)
            let embedded = try await client.post("/v1/embeddings", object: ["model": "tiny-a", "input": "a cat"])
            #expect(embedded.status == .ok, "\(embedded.text)")
            let v = try #require(try embedded.embeddings().first)
            let cosine = zip(v, exact).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            #expect(cosine > 0.999 && v != exact, "int8 vs fp32 cosine \(cosine)")
            let models = try await client.get("/v1/models").items()
            #expect(models.map { $0["precision"] as? String } == ["int8", "int4", "fp32"], "\(models)")
        }
        var bad = Self.config()
        bad.modelPrecisions = [nil, nil, nil, .fp32]
        #expect(throws: ServerError.self) { try bad.validate() }
    }
}
