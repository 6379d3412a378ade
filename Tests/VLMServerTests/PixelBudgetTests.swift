import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// Issue 15's admission control: a request whose images together exceed the pixel budget is refused before any
/// of them is decoded (422), one that would exceed it while others hold it is answered 503 with Retry-After,
/// and the budget is returned when requests finish; chat requests carry at most --max-images images.
@Suite(.serialized) struct PixelBudgetTests {
    static func image(_ side: Int) throws -> [String: Any] {
        ["image": "data:image/png;base64," + (try ImageEncoder.solidPNG(width: side, height: side, rgb: (10, 200, 30))).base64EncodedString()]
    }

    @Test func imagesAreMeasuredBeforeDecodingAndTheBudgetIsShared() async throws {
        let config = TestServer.config {
            $0.maxImagePixels = 4_000_000
            $0.maxPixelsInFlight = 10_000_000
            $0.retryAfterSeconds = 3
        }
        let budget = config.pixelBudget
        try await TestServer.withApp(config) { client in
            // Four 2000x2000 images: each is allowed, together they are 16 M pixels > 10 M.
            let four = try Array(repeating: Self.image(2000), count: 4)
            let refused = try await client.post("/v1/embeddings", object: ["input": four])
            #expect(refused.status == .unprocessableContent, "\(refused.text)")
            #expect(refused.text.contains("--max-pixels-in-flight"), "\(refused.text)")
            #expect(budget.inUse == 0)
            // Another request holds 8 M pixels: two more images (8 M) must wait: 503 with Retry-After.
            let held = try budget.reserve(8_000_000, limit: config.maxPixelsInFlight, retryAfter: 3)
            let two = try Array(repeating: Self.image(2000), count: 2)
            let busy = try await client.post("/v1/embeddings", object: ["input": two])
            #expect(busy.status == .serviceUnavailable, "\(busy.text)")
            #expect(busy.headers[.retryAfter] == "3")
            held.release()
            let served = try await client.post("/v1/embeddings", object: ["input": two])
            #expect(served.status == .ok, "\(served.text)")
            #expect(budget.inUse == 0, "\(budget.inUse) pixels still reserved after the request")
        }
    }

    @Test func chatRequestsCarryAtMostMaxImages() async throws {
        let dir = GenerativeFixtures.llava
        let url = try ChatTestServer.imageURL()
        try await ChatTestServer.withApp(ChatTestServer.config(dir) { $0.maxImagesPerRequest = 2 }) { client in
            let content: [[String: Any]] = Array(repeating: ["type": "image_url", "image_url": ["url": url]], count: 3)
                + [["type": "text", "text": "compare"]]
            let r = try await client.post("/v1/chat/completions", object: [
                "max_tokens": 2, "messages": [["role": "user", "content": content]],
            ])
            #expect(r.status == .badRequest, "\(r.text)")
            #expect(r.text.contains("--max-images"), "\(r.text)")
        }
    }
}
