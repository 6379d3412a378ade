import Foundation
import Hummingbird

// `GET /openapi.json`: an OpenAPI 3.0 document of the routes THIS server has. buildRouter registers routes by
// what is served (embedding models: embeddings, classify, search and the index routes; chat models: chat
// completions) and guards groups with --api-key / --protect-reads; `OpenAPIDocument.operations` makes the
// same decisions from the same inputs, and OpenAPITests checks the two agree (every documented route answers,
// no undocumented one does).

/// One documented route.
struct APIOperation {
    let method: String
    /// OpenAPI template, e.g. `/v1/models/{id}`.
    let path: String
    let summary: String
    var description: String = ""
    var parameters: [JSONObject] = []
    /// Component schema of the JSON request body, if any.
    var requestBody: String?
    /// Status code -> response object.
    var responses: [String: JSONObject]
    /// Needs the bearer token (--api-key).
    var guarded = false
}

enum OpenAPIDocument {
    /// Which route groups exist and which are guarded: what buildRouter decides from the config and roster.
    struct Shape {
        var embedding: Bool
        var chat: Bool
        var index: Bool
        var guardReads: Bool
        var guardWrites: Bool
        var maxTopK: Int
        var maxLabels: Int
        /// The served ids of each kind, in --model order (request `model` fields take these).
        var embeddingIDs: [String]
        var chatIDs: [String]
        /// The chat models that run vision tasks (`/v1/vision/tasks`), and the task tokens of the first.
        var vision: Bool
        var visionIDs: [String]
        var visionTasks: [String]

        init(embeddingIDs: [String], chatIDs: [String], index: Bool, guardReads: Bool = false, guardWrites: Bool = false,
             maxTopK: Int = 1000, maxLabels: Int = 1000, visionIDs: [String] = [], visionTasks: [String] = []) {
            embedding = !embeddingIDs.isEmpty
            chat = !chatIDs.isEmpty
            self.embeddingIDs = embeddingIDs
            self.chatIDs = chatIDs
            vision = !visionIDs.isEmpty
            self.visionIDs = visionIDs
            self.visionTasks = visionTasks
            self.index = index
            self.guardReads = guardReads
            self.guardWrites = guardWrites
            self.maxTopK = maxTopK
            self.maxLabels = maxLabels
        }

        init(config: ServerConfig, roster: ModelRoster, hasIndex: Bool) {
            self.init(embeddingIDs: roster.encoders.map(\.model.id), chatIDs: roster.chats.map(\.modelID), index: hasIndex,
                      guardReads: config.apiKey != nil && config.protectReads, guardWrites: config.apiKey != nil,
                      maxTopK: config.maxTopK, maxLabels: config.maxLabels,
                      visionIDs: roster.visionTaskModels.map(\.modelID),
                      visionTasks: roster.visionTaskModels.first?.engine.visionTasks?.tasks ?? [])
        }
    }

    static func json(_ schema: String) -> JSONObject { ["application/json": ["schema": Schema.ref(schema)]] }

    static func ok(_ description: String, schema: String) -> JSONObject { ["description": description, "content": json(schema)] }

    static func error(_ code: Int) -> JSONObject { ["$ref": "#/components/responses/E\(code)"] }

    static let errorDescriptions: [(Int, String)] = [
        (400, "Malformed JSON, a missing or invalid field, or an undecodable image (see error.code)."),
        (401, "Missing or wrong bearer token (`Authorization: Bearer <key>`)."),
        (404, "Unknown model, index entry or route."),
        (408, "The request body did not arrive in time (--body-timeout)."),
        (413, "The body is larger than --max-body-bytes."),
        (422, "An image is larger than --max-image-pixels, or than the model's preprocessing allows."),
        (501, "This server has no index: start it with `vlm serve --index PATH`."),
        (503, "At capacity (queue full; see Retry-After) or shutting down."),
    ]

    /// Errors of every endpoint that reads a JSON body and may run a model.
    static func bodyErrors(images: Bool) -> [String: JSONObject] {
        var r: [String: JSONObject] = [:]
        for code in [400, 404, 408, 413, 503] + (images ? [422] : []) { r[String(code)] = error(code) }
        return r
    }

    static func pathID(_ description: String, integer: Bool, example: String? = nil) -> JSONObject {
        var p: JSONObject = ["name": "id", "in": "path", "required": true, "description": description,
                             "schema": integer ? Schema.integer(minimum: 1, int64: true) : Schema.string()]
        if let example { p["example"] = example }
        return p
    }

    /// The routes of a server of this shape, in buildRouter's order.
    static func operations(_ shape: Shape) -> [APIOperation] {
        let text: (String) -> JSONObject = { ["description": $0, "content": ["text/plain": ["schema": Schema.string()]]] }
        var ops = [
            APIOperation(method: "get", path: "/", summary: "Web page: pick a model; search, classify, chat",
                         responses: ["200": ["description": "A self-contained HTML page.", "content": ["text/html": ["schema": Schema.string()]]]]),
            APIOperation(method: "get", path: "/openapi.json", summary: "This document",
                         responses: ["200": ["description": "OpenAPI 3.0 description of this server's routes.",
                                             "content": ["application/json": ["schema": ["type": "object"]]]]]),
            APIOperation(method: "get", path: "/docs", summary: "This document as an HTML page",
                         responses: ["200": ["description": "HTML.", "content": ["text/html": ["schema": Schema.string()]]]]),
            APIOperation(method: "get", path: "/healthz", summary: "Liveness, models, queue depths, index",
                         responses: ["200": ok("The server is up.", schema: "Health")]),
            APIOperation(method: "get", path: "/metrics", summary: "Prometheus metrics",
                         responses: ["200": text("Prometheus text exposition format 0.0.4.")]),
        ]
        var reads = [
            APIOperation(method: "get", path: "/v1/models", summary: "Every served model with its kind",
                         responses: ["200": ok("The models, in --model order.", schema: "ModelList")]),
            APIOperation(method: "get", path: "/v1/models/{id}", summary: "One served model",
                         parameters: [pathID("The model id.", integer: false, example: (shape.embeddingIDs + shape.chatIDs).first)],
                         responses: ["200": ok("The model.", schema: "Model"), "404": error(404)]),
        ]
        if shape.embedding {
            reads.append(APIOperation(method: "post", path: "/v1/embeddings", summary: "Embeddings of texts and images (OpenAI shape)",
                                      description: "Images are JPEG or PNG as data URLs or bare base64; remote URLs are refused.",
                                      requestBody: "EmbeddingsRequest",
                                      responses: bodyErrors(images: true).merging(["200": ok("One embedding per input, in input order.", schema: "EmbeddingsResponse")]) { a, _ in a }))
            reads.append(APIOperation(method: "post", path: "/v1/classify", summary: "Zero-shot labels for one image, best first",
                                      requestBody: "ClassifyRequest",
                                      responses: bodyErrors(images: true).merging(["200": ok("Scores, best first.", schema: "ClassifyResponse")]) { a, _ in a }))
        }
        if shape.chat {
            reads.append(APIOperation(method: "post", path: "/v1/chat/completions", summary: "Chat completions (OpenAI shape)",
                                      description: "With `\"stream\": true` the answer is server-sent events: `data: <ChatCompletionChunk>` lines, then `data: [DONE]`. Every request error is reported with its status before the stream begins.",
                                      requestBody: "ChatCompletionRequest",
                                      responses: bodyErrors(images: true).merging(["200": [
                                          "description": "The answer (JSON), or a stream of server-sent events with `stream: true`.",
                                          "content": ["application/json": ["schema": Schema.ref("ChatCompletion")],
                                                      "text/event-stream": ["schema": Schema.ref("ServerSentEvent")]],
                                      ]]) { a, _ in a }))
        }
        if shape.vision { reads.append(OpenAPIVisionTasks.operation(shape)) }
        var writes: [APIOperation] = []
        if shape.embedding {
            let noIndex: [String: JSONObject] = shape.index ? [:] : ["501": error(501)]
            var search = bodyErrors(images: true).merging(noIndex) { a, _ in a }
            search["200"] = ok("The top-k entries, best first.", schema: "SearchResponse")
            reads.append(APIOperation(method: "post", path: "/v1/search", summary: "Search the index with a text and/or image query",
                                      description: "Query arithmetic: every term is unit-normalised, text/image/plus count +1, minus -1.",
                                      requestBody: "SearchRequest", responses: search))
            var image: [String: JSONObject] = ["404": error(404), "304": ["description": "Not modified (If-None-Match matched the ETag)."],
                                               "200": ["description": "The entry's image file.",
                                                       "content": ["image/jpeg": ["schema": ["type": "string", "format": "binary"]],
                                                                   "image/png": ["schema": ["type": "string", "format": "binary"]]]]]
            image.merge(noIndex) { a, _ in a }
            reads.append(APIOperation(method: "get", path: "/v1/index/{id}/image", summary: "An index entry's image",
                                      description: "Only files inside --root directories or the uploads directory are served.",
                                      parameters: [pathID("The entry id (from search or add).", integer: true)], responses: image))
            var thumbnail: [String: JSONObject] = ["404": error(404), "422": error(422), "503": error(503),
                                                   "304": ["description": "Not modified (If-None-Match matched the ETag)."],
                                                   "200": ["description": "A JPEG of the entry's image (any indexed format), longest edge --thumbnail-size; cached next to the index.",
                                                           "content": ["image/jpeg": ["schema": ["type": "string", "format": "binary"]]]]]
            thumbnail.merge(noIndex) { a, _ in a }
            reads.append(APIOperation(method: "get", path: "/v1/index/{id}/thumbnail", summary: "A small JPEG of an index entry's image",
                                      description: "Made on first request, cached, remade when the file changes. Only files inside --root directories or the uploads directory.",
                                      parameters: [pathID("The entry id (from search or add).", integer: true)], responses: thumbnail))
            var add = bodyErrors(images: true).merging(noIndex) { a, _ in a }
            add["200"] = ok("The entries, in request order.", schema: "IndexAddResponse")
            writes.append(APIOperation(method: "post", path: "/v1/index", summary: "Add uploaded images or files under a --root",
                                       requestBody: "IndexAddRequest", responses: add))
            var remove: [String: JSONObject] = ["200": ok("Removed.", schema: "IndexDeleteResponse"), "404": error(404)]
            remove.merge(noIndex) { a, _ in a }
            writes.append(APIOperation(method: "delete", path: "/v1/index/{id}", summary: "Remove an index entry",
                                       parameters: [pathID("The entry id.", integer: true)], responses: remove))
        }
        func guarding(_ op: APIOperation, _ on: Bool) -> APIOperation {
            guard on else { return op }
            var op = op
            op.guarded = true
            op.responses["401"] = error(401)
            return op
        }
        ops += reads.map { guarding($0, shape.guardReads) }
        ops += writes.map { guarding($0, shape.guardWrites) }
        return ops
    }

    /// The whole document.
    static func make(_ shape: Shape) -> JSONObject {
        var paths: [String: JSONObject] = [:]
        for op in operations(shape) {
            var o: JSONObject = ["summary": op.summary, "operationId": "\(op.method) \(op.path)", "responses": op.responses]
            if !op.description.isEmpty { o["description"] = op.description }
            if !op.parameters.isEmpty { o["parameters"] = op.parameters }
            if let body = op.requestBody {
                var media: JSONObject = ["schema": Schema.ref(body)]
                if let example = OpenAPIExamples.request(body, shape) { media["example"] = example }
                o["requestBody"] = ["required": true, "content": ["application/json": media]] as JSONObject
            }
            if op.guarded { o["security"] = [["bearerAuth": [String]()]] }
            paths[op.path, default: [:]][op.method] = o
        }
        var responses: [String: JSONObject] = [:]
        for (code, description) in errorDescriptions {
            responses["E\(code)"] = ["description": description, "content": json("Error")]
        }
        var components: JSONObject = ["schemas": OpenAPISchemas.all(shape), "responses": responses]
        if shape.guardWrites {
            components["securitySchemes"] = ["bearerAuth": ["type": "http", "scheme": "bearer",
                                                            "description": "The key given to `vlm serve --api-key`."]]
        }
        return [
            "openapi": "3.0.3",
            "info": ["title": "SwiftVLM server (vlm serve)", "version": "1",
                     "description": "Embeddings, zero-shot classification, visual search, chat and vision tasks. Every error is `{\"error\": {\"message\", \"type\", \"code\"}}` with its status."],
            "paths": paths,
            "components": components,
        ]
    }

    /// The document as pretty, key-sorted JSON.
    static func data(_ shape: Shape) -> Data {
        // Built only from strings, numbers, booleans, arrays and dictionaries: serialization cannot fail.
        (try? JSONSerialization.data(withJSONObject: make(shape), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }
}

/// `GET /openapi.json` and `GET /docs` (open to everyone, like the web page: they describe, they do not serve data).
struct APIDocsController<Context: RequestContext>: Sendable {
    let json: Data
    let html: String

    init(config: ServerConfig, roster: ModelRoster, hasIndex: Bool) {
        let shape = OpenAPIDocument.Shape(config: config, roster: roster, hasIndex: hasIndex)
        json = OpenAPIDocument.data(shape)
        html = APIDocsPage.html(OpenAPIDocument.make(shape))
    }

    func addRoutes(to router: some RouterMethods<Context>) {
        let json = self.json, html = self.html
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json", .contentLength: String(json.count)],
                     body: .init(byteBuffer: ByteBuffer(bytes: json)))
        }
        router.get("/docs") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'"],
                     body: .init(byteBuffer: ByteBuffer(string: html)))
        }
    }
}

/// Example request bodies (shown by /docs; schemathesis sends them first). Each is a request this server answers
/// with 200: OpenAPITests sends every one.
enum OpenAPIExamples {
    /// An 8x8 red PNG.
    static let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8oaHBgA0wMeAAg1MCAOA4ASjhBhuDAAAAAElFTkSuQmCC"

    static func request(_ schema: String, _ shape: OpenAPIDocument.Shape) -> JSONObject? {
        switch schema {
        case "EmbeddingsRequest": return ["input": ["a photo of a cat", png]]
        case "ClassifyRequest": return ["image": png, "labels": ["red", "blue"], "top_k": 1]
        case "SearchRequest": return ["query": "a cat", "top_k": 3, "minus": ["blurry"]]
        case "IndexAddRequest": return ["images": [["image": png, "name": "red.png"]]]
        case "ChatCompletionRequest": return ["messages": [["role": "user", "content": "Hello"]], "max_tokens": 4]
        case "VisionTaskRequest": return OpenAPIVisionTasks.example
        default: return nil
        }
    }
}
