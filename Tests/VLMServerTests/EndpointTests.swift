import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
@testable import VLMServer

/// Happy paths of every endpoint; results must equal the pipeline's own.
@Suite(.serialized) struct EndpointTests {
    @Test func healthz() async throws {
        try await TestServer.withApp { client in
            let r = try await client.get("/healthz")
            #expect(r.status == .ok)
            let j = try r.json()
            #expect(j["status"] as? String == "ok")
            #expect(j["model"] as? String == "tiny-a")
            #expect(j["dimensions"] as? Int == 12)
            #expect(j["index"] == nil || j["index"] is NSNull)
        }
    }

    @Test func models() async throws {
        try await TestServer.withApp(TestServer.config { $0.modelID = "clip-tiny" }) { client in
            let r = try await client.get("/v1/models")
            #expect(r.status == .ok)
            let j = try r.json()
            #expect(j["object"] as? String == "list")
            let data = try #require(j["data"] as? [[String: Any]])
            #expect(data.count == 1)
            #expect(data.first?["id"] as? String == "clip-tiny")
            #expect(data.first?["kind"] as? String == "embedding")
            #expect(data.first?["object"] as? String == "model")
            #expect(data.first?["embedding_dimensions"] as? Int == 12)

            let one = try await client.get("/v1/models/clip-tiny")
            #expect(one.status == .ok)
            #expect(try one.json()["id"] as? String == "clip-tiny")
        }
    }

    @Test func embeddingsOfOneText() async throws {
        let pipeline = try TestServer.pipeline()
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/embeddings", json: #"{"model":"tiny-a","input":"a photo of a cat"}"#)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "application/json")
            let j = try r.json()
            #expect(j["object"] as? String == "list")
            #expect(j["model"] as? String == "tiny-a")
            let data = try #require(j["data"] as? [[String: Any]])
            #expect(data.first?["object"] as? String == "embedding")
            #expect(data.first?["index"] as? Int == 0)
            expectClose(try r.embeddings(), try pipeline.embed(texts: ["a photo of a cat"]))
            let usage = try #require(j["usage"] as? [String: Any])
            let tokens = try pipeline.tokenize(["a photo of a cat"])[0].count
            #expect(usage["prompt_tokens"] as? Int == tokens)
            #expect(usage["total_tokens"] as? Int == tokens)
        }
    }

    @Test func embeddingsOfManyTextsWithoutModel() async throws {
        let pipeline = try TestServer.pipeline()
        let texts = ["a cat", "a dog on a skateboard", "", "an astronaut riding a horse in space"]
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/embeddings", object: ["input": texts])
            #expect(r.status == .ok)
            expectClose(try r.embeddings(), try pipeline.embed(texts: texts))
        }
    }

    @Test func embeddingsOfMixedPartsInInputOrder() async throws {
        let pipeline = try TestServer.pipeline()
        let chelsea = try TestServer.dataURL("chelsea.jpg"), coffee = try TestServer.dataURL("coffee.png")
        let astronautBase64 = try TestServer.imageData("astronaut.jpg").base64EncodedString()
        let input: [Any] = [
            ["type": "image_url", "image_url": ["url": chelsea]],
            ["type": "text", "text": "a cat"],
            ["image": astronautBase64],
            "a cup of coffee",
            ["type": "image_url", "image_url": coffee],
        ]
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/embeddings", object: ["model": "tiny-a", "input": input])
            #expect(r.status == .ok, "\(r.text)")
            let got = try r.embeddings()
            let images = try pipeline.embed(images: ["chelsea.jpg", "astronaut.jpg", "coffee.png"].map(TestServer.decoded))
            let texts = try pipeline.embed(texts: ["a cat", "a cup of coffee"])
            expectClose(got, [images[0], texts[0], images[1], texts[1], images[2]])
            // Only text counts as tokens.
            let tokens = try pipeline.tokenize(["a cat", "a cup of coffee"]).reduce(0) { $0 + $1.count }
            #expect((try r.json()["usage"] as? [String: Any])?["prompt_tokens"] as? Int == tokens)
        }
    }

    @Test func embeddingsOfOneImageObject() async throws {
        let pipeline = try TestServer.pipeline()
        let png = try TestServer.dataURL("coffee.png")
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/embeddings", object: ["input": ["image": png]])
            #expect(r.status == .ok)
            expectClose(try r.embeddings(), try pipeline.embed(images: [TestServer.decoded("coffee.png")]))
        }
    }

    @Test func embeddingsAsBase64() async throws {
        let pipeline = try TestServer.pipeline()
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/embeddings", object: ["input": ["a cat", "a dog"], "encoding_format": "base64", "dimensions": 12])
            #expect(r.status == .ok)
            let data = try #require(try r.json()["data"] as? [[String: Any]])
            let vectors: [[Float]] = try data.map { item in
                let s = try #require(item["embedding"] as? String)
                let bytes = try #require(Data(base64Encoded: s))
                #expect(bytes.count == 12 * 4)
                let b = [UInt8](bytes)
                return stride(from: 0, to: b.count, by: 4).map { (i: Int) -> Float in
                    var bits = UInt32(b[i])
                    bits |= UInt32(b[i + 1]) << 8
                    bits |= UInt32(b[i + 2]) << 16
                    bits |= UInt32(b[i + 3]) << 24
                    return Float(bitPattern: bits)
                }
            }
            expectClose(vectors, try pipeline.embed(texts: ["a cat", "a dog"]))
        }
    }

    @Test func classifyMatchesPipeline() async throws {
        let pipeline = try TestServer.pipeline()
        let labels = ["cat", "dog", " astronaut ", "cup of coffee", ""]
        let expected = try pipeline.classify(image: TestServer.decoded("chelsea.jpg"), labels: labels, template: "a photo of a {}.")
        try await TestServer.withApp(pipeline: pipeline) { client in
            let r = try await client.post("/v1/classify", object: [
                "model": "tiny-a", "image": try TestServer.dataURL("chelsea.jpg"), "labels": labels, "template": "a photo of a {}.",
            ])
            #expect(r.status == .ok, "\(r.text)")
            let j = try r.json()
            #expect(j["object"] as? String == "classification")
            let data = try #require(j["data"] as? [[String: Any]])
            #expect(data.map { $0["label"] as? String } == expected.map(\.label))
            for (got, want) in zip(data, expected) {
                #expect(abs(Float(got["probability"] as? Double ?? -1) - want.probability) <= 1e-5)
                #expect(abs(Float(got["logit"] as? Double ?? -1) - want.logit) <= 1e-4)
            }
            // Best first, top_k honoured, default template and image_url form accepted.
            let top = try await client.post("/v1/classify", object: [
                "image_url": ["url": try TestServer.dataURL("coffee.png")], "labels": ["cat", "dog", "coffee"], "top_k": 2,
            ])
            #expect(top.status == .ok)
            let scores = try #require(try top.json()["data"] as? [[String: Any]]).compactMap { $0["probability"] as? Double }
            #expect(scores.count == 2)
            #expect(scores == scores.sorted(by: >))
        }
    }

    @Test func webPage() async throws {
        try await TestServer.withApp { client in
            let r = try await client.get("/")
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(r.text.contains("<title>SwiftVLM</title>"))
            #expect(r.text.contains("/v1/search"))
            #expect(!r.text.contains("http://") && !r.text.contains("https://"))  // no CDN, nothing external
        }
    }

    @Test func metricsTextParses() async throws {
        try await TestServer.withApp { client in
            _ = try await client.post("/v1/embeddings", json: #"{"input":"a cat"}"#)
            _ = try await client.post("/v1/embeddings", json: #"{"input":"#)
            _ = try await client.get("/nope")
            let r = try await client.get("/metrics")
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let samples = try parsePrometheus(r.text)
            func value(_ series: String) -> Double? { samples.first { $0.series == series }?.value }
            #expect(value(#"vlm_http_requests_total{route="/v1/embeddings",method="POST",status="200"}"#) == 1)
            #expect(value(#"vlm_http_requests_total{route="/v1/embeddings",method="POST",status="400"}"#) == 1)
            #expect(value(#"vlm_http_requests_total{route="unmatched",method="GET",status="404"}"#) == 1)
            #expect(value(#"vlm_http_request_duration_seconds_count{route="/v1/embeddings",method="POST"}"#) == 2)
            #expect(value(#"vlm_batch_size_count{kind="text"}"#) == 1)
            #expect(value(#"vlm_queue_depth{kind="text"}"#) == 0)
            #expect(value(#"vlm_queue_depth{kind="image"}"#) == 0)
            #expect(value("vlm_http_requests_in_flight") == 1)  // this scrape itself
            #expect(value("vlm_queue_capacity") == 256)
            // Histogram buckets are cumulative and end at the count.
            let buckets = samples.filter { $0.series.hasPrefix(#"vlm_http_request_duration_seconds_bucket{route="/v1/embeddings""#) }
            #expect(buckets.count == ServerMetrics.latencyBounds.count + 1)
            #expect(buckets.map(\.value) == buckets.map(\.value).sorted())
            #expect(buckets.last?.value == 2)
            #expect(r.text.contains("# TYPE vlm_http_requests_total counter"))
            #expect(r.text.contains("# TYPE vlm_batch_size histogram"))
        }
    }
}
