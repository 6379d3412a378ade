import Foundation
import Hummingbird
import SwiftVLM
import VLMImage

/// What the fuzzers (Fuzz/, Scripts/fuzz.sh) feed with arbitrary bytes on the server's side: data-URL and
/// base64 image decoding, and each request body type decoded and checked the way its route does before any
/// model work (JSON decoding, part classification, image-string decoding and header probing, sampling options,
/// name cleaning). Every input must return or throw a `ServerError` whose message can be formatted; a crash,
/// a sanitizer report, a timeout or an out-of-memory is a bug.
public enum RequestFuzzing {
    public static let targets = ["dataurl", "embeddings", "chat", "index", "search", "classify"]

    /// Runs `target` on `data`; errors are the expected outcome for most inputs and are ignored.
    public static func run(_ target: String, _ data: Data) {
        do {
            switch target {
            case "dataurl": try image(String(decoding: data, as: UTF8.self))
            case "embeddings":
                let req = try decode(EmbeddingsRequest.self, data)
                for part in req.input.parts { if case .image(let s) = part { try? image(s) } }
            case "chat":
                let req = try decode(ChatCompletionRequest.self, data)
                _ = try? req.samplingOptions(defaults: defaults)
                for message in req.messages {
                    if case .parts(let parts) = message.content { for case .image(let s) in parts { try? image(s) } }
                }
            case "index":
                let req = try decode(IndexAddRequest.self, data)
                for item in req.images ?? [] {
                    _ = IndexService.cleanName(item.name)
                    try? image(item.image)
                }
            case "search":
                let req = try decode(SearchRequest.self, data)
                if let s = req.query.image { try image(s) }
            case "classify":
                let req = try decode(ClassifyRequest.self, data)
                try image(req.image)
            default: break
            }
        } catch {
            _ = String(describing: error)
        }
    }

    /// Sampling (a checkpoint that sets them) so the request's overrides meet real defaults.
    static let defaults: GenerationDefaults = {
        var d = GenerationDefaults()
        (d.doSample, d.temperature, d.topK, d.topP, d.maxNewTokens) = (true, 0.7, 50, 0.9, 64)
        return d
    }()

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        try RequestInput.json(T.self, from: ByteBuffer(bytes: data))
    }

    /// An image string as the routes read it: base64 / data URL to bytes, then the header probe (no pixels).
    static func image(_ value: String) throws {
        let bytes = try RequestInput.imageBytes(value)
        do { _ = try ImageDecoder.probe(bytes) } catch { throw ServerError.from(error) }
    }
}
