import ArgumentParser
import Dispatch
import Foundation
import VLMMilvus
import SwiftVLM
import VLMLayers
import VLMServer

/// `vlm serve`: the HTTP API (OpenAI-style embeddings, classification, models, health, metrics, web page).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "HTTP server for one or several models: /v1/embeddings, /v1/classify, /v1/chat/completions, /v1/models, /v1/search, /v1/index, /healthz, /metrics, web page at /.",
        discussion: """
        --model may be given several times (embedding and chat models alike, any family the registry loads); \
        requests pick one by its id in "model" (the directory name unless --model-id names it), and without \
        "model" go to the first model of the kind the endpoint needs. Requests from all clients are batched into \
        each encoder (up to --max-batch items, waiting at most --max-wait-ms for more); when --queue-capacity \
        items wait, new requests get 503 with Retry-After. Stop with Ctrl-C or SIGTERM (in-flight requests finish first).
        """)

    @Option(name: .customLong("model"), help: "Checkpoint directory (Hugging Face layout); repeatable (default: the embedded scenes models, contrastive and, when present, generative).")
    var models: [String] = []
    @Option(name: .customLong("model-id"), help: "Id clients send in \"model\" for the --model at the same position (default: the directory's name); repeatable.")
    var modelIds: [String] = []
    @Option(name: .customLong("precision"), help: ArgumentHelp("For the --model at the same position; repeatable. " + Precision.helpText, valueName: "fp32|bf16|int8|int4"))
    var precisions: [Precision] = []
    @Option(name: .long, help: "Kernel threads (default: all cores).") var threads: Int?
    @Flag(name: .customLong("no-exif-transpose"), help: "Keep uploaded and indexed images' stored pixel grid instead of applying their EXIF orientation.")
    var noExifTranspose = false
    @Option(help: "Vector index (from `vlm index add`): a SQLite database or milvus://host:port[/database]/collection; enables /v1/search and /v1/index.")
    var index: String?
    @Option(name: .customLong("milvus-token"), help: "Milvus token or user:password for a milvus:// index (default: $MILVUS_TOKEN).")
    var milvusToken: String?
    @Option(help: "Directory whose indexed images may be served and added by path; repeatable (uploads are always served).")
    var root: [String] = []
    @Option(help: "Where uploaded images are stored (default: <index>.uploads next to the database; ~/.vlm/uploads/<collection> for Milvus; replicas sharing a collection should share this directory).") var uploads: String?
    @Option(help: "Where thumbnails for the result grid are cached (default: <index>.thumbnails next to the database; ~/.vlm/thumbnails/<collection> for Milvus).")
    var thumbnails: String?
    @Option(help: "Longest edge of a thumbnail in pixels (16...4096).") var thumbnailSize = 256
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port).") var port = 8080
    @Option(help: "Largest request body in bytes (larger: 413).") var maxBodyBytes = 20 * 1024 * 1024
    @Option(help: "Largest image in pixels, width x height (larger: 422).") var maxImagePixels = 25_000_000
    @Option(help: "Decoded image pixels all requests in flight may hold together (one request above it: 422; while others hold it: 503).")
    var maxPixelsInFlight = 100_000_000
    @Option(name: .customLong("max-images"), help: "Images one chat request may carry.") var maxImages = 16
    @Option(help: "Seconds a connection may go without sending a complete request head before it is closed (slow clients).")
    var idleTimeout: Double = 30
    @Option(help: "Seconds a request body may take to arrive after its head (408 after).") var bodyTimeout: Double = 120
    @Option(name: .customLong("max-image-edge"), help: "SmolVLM/Idefics3 chat models: resize images to at most N pixels on the longest edge before tiling (fewer tiles, faster; not transformers' exact input).")
    var maxImageEdge: Int?
    @Option(help: "Most inputs in one /v1/embeddings request.") var maxInputs = 2048
    @Option(help: "Largest encoder batch formed from queued requests.") var maxBatch = 16
    @Option(help: "Milliseconds the batcher waits for more items after the first.") var maxWaitMs = 5
    @Option(help: "Items (texts, images; each kind) that may wait for the encoder (more: 503).") var queueCapacity = 256
    @Option(help: "Bearer token required on mutating endpoints (default: $VLM_API_KEY, else none).") var apiKey: String?
    @Flag(help: "Require --api-key on the read-only /v1 endpoints too.") var protectReads = false

    func run() throws {
        try guarded {
            // No --model: the embedded defaults, the contrastive one and (when present) the generative one, so the
            // page, /v1/embeddings and /v1/chat/completions all work out of the box.
            let directories = models.isEmpty ? [try DefaultModel.resolve(nil)] + [try? DefaultModel.resolve(nil, generative: true)].compactMap { $0 }
                : models.map { expand($0) }
            var config = ServerConfig(modelDirectories: directories)
            if let index, IndexBackends.isMilvus(index) {
                let uri = try MilvusURI(parsing: index)
                let token = milvusToken
                let uploads = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".vlm/uploads/\(uri.collection)")
                config.indexBackend = IndexBackendSpec(name: uri.description, defaultUploads: uploads) { identity in
                    try IndexBackends.open(index, token: token, model: identity, onMismatch: .refuse)
                }
                config.thumbnailDirectory = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".vlm/thumbnails/\(uri.collection)")
            } else {
                config.indexPath = index.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            }
            config.indexRoots = root.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            config.uploadsDirectory = uploads.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            if let thumbnails { config.thumbnailDirectory = URL(fileURLWithPath: (thumbnails as NSString).expandingTildeInPath) }
            config.thumbnailEdge = thumbnailSize
            config.host = host
            config.port = port
            config.maxBodyBytes = maxBodyBytes
            config.maxImagePixels = maxImagePixels
            config.maxPixelsInFlight = maxPixelsInFlight
            config.maxImagesPerRequest = maxImages
            config.idleTimeoutSeconds = idleTimeout
            config.bodyTimeoutSeconds = bodyTimeout
            if let maxImageEdge {
                guard maxImageEdge >= 1, maxImageEdge <= 1 << 14 else {
                    throw PipelineError.invalidArgument("--max-image-edge must be between 1 and 16384 pixels")
                }
                config.inputProcessing.maxImageEdge = maxImageEdge
            }
            config.maxInputsPerRequest = maxInputs
            config.maxBatch = maxBatch
            config.maxWaitMilliseconds = maxWaitMs
            config.queueCapacity = queueCapacity
            config.apiKey = apiKey ?? ProcessInfo.processInfo.environment["VLM_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            config.protectReads = protectReads
            config.modelIDs = modelIds
            config.modelPrecisions = precisions
            try config.validate()
            if let threads, threads > 0 { Kernels.threads = threads }
            if noExifTranspose { ImageDecoder.appliesExifOrientation = false }
            let kinds = try directories.map { try ModelRegistry.kind(directory: $0).rawValue }
            let frozen = config
            let app = try Self.blocking { try await buildApplication(config: frozen) }
            let listed = directories.indices.map { "\(config.modelID(at: $0)) (\(kinds[$0]))" }.joined(separator: ", ")
            FileHandle.standardError.write(Data("vlm serve: \(listed) on http://\(host):\(port)/\n".utf8))
            // The CLI's root command is synchronous; run the async server on a task and park the main thread
            // until it ends (SIGINT/SIGTERM trigger a graceful shutdown inside runService).
            try Self.blocking { try await app.runService() }
        }
    }

    private static func blocking<T>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let outcome = BlockingOutcome<T>()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { outcome.result = .success(try await body()) } catch { outcome.result = .failure(error) }
            done.signal()
        }
        done.wait()
        guard let result = outcome.result else { throw CancellationError() }
        return try result.get()
    }
}

/// The result a blocking wait hands from its task to the waiting thread (written once, before the signal).
private final class BlockingOutcome<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
