import Foundation
import Hummingbird
import SwiftVLM
import VLMIndex

// The HTTP API of `vlm serve`, for one or several models (`--model` repeated; requests pick one with "model"):
//   POST /v1/embeddings        OpenAI embeddings (texts and images; see EmbeddingsRequest)      } embedding
//   POST /v1/classify          zero-shot labels for one image, best first                      } models
//   POST /v1/chat/completions  OpenAI chat completions, JSON or server-sent events             } chat models
//   POST /v1/vision/tasks      detection, grounding, OCR, region captions (VisionTasksController) } Florence-2
//   GET  /v1/models[/{id}]     every served model with its kind ("embedding" or "chat"); unknown id: 404
//   GET  /healthz              liveness, models, queue depths, index (size, model fingerprint; nil without --index)
//   GET  /metrics              Prometheus text (HTTP, queues, chat outcomes, vlm_index_size with --index)
//   GET  /                     web page (pick a model; search, classify, chat)
//   GET  /openapi.json, /docs  this API described (OpenAPI 3.0, only the routes this server has), as JSON and HTML
//   POST /v1/search            text/image query (+ plus/minus arithmetic) -> top-k entries (IndexController.swift)
//   GET  /v1/index/{id}/image  an entry's image, only from inside --root directories or the uploads directory
//   POST /v1/index             add uploaded images / files under a root       } behind --api-key
//   DELETE /v1/index/{id}      remove an entry                                 }
// Errors are `{"error": {"message", "type", "code"}}` with 400/401/404/413/422/501/503 (see ServerError); a
// request naming a model the server does not have is 404 `model_not_found`, one naming a model of the wrong
// kind for the endpoint is 400.

/// Loads every checkpoint named in `config` through the model registry and builds the server (not yet
/// running: call `runService()`). With --index, the index belongs to the first embedding model.
public func buildApplication(config: ServerConfig) async throws -> some ApplicationProtocol {
    try config.validate()
    let metrics = ServerMetrics()
    var entries: [ModelRoster.Entry] = []
    var indexIdentity: ModelIdentity?
    for (i, directory) in config.modelDirectories.enumerated() {
        let id = config.modelID(at: i)
        switch try ModelRegistry.kind(directory: directory) {
        case .embedding:
            let pipeline = try EmbeddingPipeline.load(directory: directory, precision: config.precision(at: i))
            if indexIdentity == nil { indexIdentity = pipeline.indexIdentity() }
            entries.append(.embedding(EncoderService(config: config, engine: .pipeline(pipeline),
                                                     model: ModelInfo(pipeline: pipeline, id: id), metrics: metrics)))
        case .chat:
            let pipeline = try GenerativePipeline.load(directory: directory, precision: config.precision(at: i),
                                                       options: config.inputProcessing)
            entries.append(.chat(ChatService(config: config, engine: .pipeline(pipeline), modelID: id)))
        }
    }
    if config.hasIndex, indexIdentity == nil {
        throw ServerError.invalidConfiguration("--index \(config.indexBackend?.name ?? config.indexPath?.path ?? ""): the visual-search index needs an embedding model (CLIP, SigLIP, SigLIP2) among the --model checkpoints; \(config.modelDirectories.map(\.path).joined(separator: ", ")) are generative")
    }
    return try application(config: config, roster: ModelRoster(entries: entries, metrics: metrics), indexIdentity: indexIdentity)
}

/// The server around an already-loaded embedding pipeline (tests load the model once and build many servers).
public func buildApplication(config: ServerConfig, pipeline: EmbeddingPipeline) throws -> some ApplicationProtocol {
    try buildApplication(config: config, pipeline: pipeline, engine: .pipeline(pipeline))
}

/// The server with a custom embedding engine (e.g. the pipeline wrapped to hold the worker, for overload tests).
public func buildApplication(config: ServerConfig, pipeline: EmbeddingPipeline, engine: EmbeddingEngine) throws -> some ApplicationProtocol {
    try config.validate()
    let metrics = ServerMetrics()
    let service = EncoderService(config: config, engine: engine, model: ModelInfo(pipeline: pipeline, id: config.resolvedModelID), metrics: metrics)
    return try application(config: config, roster: ModelRoster(entries: [.embedding(service)], metrics: metrics),
                           indexIdentity: config.hasIndex ? pipeline.indexIdentity() : nil)
}

/// The server around an already-loaded generative pipeline.
public func buildApplication(config: ServerConfig, generative pipeline: GenerativePipeline) throws -> some ApplicationProtocol {
    try buildApplication(config: config, chatEngine: .pipeline(pipeline))
}

/// The chat server with a custom engine (e.g. the pipeline wrapped to hold the generator, for overload tests).
public func buildApplication(config: ServerConfig, chatEngine: ChatEngine) throws -> some ApplicationProtocol {
    try config.validate()
    let service = ChatService(config: config, engine: chatEngine, modelID: config.resolvedModelID)
    return try application(config: config, roster: ModelRoster(entries: [.chat(service)], metrics: ServerMetrics()), indexIdentity: nil)
}

func application(config: ServerConfig, roster: ModelRoster, indexIdentity: ModelIdentity?) throws -> Application<RouterResponder<BasicRequestContext>> {
    let index = !config.hasIndex ? nil : try indexIdentity.map { try IndexService(config: config, identity: $0) }
    let router = buildRouter(config: config, roster: roster, index: index)
    // The idle timeout closes connections without a complete request head (slowloris); RequestInput.body bounds
    // the time a body may take.
    return Application(router: router,
                       server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(config.idleTimeoutSeconds * 1000)))),
                       configuration: .init(address: .hostname(config.host, port: config.port), serverName: "vlm-serve"),
                       services: index.map { [IndexPersistService(index: $0)] } ?? [])
}

/// Routes and middleware. Order matters: metrics outermost (it sees every final status, 404s included),
/// then the JSON error mapping, then per-group auth.
public func buildRouter(config: ServerConfig, roster: ModelRoster, index: IndexService? = nil) -> Router<BasicRequestContext> {
    typealias Context = BasicRequestContext
    let router = Router(context: Context.self)
    router.add(middleware: MetricsMiddleware(metrics: roster.metrics))
    router.add(middleware: JSONErrorMiddleware())

    // Open to everyone: the page, liveness, metrics (scrapers rarely carry tokens; nothing secret in them).
    WebPageController<Context>().addRoutes(to: router)
    APIDocsController<Context>(config: config, roster: roster, hasIndex: index != nil).addRoutes(to: router)
    StatusController<Context>(roster: roster, index: index).addRoutes(to: router)

    // Read-only API: open unless --protect-reads.
    let reads = router.group()
    if let key = config.apiKey, config.protectReads { reads.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    ModelsController<Context>(roster: roster).addRoutes(to: reads)
    if !roster.encoders.isEmpty {
        EmbeddingsController<Context>(roster: roster).addRoutes(to: reads)
        ClassifyController<Context>(roster: roster).addRoutes(to: reads)
    }
    if !roster.chats.isEmpty { ChatController<Context>(roster: roster).addRoutes(to: reads) }
    if !roster.visionTaskModels.isEmpty { VisionTasksController<Context>(roster: roster).addRoutes(to: reads) }
    // The index belongs to the first embedding model.
    guard let indexEncoder = roster.encoders.first else { return router }
    SearchController<Context>(service: indexEncoder, index: index).addRoutes(to: reads)

    // Mutating API: with --api-key every route in it needs the bearer token.
    let writes = router.group()
    if let key = config.apiKey { writes.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    IndexController<Context>(service: indexEncoder, index: index).addRoutes(to: writes)
    return router
}
