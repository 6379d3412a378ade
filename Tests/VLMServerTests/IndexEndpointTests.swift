import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMIndex
import VLMTestSupport
@testable import VLMServer

/// A temporary photo library (a --root with the fixture photos) and an index path next to it.
struct IndexLibrary {
    let base: URL
    let root: URL
    let index: URL

    init() throws {
        base = TestScratch.root.appendingPathComponent("vlm-serve-index-\(UUID().uuidString)")
        root = base.appendingPathComponent("photos")
        index = base.appendingPathComponent("index.sqlite")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for name in ["chelsea.jpg", "coffee.png"] {
            try FileManager.default.copyItem(at: Fixtures.url("clip/images/\(name)"), to: root.appendingPathComponent(name))
        }
        try FileManager.default.copyItem(at: Fixtures.url("clip/images/astronaut.jpg"), to: root.appendingPathComponent("sub/astronaut.jpg"))
    }

    var uploads: URL { URL(fileURLWithPath: index.path + ".uploads") }

    func config(_ edit: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
        TestServer.config {
            $0.indexPath = index
            $0.indexRoots = [root]
            edit(&$0)
        }
    }

    func remove() { try? FileManager.default.removeItem(at: base) }
}

extension TestClientProtocol {
    func delete(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await executeRequest(uri: uri, method: .delete, headers: headers, body: nil)
    }

    /// Adds the library's root (all three photos) through the API.
    func addRoot(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await post("/v1/index", object: ["paths": ["."]], headers: headers)
    }
}

extension TestResponse {
    /// `data` of a list response.
    func items() throws -> [[String: Any]] {
        guard let data = try json()["data"] as? [[String: Any]] else { throw TestFailure("no data: \(text)") }
        return data
    }
}

final class Box: @unchecked Sendable { var id = 0 }

func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

/// The index endpoints against the pipeline's own numbers.
@Suite(.serialized) struct IndexEndpointTests {
    @Test func addByPathThenSearchByTextImageAndArithmetic() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        let files = ["chelsea.jpg", "coffee.png", "sub/astronaut.jpg"]
        let imageVectors = try pipeline.embed(imageFiles: files.map { lib.root.appendingPathComponent($0) })
        try await TestServer.withApp(lib.config(), pipeline: pipeline) { client in
            let added = try await client.addRoot()
            #expect(added.status == .ok, "\(added.text)")
            let items = try added.items()
            #expect(items.map { $0["path"] as? String } == files)
            #expect(items.allSatisfy { $0["status"] as? String == "added" })
            #expect(try added.json()["index_size"] as? Int == 3)
            let again = try await client.addRoot()
            #expect(try again.items().allSatisfy { $0["status"] as? String == "unchanged" })
            #expect(try again.items().map { $0["id"] as? Int } == items.map { $0["id"] as? Int })

            // Text query: scores are the cosine of the pipeline's embeddings, best first.
            let r = try await client.post("/v1/search", object: ["query": ["text": "a photo of a cat"], "top_k": 3])
            #expect(r.status == .ok, "\(r.text)")
            let hits = try r.items()
            let text = try pipeline.embed(texts: ["a photo of a cat"])[0]
            let expected = files.indices.map { (files[$0], dot(text, imageVectors[$0])) }.sorted { $0.1 > $1.1 }
            #expect(hits.map { $0["path"] as? String } == expected.map(\.0))
            for (hit, exp) in zip(hits, expected) {
                #expect(abs(Float((hit["score"] as? Double) ?? 9) - exp.1) < 1e-4)
                #expect((hit["url"] as? String) == "/v1/index/\(hit["id"] as? Int ?? -1)/image")
            }
            #expect(try r.json()["strategy"] as? String == "exact")

            // Bare-string query, top_k and min_score.
            let one = try await client.post("/v1/search", object: ["query": "a photo of a cat", "top_k": 1])
            #expect(try one.items().map { $0["path"] as? String } == [expected[0].0])
            let filtered = try await client.post("/v1/search", object: ["query": "a photo of a cat", "min_score": expected[1].1 - 1e-5])
            #expect(try filtered.items().count == 2)

            // Image query: the same photo is the best hit with cosine 1.
            let byImage = try await client.post("/v1/search", object: ["query": ["image": try TestServer.dataURL("coffee.png")], "top_k": 1])
            let top = try #require(try byImage.items().first)
            #expect(top["path"] as? String == "coffee.png")
            #expect(abs(((top["score"] as? Double) ?? 0) - 1) < 1e-4)

            // Arithmetic: image + "red" - "blurry", as QueryMath combines the pipeline's vectors.
            let plusMinus = try await client.post("/v1/search", object: [
                "query": ["image": try TestServer.dataURL("chelsea.jpg")], "plus": ["red"], "minus": ["blurry"], "top_k": 3])
            #expect(plusMinus.status == .ok, "\(plusMinus.text)")
            let img = try pipeline.embed(images: [try TestServer.decoded("chelsea.jpg")])[0]
            let q = try QueryMath.combine([(img, 1), (try pipeline.embed(texts: ["red"])[0], 1), (try pipeline.embed(texts: ["blurry"])[0], -1)])
            let want = files.indices.map { (files[$0], dot(q, imageVectors[$0])) }.sorted { $0.1 > $1.1 }
            let got = try plusMinus.items()
            #expect(got.map { $0["path"] as? String } == want.map(\.0))
            for (hit, exp) in zip(got, want) { #expect(abs(Float((hit["score"] as? Double) ?? 9) - exp.1) < 1e-4) }
        }
    }

    @Test func healthzAndMetricsReportTheIndex() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        try await TestServer.withApp(lib.config(), pipeline: pipeline) { client in
            _ = try await client.addRoot()
            let health = try await client.get("/healthz").json()
            let index = try #require(health["index"] as? [String: Any])
            #expect(index["size"] as? Int == 3)
            #expect(index["model"] as? String == pipeline.indexIdentity().fingerprint)
            #expect(index["path"] as? String == "index.sqlite")
            _ = try await client.post("/v1/search", object: ["query": "a dog"])
            let samples = try parsePrometheus(try await client.get("/metrics").text)
            #expect(samples.contains { $0.series == "vlm_index_size" && $0.value == 3 })
            #expect(samples.contains { $0.series == #"vlm_http_request_duration_seconds_count{route="/v1/search",method="POST"}"# && $0.value == 1 })
        }
    }

    @Test func imageRouteServesTheFileWithETag() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let items = try await client.addRoot().items()
            let coffee = try #require(items.first { $0["path"] as? String == "coffee.png" })
            let url = try #require(coffee["url"] as? String)
            let r = try await client.get(url)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "image/png")
            #expect(Data(r.body.readableBytesView) == (try Data(contentsOf: lib.root.appendingPathComponent("coffee.png"))))
            let etag = try #require(r.headers[.eTag])
            let cached = try await client.get(url, headers: [.ifNoneMatch: etag])
            #expect(cached.status == .notModified)
            let jpeg = try await client.get(try #require(items.first { $0["path"] as? String == "chelsea.jpg" }?["url"] as? String))
            #expect(jpeg.headers[.contentType] == "image/jpeg")
        }
    }

    /// Uploads land in the uploads directory (content-addressed), are served, survive a restart, and go away
    /// with DELETE (entry and file).
    @Test func uploadsAreStoredServedAndSurviveRestart() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        let bytes = try TestServer.imageData("chelsea.jpg")
        let box = Box()
        try await TestServer.withApp(lib.config(), pipeline: pipeline) { client in
            let r = try await client.post("/v1/index", object: ["images": [["image": try TestServer.dataURL("chelsea.jpg"), "name": "../holiday/cat.jpg"]]])
            #expect(r.status == .ok, "\(r.text)")
            let item = try #require(try r.items().first)
            #expect(item["status"] as? String == "added")
            #expect(item["name"] as? String == "cat.jpg")
            box.id = try #require(item["id"] as? Int)
            // The same bytes again (bare base64 this time): the same entry, unchanged.
            let again = try await client.post("/v1/index", object: ["images": [bytes.base64EncodedString()]])
            #expect(try again.items().first?["status"] as? String == "unchanged")
            #expect(try again.items().first?["id"] as? Int == box.id)
            #expect(try again.json()["index_size"] as? Int == 1)
        }
        let id = box.id
        let stored = try FileManager.default.contentsOfDirectory(atPath: lib.uploads.path)
        #expect(stored.count == 1 && stored[0].hasSuffix(".jpg"))
        #expect(try Data(contentsOf: lib.uploads.appendingPathComponent(stored[0])) == bytes)

        // A new server over the same index: the upload is still searchable and served.
        try await TestServer.withApp(lib.config(), pipeline: pipeline) { client in
            let r = try await client.post("/v1/search", object: ["query": ["image": try TestServer.dataURL("chelsea.jpg")], "top_k": 1])
            let hit = try #require(try r.items().first)
            #expect(hit["id"] as? Int == id)
            #expect(hit["name"] as? String == "cat.jpg")
            let image = try await client.get("/v1/index/\(id)/image")
            #expect(image.status == .ok)
            #expect(Data(image.body.readableBytesView) == bytes)

            let deleted = try await client.delete("/v1/index/\(id)")
            #expect(deleted.status == .ok, "\(deleted.text)")
            #expect(try deleted.json()["deleted"] as? Bool == true)
            #expect(try deleted.json()["index_size"] as? Int == 0)
            try ErrorTests.expectError(try await client.get("/v1/index/\(id)/image"), .notFound, "index_entry_not_found")
            try ErrorTests.expectError(try await client.delete("/v1/index/\(id)"), .notFound, "index_entry_not_found")
            #expect(try await client.post("/v1/search", object: ["query": "a cat"]).items().isEmpty)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: lib.uploads.path).isEmpty)
    }

    /// Deleting a file under a root removes the entry only; the user's file stays.
    @Test func deletingARootFileKeepsTheFile() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let items = try await client.addRoot().items()
            let coffee = try #require(items.first { $0["path"] as? String == "coffee.png" }?["id"] as? Int)
            #expect(try await client.delete("/v1/index/\(coffee)").status == .ok)
            let left = try await client.post("/v1/search", object: ["query": "coffee", "top_k": 10]).items()
            #expect(left.compactMap { $0["path"] as? String }.sorted() == ["chelsea.jpg", "sub/astronaut.jpg"])
        }
        #expect(FileManager.default.fileExists(atPath: lib.root.appendingPathComponent("coffee.png").path))
    }

    /// The page's search mode: healthz says there is an index, so the page posts to /v1/search.
    @Test func pageSearchesWhenThereIsAnIndex() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let page = try await client.get("/")
            #expect(page.text.contains("/v1/search"))
            #expect((try await client.get("/healthz").json()["index"] as? [String: Any]) != nil)
        }
    }
}

/// Writes and searches at the same time: every request succeeds and every search sees a consistent index
/// (each hit's id resolves to an entry with an image).
@Suite(.serialized) struct IndexConcurrencyTests {
    @Test func searchesRunWhileImagesAreAddedAndRemoved() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let uploads = try ["chelsea.jpg", "coffee.png", "astronaut.jpg"].map { try TestServer.dataURL($0) }
        try await TestServer.withApp(lib.config()) { client in
            #expect(try await client.addRoot().status == .ok)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for round in 0 ..< 3 {
                        let r = try await client.post("/v1/index", object: ["images": [uploads[round]]])
                        #expect(r.status == .ok, "\(r.text)")
                        let id = try #require(try r.items().first?["id"] as? Int)
                        #expect(try await client.delete("/v1/index/\(id)").status == .ok)
                    }
                }
                for i in 0 ..< 12 {
                    group.addTask {
                        let r = try await client.post("/v1/search", object: ["query": "query \(i)", "top_k": 10])
                        #expect(r.status == .ok, "\(r.text)")
                        let hits = try r.items()
                        #expect((3 ... 4).contains(hits.count))
                        #expect(hits.allSatisfy { $0["url"] is String })
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await client.get("/healthz").json()["index"].flatMap { ($0 as? [String: Any])?["size"] as? Int } == 3)
        }
    }
}
