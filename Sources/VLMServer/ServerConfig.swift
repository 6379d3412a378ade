import Foundation
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
    /// Most results one /v1/search may ask for.
    public var maxTopK: Int = 1000
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    /// Request bodies above this are refused with 413 while they stream in, so nothing unbounded is buffered.
    public var maxBodyBytes: Int = 20 * 1024 * 1024
    /// Decoded width x height above this gets 422, decided from the image header before pixels are allocated.
    public var maxImagePixels: Int = 25_000_000
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
        try check(modelIDs.count <= modelDirectories.count, "more --model-id values (\(modelIDs.count)) than --model checkpoints (\(modelDirectories.count))")
        let ids = modelDirectories.indices.map(modelID(at:))
        try check(Set(ids).count == ids.count, "two models have the same id (\(ids.joined(separator: ", "))); give them distinct --model-id values")
        try check(hasIndex || (indexRoots.isEmpty && uploadsDirectory == nil), "--root and --uploads need --index")
    }
}
