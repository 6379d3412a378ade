import Foundation
import Hummingbird
import SwiftVLM
import VLMIndex

/// Every failure the server reports. Each case knows its HTTP status and its OpenAI-style error body
/// (`{"error":{"message":..., "type":..., "code":...}}`), so handlers just throw.
public enum ServerError: Error, CustomStringConvertible, Sendable {
    /// The body is not JSON, or not the JSON shape the endpoint takes (400).
    case malformedJSON(String)
    /// A field is missing or has a value the endpoint cannot use (400).
    case invalidRequest(String)
    /// An image payload is not valid base64 / data URL (400).
    case invalidBase64(String)
    /// The bytes are not a JPEG/PNG we can decode (400).
    case undecodableImage(String)
    /// `"model"` names a model this server does not serve (404).
    case modelNotFound(String)
    /// No such route (404).
    case routeNotFound(method: String, path: String)
    /// No index entry with this id, or its image is gone or not servable (404).
    case indexEntryNotFound(String)
    /// The body exceeds `maxBodyBytes` (413).
    case payloadTooLarge(limit: Int)
    /// The body did not arrive within `bodyTimeoutSeconds` of the request head (408; a slow client).
    case requestTimeout(seconds: Double)
    /// The image exceeds `maxImagePixels` (422).
    case imageTooLarge(width: Int, height: Int, limit: Int)
    /// The image decodes, but the model's preprocessing would make it larger than its stated bound (422).
    case imageTooLargeToProcess(String)
    /// Missing or wrong bearer token (401).
    case unauthorized
    /// The batching queue is full; retry after the given seconds (503).
    case overloaded(retryAfter: Int)
    /// The server is stopping (503).
    case shuttingDown
    /// A startup setting is invalid (never sent over HTTP; `vlm serve` prints it).
    case invalidConfiguration(String)
    /// A feature that is not available in this build or configuration (501).
    case notImplemented(String)
    /// The encoder failed on input that passed validation (500).
    case internalError(String)

    public var description: String {
        switch self {
        case .malformedJSON(let m): return "malformed JSON: \(m)"
        case .invalidRequest(let m): return m
        case .invalidBase64(let m): return "invalid base64 image: \(m)"
        case .undecodableImage(let m): return "cannot decode image: \(m)"
        case .modelNotFound(let id): return "the model '\(id)' does not exist"
        case .routeNotFound(let method, let path): return "no route for \(method) \(path)"
        case .indexEntryNotFound(let m): return m
        case .payloadTooLarge(let limit): return "request body is larger than the limit of \(limit) bytes"
        case .requestTimeout(let s): return "the request body did not arrive within \(s) s"
        case .imageTooLarge(let w, let h, let limit):
            return "image is \(w)x\(h) = \(w * h) pixels, above the limit of \(limit) pixels"
        case .imageTooLargeToProcess(let m): return m
        case .unauthorized: return "missing or invalid API key (send 'Authorization: Bearer <key>')"
        case .overloaded(let s): return "server is at capacity; retry after \(s) s"
        case .shuttingDown: return "server is shutting down"
        case .invalidConfiguration(let m): return m
        case .notImplemented(let m): return m
        case .internalError(let m): return "internal error: \(m)"
        }
    }

    public var status: HTTPResponse.Status {
        switch self {
        case .malformedJSON, .invalidRequest, .invalidBase64, .undecodableImage: return .badRequest
        case .modelNotFound, .routeNotFound, .indexEntryNotFound: return .notFound
        case .payloadTooLarge: return .contentTooLarge
        case .requestTimeout: return .requestTimeout
        case .imageTooLarge, .imageTooLargeToProcess: return .unprocessableContent
        case .unauthorized: return .unauthorized
        case .overloaded, .shuttingDown: return .serviceUnavailable
        case .notImplemented: return .notImplemented
        case .invalidConfiguration, .internalError: return .internalServerError
        }
    }

    /// OpenAI's `error.type` vocabulary where one fits.
    var type: String {
        switch self {
        case .malformedJSON, .invalidRequest, .invalidBase64, .undecodableImage, .modelNotFound, .routeNotFound,
             .indexEntryNotFound, .payloadTooLarge, .requestTimeout, .imageTooLarge, .imageTooLargeToProcess:
            return "invalid_request_error"
        case .unauthorized: return "authentication_error"
        case .overloaded, .shuttingDown: return "server_overloaded"
        case .notImplemented: return "not_implemented"
        case .invalidConfiguration, .internalError: return "server_error"
        }
    }

    /// Stable machine-readable code.
    var code: String {
        switch self {
        case .malformedJSON: return "malformed_json"
        case .invalidRequest: return "invalid_request"
        case .invalidBase64: return "invalid_base64"
        case .undecodableImage: return "invalid_image"
        case .modelNotFound: return "model_not_found"
        case .routeNotFound: return "not_found"
        case .indexEntryNotFound: return "index_entry_not_found"
        case .payloadTooLarge: return "payload_too_large"
        case .requestTimeout: return "request_timeout"
        case .imageTooLarge, .imageTooLargeToProcess: return "image_too_large"
        case .unauthorized: return "invalid_api_key"
        case .overloaded: return "queue_full"
        case .shuttingDown: return "shutting_down"
        case .notImplemented: return "not_implemented"
        case .invalidConfiguration: return "invalid_configuration"
        case .internalError: return "internal_error"
        }
    }

    var extraHeaders: HTTPFields {
        var headers = HTTPFields()
        switch self {
        case .overloaded(let s): headers[.retryAfter] = String(s)
        case .shuttingDown: headers[.retryAfter] = "5"
        case .unauthorized: headers[.wwwAuthenticate] = "Bearer"
        default: break
        }
        return headers
    }

    /// Maps lower modules' errors: image size -> 422, other image problems -> 400, bad arguments -> 400.
    static func from(_ error: Error) -> ServerError {
        switch error {
        case let e as ServerError: return e
        case let e as ImageError:
            switch e {
            case .tooLarge(_, let w, let h, let limit): return .imageTooLarge(width: w, height: h, limit: limit)
            case .resizeTooLarge: return .imageTooLargeToProcess(e.description)
            case .outOfMemory: return .internalError(e.description)
            default: return .undecodableImage(e.description)
            }
        case let e as PipelineError: return .invalidRequest(e.description)
        case let e as IndexError:
            switch e {
            case .unknownID: return .indexEntryNotFound(e.description)
            case .invalidVector, .invalidArgument, .dimensionMismatch: return .invalidRequest(e.description)
            default: return .internalError(e.description)
            }
        case let e as DecodingError: return .malformedJSON(describe(e))
        default: return .internalError(String(describing: error))
        }
    }

    /// A DecodingError as one readable line naming the JSON path.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            let p = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "body" : String(p.dropFirst(p.hasPrefix(".") ? 1 : 0))
        }
        switch error {
        case .keyNotFound(let key, let ctx): return "missing field '\(path(ctx.codingPath + [key]))'"
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .dataCorrupted(let ctx):
            // JSONSerialization's underlying message says where parsing stopped; keep it short.
            let underlying = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return ctx.codingPath.isEmpty ? (underlying ?? ctx.debugDescription) : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return String(describing: error)
        }
    }
}

/// The JSON body of every error response.
struct ErrorBody: Codable, Sendable {
    struct Detail: Codable, Sendable {
        let message: String
        let type: String
        let code: String
        let param: String?
    }
    let error: Detail
}

extension ServerError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse()
    }

    func jsonResponse() -> Response {
        let body = ErrorBody(error: .init(message: description, type: type, code: code, param: nil))
        var response = (try? JSONResponse.make(body, status: status))
            ?? Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
        response.headers.append(contentsOf: extraHeaders)
        return response
    }
}

/// Turns every error a handler throws (ours, Hummingbird's HTTPError such as the router's 404, anything else)
/// into a JSON error response, so clients always get the same shape and nothing escapes as a bare 500.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as ServerError {
            return error.jsonResponse()
        } catch let error as HTTPError {
            let mapped: ServerError
            switch error.status {
            case .notFound: mapped = .routeNotFound(method: request.method.rawValue, path: request.uri.path)
            case .contentTooLarge: mapped = .payloadTooLarge(limit: context.maxUploadSize)
            case .badRequest: mapped = .invalidRequest(error.body ?? "bad request")
            default:
                var response = ServerError.internalError(error.body ?? error.status.reasonPhrase).jsonResponse()
                response.status = error.status
                response.headers.append(contentsOf: error.headers)
                return response
            }
            return mapped.jsonResponse()
        } catch is CancellationError {
            throw CancellationError()  // the client is gone; nobody reads a response
        } catch {
            context.logger.error("request failed: \(String(describing: error))")
            return ServerError.from(error).jsonResponse()
        }
    }
}

/// JSON encoding of response bodies (one encoder configuration for every endpoint).
enum JSONResponse {
    static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = try encoder.encode(value)
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return Response(status: status, headers: [.contentType: "application/json", .contentLength: String(data.count)],
                        body: .init(byteBuffer: buffer))
    }
}
