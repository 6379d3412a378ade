import Dispatch
import Foundation
import SwiftVLM
import VLMTensor

/// What the chat scheduler runs: the generative pipeline as closures, so tests can wrap the real pipeline
/// (hold the generator, count calls) without a second code path in the server.
public struct ChatEngine: Sendable {
    /// model_type of the checkpoint (llava, llama, ...).
    public var modelType: String
    public var contextLength: Int
    public var acceptsImages: Bool
    public var imageTokensPerImage: Int?
    /// Weight precision of the language model as loaded (GenerativeModel.weightPrecision).
    public var precision = "fp32"
    /// What the decoder's KV cache stores (GenerativeModel.kvCache): fp32, or bf16 under a reduced precision.
    public var kvCache = "fp32"
    /// generation_config.json: the starting point of every request's sampling options.
    public var defaults: GenerationDefaults
    /// Chat template, tokenizer, image token expansion and pixel values: `GenerativePipeline.prepare`.
    public var prepare: @Sendable ([ChatMessage], [RGBImage]) throws -> PreparedPrompt
    /// One answer; `onText` gets the text as it is produced (false cancels), `shouldStop` is polled per token.
    public var generate: @Sendable (PreparedPrompt, SamplingOptions, _ onText: (String) -> Bool, _ shouldStop: () -> Bool) throws -> GenerationResult
    /// The model's vision tasks (`POST /v1/vision/tasks`); nil when it runs none.
    public var visionTasks: VisionTaskRunner?

    public init(modelType: String, contextLength: Int, acceptsImages: Bool, imageTokensPerImage: Int?, defaults: GenerationDefaults,
                prepare: @escaping @Sendable ([ChatMessage], [RGBImage]) throws -> PreparedPrompt,
                generate: @escaping @Sendable (PreparedPrompt, SamplingOptions, (String) -> Bool, () -> Bool) throws -> GenerationResult) {
        self.modelType = modelType
        self.contextLength = contextLength
        self.acceptsImages = acceptsImages
        self.imageTokensPerImage = imageTokensPerImage
        self.defaults = defaults
        self.prepare = prepare
        self.generate = generate
    }

    /// The pipeline's own computations, exactly as `vlm ask`/`vlm chat` run them, with the states of the last
    /// `conversations` conversations kept (at most `cacheBytes` of KV caches): a request whose prompt starts
    /// like a kept conversation (OpenAI clients resend the whole conversation each turn) prefills only the rest.
    public static func pipeline(_ p: GenerativePipeline, conversations: Int = 4, cacheBytes: Int = 1 << 30) -> ChatEngine {
        let cache = ConversationCache(maxSessions: conversations, maxBytes: cacheBytes)
        var engine = ChatEngine(
            modelType: p.modelType, contextLength: p.contextLength, acceptsImages: p.supportsImages,
            imageTokensPerImage: p.imageTokensPerImage, defaults: p.defaults,
            prepare: { messages, images in
                // The family's processor names what is wrong with the prompt: the client's error (400).
                do { return try p.prepare(messages: messages, images: images) } catch let e as ModelError {
                    throw ServerError.invalidRequest(e.description)
                }
            },
            generate: { prepared, options, onText, shouldStop in
                try withoutActuallyEscaping(onText) { onText in
                    try withoutActuallyEscaping(shouldStop) { shouldStop in
                        try cache.generate(p, input: prepared, options: options, onText: onText, shouldStop: shouldStop)
                    }
                }
            })
        engine.precision = p.model.weightPrecision
        engine.kvCache = p.model.kvCache
        engine.visionTasks = p.visionTasks == nil ? nil : try? VisionTaskRunner(pipeline: p)
        return engine
    }
}

/// One generator, many clients: requests wait in a bounded FIFO queue (first come, first served: every
/// request runs to its end before the next starts, so no request is starved and the model is never entered
/// concurrently); a full queue refuses new requests (503 + Retry-After) instead of growing without bound.
///
/// The generator is CPU-bound and parallel inside (the kernel thread pool), so it runs on a dedicated thread,
/// never on a NIO event loop or Swift's cooperative pool.
public final class ChatScheduler: Sendable {
    /// A queued generation. `cancel()` (client gone) removes it from the queue, or stops it between tokens.
    final class Job: @unchecked Sendable {
        let enqueued = DispatchTime.now().uptimeNanoseconds
        let work: @Sendable (Job) -> Void
        private let lock = NSLock()
        private var cancelled = false
        private var started = false

        init(_ work: @escaping @Sendable (Job) -> Void) { self.work = work }

        var isCancelled: Bool { lock.withLock { cancelled } }
        var hasStarted: Bool { lock.withLock { started } }
        func markCancelled() { lock.withLock { cancelled = true } }
        func markStarted() { lock.withLock { started = true } }
    }

    private final class Core: @unchecked Sendable {
        let condition = NSCondition()
        var waiting: [Job] = []
        var busy = false
        var stopped = false
        let capacity: Int

        init(capacity: Int) { self.capacity = capacity }

        func run() {
            while true {
                condition.lock()
                while waiting.isEmpty && !stopped { condition.wait() }
                if stopped && waiting.isEmpty { condition.unlock(); return }
                let job = waiting.removeFirst()
                busy = true
                condition.unlock()
                job.markStarted()
                job.work(job)
                condition.lock()
                busy = false
                condition.unlock()
            }
        }
    }

    private let core: Core

    /// `capacity`: requests that may wait while one generates.
    public init(capacity: Int) {
        core = Core(capacity: max(1, capacity))
        let started = DetachedThread.start(name: "vlm-generator", stackSize: 16 << 20) { [core] in core.run() }
        if !started {  // the system refused a thread: say so rather than leave requests waiting unexplained
            FileHandle.standardError.write(Data("vlm serve: cannot start the generator thread; requests will not be served\n".utf8))
        }
    }

    deinit {
        core.condition.lock()
        core.stopped = true
        core.condition.broadcast()
        core.condition.unlock()
    }

    /// Queues `job`; false when the queue is full (or the server is stopping).
    func submit(_ job: Job) -> Bool {
        core.condition.lock()
        defer { core.condition.unlock() }
        guard !core.stopped, core.waiting.count < core.capacity else { return false }
        core.waiting.append(job)
        core.condition.signal()
        return true
    }

    /// Marks `job` cancelled and drops it from the queue if it has not started (its work never runs).
    func cancel(_ job: Job) -> Bool {
        job.markCancelled()
        core.condition.lock()
        defer { core.condition.unlock() }
        guard let i = core.waiting.firstIndex(where: { $0 === job }) else { return false }
        core.waiting.remove(at: i)
        return true
    }

    /// Requests waiting (not counting the one generating).
    public var depth: Int { core.condition.lock(); defer { core.condition.unlock() }; return core.waiting.count }
    public var isBusy: Bool { core.condition.lock(); defer { core.condition.unlock() }; return core.busy }
    public var capacity: Int { core.capacity }
}

/// Validated requests in, answers out: shared by the streamed and non-streamed forms of
/// `/v1/chat/completions`.
public final class ChatService: Sendable {
    public let config: ServerConfig
    public let engine: ChatEngine
    public let modelID: String
    public let created = Int(Date().timeIntervalSince1970)
    public let scheduler: ChatScheduler
    let metrics: ChatMetrics

    public init(config: ServerConfig, engine: ChatEngine, modelID: String) {
        self.config = config
        self.engine = engine
        self.modelID = modelID
        scheduler = ChatScheduler(capacity: config.queueCapacity)
        metrics = ChatMetrics()
    }

    enum Event: Sendable {
        /// The request is still waiting in the queue (every `chatKeepAliveSeconds`).
        case waiting
        case text(String)
        case finished(GenerationResult)
    }

    /// A queued or running answer: its events, and a way to stop it (the client went away).
    struct Run: Sendable {
        let events: AsyncThrowingStream<Event, Error>
        let cancel: @Sendable () -> Void
    }

    /// Queues one answer. Throws 503 at once when the queue is full; otherwise the events arrive as the
    /// generator produces them. Dropping or cancelling the consumer of `events` cancels the generation
    /// (or removes it from the queue), so a disconnected client does not hold the generator.
    func start(_ prepared: PreparedPrompt, options: SamplingOptions) throws -> Run {
        let (events, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        let engine = engine, metrics = metrics
        let job = ChatScheduler.Job { job in
            let started = DispatchTime.now().uptimeNanoseconds
            metrics.observeWait(Double(started - job.enqueued) / 1e9)
            guard !job.isCancelled else {
                metrics.finished(reason: "cancelled", prompt: 0, completion: 0, seconds: 0)
                continuation.finish(throwing: CancellationError())
                return
            }
            var first = true
            do {
                let result = try engine.generate(prepared, options, { piece in
                    if job.isCancelled { return false }
                    if first {
                        first = false
                        metrics.observeFirstToken(Double(DispatchTime.now().uptimeNanoseconds - job.enqueued) / 1e9)
                    }
                    continuation.yield(.text(piece))
                    return true
                }, { job.isCancelled })
                metrics.finished(reason: result.finishReason, prompt: result.promptTokens, completion: result.tokens.count,
                                 seconds: Double(DispatchTime.now().uptimeNanoseconds - job.enqueued) / 1e9,
                                 reused: result.reusedTokens, prefilled: result.prefilledTokens)
                continuation.yield(.finished(result))
                continuation.finish()
            } catch {
                metrics.finished(reason: "error", prompt: 0, completion: 0, seconds: 0)
                continuation.finish(throwing: error)
            }
        }
        let scheduler = scheduler
        let cancel: @Sendable () -> Void = {
            // Removed before it started: count it here (its work never runs).
            if scheduler.cancel(job) { metrics.finished(reason: "cancelled", prompt: 0, completion: 0, seconds: 0) }
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination { cancel() }
        }
        guard scheduler.submit(job) else {
            metrics.rejectedRequest()
            continuation.onTermination = nil
            continuation.finish()
            throw ServerError.overloaded(retryAfter: config.retryAfterSeconds)
        }
        // While it waits, the request hears from the queue now and then (streams turn it into an SSE comment).
        let interval = UInt64(config.chatKeepAliveSeconds * 1e9)
        Task {
            while true {
                try? await Task.sleep(nanoseconds: interval)
                if job.hasStarted || job.isCancelled { return }
                if case .terminated = continuation.yield(.waiting) { return }
            }
        }
        return Run(events: events, cancel: cancel)
    }
}

/// Chat counters and histograms for /metrics (HTTP-level counts and latencies come from `ServerMetrics`).
final class ChatMetrics: @unchecked Sendable {
    typealias Histogram = ServerMetrics.Histogram
    static let bounds: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

    private let lock = NSLock()
    private var outcomes: [String: UInt64] = [:]
    private var rejected: UInt64 = 0
    private var promptTokens: UInt64 = 0
    private var completionTokens: UInt64 = 0
    private var reusedTokens: UInt64 = 0
    private var prefilledTokens: UInt64 = 0
    private var wait = Histogram(bounds: ChatMetrics.bounds)
    private var firstToken = Histogram(bounds: ChatMetrics.bounds)
    private var duration = Histogram(bounds: ChatMetrics.bounds)

    func observeWait(_ seconds: Double) { lock.withLock { wait.observe(seconds) } }
    func observeFirstToken(_ seconds: Double) { lock.withLock { firstToken.observe(seconds) } }
    func rejectedRequest() { lock.withLock { rejected += 1 } }

    func finished(reason: String, prompt: Int, completion: Int, seconds: Double, reused: Int = 0, prefilled: Int? = nil) {
        lock.withLock {
            outcomes[reason, default: 0] += 1
            reusedTokens += UInt64(reused)
            prefilledTokens += UInt64(prefilled ?? prompt)
            promptTokens += UInt64(prompt)
            completionTokens += UInt64(completion)
            if reason != "cancelled" && reason != "error" { duration.observe(seconds) }
        }
    }

    /// Generations that ended, by finish reason (stop, length, cancelled, error).
    func outcomeCount(_ reason: String) -> UInt64 { lock.withLock { outcomes[reason] ?? 0 } }

    func render(depth: Int, capacity: Int, busy: Bool) -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func histogram(_ name: String, _ h: Histogram) {
            var cumulative: UInt64 = 0
            for (bound, c) in zip(h.bounds, h.counts) {
                cumulative += c
                out += "\(name)_bucket{le=\"\(ServerMetrics.number(bound))\"} \(cumulative)\n"
            }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(ServerMetrics.number(h.sum))\n\(name)_count \(h.count)\n"
        }
        header("vlm_chat_requests_total", "counter", "Chat generations that ended, by finish reason (stop, length, cancelled, error).")
        for reason in Set(outcomes.keys).union(["stop", "length", "cancelled", "error"]).sorted() {
            out += "vlm_chat_requests_total{finish_reason=\"\(ServerMetrics.escape(reason))\"} \(outcomes[reason] ?? 0)\n"
        }
        header("vlm_chat_rejected_total", "counter", "Chat requests refused with 503 because the queue was full.")
        out += "vlm_chat_rejected_total \(rejected)\n"
        header("vlm_chat_prompt_tokens_total", "counter", "Prompt tokens read (image tokens included).")
        out += "vlm_chat_prompt_tokens_total \(promptTokens)\n"
        header("vlm_chat_prompt_tokens_reused_total", "counter", "Prompt tokens taken from a kept conversation state (not run again).")
        out += "vlm_chat_prompt_tokens_reused_total \(reusedTokens)\n"
        header("vlm_chat_prompt_tokens_prefilled_total", "counter", "Prompt tokens run through the model.")
        out += "vlm_chat_prompt_tokens_prefilled_total \(prefilledTokens)\n"
        header("vlm_chat_completion_tokens_total", "counter", "Tokens generated.")
        out += "vlm_chat_completion_tokens_total \(completionTokens)\n"
        header("vlm_chat_queue_depth", "gauge", "Chat requests waiting for the generator.")
        out += "vlm_chat_queue_depth \(depth)\n"
        header("vlm_chat_queue_capacity", "gauge", "Chat requests that may wait before new ones get 503.")
        out += "vlm_chat_queue_capacity \(capacity)\n"
        header("vlm_chat_generating", "gauge", "1 while the generator runs a request.")
        out += "vlm_chat_generating \(busy ? 1 : 0)\n"
        header("vlm_chat_queue_wait_seconds", "histogram", "Time from queueing to the start of generation.")
        histogram("vlm_chat_queue_wait_seconds", wait)
        header("vlm_chat_time_to_first_token_seconds", "histogram", "Time from queueing to the first text.")
        histogram("vlm_chat_time_to_first_token_seconds", firstToken)
        header("vlm_chat_request_duration_seconds", "histogram", "Time from queueing to the end of a completed generation.")
        histogram("vlm_chat_request_duration_seconds", duration)
        return out
    }
}
