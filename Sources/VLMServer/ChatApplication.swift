import Foundation
import Hummingbird
import SwiftVLM

// `vlm serve --model <generative checkpoint>` (LLaVA, or a Llama-family LM): the chat API.
//   POST /v1/chat/completions   OpenAI chat completions, JSON or server-sent events ("stream": true)
//   GET  /v1/models[/{id}]      the model with its kind ("chat"), type, context length, image support
//   GET  /healthz               liveness, queue depth, whether the generator is busy
//   GET  /metrics               Prometheus text: HTTP counts and latencies, chat outcomes, tokens, queue
// One generator serves requests in arrival order; `--queue-capacity` requests may wait, beyond that 503 with
// Retry-After. The embedding endpoints are not served for a generative checkpoint (404).

/// The server around an already-loaded generative pipeline.
public func buildApplication(config: ServerConfig, generative pipeline: GenerativePipeline) throws -> some ApplicationProtocol {
    try buildApplication(config: config, chatEngine: .pipeline(pipeline))
}

/// The chat server with a custom engine (e.g. the pipeline wrapped to hold the generator, for overload tests).
public func buildApplication(config: ServerConfig, chatEngine: ChatEngine) throws -> some ApplicationProtocol {
    try config.validate()
    return serverApplication(router: buildChatRouter(config: config, engine: chatEngine), config: config)
}

/// Routes and middleware, in the same order as the embedding server's (metrics outermost, then JSON errors,
/// then auth on the /v1 group when --protect-reads).
public func buildChatRouter(config: ServerConfig, engine: ChatEngine) -> Router<BasicRequestContext> {
    typealias Context = BasicRequestContext
    let metrics = ServerMetrics()
    let service = ChatService(config: config, engine: engine, modelID: config.resolvedModelID)
    let router = Router(context: Context.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: JSONErrorMiddleware())
    ChatStatusController<Context>(service: service, metrics: metrics).addRoutes(to: router)
    let reads = router.group()
    if let key = config.apiKey, config.protectReads { reads.add(middleware: APIKeyMiddleware<Context>(key: key)) }
    ChatController<Context>(service: service).addRoutes(to: reads)
    ChatModelsController<Context>(service: service).addRoutes(to: reads)
    return router
}

/// The Hummingbird application around either router (embedding or chat), so one entry point can return both.
func serverApplication(router: Router<BasicRequestContext>, config: ServerConfig) -> Application<RouterResponder<BasicRequestContext>> {
    Application(router: router, configuration: .init(address: .hostname(config.host, port: config.port), serverName: "vlm-serve"))
}
