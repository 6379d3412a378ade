import Foundation
import Hummingbird
import SwiftVLM

/// Reading and validating what clients send: bounded bodies, JSON, base64 images.
enum RequestInput {
    /// The body, refused with 413 as soon as it passes `limit`: first from Content-Length (before reading
    /// anything), then while streaming (chunked bodies have no length), so at most `limit` bytes are held.
    static func body(of request: Request, limit: Int, timeout: Double = 120) async throws -> ByteBuffer {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw ServerError.payloadTooLarge(limit: limit)
        }
        var collected = ByteBuffer()
        // Checked as each chunk arrives: a client dribbling its body is cut off after `timeout` (plus at most the
        // connection's idle timeout, which closes it when no chunk comes at all).
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        for try await chunk in request.body {
            guard ContinuousClock.now <= deadline else { throw ServerError.requestTimeout(seconds: timeout) }
            guard chunk.readableBytes <= limit - collected.readableBytes else {
                throw ServerError.payloadTooLarge(limit: limit)
            }
            var chunk = chunk
            collected.writeBuffer(&chunk)
        }
        return collected
    }

    /// Decodes a JSON body; syntax and shape errors become 400 with the offending path.
    static func json<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        guard buffer.readableBytes > 0 else { throw ServerError.malformedJSON("empty body; expected a JSON object") }
        let data = Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw ServerError.malformedJSON(ServerError.describe(error))
        } catch {
            throw ServerError.malformedJSON(String(describing: error))
        }
    }

    /// 404 for a model this server does not serve; a missing or empty `model` means the served one.
    static func checkModel(_ requested: String?, served: String) throws {
        if let requested, !requested.isEmpty, requested != served { throw ServerError.modelNotFound(requested) }
    }

    /// Bytes of an image given as a data URL (`data:image/png;base64,...`) or bare base64.
    /// Works on UTF-8 bytes: payloads are megabytes of ASCII, and Character-level String APIs (grapheme
    /// breaking, NSString bridging) cost more than the JPEG decode.
    static func imageBytes(_ value: String) throws -> Data {
        let utf8 = value.utf8
        var start = utf8.startIndex
        while start != utf8.endIndex, Self.isSpace(utf8[start]) { start = utf8.index(after: start) }
        let head = String(decoding: utf8[start...].prefix(8), as: UTF8.self).lowercased()
        if head.isEmpty { throw ServerError.invalidBase64("empty image string") }
        if head.hasPrefix("http://") || head.hasPrefix("https:/") || head.hasPrefix("file:") {
            throw ServerError.invalidRequest("image URLs are not fetched; send the image as base64 or a data URL")
        }
        if head.hasPrefix("data:") {
            guard let comma = utf8[start...].firstIndex(of: UInt8(ascii: ",")) else {
                throw ServerError.invalidBase64("data URL without a ',' before the data")
            }
            let header = String(decoding: utf8[utf8.index(start, offsetBy: 5) ..< comma], as: UTF8.self).lowercased()
            guard header.split(separator: ";").contains("base64") else {
                throw ServerError.invalidBase64("data URL is not ';base64' encoded")
            }
            start = utf8.index(after: comma)
        }
        // Tolerate what clients commonly do: line breaks (MIME), URL-safe alphabet, missing padding.
        var text = [UInt8]()
        text.reserveCapacity(utf8.distance(from: start, to: utf8.endIndex) + 3)
        for byte in utf8[start...] where !Self.isSpace(byte) {
            switch byte {
            case UInt8(ascii: "-"): text.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): text.append(UInt8(ascii: "/"))
            default: text.append(byte)
            }
        }
        if text.count % 4 != 0 { text += Array(repeating: UInt8(ascii: "="), count: 4 - text.count % 4) }
        guard let data = Data(base64Encoded: Data(text)), !data.isEmpty else {
            throw ServerError.invalidBase64(text.isEmpty ? "no data after the data URL header" : "not valid base64")
        }
        return data
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Base64 and JPEG/PNG decoding cost milliseconds per photo: run them on their own queue rather than on
    /// Swift's cooperative pool (a few large images would otherwise stall every other request's task).
    private static let decodeQueue = DispatchQueue(label: "vlm-image-decode", attributes: .concurrent)

    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            decodeQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Decoded RGB pixels (alpha composited on white, as the pipeline and transformers do): 422 when the
    /// header says it is above `maxPixels` (before any pixel memory), 400 when it is not a decodable image.
    static func image(_ value: String, maxPixels: Int) throws -> RGBImage {
        let data = try imageBytes(value)
        do {
            return try ImageDecoder.decode(data, maxPixels: maxPixels, alpha: .compositeOnWhite)
        } catch {
            throw ServerError.from(error)
        }
    }
}

/// Bearer-token check. The comparison takes the same time wherever the first difference is, so response
/// timing does not reveal how much of a guess was right.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], Self.matches(header: header, key: key) else {
            throw ServerError.unauthorized
        }
        return try await next(request, context)
    }

    static func matches(header: String, key: String) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let given = Array(parts[1].trimmingCharacters(in: .whitespaces).utf8), expected = Array(key.utf8)
        var diff = UInt8(given.count == expected.count ? 0 : 1)
        for i in 0 ..< expected.count { diff |= expected[i] ^ (i < given.count ? given[i] : 0) }
        return diff == 0
    }
}
