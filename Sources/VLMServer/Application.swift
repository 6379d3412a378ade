import Foundation
import Hummingbird
import SwiftVLM

// The HTTP API of `vlm serve`:
//   POST /v1/embeddings      OpenAI embeddings (texts and images; see EmbeddingsRequest for the input union)
//   POST /v1/classify        zero-shot labels for one image, best first
//   GET  /v1/models[/{id}]   OpenAI model list / model (unknown id: 404)
//   GET  /healthz            liveness, model, queue depths, index (size, model fingerprint; nil without --index)
//   GET  /metrics            Prometheus text (vlm_index_size with --index)
//   GET  /                   web page
//   POST /v1/search          text/image query (+ plus/minus arithmetic) -> top-k entries (IndexController.swift)
//   GET  /v1/index/{id}/image  an entry's image, only from inside --root directories or the uploads directory
//   POST /v1/index           add uploaded images / files under a root       } behind --api-key
//   DELETE /v1/index/{id}    remove an entry                                 }
// Errors are `{"error": {"message", "type", "code"}}` with 400/401/404/413/422/501/503 (see ServerError).

/// Loads the checkpoint named in `config` and builds the server (not yet running: call `runService()`).
public func buildApplication(config: ServerConfig) async throws -> some ApplicationProtocol {
    try config.validate()
    if GenerativePipeline.isGenerative(directory: config.modelDirectory) {  // chat: see ChatApplication.swift
        if let index = config.indexPath {
            throw ServerError.invalidConfiguration("--index \(index.path): the visual-search index needs an embedding model (CLIP/SigLIP); \(config.modelDirectory.path) is a generative model")
        }
        let engine = ChatEngine.pipeline(try GenerativePipeline.load(directory: config.modelDirectory))
        return serverApplication(router: buildChatRouter(config: config, engine: engine), config: config)
    }
    let pipeline = try EmbeddingPipeline.load(directory: config.modelDirectory)
    return try embeddingApplication(config: config, pipeline: pipeline, engine: .pipeline(pipeline))
}

/// The server around an already-loaded pipeline (tests load the model once and build many servers).
public func buildApplication(config: ServerConfig, pipeline: EmbeddingPipeline) throws -> some ApplicationProtocol {
    try buildApplication(config: config, pipeline: pipeline, engine: .pipeline(pipeline))
}

/// The server with a custom engine (e.g. the pipeline wrapped to hold the worker, for overload tests).
public func buildApplication(config: ServerConfig, pipeline: EmbeddingPipeline, engine: EmbeddingEngine) throws -> some ApplicationProtocol {
    try embeddingApplication(config: config, pipeline: pipeline, engine: engine)
}

/// The embedding (and search) server, as a concrete type so `buildApplication(config:)` can return it or the chat server.
func embeddingApplication(config: ServerConfig, pipeline: EmbeddingPipeline, engine: EmbeddingEngine) throws -> Application<RouterResponder<BasicRequestContext>> {
    try config.validate()
    let index = try config.indexPath.map { _ in try IndexService(config: config, identity: pipeline.indexIdentity()) }
    let router = buildRouter(config: config, engine: engine, model: ModelInfo(pipeline: pipeline, id: config.resolvedModelID), index: index)
    return Application(router: router,
                       configuration: .init(address: .hostname(config.host, port: config.port), serverName: "vlm-serve"),
                       services: index.map { [IndexPersistService(index: $0)] } ?? [])
}

/// Routes and middleware. Order matters: metrics outermost (it sees every final status, 404s included),
/// then the JSON error mapping, then per-group auth.
public func buildRouter(config: ServerConfig, engine: EmbeddingEngine, model: ModelInfo, index: IndexService? = nil) -> Router<BasicRequestContext> {
    typealias Context = BasicRequestContext
    let metrics = ServerMetrics()
    let service = EncoderService(config: config, engine: engine, model: model, metrics: metrics)
    let router = Router(context: Context.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: JSONErrorMiddleware())

    // Open to everyone: the page, liveness, metrics (scrapers rarely carry tokens; nothing secret in them).
    WebPageController<Context>().addRoutes(to: router)
    HealthController<Context>(service: service, index: index).addRoutes(to: router)
    MetricsController<Context>(metrics: metrics, batcher: service.batcher, queueCapacity: config.queueCapacity, index: index).addRoutes(to: router)

    // Read-only API: open unless --protect-reads.
    let reads = router.group()
    if let key = config.apiKey, config.protectReads { reads.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    EmbeddingsController<Context>(service: service).addRoutes(to: reads)
    ClassifyController<Context>(service: service).addRoutes(to: reads)
    ModelsController<Context>(model: model).addRoutes(to: reads)
    SearchController<Context>(service: service, index: index).addRoutes(to: reads)

    // Mutating API: with --api-key every route in it needs the bearer token.
    let writes = router.group()
    if let key = config.apiKey { writes.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    IndexController<Context>(service: service, index: index).addRoutes(to: writes)
    return router
}
