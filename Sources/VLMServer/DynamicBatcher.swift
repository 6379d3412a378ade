import Foundation
import SwiftVLM
import VLMTensor

/// What the batcher runs: the encoder as closures, so tests can wrap the real pipeline (to hold the worker,
/// count calls) without a second code path in the server.
public struct EmbeddingEngine: Sendable {
    /// Embedding width.
    public var dimensions: Int
    /// Cosines -> logits -> probabilities (CLIP's softmax, SigLIP's sigmoid), for classification.
    public var scoring: ScoreFunction
    /// Token ids (BOS ... EOS, truncated, unpadded) for one text.
    public var tokenize: @Sendable (String) throws -> [Int]
    /// L2-normalised embeddings for a batch of tokenised texts.
    public var encodeTexts: @Sendable ([[Int]]) throws -> [[Float]]
    /// L2-normalised embeddings for a batch of decoded images.
    public var encodeImages: @Sendable ([RGBImage]) throws -> [[Float]]

    public init(dimensions: Int, scoring: ScoreFunction, tokenize: @escaping @Sendable (String) throws -> [Int],
                encodeTexts: @escaping @Sendable ([[Int]]) throws -> [[Float]],
                encodeImages: @escaping @Sendable ([RGBImage]) throws -> [[Float]]) {
        self.dimensions = dimensions
        self.scoring = scoring
        self.tokenize = tokenize
        self.encodeTexts = encodeTexts
        self.encodeImages = encodeImages
    }

    /// The pipeline's own computations: `embed(texts:)` split into tokenize + encode (so the server can count
    /// tokens and reject bad input before queueing), and `embed(images:)` as is.
    public static func pipeline(_ pipeline: EmbeddingPipeline) -> EmbeddingEngine {
        EmbeddingEngine(
            dimensions: pipeline.embeddingDim,
            scoring: pipeline.scoring,
            tokenize: { text in try pipeline.tokenize([text]).first ?? [] },
            encodeTexts: { ids in try pipeline.embed(tokenized: ids) },
            encodeImages: { images in try pipeline.embed(images: images) })
    }
}

/// Dynamic batching: requests from many clients queue their items (texts and images in separate queues);
/// one worker thread takes up to `maxBatch` items of one kind, waiting at most `maxWait` after the oldest
/// arrived for more, runs the encoder and resumes each request when all its items are done.
///
/// The encoder is CPU-bound and already parallel inside (the kernel thread pool), so it runs on a dedicated
/// thread: never on a NIO event loop, never on Swift's cooperative pool where it would starve other tasks.
/// One worker also means the model is never entered concurrently.
public final class DynamicBatcher: Sendable {
    public enum Kind: Int, Sendable, CaseIterable {
        case text = 0, image = 1
        var label: String { self == .text ? "text" : "image" }
    }

    private let core: BatcherCore

    public init(engine: EmbeddingEngine, maxBatch: Int, maxWaitMilliseconds: Int, queueCapacity: Int,
                retryAfterSeconds: Int = 1, metrics: ServerMetrics) {
        core = BatcherCore(engine: engine, maxBatch: max(1, maxBatch), maxWait: Double(max(0, maxWaitMilliseconds)) / 1000,
                           capacity: max(1, queueCapacity), retryAfter: retryAfterSeconds, metrics: metrics)
        // 16 MB: deep model code; don't rely on the platform's secondary-thread default.
        let started = DetachedThread.start(name: "vlm-encoder", stackSize: 16 << 20) { [core] in core.run() }
        if !started {  // the system refused a thread: say so rather than leave requests waiting unexplained
            FileHandle.standardError.write(Data("vlm serve: cannot start the encoder thread; requests will not be served\n".utf8))
        }
    }

    deinit {
        // The worker thread holds only the core; stopping it here ends the thread with the last user.
        core.stop()
    }

    public func embed(texts: [[Int]]) async throws -> [[Float]] {
        try await submit(.text, texts.map { .text($0) })
    }

    public func embed(images: [RGBImage]) async throws -> [[Float]] {
        try await submit(.image, images.map { .image($0) })
    }

    /// Items waiting, by kind label.
    public func queueDepths() -> [String: Int] { core.depths() }

    public func shutdown() { core.stop() }

    private func submit(_ kind: Kind, _ payloads: [Payload]) async throws -> [[Float]] {
        guard !payloads.isEmpty else { return [] }
        let group = BatchGroup(count: payloads.count)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                core.enqueue(kind, payloads, group: group, continuation: continuation)
            }
        } onCancel: {
            core.cancel(group)
        }
    }
}

enum Payload: @unchecked Sendable {  // RGBImage and [Int] are values; moved between threads under the lock
    case text([Int])
    case image(RGBImage)
}

/// One request's items. Mutated only under the core's lock; `finished` makes sure the continuation is
/// resumed exactly once whichever comes first: completion, failure, cancellation or shutdown.
final class BatchGroup: @unchecked Sendable {
    var results: [[Float]]
    var remaining: Int
    var continuation: CheckedContinuation<[[Float]], Error>?
    var finished = false

    init(count: Int) {
        results = Array(repeating: [], count: count)
        remaining = count
    }

    func finish(_ result: Result<[[Float]], Error>) {
        guard !finished else { return }
        finished = true
        let c = continuation
        continuation = nil
        switch result {
        case .success(let v): c?.resume(returning: v)
        case .failure(let e): c?.resume(throwing: e)
        }
    }
}

final class BatcherCore: @unchecked Sendable {
    struct Item {
        let group: BatchGroup
        let index: Int
        let payload: Payload
        let enqueued: Date
    }

    let engine: EmbeddingEngine
    let maxBatch: Int
    let maxWait: TimeInterval
    let capacity: Int
    let retryAfter: Int
    let metrics: ServerMetrics
    private let condition = NSCondition()
    private var queues: [[Item]] = [[], []]
    private var stopped = false
    /// When each queue last received items (drives the early end of the batching wait).
    private var lastArrival = [Date.distantPast, Date.distantPast]

    init(engine: EmbeddingEngine, maxBatch: Int, maxWait: TimeInterval, capacity: Int, retryAfter: Int, metrics: ServerMetrics) {
        self.engine = engine
        self.maxBatch = maxBatch
        self.maxWait = maxWait
        self.capacity = capacity
        self.retryAfter = retryAfter
        self.metrics = metrics
    }

    /// All of a request's items go in at once or not at all, so a refused request leaves nothing behind.
    func enqueue(_ kind: DynamicBatcher.Kind, _ payloads: [Payload], group: BatchGroup,
                 continuation: CheckedContinuation<[[Float]], Error>) {
        condition.lock()
        defer { condition.unlock() }
        // Task cancellation sets the flag before running the handler, so a handler that ran before this
        // lock was taken (and found nothing to remove) is caught here.
        if Task.isCancelled { return continuation.resume(throwing: CancellationError()) }
        if stopped { return continuation.resume(throwing: ServerError.shuttingDown) }
        let queued = queues[kind.rawValue].count
        // A request larger than the whole capacity is still served when the queue is empty (its size is
        // bounded by maxInputsPerRequest), otherwise it could never succeed.
        if queued > 0, queued + payloads.count > capacity {
            metrics.rejected(kind: kind.label, count: payloads.count)
            return continuation.resume(throwing: ServerError.overloaded(retryAfter: retryAfter))
        }
        group.continuation = continuation
        let now = Date()
        for (i, p) in payloads.enumerated() {
            queues[kind.rawValue].append(Item(group: group, index: i, payload: p, enqueued: now))
        }
        lastArrival[kind.rawValue] = now
        condition.signal()
    }

    /// A cancelled client: drop its queued items and resume it now. Items already in the encoder finish
    /// and their results are discarded (the group is finished).
    func cancel(_ group: BatchGroup) {
        condition.lock()
        defer { condition.unlock() }
        guard !group.finished else { return }
        for k in queues.indices { queues[k].removeAll { $0.group === group } }
        group.finish(.failure(CancellationError()))
    }

    func depths() -> [String: Int] {
        condition.lock()
        defer { condition.unlock() }
        var out: [String: Int] = [:]
        for kind in DynamicBatcher.Kind.allCases { out[kind.label] = queues[kind.rawValue].count }
        return out
    }

    func stop() {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        stopped = true
        for k in queues.indices {
            for item in queues[k] { item.group.finish(.failure(ServerError.shuttingDown)) }
            queues[k].removeAll()
        }
        condition.broadcast()
    }

    /// The worker loop (its own thread).
    func run() {
        condition.lock()
        while true {
            while !stopped && queues.allSatisfy(\.isEmpty) { condition.wait() }
            if stopped { break }
            // Serve the kind whose oldest item has waited longest, so neither kind starves.
            guard let k = queues.indices.filter({ !queues[$0].isEmpty }).min(by: { queues[$0][0].enqueued < queues[$1][0].enqueued })
            else { continue }
            // Wait for more until the batch is full or the oldest item has waited maxWait, but stop early once
            // arrivals pause for a quarter of maxWait: closed-loop clients resubmit within a fraction of a
            // millisecond, so a long quiet gap means nobody else is coming and waiting only adds latency.
            let deadline = queues[k][0].enqueued.addingTimeInterval(maxWait)
            while !stopped, !queues[k].isEmpty, queues[k].count < maxBatch {
                let until = min(deadline, lastArrival[k].addingTimeInterval(maxWait / 4))
                if Date() >= until { break }
                _ = condition.wait(until: until)
            }
            if stopped { break }
            if queues[k].isEmpty { continue }  // everyone in it was cancelled meanwhile
            let batch = Array(queues[k].prefix(maxBatch))
            queues[k].removeFirst(batch.count)
            condition.unlock()

            let start = DispatchTime.now().uptimeNanoseconds
            let outcome = Result { try encode(batch) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            metrics.batchRan(kind: DynamicBatcher.Kind(rawValue: k)?.label ?? "?", size: batch.count, seconds: seconds)

            condition.lock()
            deliver(batch, outcome)
        }
        condition.unlock()
    }

    private func encode(_ batch: [Item]) throws -> [[Float]] {
        var texts: [[Int]] = [], images: [RGBImage] = []
        for item in batch {
            switch item.payload {
            case .text(let ids): texts.append(ids)
            case .image(let image): images.append(image)
            }
        }
        let vectors = texts.isEmpty ? try engine.encodeImages(images) : try engine.encodeTexts(texts)
        guard vectors.count == batch.count else {
            throw ServerError.internalError("encoder returned \(vectors.count) vectors for \(batch.count) inputs")
        }
        return vectors
    }

    /// Called with the lock held.
    private func deliver(_ batch: [Item], _ outcome: Result<[[Float]], Error>) {
        switch outcome {
        case .success(let vectors):
            for (item, vector) in zip(batch, vectors) where !item.group.finished {
                item.group.results[item.index] = vector
                item.group.remaining -= 1
                if item.group.remaining == 0 { item.group.finish(.success(item.group.results)) }
            }
        case .failure(let error):
            // One bad batch fails every request in it (the inputs were validated, so this is a server fault).
            for item in batch { item.group.finish(.failure(ServerError.from(error))) }
        }
    }
}
