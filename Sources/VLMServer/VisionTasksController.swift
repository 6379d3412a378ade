import Foundation
import Hummingbird
import SwiftVLM

/// `POST /v1/vision/tasks`: one vision task (Florence-2's `<OD>`, `<OCR_WITH_REGION>`, `<CAPTION>`, ...) on one
/// image, answered with `VisionTaskRunner`'s result, the same JSON `vlm task --format json` prints (boxes, quad
/// boxes and polygons in original-image pixels), plus the generated text, the image size and the token usage.
/// Registered only when a served model runs vision tasks (its processor conforms to `VisionTaskProcessor`).
///
/// Everything a request can get wrong is checked before it queues: body size (413), JSON shape (400), model
/// (unknown: 404; one that runs no vision tasks: 400 naming the ones that do), `num_beams` / `max_tokens` (400),
/// the image (base64 / data URL 400, undecodable 400, too large 422, pixel budget 503), the task (unknown task,
/// missing text, text or a box for a task that takes none, a region outside the image: 400). The generation
/// then waits in the model's chat queue (one generator per model; 503 when the queue is full).
struct VisionTasksController<Context: RequestContext>: Sendable {
    let roster: ModelRoster

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/vision/tasks") { request, _ in try await run(request) }
    }

    func run(_ request: Request) async throws -> Response {
        let first = roster.chats.first
        let body = try await RequestInput.body(of: request, limit: first?.config.maxBodyBytes ?? 0, timeout: first?.config.bodyTimeoutSeconds ?? 120)
        let req = try RequestInput.json(VisionTaskRequest.self, from: body)
        let (service, runner) = try roster.visionTasks(req.model)
        guard let image = req.image, !image.isEmpty else {
            throw ServerError.invalidRequest("'image' is required: the image as a data:image/...;base64 URL (or bare base64)")
        }
        let options = try Self.clientErrors { try runner.options(numBeams: req.numBeams, maxTokens: req.maxTokens) }
        let config = service.config
        let prepared = try await RequestInput.offload { () throws -> VisionTaskRunner.Prepared in
            // The decoded image is held only until the processor has turned it into pixel values.
            let (images, reservation) = try RequestInput.images([image], config: config, count: 1)
            defer { reservation.release() }
            return try Self.clientErrors { try runner.prepare(image: images[0], task: req.task, text: req.text, box: req.box) }
        }
        let result = try await service.exclusive { shouldStop in
            try Self.clientErrors { try runner.run(prepared, options: options, shouldStop: shouldStop) }
        }
        return try Self.response(result, model: service.modelID)
    }

    /// The library's named errors about the request (unknown task, missing text, bad region, bad options) are the
    /// client's: 400, not a logged 500.
    static func clientErrors<T>(_ work: () throws -> T) throws -> T {
        do { return try work() } catch let e as ModelError { throw ServerError.invalidRequest(e.description) } catch {
            throw ServerError.from(error)
        }
    }

    /// `{"object": "vision.task", "model", "task", "result", "text", "image_size", "finish_reason", "usage"}`;
    /// `result` is exactly what `vlm task --format json` prints for the same image, task and options.
    static func response(_ r: VisionTaskRunner.Result, model: String) throws -> Response {
        let completion = r.generation.tokens.count
        let object: JSONObject = [
            "object": "vision.task", "model": model, "task": r.task, "result": r.parsed, "text": r.generatedText,
            "image_size": ["width": r.imageSize.width, "height": r.imageSize.height],
            "finish_reason": r.generation.finishReason,
            "usage": ["prompt_tokens": r.generation.promptTokens, "completion_tokens": completion,
                      "total_tokens": r.generation.promptTokens + completion],
        ]
        guard JSONSerialization.isValidJSONObject(object) else { throw ServerError.internalError("the task result is not JSON") }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return Response(status: .ok, headers: [.contentType: "application/json", .contentLength: String(data.count)],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension ModelRoster {
    /// The served models that run vision tasks, in --model order.
    var visionTaskModels: [ChatService] { chats.filter { $0.engine.visionTasks != nil } }

    /// The model a vision-task request names (or the first that runs vision tasks) with its runner. Unknown id:
    /// 404; a model that runs none: 400 naming the ones that do.
    func visionTasks(_ requested: String?) throws -> (ChatService, VisionTaskRunner) {
        let capable = visionTaskModels
        let which = capable.isEmpty ? "no served model runs vision tasks (Florence-2 checkpoints do)"
                                    : "models that run vision tasks: \(capable.map(\.modelID).joined(separator: ", "))"
        if let requested, !requested.isEmpty {
            guard let entry = entry(id: requested) else { throw ServerError.modelNotFound(requested) }
            guard case .chat(let service) = entry, let runner = service.engine.visionTasks else {
                throw ServerError.invalidRequest("the model '\(requested)' does not run vision tasks; \(which)")
            }
            return (service, runner)
        }
        guard let service = capable.first, let runner = service.engine.visionTasks else { throw ServerError.invalidRequest(which) }
        return (service, runner)
    }
}

extension ModelRoster.Entry {
    /// The vision task tokens the model runs (nil: none), as /healthz lists them for the web page.
    var visionTasks: [String]? {
        guard case .chat(let service) = self else { return nil }
        return service.engine.visionTasks?.tasks
    }
}

extension ChatService {
    /// Runs `work` on this model's generator thread, in the same first-come-first-served queue as chat answers
    /// (the model is never entered concurrently): 503 at once when the queue is full. Like a non-streamed chat
    /// answer, it runs to its end once started.
    func exclusive<T: Sendable>(_ work: @escaping @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) throws -> T) async throws -> T {
        let metrics = metrics
        return try await withCheckedThrowingContinuation { continuation in
            let job = ChatScheduler.Job { job in
                let started = DispatchTime.now().uptimeNanoseconds
                metrics.observeWait(Double(started - job.enqueued) / 1e9)
                continuation.resume(with: Result { try work { job.isCancelled } })
            }
            guard scheduler.submit(job) else {
                metrics.rejectedRequest()
                continuation.resume(throwing: ServerError.overloaded(retryAfter: config.retryAfterSeconds))
                return
            }
        }
    }
}
