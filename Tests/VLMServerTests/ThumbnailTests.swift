import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import VLMImage
import VLMTestSupport
@testable import VLMServer

/// `GET /v1/index/{id}/thumbnail`: a small JPEG of any indexed format, cached next to the index, made again
/// when the file changes, and nothing outside the roots.
@Suite(.serialized) struct ThumbnailTests {
    /// Adds the library's root (plus a HEIC photo) and returns path -> search hit.
    func addAndSearch(_ client: any TestClientProtocol) async throws -> [String: [String: Any]] {
        let added = try await client.addRoot()
        #expect(added.status == .ok, "\(added.text)")
        let hits = try await client.post("/v1/search", object: ["query": "a photo", "top_k": 10]).items()
        return Dictionary(uniqueKeysWithValues: hits.compactMap { hit in (hit["path"] as? String).map { ($0, hit) } })
    }

    func decoded(_ r: TestResponse) throws -> RGBImage {
        try ImageDecoder.decode(Data(r.body.readableBytesView), exifTranspose: false)
    }

    @Test func smallJPEGCachedAndRevalidated() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try FileManager.default.copyItem(at: Fixtures.url("images/formats/photo.heic"), to: lib.root.appendingPathComponent("photo.heic"))
        try await TestServer.withApp(lib.config()) { client in
            let hits = try await addAndSearch(client)
            for name in ["chelsea.jpg", "coffee.png", "photo.heic"] {
                let hit = try #require(hits[name], "\(name) not found: \(hits.keys)")
                let url = try #require(hit["thumbnail"] as? String)
                let id = try #require(hit["id"] as? Int)
                #expect(url == "/v1/index/\(id)/thumbnail")
                let r = try await client.get(url)
                #expect(r.status == .ok, "\(name): \(r.text)")
                #expect(r.headers[.contentType] == "image/jpeg")
                #expect(r.headers[.cacheControl] == "private, no-cache")
                let thumb = try decoded(r)
                let original = try ImageDecoder.load(lib.root.appendingPathComponent(name))
                // Longest edge 256 (never enlarged), the aspect ratio kept to the rounding of one pixel.
                #expect(max(thumb.width, thumb.height) == min(256, max(original.width, original.height)), "\(name): \(thumb.width)x\(thumb.height)")
                let expected = Thumbnail.size(width: original.width, height: original.height, maxEdge: 256)
                #expect(thumb.width == expected.width && thumb.height == expected.height)
                #expect(r.body.readableBytes < 40_000, "\(name): \(r.body.readableBytes) bytes")
                // Cached next to the index, one file per entry; revalidation by ETag answers 304 without a body.
                let folder = URL(fileURLWithPath: lib.index.path + ".thumbnails/\(id)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".jpg") }.count == 1)
                let etag = try #require(r.headers[.eTag])
                let again = try await client.get(url, headers: [.ifNoneMatch: etag])
                #expect(again.status == .notModified && again.body.readableBytes == 0)
                let cached = try await client.get(url)
                #expect(cached.status == .ok && cached.headers[.eTag] == etag && cached.body == r.body)
            }
        }
    }

    @Test func aChangedFileGetsANewThumbnail() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let hits = try await addAndSearch(client)
            let url = try #require(hits["chelsea.jpg"]?["thumbnail"] as? String)
            let before = try await client.get(url)
            #expect(before.status == .ok)
            let first = try decoded(before)
            // The photo is replaced (another picture, another size) without re-indexing.
            let file = lib.root.appendingPathComponent("chelsea.jpg")
            let other = try ImageDecoder.load(Fixtures.url("clip/images/astronaut.jpg"))
            try ImageEncoder.jpeg(width: other.width, height: other.height, rgb: other.pixels).write(to: file)
            let after = try await client.get(url, headers: [.ifNoneMatch: try #require(before.headers[.eTag])])
            #expect(after.status == .ok, "\(after.status)")
            #expect(after.headers[.eTag] != before.headers[.eTag])
            let second = try decoded(after)
            let expected = Thumbnail.size(width: other.width, height: other.height, maxEdge: 256)
            #expect(second.width == expected.width && second.height == expected.height)
            #expect(first.width != expected.width || first.height != expected.height)
            let id = try #require(hits["chelsea.jpg"]?["id"] as? Int)
            let folder = lib.index.path + ".thumbnails/\(id)"
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".jpg") }.count == 1)
        }
    }

    @Test func thumbnailSizeAndDirectoryAreConfigurable() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        let cache = lib.base.appendingPathComponent("cache")
        try await TestServer.withApp(lib.config { $0.thumbnailEdge = 64; $0.thumbnailDirectory = cache }) { client in
            let hits = try await addAndSearch(client)
            let r = try await client.get(try #require(hits["coffee.png"]?["thumbnail"] as? String))
            let thumb = try decoded(r)
            #expect(max(thumb.width, thumb.height) == 64)
            #expect(FileManager.default.fileExists(atPath: cache.appendingPathComponent("\(try #require(hits["coffee.png"]?["id"] as? Int))").path))
        }
    }

    @Test func nothingOutsideTheRootsGetsAThumbnail() async throws {
        let h = try IndexSafetyTests.Hostile()
        defer { h.lib.remove() }
        try await TestServer.withApp(h.lib.config()) { client in
            for key in ["secret", "dotdot", "evil", "linkdir", "gone"] {
                let id = try #require(h.ids[key])
                let r = try await client.get("/v1/index/\(id)/thumbnail")
                try ErrorTests.expectError(r, .notFound, "index_entry_not_found")
                #expect(!FileManager.default.fileExists(atPath: h.lib.index.path + ".thumbnails/\(id)"), "\(key)")
            }
            #expect(try await client.get("/v1/index/\(try #require(h.ids["good"]))/thumbnail").status == .ok)
            for uri in ["/v1/index/..%2F..%2Fetc%2Fpasswd/thumbnail", "/v1/index/1/thumbnail/../../../etc/passwd",
                        "/v1/index/0/thumbnail", "/v1/index/-1/thumbnail", "/v1/index/999999/thumbnail"] {
                let r = try await client.get(uri)
                #expect(r.status == .notFound, "\(uri): \(r.status)")
                #expect(!r.text.contains("root:"))
            }
        }
    }
}
