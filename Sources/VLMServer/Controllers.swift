import Foundation
import Hummingbird

/// `POST /v1/embeddings` (OpenAI shape; see `EmbeddingsRequest` for the input union), routed by `model`.
struct EmbeddingsController<Context: RequestContext>: Sendable {
    let roster: ModelRoster

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/embeddings") { request, _ in try await embeddings(request) }
    }

    func embeddings(_ request: Request) async throws -> Response {
        let limit = roster.encoders.first?.config.maxBodyBytes ?? 0
        let body = try await RequestInput.body(of: request, limit: limit, timeout: roster.encoders.first?.config.bodyTimeoutSeconds ?? 120)
        let req = try RequestInput.json(EmbeddingsRequest.self, from: body)
        let service = try roster.encoder(req.model)
        let base64: Bool
        switch req.encodingFormat {
        case nil, "float"?: base64 = false
        case "base64"?: base64 = true
        case let other?: throw ServerError.invalidRequest("'encoding_format' must be \"float\" or \"base64\", not \"\(other)\"")
        }
        if let d = req.dimensions, d != service.model.dimensions {
            throw ServerError.invalidRequest("'dimensions' must be \(service.model.dimensions) for this model (its embeddings cannot be truncated)")
        }
        let (vectors, tokens) = try await service.embed(req.input.parts)
        let data = vectors.enumerated().map { i, v in
            EmbeddingObject(index: i, embedding: base64 ? .base64(EmbeddingValue.base64(of: v)) : .floats(v))
        }
        return try JSONResponse.make(EmbeddingsResponse(data: data, model: service.model.id,
                                                        usage: Usage(promptTokens: tokens, totalTokens: tokens)))
    }
}

/// `POST /v1/classify`: zero-shot labels for one image, best first (softmax for CLIP, per-label sigmoid for
/// SigLIP), routed by `model`.
struct ClassifyController<Context: RequestContext>: Sendable {
    let roster: ModelRoster

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/classify") { request, _ in try await classify(request) }
    }

    func classify(_ request: Request) async throws -> Response {
        let limit = roster.encoders.first?.config.maxBodyBytes ?? 0
        let body = try await RequestInput.body(of: request, limit: limit, timeout: roster.encoders.first?.config.bodyTimeoutSeconds ?? 120)
        let req = try RequestInput.json(ClassifyRequest.self, from: body)
        let service = try roster.encoder(req.model)
        if let k = req.topK, k < 1 { throw ServerError.invalidRequest("'top_k' must be >= 1") }
        let (scores, tokens) = try await service.classify(image: req.image, labels: req.labels, template: req.template)
        let top = req.topK.map { Array(scores.prefix($0)) } ?? scores
        return try JSONResponse.make(ClassifyResponse(model: service.model.id, scoring: service.engine.scoring.name, data: top,
                                                      usage: Usage(promptTokens: tokens, totalTokens: tokens)))
    }
}

/// `GET /v1/models` and `GET /v1/models/{id}` (OpenAI shapes; every served model with its kind; an unknown id
/// is 404).
struct ModelsController<Context: RequestContext>: Sendable {
    let roster: ModelRoster

    func addRoutes(to router: some RouterMethods<Context>) {
        router.get("/v1/models") { _, _ in try JSONResponse.make(ModelList(data: roster.entries.map(Self.object))) }
        router.get("/v1/models/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let entry = roster.entry(id: id) else { throw ServerError.modelNotFound(id) }
            return try JSONResponse.make(Self.object(entry))
        }
    }

    static func object(_ entry: ModelRoster.Entry) -> AnyModelObject {
        switch entry {
        case .embedding(let s):
            let m = s.model
            return .embedding(ModelObject(id: m.id, created: m.created, type: m.type, scoring: m.scoring,
                                          embeddingDimensions: m.dimensions, maxInputTokens: m.maxInputTokens, imageSize: m.imageSize,
                                          precision: m.precision))
        case .chat(let s):
            return .chat(ChatModelObject(id: s.modelID, created: s.created, type: s.engine.modelType,
                                         contextLength: s.engine.contextLength, acceptsImages: s.engine.acceptsImages,
                                         imageTokensPerImage: s.engine.imageTokensPerImage, precision: s.engine.precision,
                                         kvCache: s.engine.kvCache))
        }
    }
}

/// `GET /healthz` (liveness plus what the web page needs: the models, the index) and `GET /metrics`.
struct StatusController<Context: RequestContext>: Sendable {
    let roster: ModelRoster
    var index: IndexService?

    func addRoutes(to router: some RouterMethods<Context>) {
        router.get("/healthz") { _, _ in
            let info = index.map { HealthResponse.IndexInfo(path: $0.name, size: $0.count, model: $0.fingerprint, strategy: $0.strategy) }
            let first = roster.entries[0]  // safe: a roster is never empty (ModelRoster.init)
            let models = roster.entries.map { HealthResponse.Model(id: $0.id, kind: $0.kind.rawValue, tasks: $0.visionTasks) }
            return try JSONResponse.make(HealthResponse(
                status: "ok", model: first.id, kind: first.kind.rawValue, dimensions: roster.encoders.first?.model.dimensions,
                models: models, index: info, queue: roster.queueDepths(),
                generating: roster.chats.isEmpty ? nil : roster.chats.contains { $0.scheduler.isBusy }))
        }
        router.get("/metrics") { _, _ -> Response in
            let capacity = roster.encoders.first?.config.queueCapacity ?? roster.chats.first?.scheduler.capacity ?? 0
            var text = roster.metrics.render(queueDepths: roster.queueDepths(), queueCapacity: capacity, indexSize: index?.count)
            let chats = roster.chats
            var chatText = ""
            for service in chats {
                let s = service.scheduler
                let rendered = service.metrics.render(depth: s.depth, capacity: s.capacity, busy: s.isBusy)
                chatText += chats.count > 1 ? Self.labelled(rendered, model: service.modelID) : rendered
            }
            text += chats.count > 1 ? Self.dedupingHeaders(chatText) : chatText
            text += Self.modelInfo(roster)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// `vlm_model_info{model, kind, precision} 1` per served model: the weight precision each one runs.
    static func modelInfo(_ roster: ModelRoster) -> String {
        var out = "# HELP vlm_model_info Served models: kind and weight precision (value 1).\n# TYPE vlm_model_info gauge\n"
        for entry in roster.entries {
            let precision: String
            switch entry {
            case .embedding(let s): precision = s.model.precision
            case .chat(let s): precision = s.engine.precision
            }
            out += "vlm_model_info{model=\"\(ServerMetrics.escape(entry.id))\",kind=\"\(entry.kind.rawValue)\",precision=\"\(ServerMetrics.escape(precision))\"} 1\n"
        }
        return out
    }

    /// Prometheus samples with a `model` label added (several chat models render the same metric names).
    static func labelled(_ text: String, model: String) -> String {
        let label = "model=\"\(model.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard !line.isEmpty, !line.hasPrefix("#") else { return String(line) }
            if let brace = line.firstIndex(of: "{") {
                return String(line[...brace]) + label + "," + line[line.index(after: brace)...]
            }
            guard let space = line.firstIndex(of: " ") else { return String(line) }
            return String(line[..<space]) + "{" + label + "}" + line[space...]
        }.joined(separator: "\n")
    }

    /// Keeps the first `# HELP` / `# TYPE` line of each metric.
    static func dedupingHeaders(_ text: String) -> String {
        var seen = Set<Substring>()
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("#") || seen.insert($0).inserted }.joined(separator: "\n")
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
