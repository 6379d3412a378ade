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
    public static let targets = ["dataurl", "embeddings", "chat", "index", "search", "classify", "tasks"]

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
            case "tasks": try visionTask(data)
            default: break
            }
        } catch {
            _ = String(describing: error)
        }
    }

    /// `POST /v1/vision/tasks` up to the model: the body, the image header, the task prompt with its text or
    /// region argument, then Florence-2's post-processing, table and drawing of the request's text as if the
    /// model had generated it (a model's output is outside input too: any token sequence can come out).
    static func visionTask(_ data: Data) throws {
        let req = try decode(VisionTaskRequest.self, data)
        var size = (width: 768, height: 512)
        if let s = req.image, let bytes = try? RequestInput.imageBytes(s), let header = try? ImageDecoder.probe(bytes) {
            size = (min(header.width, 1 << 14), min(header.height, 1 << 14))
        }
        _ = try? Florence2Tasks.taskPrompt(task: req.task, text: req.text)
        if let box = req.box { _ = try? Florence2Tasks.regionTokens(box: box, imageSize: size) }
        let parsed = try Florence2PostProcessor().process(text: req.text ?? "", task: req.task, imageSize: size)
        _ = TaskTable.render(parsed)
        if let canvas = try? RGBImage(width: 48, height: 32, pixels: [UInt8](repeating: 128, count: 48 * 32 * 3)) {
            _ = TaskDrawing.draw(parsed, on: canvas)
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
