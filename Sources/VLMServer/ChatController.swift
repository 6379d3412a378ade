import Foundation
import Hummingbird
import SwiftVLM

/// `POST /v1/chat/completions` (OpenAI shape), streamed as server-sent events with `"stream": true`.
///
/// Everything a request can get wrong is checked before it queues, so errors come back with their status
/// (not inside a 200 event stream): body size (413), JSON shape (400), model name (404), sampling values and
/// `n` (400), images on a text-only model (400), image decoding (400) and size (422), and the prompt itself
/// via `GenerativePipeline.prepare` (empty or unknown-role message lists, the template's own refusals, image
/// tokens that do not match the images, a tokenizer without the image token, a prompt longer than the
/// context: 400). Remote image URLs (http, https, file) are refused with 400: this server never fetches on a
/// client's behalf, so send images inline as `data:image/...;base64,...`.
struct ChatController<Context: RequestContext>: Sendable {
    let roster: ModelRoster

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/chat/completions") { request, _ in try await complete(request) }
    }

    func complete(_ request: Request) async throws -> Response {
        let body = try await RequestInput.body(of: request, limit: roster.chats.first?.config.maxBodyBytes ?? 0,
                                                 timeout: roster.chats.first?.config.bodyTimeoutSeconds ?? 120)
        let req = try RequestInput.json(ChatCompletionRequest.self, from: body)
        let service = try roster.chat(req.model)
        let options = try req.samplingOptions(defaults: service.engine.defaults)
        let (messages, imageValues) = try Self.conversation(req.messages, engine: service.engine, model: service.modelID)
        let engine = service.engine, config = service.config, count = imageValues.count
        guard count <= config.maxImagesPerRequest else {
            throw ServerError.invalidRequest("the messages carry \(count) images; the limit per request is \(config.maxImagesPerRequest) (--max-images)")
        }
        let prepared = try await RequestInput.offload { () throws -> PreparedPrompt in
            // The decoded images are held only until the processor has turned them into pixel values.
            let (images, reservation) = try RequestInput.images(imageValues, config: config, count: count)
            defer { reservation.release() }
            do { return try engine.prepare(messages, images) } catch let error as ChatTemplateError {
                throw ServerError.invalidRequest("the chat template cannot render these messages: \(error)")
            } catch {
                throw ServerError.from(error)  // the pipeline's named errors are the client's: 400, not a logged 500
            }
        }
        let run = try service.start(prepared, options: options)
        let head = ResponseHead(id: "chatcmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24),
                                created: Int(Date().timeIntervalSince1970), model: service.modelID)
        if req.stream == true {
            return Self.eventStream(run, head: head, includeUsage: req.streamOptions?.includeUsage == true)
        }
        var result: GenerationResult?
        for try await event in run.events { if case .finished(let r) = event { result = r } }
        guard let result else { throw CancellationError() }
        return try JSONResponse.make(ChatCompletionResponse(
            id: head.id, created: head.created, model: head.model,
            choices: [.init(index: 0, message: .init(role: "assistant", content: result.text), finishReason: result.finishReason)],
            usage: ChatUsage(result)))
    }

    struct ResponseHead: Sendable {
        let id: String
        let created: Int
        let model: String

        init(id: some StringProtocol, created: Int, model: String) {
            self.id = String(id)
            self.created = created
            self.model = model
        }

        func chunk(_ delta: ChatCompletionChunk.Delta, finish: String? = nil, includeUsage: Bool) -> ChatCompletionChunk {
            ChatCompletionChunk(id: id, created: created, model: model,
                                choices: [.init(index: 0, delta: delta, finishReason: finish)], usage: nil, includeUsage: includeUsage)
        }
    }

    /// Server-sent events: the role, the text in pieces (UTF-8 safe: the stream decoder never splits a
    /// character), a last chunk with the finish reason, the usage chunk when asked for, then `[DONE]`.
    /// A failed write means the client is gone: the generation is cancelled at once. (The server allows TCP
    /// half-close, so a hang-up is only seen through a failed write: a non-streamed answer, written once at the
    /// end, runs to completion.)
    static func eventStream(_ run: ChatService.Run, head: ResponseHead, includeUsage: Bool) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            func send(_ value: some Encodable) async throws {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
                try await writer.write(ByteBuffer(string: "data: " + String(decoding: try encoder.encode(value), as: UTF8.self) + "\n\n"))
            }
            do {
                try await send(head.chunk(.init(role: "assistant", content: ""), includeUsage: includeUsage))
                var iterator = run.events.makeAsyncIterator()
                while true {
                    let event: ChatService.Event?
                    do { event = try await iterator.next() } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // The generator failed after the response began: report it in the stream, OpenAI-style.
                        let failure = ServerError.from(error)
                        try await send(ErrorBody(error: .init(message: failure.description, type: failure.type, code: failure.code, param: nil)))
                        break
                    }
                    guard let event else { break }
                    switch event {
                    case .waiting:
                        try await writer.write(ByteBuffer(string: ": waiting in the queue\n\n"))  // SSE comment
                    case .text(let piece):
                        try await send(head.chunk(.init(content: piece), includeUsage: includeUsage))
                    case .finished(let result):
                        try await send(head.chunk(.init(), finish: result.finishReason, includeUsage: includeUsage))
                        if includeUsage {
                            try await send(ChatCompletionChunk(id: head.id, created: head.created, model: head.model, choices: [],
                                                               usage: ChatUsage(result),
                                                               includeUsage: true))
                        }
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                run.cancel()
                throw error
            }
        })
    }

    /// The request's messages as the template reads them (`image_url` parts become `{"type": "image"}`, as
    /// `vlm ask` builds them) and the image payloads in order. Roles and order are the pipeline's to check.
    static func conversation(_ messages: [ChatRequestMessage], engine: ChatEngine, model: String) throws -> ([ChatMessage], [String]) {
        var images: [String] = []
        let converted = try messages.enumerated().map { i, m -> ChatMessage in
            switch m.content {
            case .text(let s): return ChatMessage(role: m.role, text: s)
            case .none:
                guard m.role == "assistant" else { throw ServerError.invalidRequest("messages[\(i)].content is missing") }
                return ChatMessage(role: m.role, text: "")
            case .parts(let parts):
                return ChatMessage(role: m.role, parts: try parts.enumerated().map { j, part in
                    switch part {
                    case .text(let t): return .text(t)
                    case .image(let value):
                        guard engine.acceptsImages else { throw ServerError.invalidRequest(ModelError.imagesNotSupported(model: model).description) }
                        let head = value.prefix(8).lowercased()
                        if head.hasPrefix("http://") || head.hasPrefix("https:/") || head.hasPrefix("file:") {
                            throw ServerError.invalidRequest("messages[\(i)].content[\(j)]: remote image URLs are not fetched by this server; send the image inline as a data:image/...;base64 URL")
                        }
                        images.append(value)
                        return ChatContentPart(type: "image")
                    }
                })
            }
        }
        return (converted, images)
    }
}
