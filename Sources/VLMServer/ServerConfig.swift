import Foundation
import VLMLayers
import VLMModels
import VLMIndex

/// How to open a non-SQLite index for the server: a name for messages and /healthz (no credentials), where
/// uploads go by default, and the opener (given the serving model's identity; it refuses another model's index).
public struct IndexBackendSpec: Sendable {
    public var name: String
    public var defaultUploads: URL
    public var open: @Sendable (ModelIdentity) throws -> any VectorIndex
    public init(name: String, defaultUploads: URL, open: @escaping @Sendable (ModelIdentity) throws -> any VectorIndex) {
        (self.name, self.defaultUploads, self.open) = (name, defaultUploads, open)
    }
}

/// Everything `vlm serve` can be told. Defaults suit one CPU host serving a base-size CLIP.
public struct ServerConfig: Sendable {
    /// Checkpoint directories (Hugging Face layout), in `--model` order: embedding and chat models alike.
    public var modelDirectories: [URL]
    /// The first checkpoint (the only one for single-model servers).
    public var modelDirectory: URL {
        get { modelDirectories[0] }  // safe: the initialisers and `validate` keep it non-empty
        set { modelDirectories[0] = newValue }
    }
    /// Vector index database (`vlm index add` makes one); enables /v1/search and /v1/index.
    public var indexPath: URL?
    /// An index that is not a SQLite file (e.g. a Milvus collection), opened by code the caller supplies (the
    /// executable registers the Milvus backend, so this library needs no gRPC). Takes precedence over `indexPath`.
    public var indexBackend: IndexBackendSpec?
    /// Whether an index is configured at all.
    public var hasIndex: Bool { indexPath != nil || indexBackend != nil }
    /// Directories whose indexed images may be served (GET /v1/index/{id}/image) and added by path
    /// (POST /v1/index `paths`). Nothing outside them (after resolving symlinks) is ever read for a client.
    public var indexRoots: [URL] = []
    /// Where uploaded images are kept (served and indexed like files under a root); default: next to the
    /// index database, `<index>.uploads/`.
    public var uploadsDirectory: URL?
    /// Where thumbnails of indexed images are cached (GET /v1/index/{id}/thumbnail); default: next to the index
    /// database, `<index>.thumbnails/` (for another backend: next to its default uploads directory).
    public var thumbnailDirectory: URL?
    /// Longest edge of a thumbnail, pixels (16...4096).
    public var thumbnailEdge: Int = 256
    /// Most results one /v1/search may ask for.
    public var maxTopK: Int = 1000
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    /// Request bodies above this are refused with 413 while they stream in, so nothing unbounded is buffered.
    public var maxBodyBytes: Int = 20 * 1024 * 1024
    /// Decoded width x height above this gets 422, decided from the image header before pixels are allocated.
    public var maxImagePixels: Int = 25_000_000
    /// Decoded image pixels all requests in flight may hold together (a request alone above it: 422; while
    /// others hold it: 503). 100 M pixels = 300 MB of RGB.
    public var maxPixelsInFlight: Int = 100_000_000
    /// Images one chat request may carry (each becomes up to a few thousand tokens and tens of MB of pixels).
    public var maxImagesPerRequest: Int = 16
    /// The shared budget `maxPixelsInFlight` is counted in (one per server; copies of the config share it).
    public let pixelBudget = PixelBudget()
    /// A connection that has sent no complete request head for this long (while opening, or since its last
    /// response) is closed: slowloris clients that dribble headers hold no connection longer than this.
    public var idleTimeoutSeconds: Double = 30
    /// A request body must arrive within this long of its head (408 after; a client dribbling a body).
    public var bodyTimeoutSeconds: Double = 120
    /// Input processing of the chat models (e.g. SmolVLM's --max-image-edge); defaults reproduce transformers.
    public var inputProcessing = InputProcessingOptions()
    /// Inputs (texts or images) per `/v1/embeddings` request, as OpenAI limits it.
    public var maxInputsPerRequest: Int = 2048
    /// Labels per `/v1/classify` request.
    public var maxLabels: Int = 1000
    /// Largest encoder batch the batcher forms from queued requests.
    public var maxBatch: Int = 16
    /// How long the batcher waits after the first queued item for more to arrive (it stops early when nothing
    /// arrives for a quarter of this).
    public var maxWaitMilliseconds: Int = 5
    /// Items (texts, images; counted separately) waiting for the encoder; beyond this requests get 503.
    public var queueCapacity: Int = 256
    /// Seconds advertised in Retry-After with a 503.
    public var retryAfterSeconds: Int = 1
    /// A streamed chat answer that waits in the queue gets an SSE comment this often, so a client that left is
    /// noticed (failed write) and its request leaves the queue.
    public var chatKeepAliveSeconds: Double = 2
    /// Bearer token for the mutating endpoints (and, with `protectReads`, for every /v1 endpoint).
    public var apiKey: String?
    /// Require the API key on the read-only /v1 endpoints too (embeddings, classify, models).
    public var protectReads: Bool = false
    /// The ids clients name in `"model"`, one per model in order; a model without one is called by its
    /// checkpoint directory's name.
    public var modelIDs: [String] = []
    /// The first model's id (single-model servers).
    public var modelID: String? {
        get { modelIDs.first }
        set { modelIDs = newValue.map { [$0] + modelIDs.dropFirst() } ?? Array(modelIDs.dropFirst()) }
    }

    /// The weight precision of each model, in order (nil or missing: the checkpoint's own; see Precision).
    public var modelPrecisions: [Precision?] = []
    /// The precision of model `i`.
    public func precision(at i: Int) -> Precision? { i < modelPrecisions.count ? modelPrecisions[i] : nil }

    public init(modelDirectory: URL) {
        modelDirectories = [modelDirectory]
    }

    public init(modelDirectories: [URL]) {
        self.modelDirectories = modelDirectories.isEmpty ? [URL(fileURLWithPath: ".")] : modelDirectories
    }

    /// The id of model `i`: its `modelIDs` entry, or its directory's last path component.
    public func modelID(at i: Int) -> String {
        if i < modelIDs.count, !modelIDs[i].isEmpty { return modelIDs[i] }
        guard i < modelDirectories.count else { return "model\(i)" }
        let name = modelDirectories[i].standardizedFileURL.lastPathComponent
        return name.isEmpty || name == "/" ? "model\(i)" : name
    }

    /// The first model's id.
    public var resolvedModelID: String { modelID(at: 0) }

    /// Refuses settings that would make the server misbehave rather than start with them.
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw ServerError.invalidConfiguration(what) } }
        try check((0 ... 65535).contains(port), "--port must be in 0...65535")
        try check(maxBodyBytes > 0, "--max-body-bytes must be > 0")
        try check(maxPixelsInFlight >= maxImagePixels, "--max-pixels-in-flight must be at least --max-image-pixels")
        try check(maxImagesPerRequest >= 1, "--max-images must be >= 1")
        try check(idleTimeoutSeconds > 0 && idleTimeoutSeconds <= 86400, "--idle-timeout must be in (0, 86400] seconds")
        try check(bodyTimeoutSeconds > 0 && bodyTimeoutSeconds <= 86400, "--body-timeout must be in (0, 86400] seconds")
        try check(maxImagePixels > 0, "--max-image-pixels must be > 0")
        try check(maxInputsPerRequest > 0, "--max-inputs must be > 0")
        try check(maxLabels > 0, "max labels must be > 0")
        try check((1 ... 4096).contains(maxBatch), "--max-batch must be in 1...4096")
        try check((0 ... 60_000).contains(maxWaitMilliseconds), "--max-wait-ms must be in 0...60000")
        try check(queueCapacity > 0, "--queue-capacity must be > 0")
        try check(retryAfterSeconds >= 0, "retry-after must be >= 0")
        try check(chatKeepAliveSeconds > 0, "chat keep-alive interval must be > 0")
        if let apiKey { try check(!apiKey.isEmpty, "--api-key must not be empty") }
        try check(apiKey != nil || !protectReads, "--protect-reads needs --api-key")
        try check(maxTopK > 0, "max top_k must be > 0")
        try check((16 ... 4096).contains(thumbnailEdge), "--thumbnail-size must be in 16...4096")
        try check(modelIDs.count <= modelDirectories.count, "more --model-id values (\(modelIDs.count)) than --model checkpoints (\(modelDirectories.count))")
        try check(modelPrecisions.count <= modelDirectories.count, "more --precision values (\(modelPrecisions.count)) than --model checkpoints (\(modelDirectories.count))")
        let ids = modelDirectories.indices.map(modelID(at:))
        try check(Set(ids).count == ids.count, "two models have the same id (\(ids.joined(separator: ", "))); give them distinct --model-id values")
        try check(hasIndex || (indexRoots.isEmpty && uploadsDirectory == nil), "--root and --uploads need --index")
        try check(hasIndex || thumbnailDirectory == nil, "--thumbnails needs --index")
    }
}
