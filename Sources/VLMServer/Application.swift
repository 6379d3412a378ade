import Foundation
import Hummingbird
import SwiftVLM

// The HTTP API of `vlm serve`:
//   POST /v1/embeddings      OpenAI embeddings (texts and images; see EmbeddingsRequest for the input union)
//   POST /v1/classify        zero-shot labels for one image, best first
//   GET  /v1/models[/{id}]   OpenAI model list / model (unknown id: 404)
//   GET  /healthz            liveness, model, queue depths, index (nil until the index lands)
//   GET  /metrics            Prometheus text
//   GET  /                   web page
// Errors are `{"error": {"message", "type", "code"}}` with 400/401/404/413/422/503 (see ServerError).
// Still to come with the index module: POST /v1/search, POST /v1/index, DELETE /v1/index/{id}
// (mutating routes behind --api-key), and vlm_index_size in /metrics.

/// Loads the checkpoint named in `config` and builds the server (not yet running: call `runService()`).
public func buildApplication(config: ServerConfig) async throws -> some ApplicationProtocol {
    try config.validate()
    if let index = config.indexPath {
        throw ServerError.notImplemented("--index \(index.path): the index endpoints are not available in this build yet")
    }
    if GenerativePipeline.isGenerative(directory: config.modelDirectory) {  // chat: see ChatApplication.swift
        let engine = ChatEngine.pipeline(try GenerativePipeline.load(directory: config.modelDirectory))
        return serverApplication(router: buildChatRouter(config: config, engine: engine), config: config)
    }
    let pipeline = try CLIPPipeline.load(directory: config.modelDirectory)
    let router = buildRouter(config: config, engine: .clip(pipeline), model: ModelInfo(pipeline: pipeline, id: config.resolvedModelID))
    return serverApplication(router: router, config: config)
}

/// The server around an already-loaded pipeline (tests load the model once and build many servers).
public func buildApplication(config: ServerConfig, pipeline: CLIPPipeline) throws -> some ApplicationProtocol {
    try buildApplication(config: config, pipeline: pipeline, engine: .clip(pipeline))
}

/// The server with a custom engine (e.g. the pipeline wrapped to hold the worker, for overload tests).
public func buildApplication(config: ServerConfig, pipeline: CLIPPipeline, engine: EmbeddingEngine) throws -> some ApplicationProtocol {
    try config.validate()
    let router = buildRouter(config: config, engine: engine, model: ModelInfo(pipeline: pipeline, id: config.resolvedModelID))
    return Application(router: router,
                       configuration: .init(address: .hostname(config.host, port: config.port), serverName: "vlm-serve"))
}

/// Routes and middleware. Order matters: metrics outermost (it sees every final status, 404s included),
/// then the JSON error mapping, then per-group auth.
public func buildRouter(config: ServerConfig, engine: EmbeddingEngine, model: ModelInfo) -> Router<BasicRequestContext> {
    typealias Context = BasicRequestContext
    let metrics = ServerMetrics()
    let service = EncoderService(config: config, engine: engine, model: model, metrics: metrics)
    let router = Router(context: Context.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: JSONErrorMiddleware())

    // Open to everyone: the page, liveness, metrics (scrapers rarely carry tokens; nothing secret in them).
    WebPageController<Context>().addRoutes(to: router)
    HealthController<Context>(service: service).addRoutes(to: router)
    MetricsController<Context>(metrics: metrics, batcher: service.batcher, queueCapacity: config.queueCapacity).addRoutes(to: router)

    // Read-only API: open unless --protect-reads.
    let reads = router.group()
    if let key = config.apiKey, config.protectReads { reads.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    EmbeddingsController<Context>(service: service).addRoutes(to: reads)
    ClassifyController<Context>(service: service).addRoutes(to: reads)
    ModelsController<Context>(model: model).addRoutes(to: reads)

    // Mutating API (POST /v1/index, DELETE /v1/index/{id}) goes in `writes` when the index lands:
    // with --api-key every route in it needs the bearer token.
    // let writes = router.group(); if let key = config.apiKey { writes.add(middleware: APIKeyMiddleware(key: key)) }
    return router
}
