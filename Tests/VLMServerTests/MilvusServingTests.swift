import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import VLMIndex
import VLMMilvus
import VLMTestSupport
import XCTest
@testable import VLMServer

/// `vlm serve --index milvus://...` as the executable wires it (an `IndexBackendSpec` opening a `MilvusIndex`),
/// against a real Milvus (VLM_TEST_MILVUS; skipped visibly without one): two server replicas over one
/// collection — what one adds, the other finds, serves and deletes; search scores are the pipeline's cosines.
final class MilvusServingTests: XCTestCase {
    var uri: MilvusURI!

    override func setUpWithError() throws {
        switch MilvusTestServer.address() {
        case .failure(let reason): throw XCTSkip(reason.message)
        case .success(let (host, port)): uri = MilvusURI(host: host, port: port, collection: MilvusTestServer.collectionName("vlmserve"))
        }
    }

    override func tearDownWithError() throws {
        if let uri { try? MilvusIndex.drop(uri: uri) }
    }

    /// A replica's configuration: the Milvus collection, the library's root, a shared uploads directory.
    func config(_ lib: IndexLibrary) -> ServerConfig {
        let uri = self.uri!
        return TestServer.config {
            $0.indexBackend = IndexBackendSpec(name: uri.description, defaultUploads: lib.base.appendingPathComponent("unused")) { identity in
                try MilvusIndex.open(uri: uri, model: identity)
            }
            $0.indexRoots = [lib.root]
            $0.uploadsDirectory = lib.base.appendingPathComponent("uploads")
        }
    }

    /// Runs two in-process servers at once (two replicas) over the same collection.
    func withReplicas(_ lib: IndexLibrary, pipeline: EmbeddingPipeline,
                      _ body: @escaping @Sendable (any TestClientProtocol, any TestClientProtocol) async throws -> Void) async throws {
        let a = try buildApplication(config: config(lib), pipeline: pipeline, engine: .pipeline(pipeline))
        let b = try buildApplication(config: config(lib), pipeline: pipeline, engine: .pipeline(pipeline))
        try await a.test(.router) { clientA in
            try await b.test(.router) { clientB in try await body(clientA, clientB) }
        }
    }

    /// Polls `request` until `done` holds (another replica's writes become visible within Milvus's bounded
    /// staleness), 30 s at most; returns the last response.
    static func eventually(_ request: () async throws -> TestResponse, until done: (TestResponse) throws -> Bool) async throws -> TestResponse {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let r = try await request()
            if try done(r) || Date() > deadline { return r }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
    }

    func testTwoReplicasShareOneCollection() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        let files = ["chelsea.jpg", "coffee.png", "sub/astronaut.jpg"]
        let imageVectors = try pipeline.embed(imageFiles: files.map { lib.root.appendingPathComponent($0) })
        let text = try pipeline.embed(texts: ["a photo of a cat"])[0]
        let expected = files.indices.map { (files[$0], dot(text, imageVectors[$0])) }.sorted { $0.1 > $1.1 }
        let bytes = try TestServer.imageData("coffee.png")

        try await withReplicas(lib, pipeline: pipeline) { a, b in
            // Replica A adds the root by path.
            let added = try await a.addRoot()
            XCTAssertEqual(added.status, .ok, added.text)
            XCTAssertEqual(try added.items().map { $0["path"] as? String }, files)
            XCTAssertEqual(try added.json()["index_size"] as? Int, 3)

            // Replica B finds them, ranked and scored as the pipeline's cosines, with URLs it can serve.
            let search = { try await b.post("/v1/search", object: ["query": "a photo of a cat", "top_k": 3]) }
            let found = try await Self.eventually(search) { try $0.items().count == 3 }
            let hits = try found.items()
            XCTAssertEqual(hits.map { $0["path"] as? String }, expected.map(\.0))
            for (hit, exp) in zip(hits, expected) {
                XCTAssertEqual(Float((hit["score"] as? Double) ?? 9), exp.1, accuracy: 1e-4)
            }
            let first = try XCTUnwrap(hits.first?["id"] as? Int)
            let image = try await b.get("/v1/index/\(first)/image")
            XCTAssertEqual(image.status, .ok)
            XCTAssertEqual(Data(image.body.readableBytesView), try Data(contentsOf: lib.root.appendingPathComponent(expected[0].0)))

            // B takes an upload; A finds it by image (cosine 1) and deletes it; B no longer finds it.
            let upload = try await b.post("/v1/index", object: ["images": [["image": try TestServer.dataURL("coffee.png"), "name": "mug.png"]]])
            XCTAssertEqual(upload.status, .ok, upload.text)
            let id = try XCTUnwrap(try upload.items().first?["id"] as? Int)
            let byImage = { try await a.post("/v1/search", object: ["query": ["image": try TestServer.dataURL("coffee.png")], "top_k": 4]) }
            let seen = try await Self.eventually(byImage) { try $0.items().contains { $0["id"] as? Int == id } }
            let hit = try XCTUnwrap(try seen.items().first { $0["id"] as? Int == id })
            XCTAssertEqual(hit["name"] as? String, "mug.png")
            XCTAssertEqual((hit["score"] as? Double) ?? 0, 1, accuracy: 1e-4)
            let served = try await a.get("/v1/index/\(id)/image")
            XCTAssertEqual(Data(served.body.readableBytesView), bytes)
            let deleted = try await a.delete("/v1/index/\(id)")
            XCTAssertEqual(deleted.status, .ok, deleted.text)
            let gone = try await Self.eventually(byImage) { try !$0.items().contains { $0["id"] as? Int == id } }
            XCTAssertFalse(try gone.items().contains { $0["id"] as? Int == id })
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: lib.base.appendingPathComponent("uploads").path), [])

            // /healthz names the collection (no credentials) and follows the other replica's writes.
            let health = { try await b.get("/healthz") }
            let h = try await Self.eventually(health) { (try $0.json()["index"] as? [String: Any])?["size"] as? Int == 3 }
            let index = try XCTUnwrap(try h.json()["index"] as? [String: Any])
            XCTAssertEqual(index["path"] as? String, self.uri.description)
            XCTAssertEqual(index["size"] as? Int, 3)
        }
    }

    /// A collection made by another model is refused when the server starts, naming both.
    func testAnotherModelsCollectionIsRefusedAtStart() throws {
        let other = try MilvusIndex.open(uri: uri, model: ModelIdentity(fingerprint: "another-model/abcd/\(try TestServer.pipeline().model.embeddingDim)",
                                                                             dim: try TestServer.pipeline().model.embeddingDim))
        try other.add(MilvusServingTests.oneRecord(dim: other.identity.dim))
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        XCTAssertThrowsError(try buildApplication(config: config(lib), pipeline: pipeline, engine: .pipeline(pipeline))) { error in
            XCTAssertTrue("\(error)".contains("another-model"), "\(error)")
        }
    }

    static func oneRecord(dim: Int) -> [FileRecord] {
        var v = [Float](repeating: 0, count: dim)
        v[0] = 1
        return [FileRecord(stat: FileStat(path: "/x/a.jpg", size: 1, mtime: 0), contentHash: String(repeating: "0", count: 64), vector: v)]
    }
}
