import Foundation
import HTTPTypes
import Hummingbird
import VLMIndex

/// The read side of the index: `POST /v1/search`, `GET /v1/index/{id}/image` and `GET /v1/index/{id}/thumbnail`.
struct SearchController<Context: RequestContext>: Sendable {
    let service: EncoderService
    /// nil when the server runs without --index: the routes then answer 501 saying how to enable them.
    let index: IndexService?

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/search") { request, _ in try await search(request) }
        router.get("/v1/index/{id}/image") { request, context in try await image(request, id: context.parameters.get("id")) }
        router.get("/v1/index/{id}/thumbnail") { request, context in try await thumbnail(request, id: context.parameters.get("id")) }
    }

    func search(_ request: Request) async throws -> Response {
        let body = try await RequestInput.body(of: request, limit: service.config.maxBodyBytes, timeout: service.config.bodyTimeoutSeconds)
        let req = try RequestInput.json(SearchRequest.self, from: body)
        try RequestInput.checkModel(req.model, served: service.model.id)
        let index = try IndexRoutes.require(index)
        let k = req.topK ?? 10
        guard (1 ... service.config.maxTopK).contains(k) else {
            throw ServerError.invalidRequest("'top_k' must be in 1...\(service.config.maxTopK)")
        }
        if let m = req.minScore, !m.isFinite { throw ServerError.invalidRequest("'min_score' must be a finite number") }
        var parts: [InputPart] = [], weights: [Float] = []
        if let image = req.query.image { parts.append(.image(image)); weights.append(1) }
        if let text = req.query.text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { parts.append(.text(text)); weights.append(1) }
        guard !parts.isEmpty else { throw ServerError.invalidRequest("'query' needs a non-empty 'text' or an 'image'") }
        for t in req.plus ?? [] { parts.append(.text(t)); weights.append(1) }
        for t in req.minus ?? [] { parts.append(.text(t)); weights.append(-1) }
        let (vectors, _) = try await service.embed(parts)
        let query: [Float]
        do { query = try QueryMath.combine(zip(vectors, weights).map { (vector: $0, weight: $1) }) } catch { throw ServerError.from(error) }
        let found = try await index.search(query, k: k, minScore: req.minScore ?? -.infinity)
        return try JSONResponse.make(SearchResponse(model: service.model.id, data: found.hits, indexSize: found.size, strategy: found.strategy))
    }

    func image(_ request: Request, id raw: String?) async throws -> Response {
        let index = try IndexRoutes.require(index)
        let id = try IndexRoutes.id(raw)
        let (data, mime, etag) = try await index.image(id: id)
        var headers: HTTPFields = [.contentType: mime, .eTag: etag, .cacheControl: "private, no-cache",
                                   .contentSecurityPolicy: "default-src 'none'", IndexRoutes.noSniff: "nosniff"]
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
        headers[.contentLength] = String(data.count)
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
    }
}

extension SearchController {
    /// A small JPEG of the entry's image (any format), cached next to the index; revalidated by ETag (304).
    func thumbnail(_ request: Request, id raw: String?) async throws -> Response {
        let index = try IndexRoutes.require(index)
        let id = try IndexRoutes.id(raw)
        let sent = request.headers[.ifNoneMatch]
        let (data, etag) = try await index.thumbnail(id: id, ifNoneMatch: sent)
        var headers: HTTPFields = [.contentType: "image/jpeg", .eTag: etag, .cacheControl: "private, no-cache",
                                   .contentSecurityPolicy: "default-src 'none'", IndexRoutes.noSniff: "nosniff"]
        if sent == etag { return Response(status: .notModified, headers: headers) }
        headers[.contentLength] = String(data.count)
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
    }
}

/// The write side: `POST /v1/index` (add images) and `DELETE /v1/index/{id}`; mounted behind --api-key.
struct IndexController<Context: RequestContext>: Sendable {
    let service: EncoderService
    let index: IndexService?

    func addRoutes(to router: some RouterMethods<Context>) {
        router.post("/v1/index") { request, _ in try await add(request) }
        router.delete("/v1/index/{id}") { _, context in try await remove(id: context.parameters.get("id")) }
    }

    func add(_ request: Request) async throws -> Response {
        let body = try await RequestInput.body(of: request, limit: service.config.maxBodyBytes, timeout: service.config.bodyTimeoutSeconds)
        let req = try RequestInput.json(IndexAddRequest.self, from: body)
        try RequestInput.checkModel(req.model, served: service.model.id)
        let index = try IndexRoutes.require(index)
        let (hits, size) = try await index.add(req, encoder: service)
        return try JSONResponse.make(IndexAddResponse(data: hits, indexSize: size))
    }

    func remove(id raw: String?) async throws -> Response {
        let index = try IndexRoutes.require(index)
        let id = try IndexRoutes.id(raw)
        let size = try await index.remove(id: id)
        return try JSONResponse.make(IndexDeleteResponse(id: id, indexSize: size))
    }
}

enum IndexRoutes {
    // A literal, valid header name: the initializer cannot fail here.
    static let noSniff = HTTPField.Name("X-Content-Type-Options") ?? .contentType
    static func require(_ index: IndexService?) throws -> IndexService {
        guard let index else { throw ServerError.notImplemented("this server has no index; start it with `vlm serve --index PATH`") }
        return index
    }

    /// Ids are positive integers; anything else names no entry (404, like an unknown number).
    static func id(_ raw: String?) throws -> Int64 {
        let text = raw ?? ""
        guard let id = Int64(text), id > 0 else { throw ServerError.indexEntryNotFound("no index entry with id '\(text.prefix(64))'") }
        return id
    }
}
