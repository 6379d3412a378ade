import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import VLMIndex
import VLMMilvus
import VLMTestSupport
import XCTest
@testable import VLMServer

/// Many searches at once must all be answered, with each backend. Regression test of a stall: the Milvus
/// backend's synchronous wrapper blocked a libdispatch worker thread on a semaphore until a gRPC task ran, but on
/// Linux Swift's global executor runs its tasks on those same worker threads (a pool of 4 per core): with 32
/// searches in flight every worker waited and no task ever ran (0 requests answered in 20 s under wrk). The server
/// now calls the index through `AsyncVectorIndex` (Milvus natively async, SQLite on its own threads).
///
/// The searches run on a detached task; this test waits for them on its own thread (XCTest's main thread, not a
/// pool worker), so a stall fails the test after `deadline` instead of hanging it. The deadline bounds a stall
/// only (a run takes about a second); there is no timing assertion.
final class ConcurrentSearchTests: XCTestCase {
    static let concurrent = 128
    static let deadline: TimeInterval = 60

    func testConcurrentSearchesOnSQLiteAllComplete() throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try runConcurrentSearches(config: lib.config())
    }

    func testConcurrentSearchesOnMilvusAllComplete() throws {
        let uri: MilvusURI
        switch MilvusTestServer.address() {
        case .failure(let reason): throw XCTSkip(reason.message)
        case .success(let (host, port)): uri = MilvusURI(host: host, port: port, collection: MilvusTestServer.collectionName("vlmconc"))
        }
        defer { try? MilvusIndex.drop(uri: uri) }
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let config = TestServer.config {
            $0.indexBackend = IndexBackendSpec(name: uri.description, defaultUploads: lib.base.appendingPathComponent("unused")) { identity in
                try MilvusIndex.open(uri: uri, model: identity)
            }
            $0.indexRoots = [lib.root]
            $0.uploadsDirectory = lib.base.appendingPathComponent("uploads")
        }
        try runConcurrentSearches(config: config)
    }

    final class Progress: @unchecked Sendable {
        private let lock = NSLock()
        private var answered = 0
        var result: Result<[(HTTPResponse.Status, Int, String)], Error>?
        func tick() { lock.withLock { answered += 1 } }
        var count: Int { lock.withLock { answered } }
    }

    /// Indexes the library's 3 images, waits until a search finds them, then sends `concurrent` searches at once;
    /// every one must answer 200 with the 3 hits.
    func runConcurrentSearches(config: ServerConfig) throws {
        let pipeline = try TestServer.pipeline()
        let app = try buildApplication(config: config, pipeline: pipeline, engine: .pipeline(pipeline))
        let progress = Progress(), done = DispatchSemaphore(value: 0)
        let n = Self.concurrent
        let prompts = ["a photo of a cat", "a cup of coffee", "an astronaut", "a red car"]
        Task.detached {
            do {
                try await app.test(.router) { client in
                    let added = try await client.addRoot()
                    guard added.status == .ok else { throw TestFailure("add: \(added.status) \(added.text)") }
                    let probe = { try await client.post("/v1/search", object: ["query": "a photo", "top_k": 3]) }
                    _ = try await MilvusServingTests.eventually(probe) { try $0.items().count == 3 }
                    let answers = try await withThrowingTaskGroup(of: (HTTPResponse.Status, Int, String).self) { group in
                        for i in 0 ..< n {
                            group.addTask {
                                let r = try await client.post("/v1/search", object: ["query": prompts[i % prompts.count], "top_k": 3])
                                progress.tick()
                                return (r.status, (try? r.items().count) ?? -1, r.text)
                            }
                        }
                        var out: [(HTTPResponse.Status, Int, String)] = []
                        for try await a in group { out.append(a) }
                        return out
                    }
                    progress.result = .success(answers)
                }
            } catch {
                progress.result = .failure(error)
            }
            done.signal()
        }
        guard done.wait(timeout: .now() + Self.deadline) == .success else {
            return XCTFail("\(progress.count) of \(n) concurrent searches answered within \(Int(Self.deadline)) s: the server stalled")
        }
        let answers = try XCTUnwrap(progress.result).get()
        XCTAssertEqual(answers.count, n)
        for (status, hits, text) in answers {
            XCTAssertEqual(status, .ok, text)
            XCTAssertEqual(hits, 3, text)
        }
    }
}
