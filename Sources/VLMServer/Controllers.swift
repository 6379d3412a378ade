import Foundation
import Hummingbird

/// `POST /v1/embeddings` (OpenAI shape; see `EmbeddingsRequest` for the input union).
struct EmbeddingsController<Context: RequestContext>: Sendable {
    let service: EncoderService

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/embeddings") { request, _ in try await embeddings(request) }
    }

    func embeddings(_ request: Request) async throws -> Response {
        let body = try await RequestInput.body(of: request, limit: service.config.maxBodyBytes)
        let req = try RequestInput.json(EmbeddingsRequest.self, from: body)
        try RequestInput.checkModel(req.model, served: service.model.id)
        let base64: Bool
        switch req.encodingFormat {
        case nil, "float"?: base64 = false
        case "base64"?: base64 = true
        case let other?: throw ServerError.invalidRequest("'encoding_format' must be \"float\" or \"base64\", not \"\(other)\"")
        }
        if let d = req.dimensions, d != service.model.dimensions {
            throw ServerError.invalidRequest("'dimensions' must be \(service.model.dimensions) for this model (CLIP embeddings cannot be truncated)")
        }
        let (vectors, tokens) = try await service.embed(req.input.parts)
        let data = vectors.enumerated().map { i, v in
            EmbeddingObject(index: i, embedding: base64 ? .base64(EmbeddingValue.base64(of: v)) : .floats(v))
        }
        return try JSONResponse.make(EmbeddingsResponse(data: data, model: service.model.id,
                                                        usage: Usage(promptTokens: tokens, totalTokens: tokens)))
    }
}

/// `POST /v1/classify`: zero-shot labels for one image, best first.
struct ClassifyController<Context: RequestContext>: Sendable {
    let service: EncoderService

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/classify") { request, _ in try await classify(request) }
    }

    func classify(_ request: Request) async throws -> Response {
        let body = try await RequestInput.body(of: request, limit: service.config.maxBodyBytes)
        let req = try RequestInput.json(ClassifyRequest.self, from: body)
        try RequestInput.checkModel(req.model, served: service.model.id)
        if let k = req.topK, k < 1 { throw ServerError.invalidRequest("'top_k' must be >= 1") }
        let (scores, tokens) = try await service.classify(image: req.image, labels: req.labels, template: req.template)
        let top = req.topK.map { Array(scores.prefix($0)) } ?? scores
        return try JSONResponse.make(ClassifyResponse(model: service.model.id, data: top,
                                                      usage: Usage(promptTokens: tokens, totalTokens: tokens)))
    }
}

/// `GET /v1/models` and `GET /v1/models/{id}` (OpenAI shapes; an unknown id is 404).
struct ModelsController<Context: RequestContext>: Sendable {
    let model: ModelInfo

    func addRoutes(to router: some RouterMethods<Context>) {
        router.get("/v1/models") { _, _ in try JSONResponse.make(ModelList(data: [object])) }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard id == model.id else { throw ServerError.modelNotFound(id) }
            return try JSONResponse.make(object)
        }
    }

    var object: ModelObject {
        ModelObject(id: model.id, created: model.created, embeddingDimensions: model.dimensions,
                    maxInputTokens: model.maxInputTokens, imageSize: model.imageSize)
    }
}

/// `GET /healthz`: liveness plus what the web page needs to pick its mode.
struct HealthController<Context: RequestContext>: Sendable {
    let service: EncoderService
    var index: IndexService?

    func addRoutes(to router: some RouterMethods<Context>) {
        router.get("/healthz") { _, _ in
            let info = index.map { HealthResponse.IndexInfo(path: $0.name, size: $0.count, model: $0.fingerprint, strategy: $0.strategy) }
            return try JSONResponse.make(HealthResponse(status: "ok", model: service.model.id, dimensions: service.model.dimensions,
                                                        index: info, queue: service.batcher.queueDepths()))
        }
    }
}

/// `GET /`: the self-contained search/classify page (no external resources, so it works offline).
struct WebPageController<Context: RequestContext>: Sendable {
    func addRoutes(to router: some RouterMethods<Context>) {
        router.get("/") { _, _ in
            Response(status: .ok,
                     headers: [.contentType: "text/html; charset=utf-8",
                               .contentSecurityPolicy: "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"],
                     body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
    }
}
