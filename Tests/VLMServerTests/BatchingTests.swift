import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
@testable import VLMServer

/// The dynamic batcher: concurrent requests share encoder calls, results stay per request, cancellation
/// and shutdown resume every waiter exactly once.
@Suite(.serialized) struct BatchingTests {
    @Test func concurrentRequestsAreBatched() async throws {
        let pipeline = try TestServer.pipeline()
        let texts = (0 ..< 16).map { "a photo of thing number \($0)" }
        let expected = try pipeline.embed(texts: texts)
        let config = TestServer.config { $0.maxBatch = 16; $0.maxWaitMilliseconds = 50 }
        try await TestServer.withApp(config, pipeline: pipeline) { client in
            try await withThrowingTaskGroup(of: (Int, [[Float]]).self) { group in
                for (i, text) in texts.enumerated() {
                    group.addTask {
                        let r = try await client.post("/v1/embeddings", object: ["input": text])
                        #expect(r.status == .ok)
                        return (i, try r.embeddings())
                    }
                }
                for try await (i, vectors) in group { expectClose(vectors, [expected[i]]) }
            }
            let samples = try parsePrometheus(try await client.get("/metrics").text)
            func value(_ series: String) -> Double? { samples.first { $0.series == series }?.value }
            let batches = try #require(value(#"vlm_batch_size_count{kind="text"}"#))
            let ofOne = try #require(value(#"vlm_batch_size_bucket{kind="text",le="1"}"#))
            #expect(value(#"vlm_batch_size_sum{kind="text"}"#) == 16)
            #expect(batches < 16, "16 requests ran in \(batches) batches")
            #expect(ofOne < batches, "some batch had more than one item")
            #expect(value(#"vlm_encoded_items_total{kind="text"}"#) == 16)
        }
    }

    @Test func mixedConcurrentTextAndImageRequests() async throws {
        let pipeline = try TestServer.pipeline()
        let names = ["chelsea.jpg", "coffee.png", "astronaut.jpg"]
        let images = try pipeline.embed(images: names.map(TestServer.decoded))
        let urls = try names.map(TestServer.dataURL)
        let config = TestServer.config { $0.maxBatch = 4; $0.maxWaitMilliseconds = 20 }
        try await TestServer.withApp(config, pipeline: pipeline) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0 ..< 12 {
                    group.addTask {
                        let k = i % 3
                        let r = try await client.post("/v1/embeddings", object: ["input": [["image": urls[k]], "text \(i)"]])
                        #expect(r.status == .ok)
                        let v = try r.embeddings()
                        expectClose([v[0]], [images[k]])
                        expectClose([v[1]], try pipeline.embed(texts: ["text \(i)"]))
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// A client that goes away while queued is resumed at once, its items leave the queue, and the worker
    /// carries on.
    @Test func cancelledWaiterIsRemovedFromTheQueue() async throws {
        let pipeline = try TestServer.pipeline()
        let gate = Gate()
        let metrics = ServerMetrics()
        let batcher = DynamicBatcher(engine: gate.engine(pipeline), maxBatch: 1, maxWaitMilliseconds: 0, queueCapacity: 8, metrics: metrics)
        let ids = try pipeline.tokenize(["first", "second"])
        let first = Task { try await batcher.embed(texts: [ids[0]]) }
        try await eventually("the worker holding the first batch") { gate.enteredCount == 1 }
        let second = Task { try await batcher.embed(texts: [ids[1]]) }
        try await eventually("the second request queued") { batcher.queueDepths()["text"] == 1 }
        second.cancel()
        await #expect(throws: CancellationError.self) { _ = try await second.value }
        #expect(batcher.queueDepths()["text"] == 0)
        gate.open()
        expectClose(try await first.value, try pipeline.embed(texts: ["first"]))
        // Cancelled before it was even queued.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await batcher.embed(texts: [ids[1]])
        }
        await #expect(throws: CancellationError.self) { _ = try await early.value }
        expectClose(try await batcher.embed(texts: [ids[1]]), try pipeline.embed(texts: ["second"]))
    }

    @Test func shutdownFailsWaitersAndRefusesNewWork() async throws {
        let pipeline = try TestServer.pipeline()
        let gate = Gate()
        let batcher = DynamicBatcher(engine: gate.engine(pipeline), maxBatch: 1, maxWaitMilliseconds: 0, queueCapacity: 8,
                                     metrics: ServerMetrics())
        let ids = try pipeline.tokenize(["a", "b"])
        let first = Task { try await batcher.embed(texts: [ids[0]]) }
        try await eventually("the worker holding the first batch") { gate.enteredCount == 1 }
        let queued = Task { try await batcher.embed(texts: [ids[1]]) }
        try await eventually("the second request queued") { batcher.queueDepths()["text"] == 1 }
        batcher.shutdown()
        await #expect(throws: ServerError.self) { _ = try await queued.value }
        await #expect(throws: ServerError.self) { _ = try await batcher.embed(texts: [ids[1]]) }
        gate.open()
        _ = try await first.value  // the batch in the encoder still completes
    }

    @Test func encoderFailureFailsOnlyItsBatch() async throws {
        let pipeline = try TestServer.pipeline()
        var engine = EmbeddingEngine.pipeline(pipeline)
        let real = engine.encodeTexts
        engine.encodeTexts = { ids in
            if ids.contains(where: { $0.count > 5 }) { throw PipelineError.invalidArgument("too long for this test") }
            return try real(ids)
        }
        let batcher = DynamicBatcher(engine: engine, maxBatch: 8, maxWaitMilliseconds: 0, queueCapacity: 8, metrics: ServerMetrics())
        let long = try pipeline.tokenize(["a long text that has many tokens"])[0], short = try pipeline.tokenize(["cat"])[0]
        await #expect(throws: ServerError.self) { _ = try await batcher.embed(texts: [long]) }
        expectClose(try await batcher.embed(texts: [short]), try pipeline.embed(texts: ["cat"]))
    }
}
