import ArgumentParser
import Dispatch
import Foundation
import SwiftVLM
import VLMServer

/// `vlm serve`: the HTTP API (OpenAI-style embeddings, classification, models, health, metrics, web page).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP server: /v1/embeddings, /v1/classify, /v1/models, /v1/search, /v1/index, /healthz, /metrics, web page at /.",
        discussion: """
        Requests from all clients are batched into the encoder (up to --max-batch items, waiting at most \
        --max-wait-ms for more); when --queue-capacity items wait, new requests get 503 with Retry-After. \
        Stop with Ctrl-C or SIGTERM (in-flight requests finish first).
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Vector index database (from `vlm index add`): enables /v1/search and /v1/index.") var index: String?
    @Option(help: "Directory whose indexed images may be served and added by path; repeatable (uploads are always served).")
    var root: [String] = []
    @Option(help: "Where uploaded images are stored (default: <index>.uploads next to the database).") var uploads: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "Largest request body in bytes (larger: 413).") var maxBodyBytes = 20 * 1024 * 1024
    @Option(help: "Largest image in pixels, width x height (larger: 422).") var maxImagePixels = 25_000_000
    @Option(help: "Most inputs in one /v1/embeddings request.") var maxInputs = 2048
    @Option(help: "Largest encoder batch formed from queued requests.") var maxBatch = 16
    @Option(help: "Milliseconds the batcher waits for more items after the first.") var maxWaitMs = 5
    @Option(help: "Items (texts, images; each kind) that may wait for the encoder (more: 503).") var queueCapacity = 256
    @Option(help: "Bearer token required on mutating endpoints (default: $VLM_API_KEY, else none).") var apiKey: String?
    @Flag(help: "Require --api-key on the read-only /v1 endpoints too.") var protectReads = false
    @Option(help: "Model id clients send in \"model\" (default: the checkpoint directory's name).") var modelId: String?

    func run() throws {
        try guarded {
            var config = ServerConfig(modelDirectory: modelOptions.url)
            config.indexPath = index.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            config.indexRoots = root.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            config.uploadsDirectory = uploads.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            config.host = host
            config.port = port
            config.maxBodyBytes = maxBodyBytes
            config.maxImagePixels = maxImagePixels
            config.maxInputsPerRequest = maxInputs
            config.maxBatch = maxBatch
            config.maxWaitMilliseconds = maxWaitMs
            config.queueCapacity = queueCapacity
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["VLM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            config.protectReads = protectReads
            config.modelID = modelId
            try config.validate()
            modelOptions.apply()
            if GenerativePipeline.isGenerative(directory: config.modelDirectory) {  // LLaVA / Llama: /v1/chat/completions
                let app = try buildApplication(config: config, generative: GenerativePipeline.load(directory: config.modelDirectory))
                FileHandle.standardError.write(Data("vlm serve: chat model \(config.resolvedModelID) on http://\(host):\(port)/\n".utf8))
                try Self.blocking { try await app.runService() }
                return
            }
            let pipeline = try modelOptions.pipeline()
            let app = try buildApplication(config: config, pipeline: pipeline)
            FileHandle.standardError.write(Data("vlm serve: model \(config.resolvedModelID) on http://\(host):\(port)/\n".utf8))
            // The CLI's root command is synchronous; run the async server on a task and park the main thread
            // until it ends (SIGINT/SIGTERM trigger a graceful shutdown inside runService).
            try Self.blocking { try await app.runService() }
        }
    }

    private static func blocking(_ body: @escaping @Sendable () async throws -> Void) throws {
        final class Outcome: @unchecked Sendable { var error: Error? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await body() } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error { throw error }
    }
}
