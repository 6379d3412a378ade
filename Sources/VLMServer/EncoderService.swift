import Foundation
import SwiftVLM

/// What `/v1/models` and `/healthz` report about a served embedding model.
public struct ModelInfo: Sendable {
    public var id: String
    /// config.json's model_type (clip, siglip, siglip2).
    public var type: String
    /// "softmax" (CLIP) or "sigmoid" (SigLIP): how /v1/classify turns cosines into probabilities.
    public var scoring: String
    public var dimensions: Int
    public var maxInputTokens: Int
    /// The processor's fixed output side, 0 when it depends on the image (NaFlex).
    public var imageSize: Int
    public var created: Int
    /// Weight precision the model's towers run (`--precision`; fp32 is exact).
    public var precision = "fp32"

    public init(id: String, type: String = "clip", scoring: String = "softmax", dimensions: Int, maxInputTokens: Int, imageSize: Int,
                created: Int = Int(Date().timeIntervalSince1970)) {
        self.id = id
        self.type = type
        self.scoring = scoring
        self.dimensions = dimensions
        self.maxInputTokens = maxInputTokens
        self.imageSize = imageSize
        self.created = created
    }

    public init(pipeline: EmbeddingPipeline, id: String) {
        self.init(id: id, type: pipeline.model.modelType, scoring: pipeline.scoring.name, dimensions: pipeline.embeddingDim,
                  maxInputTokens: pipeline.maxTextLength, imageSize: pipeline.processor.fixedOutputSize?.height ?? 0)
        precision = pipeline.precision.rawValue
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
        let config = self.config, count = parts.count, pending = imageValues
        var images: [RGBImage] = []
        var reservation: PixelBudget.Reservation?
        if !pending.isEmpty {
            (images, reservation) = try await RequestInput.offload {
                try RequestInput.images(pending.map(\.value), config: config, count: count, index: { pending[$0].index })
            }
        }
        defer { reservation?.release() }  // the decoded images are dropped once the batcher has embedded them
        let tokens = texts.reduce(0) { $0 + $1.count }
        // Both kinds queue at once; the worker serves whichever has waited longest.
        let (textInputs, imageInputs) = (texts, images)
        async let textVectors = batcher.embed(texts: textInputs)
        async let imageVectors = batcher.embed(images: imageInputs)
        let (t, v) = try await (textVectors, imageVectors)
        return (slots.map { $0.isText ? t[$0.index] : v[$0.index] }, tokens)
    }

    /// Zero-shot classification as `EmbeddingPipeline.classify` computes it (the same `ZeroShot` prompts and
    /// scores), but with the image and prompts going through the shared batcher.
    func classify(image value: String, labels: [String], template: String?) async throws -> (scores: [ClassifyResponse.Score], tokens: Int) {
        let nonEmpty = labels.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !nonEmpty.isEmpty else { throw ServerError.invalidRequest("'labels' must contain at least one non-empty label") }
        guard nonEmpty.count <= config.maxLabels else {
            throw ServerError.invalidRequest("'labels' has \(nonEmpty.count) items; the limit is \(config.maxLabels)")
        }
        let prompts = try ZeroShot.prompts(labels: nonEmpty, template: template ?? ZeroShot.defaultTemplate)
        let ids = try prompts.enumerated().map { try tokenize($1.prompt, at: $0) }
        let config = self.config
        let (decoded, reservation) = try await RequestInput.offload { try RequestInput.images([value], config: config, count: 1) }
        defer { reservation.release() }
        guard let image = decoded.first else { throw ServerError.internalError("no decoded image") }
        async let textVectors = batcher.embed(texts: ids)
        async let imageVectors = batcher.embed(images: [image])
        let (text, images) = try await (textVectors, imageVectors)
        guard let img = images.first else { throw ServerError.internalError("no image embedding") }
        let scores = ZeroShot.scores(image: img, labels: prompts.map(\.label), texts: text, scoring: engine.scoring)
            .map { ClassifyResponse.Score(label: $0.label, probability: $0.probability, logit: $0.logit) }
        return (scores, ids.reduce(0) { $0 + $1.count })
    }

    private func tokenize(_ text: String, at index: Int) throws -> [Int] {
        do { return try engine.tokenize(text) } catch {
            throw ServerError.invalidRequest("text \(index) cannot be tokenized: \(error)")
        }
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
