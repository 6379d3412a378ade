import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMIndex
import VLMTestSupport
@testable import VLMServer

/// Every error status of the index endpoints, auth on the mutating routes, and the file-system boundary:
/// nothing outside the roots is read or served, whatever the id, path or symlink.
@Suite(.serialized) struct IndexSafetyTests {
    @Test func badRequestsAre400() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let cases: [(String, String, String)] = [
                ("/v1/search", #"{"query": "a cat""#, "malformed_json"),
                ("/v1/search", "", "malformed_json"),
                ("/v1/search", #"{"top_k": 3}"#, "malformed_json"),
                ("/v1/search", #"{"query": 42}"#, "malformed_json"),
                ("/v1/search", #"{"query": "a", "top_k": "ten"}"#, "malformed_json"),
                ("/v1/search", #"{"query": "a", "top_k": 0}"#, "invalid_request"),
                ("/v1/search", #"{"query": "a", "top_k": 100000}"#, "invalid_request"),
                ("/v1/search", #"{"query": "   "}"#, "invalid_request"),
                ("/v1/search", #"{"query": {}}"#, "invalid_request"),
                ("/v1/search", #"{"query": {"image": "%%% not base64 %%%"}}"#, "invalid_base64"),
                ("/v1/search", #"{"query": {"image": "aGVsbG8gd29ybGQ="}}"#, "invalid_image"),
                ("/v1/search", #"{"query": {"image_url": "http://169.254.169.254/x.png"}}"#, "invalid_request"),
                ("/v1/index", #"{"images": ["#, "malformed_json"),
                ("/v1/index", #"{}"#, "invalid_request"),
                ("/v1/index", #"{"images": [{"name": "x"}]}"#, "malformed_json"),
                ("/v1/index", #"{"images": ["aGVsbG8gd29ybGQ="]}"#, "invalid_image"),
                ("/v1/index", #"{"images": [{"image": "data:image/png,raw"}]}"#, "invalid_base64"),
                ("/v1/index", #"{"paths": ["no-such-file.jpg"]}"#, "invalid_request"),
            ]
            for (uri, body, code) in cases {
                try ErrorTests.expectError(try await client.post(uri, json: body), .badRequest, code)
            }
            // "a" minus "a" has no direction.
            try ErrorTests.expectError(try await client.post("/v1/search", object: ["query": "a", "minus": ["a"]]), .badRequest, "invalid_request")
            // A bad item anywhere fails the whole request: nothing is added.
            let mixed = try await client.post("/v1/index", object: ["images": [try TestServer.dataURL("coffee.png"), "aGVsbG8gd29ybGQ="]])
            try ErrorTests.expectError(mixed, .badRequest, "invalid_image")
            #expect(mixed.text.contains("images[1]"))
            #expect(try await client.get("/healthz").json()["index"].flatMap { ($0 as? [String: Any])?["size"] as? Int } == 0)
            try ErrorTests.expectError(try await client.post("/v1/search", object: ["model": "other", "query": "a"]), .notFound, "model_not_found")
        }
    }

    @Test func limitsAre413And422() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        // chelsea.jpg is 150x100 = 15000 pixels; astronaut.jpg 64x64.
        try await TestServer.withApp(lib.config { $0.maxImagePixels = 10_000 }) { client in
            let chelsea = try TestServer.dataURL("chelsea.jpg")
            try ErrorTests.expectError(try await client.post("/v1/search", object: ["query": ["image": chelsea]]), .unprocessableContent, "image_too_large")
            try ErrorTests.expectError(try await client.post("/v1/index", object: ["images": [chelsea]]), .unprocessableContent, "image_too_large")
            try ErrorTests.expectError(try await client.post("/v1/index", object: ["paths": ["chelsea.jpg"]]), .unprocessableContent, "image_too_large")
            #expect(try await client.post("/v1/index", object: ["paths": ["sub/astronaut.jpg"]]).status == .ok)
        }
        try await TestServer.withApp(lib.config { $0.maxBodyBytes = 1000 }) { client in
            let big = try TestServer.dataURL("chelsea.jpg")
            try ErrorTests.expectError(try await client.post("/v1/search", object: ["query": ["image": big]]), .contentTooLarge, "payload_too_large")
            try ErrorTests.expectError(try await client.post("/v1/index", object: ["images": [big]]), .contentTooLarge, "payload_too_large")
        }
    }

    @Test func unknownIdsAre404() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            for id in ["999", "0", "-1", "abc", "1e3", "99999999999999999999999"] {
                try ErrorTests.expectError(try await client.get("/v1/index/\(id)/image"), .notFound, "index_entry_not_found")
                try ErrorTests.expectError(try await client.delete("/v1/index/\(id)"), .notFound, "index_entry_not_found")
            }
        }
    }

    @Test func writesNeedTheKeyReadsDoNot() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config { $0.apiKey = "s3cret" }) { client in
            let bearer: HTTPFields = [.authorization: "Bearer s3cret"]
            try ErrorTests.expectError(try await client.addRoot(), .unauthorized, "invalid_api_key")
            try ErrorTests.expectError(try await client.addRoot(headers: [.authorization: "Bearer nope"]), .unauthorized, "invalid_api_key")
            let added = try await client.addRoot(headers: bearer)
            #expect(added.status == .ok)
            let id = try #require(try added.items().first?["id"] as? Int)
            try ErrorTests.expectError(try await client.delete("/v1/index/\(id)"), .unauthorized, "invalid_api_key")
            // Unauthorised requests learn nothing about ids: 401 before the lookup.
            try ErrorTests.expectError(try await client.delete("/v1/index/999"), .unauthorized, "invalid_api_key")
            #expect(try await client.post("/v1/search", object: ["query": "a cat"]).status == .ok)
            #expect(try await client.get("/v1/index/\(id)/image").status == .ok)
            #expect(try await client.delete("/v1/index/\(id)", headers: bearer).status == .ok)
        }
        try await TestServer.withApp(lib.config { $0.apiKey = "s3cret"; $0.protectReads = true }) { client in
            try ErrorTests.expectError(try await client.post("/v1/search", object: ["query": "a cat"]), .unauthorized, "invalid_api_key")
        }
    }

    @Test func withoutAnIndexTheRoutesSaySo() async throws {
        try await TestServer.withApp { client in
            let r = try await client.post("/v1/search", object: ["query": "a cat"])
            try ErrorTests.expectError(r, .notImplemented, "not_implemented")
            #expect(r.text.contains("--index"))
            try ErrorTests.expectError(try await client.post("/v1/index", object: ["paths": ["."]]), .notImplemented, "not_implemented")
        }
    }

    @Test func fullQueueIs503WithRetryAfter() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let pipeline = try TestServer.pipeline()
        let gate = Gate()
        let config = lib.config { $0.queueCapacity = 1; $0.maxBatch = 1; $0.maxWaitMilliseconds = 0; $0.retryAfterSeconds = 3 }
        try await TestServer.withApp(config, pipeline: pipeline, engine: gate.engine(pipeline)) { client in
            async let first = client.post("/v1/search", object: ["query": "first"])
            try await eventually("the worker holding the first batch") { gate.enteredCount == 1 }
            async let second = client.post("/v1/search", object: ["query": "second"])
            try await eventually("the second request queued") {
                (try await client.get("/healthz").json()["queue"] as? [String: Int])?["text"] == 1
            }
            let third = try await client.post("/v1/search", object: ["query": "third"])
            try ErrorTests.expectError(third, .serviceUnavailable, "queue_full")
            #expect(third.headers[.retryAfter] == "3")
            gate.open()
            let (a, b) = try await (first, second)
            #expect(a.status == .ok && b.status == .ok)
        }
    }

    // MARK: File-system boundary

    /// A library with an outside secret, a symlink in the root pointing at it, a symlinked directory leading
    /// outside, and index rows (written directly, as a tampered or stale index could hold them) for files
    /// outside the root, the symlink, and a file that vanished.
    struct Hostile {
        let lib: IndexLibrary
        let outside: URL
        var ids: [String: Int64] = [:]

        init() throws {
            lib = try IndexLibrary()
            outside = lib.base.appendingPathComponent("outside")
            try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Fixtures.url("clip/images/astronaut.jpg"), to: outside.appendingPathComponent("secret.jpg"))
            let fm = FileManager.default
            try fm.createSymbolicLink(atPath: lib.root.appendingPathComponent("evil.jpg").path, withDestinationPath: outside.appendingPathComponent("secret.jpg").path)
            try fm.createSymbolicLink(atPath: lib.root.appendingPathComponent("linkdir").path, withDestinationPath: outside.path)
            try fm.copyItem(at: Fixtures.url("clip/images/coffee.png"), to: lib.root.appendingPathComponent("gone.png"))
            let inside = lib.root.appendingPathComponent("sub/inner")
            try fm.createDirectory(at: inside, withIntermediateDirectories: true)
            // A symlink inside the root pointing at another file inside the root is fine.
            try fm.createSymbolicLink(atPath: inside.appendingPathComponent("alias.jpg").path,
                                      withDestinationPath: lib.root.appendingPathComponent("chelsea.jpg").path)

            let pipeline = try TestServer.pipeline()
            let index = try SearchIndex(path: lib.index.path, model: pipeline.indexIdentity())
            let rows: [(String, String)] = [
                ("secret", outside.appendingPathComponent("secret.jpg").path),
                ("dotdot", lib.root.path + "/../outside/secret.jpg"),
                ("evil", lib.root.appendingPathComponent("evil.jpg").path),
                ("linkdir", lib.root.appendingPathComponent("linkdir/secret.jpg").path),
                ("gone", lib.root.appendingPathComponent("gone.png").path),
                ("good", lib.root.appendingPathComponent("chelsea.jpg").path),
            ]
            var vector = [Float](repeating: 0, count: 12)
            vector[0] = 1
            try index.add(rows.map { FileRecord(stat: FileStat(path: $1, size: 1, mtime: 1), contentHash: "x", vector: vector) })
            for (key, path) in rows { ids[key] = try index.store.file(path: path)?.fileID }
            try fm.removeItem(at: lib.root.appendingPathComponent("gone.png"))
        }
    }

    @Test func nothingOutsideTheRootsIsServed() async throws {
        let h = try Hostile()
        defer { h.lib.remove() }
        try await TestServer.withApp(h.lib.config()) { client in
            for key in ["secret", "dotdot", "evil", "linkdir", "gone"] {
                let id = try #require(h.ids[key])
                let r = try await client.get("/v1/index/\(id)/image")
                try ErrorTests.expectError(r, .notFound, "index_entry_not_found")
            }
            #expect(try await client.get("/v1/index/\(try #require(h.ids["good"]))/image").status == .ok)
            // Search shows no server path and offers no URL for rows outside the roots.
            let hits = try await client.post("/v1/search", object: ["query": "x", "top_k": 10]).items()
            #expect(hits.count == 6)
            for hit in hits {
                let path = try #require(hit["path"] as? String)
                #expect(!path.hasPrefix("/") && !path.contains(".."), "\(path)")
                if hit["id"] as? Int == Int(h.ids["secret"] ?? 0) || hit["id"] as? Int == Int(h.ids["dotdot"] ?? 0) {
                    #expect(hit["url"] == nil)
                }
            }
            // Route-level traversal attempts never reach a handler with a path.
            for uri in ["/v1/index/..%2F..%2Fetc%2Fpasswd/image", "/v1/index/../../etc/passwd", "/v1/index/1/../../../etc/passwd"] {
                let r = try await client.get(uri)
                #expect(r.status == .notFound, "\(uri): \(r.status)")
                #expect(!r.text.contains("root:"))
            }
        }
    }

    @Test func pathsOutsideTheRootsAreRefused() async throws {
        let h = try Hostile()
        defer { h.lib.remove() }
        try await TestServer.withApp(h.lib.config()) { client in
            let refused = ["/etc/passwd", "../outside/secret.jpg", h.outside.appendingPathComponent("secret.jpg").path, "evil.jpg",
                           "linkdir", "linkdir/secret.jpg", "sub/../../outside/secret.jpg", "/", h.lib.base.path, "", "gone.png"]
            for path in refused {
                let r = try await client.post("/v1/index", object: ["paths": [path]])
                try ErrorTests.expectError(r, .badRequest, "invalid_request")
                #expect(r.text.contains("not a file or directory under the index roots"), "\(path): \(r.text)")
            }
            // Walking the root skips the links that lead outside; the in-root alias is kept.
            let added = try await client.post("/v1/index", object: ["paths": ["."]])
            #expect(added.status == .ok, "\(added.text)")
            let paths = try added.items().compactMap { $0["path"] as? String }.sorted()
            #expect(paths == ["chelsea.jpg", "coffee.png", "sub/astronaut.jpg", "sub/inner/alias.jpg"])
        }
    }

    @Test func rootsAreContainedLexicallyAndForReal() throws {
        let roots = try IndexRoots(roots: [URL(fileURLWithPath: "/tmp")], uploads: TestScratch.root)
        #expect(roots.locate("/tmp/a/b.jpg")?.relative == "a/b.jpg")
        #expect(roots.locate("/tmpfoo/b.jpg") == nil)
        #expect(roots.locate("/tmp/../etc/passwd") == nil)
        #expect(!roots.contains(real: "/tmpfoo/b.jpg"))
        #expect(!roots.contains(real: "/etc/passwd"))
        #expect(IndexService.cleanName("../../etc/passwd") == "passwd")
        #expect(IndexService.cleanName("a\u{0}b\nc.jpg") == "abc.jpg")
        #expect(IndexService.cleanName(" / ") == nil)
    }
}
