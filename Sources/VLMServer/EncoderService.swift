import Foundation
import SwiftVLM

/// What `/v1/models` and `/healthz` report about the served checkpoint.
public struct ModelInfo: Sendable {
    public var id: String
    public var dimensions: Int
    public var maxInputTokens: Int
    public var imageSize: Int
    public var created: Int

    public init(id: String, dimensions: Int, maxInputTokens: Int, imageSize: Int, created: Int = Int(Date().timeIntervalSince1970)) {
        self.id = id
        self.dimensions = dimensions
        self.maxInputTokens = maxInputTokens
        self.imageSize = imageSize
        self.created = created
    }

    public init(pipeline: CLIPPipeline, id: String) {
        self.init(id: id, dimensions: pipeline.model.config.projectionDim, maxInputTokens: pipeline.maxTextLength,
                  imageSize: pipeline.model.config.visionConfig.imageSize)
    }
}

/// The request-side half of encoding: validates and prepares inputs (tokenize, decode) on the calling task,
/// then hands them to the batcher. Shared by every controller that needs vectors (embeddings, classify, and
/// later search/index).
public final class EncoderService: Sendable {
    public let config: ServerConfig
    public let engine: EmbeddingEngine
    public let batcher: DynamicBatcher
    public let metrics: ServerMetrics
    public let model: ModelInfo

    public init(config: ServerConfig, engine: EmbeddingEngine, model: ModelInfo, metrics: ServerMetrics) {
        self.config = config
        self.engine = engine
        self.model = model
        self.metrics = metrics
        batcher = DynamicBatcher(engine: engine, maxBatch: config.maxBatch, maxWaitMilliseconds: config.maxWaitMilliseconds,
                                 queueCapacity: config.queueCapacity, retryAfterSeconds: config.retryAfterSeconds, metrics: metrics)
    }

    /// Embeddings in input order and the number of text tokens used.
    public func embed(_ parts: [InputPart]) async throws -> (vectors: [[Float]], tokens: Int) {
        guard !parts.isEmpty else { throw ServerError.invalidRequest("'input' must not be empty") }
        guard parts.count <= config.maxInputsPerRequest else {
            throw ServerError.invalidRequest("'input' has \(parts.count) items; the limit is \(config.maxInputsPerRequest)")
        }
        var texts: [[Int]] = [], imageValues: [(index: Int, value: String)] = []
        var slots: [(isText: Bool, index: Int)] = []
        for (i, part) in parts.enumerated() {
            switch part {
            case .text(let text):
                texts.append(try tokenize(text, at: i))
                slots.append((true, texts.count - 1))
            case .image(let value):
                imageValues.append((i, value))
                slots.append((false, imageValues.count - 1))
            }
        }
        let maxPixels = config.maxImagePixels, count = parts.count, pending = imageValues
        var images: [RGBImage] = []
        if !pending.isEmpty {
            images = try await RequestInput.offload {
                try pending.map { item -> RGBImage in
                    do { return try RequestInput.image(item.value, maxPixels: maxPixels) } catch let error as ServerError {
                        throw error.at(index: item.index, count: count)
                    }
                }
            }
        }
        let tokens = texts.reduce(0) { $0 + $1.count }
        // Both kinds queue at once; the worker serves whichever has waited longest.
        let (textInputs, imageInputs) = (texts, images)
        async let textVectors = batcher.embed(texts: textInputs)
        async let imageVectors = batcher.embed(images: imageInputs)
        let (t, v) = try await (textVectors, imageVectors)
        return (slots.map { $0.isText ? t[$0.index] : v[$0.index] }, tokens)
    }

    /// Zero-shot classification as `CLIPPipeline.classify` computes it (same label cleaning, prompts and
    /// softmax), but with the image and prompts going through the shared batcher.
    func classify(image value: String, labels: [String], template: String?) async throws -> (scores: [ClassifyResponse.Score], tokens: Int) {
        let cleaned = labels.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !cleaned.isEmpty else { throw ServerError.invalidRequest("'labels' must contain at least one non-empty label") }
        guard cleaned.count <= config.maxLabels else {
            throw ServerError.invalidRequest("'labels' has \(cleaned.count) items; the limit is \(config.maxLabels)")
        }
        let template = template ?? "a photo of a {}."
        let prompts = cleaned.map { template.contains("{}") ? template.replacingOccurrences(of: "{}", with: $0) : "\(template) \($0)" }
        let ids = try prompts.enumerated().map { try tokenize($1, at: $0) }
        let maxPixels = config.maxImagePixels
        let image = try await RequestInput.offload { try RequestInput.image(value, maxPixels: maxPixels) }
        async let textVectors = batcher.embed(texts: ids)
        async let imageVectors = batcher.embed(images: [image])
        let (text, images) = try await (textVectors, imageVectors)
        guard let img = images.first else { throw ServerError.internalError("no image embedding") }
        let logits = text.map { engine.logitScale * Self.dot(img, $0) }
        let probabilities = Self.softmax(logits)
        let scores = zip(cleaned, zip(probabilities, logits)).map { ClassifyResponse.Score(label: $0, probability: $1.0, logit: $1.1) }
            .sorted { $0.probability > $1.probability }
        return (scores, ids.reduce(0) { $0 + $1.count })
    }

    private func tokenize(_ text: String, at index: Int) throws -> [Int] {
        do { return try engine.tokenize(text) } catch {
            throw ServerError.invalidRequest("text \(index) cannot be tokenized: \(error)")
        }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

extension ServerError {
    /// Names the input item in a multi-item request (status unchanged).
    func at(index: Int, count: Int) -> ServerError {
        guard count > 1 else { return self }
        switch self {
        case .invalidBase64(let m): return .invalidBase64("input[\(index)]: \(m)")
        case .undecodableImage(let m): return .undecodableImage("input[\(index)]: \(m)")
        case .invalidRequest(let m): return .invalidRequest("input[\(index)]: \(m)")
        default: return self
        }
    }
}
