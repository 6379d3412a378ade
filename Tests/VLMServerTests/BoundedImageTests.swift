import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// Issue 15 on `/v1/embeddings`: an image of extreme shape is answered 200 in bounded time (it aborted the
/// server), and a data URL sent as a plain input string is embedded as the image it is, not as text.
@Suite struct BoundedImageTests {
    static func solidDataURL(width: Int, height: Int) throws -> String {
        let png = try ImageEncoder.solidPNG(width: width, height: height, rgb: (40, 120, 200))
        return "data:image/png;base64," + png.base64EncodedString()
    }

    @Test(arguments: [(600_000, 4), (4, 600_000)])
    func extremeShapeImageIsEmbedded(width: Int, height: Int) async throws {
        let url = try Self.solidDataURL(width: width, height: height)
        let pipeline = try TestServer.pipeline()
        let expected = try pipeline.embed(images: [ImageDecoder.decode(
            try #require(Data(base64Encoded: String(url.dropFirst("data:image/png;base64,".count)))),
            alpha: .compositeOnWhite)])
        // Cost bounded by the pixels, not the shape: the extreme image may take at most a few times what an
        // ordinary image of the same pixel count takes in the same run (before the fix it took 52 s and 14.7 GB).
        // Relative, so a loaded machine slows both alike; debug builds run the C decoders unoptimised.
        let side = Int(Double(width * height).squareRoot())
        let ordinary = try Self.solidDataURL(width: side, height: side)
        try await TestServer.withApp(pipeline: pipeline) { client in
            var start = Date()
            let baseline = try await client.post("/v1/embeddings", object: ["input": ["image": ordinary]])
            let baselineSeconds = Date().timeIntervalSince(start)
            #expect(baseline.status == .ok, "\(baseline.text)")
            start = Date()
            let r = try await client.post("/v1/embeddings", object: ["input": ["image": url]])
            let seconds = Date().timeIntervalSince(start)
            #expect(r.status == .ok, "\(r.text)")
            expectClose(try r.embeddings(), expected)
            #expect(seconds < max(2, 4 * baselineSeconds), "\(width)x\(height): \(seconds) s, \(side)x\(side): \(baselineSeconds) s")
        }
    }

    /// `"input": "data:image/png;base64,..."` (alone or in an array of strings) is the image, in input order.
    @Test func dataURLStringsAreImages() async throws {
        let pipeline = try TestServer.pipeline()
        let png = try TestServer.dataURL("coffee.png"), jpeg = try TestServer.dataURL("chelsea.jpg")
        let image = try pipeline.embed(images: [TestServer.decoded("coffee.png"), TestServer.decoded("chelsea.jpg")])
        let text = try pipeline.embed(texts: ["a cat", "data: image/png is how a PNG data URL starts"])
        try await TestServer.withApp(pipeline: pipeline) { client in
            let one = try await client.post("/v1/embeddings", object: ["input": png])
            #expect(one.status == .ok, "\(one.text)")
            expectClose(try one.embeddings(), [image[0]])
            let mixed = try await client.post("/v1/embeddings", object: [
                "input": ["a cat", "  " + jpeg.uppercasingScheme, "data: image/png is how a PNG data URL starts"],
            ])
            #expect(mixed.status == .ok, "\(mixed.text)")
            expectClose(try mixed.embeddings(), [text[0], image[1], text[1]])
            // A data URL that is not a decodable image is a 400 about the image, not an embedded text.
            let bad = try await client.post("/v1/embeddings", object: ["input": "data:image/png;base64,AAAA"])
            #expect(bad.status == .badRequest, "\(bad.text)")
        }
    }
}

private extension String {
    /// "DATA:IMAGE/JPEG;BASE64,..." (scheme and media type are case-insensitive).
    var uppercasingScheme: String {
        guard let comma = firstIndex(of: ",") else { return self }
        return self[..<comma].uppercased() + self[comma...]
    }
}
