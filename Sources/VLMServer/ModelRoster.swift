import Foundation
import SwiftVLM

/// The models one server serves, in `--model` order: embedding models (each with its own encoder queue) and
/// chat models (each with its own generator). Requests name a model in `"model"` (OpenAI style); without one
/// they go to the first model of the kind the endpoint needs. Nothing here depends on a model family.
public final class ModelRoster: Sendable {
    public enum Entry: Sendable {
        case embedding(EncoderService)
        case chat(ChatService)

        public var id: String {
            switch self {
            case .embedding(let s): return s.model.id
            case .chat(let s): return s.modelID
            }
        }

        public var kind: ModelKind {
            switch self {
            case .embedding: return .embedding
            case .chat: return .chat
            }
        }
    }

    public let entries: [Entry]
    public let metrics: ServerMetrics

    public init(entries: [Entry], metrics: ServerMetrics) throws {
        var seen = Set<String>()
        for e in entries where !seen.insert(e.id).inserted {
            throw ServerError.invalidConfiguration("two models have the id '\(e.id)'; give them distinct --model-id values")
        }
        guard !entries.isEmpty else { throw ServerError.invalidConfiguration("no model to serve") }
        self.entries = entries
        self.metrics = metrics
    }

    public var encoders: [EncoderService] { entries.compactMap { if case .embedding(let s) = $0 { return s } else { return nil } } }
    public var chats: [ChatService] { entries.compactMap { if case .chat(let s) = $0 { return s } else { return nil } } }

    /// The embedding model a request names (or the first one). Unknown id: 404; a chat model or no embedding
    /// model at all: 400 naming what this server has.
    public func encoder(_ requested: String?) throws -> EncoderService {
        let entry = try resolve(requested, kind: .embedding, endpoint: "this endpoint")
        guard case .embedding(let service) = entry else { throw ServerError.internalError("roster kind mismatch") }
        return service
    }

    /// The chat model a request names (or the first one); errors as `encoder(_:)`.
    public func chat(_ requested: String?) throws -> ChatService {
        let entry = try resolve(requested, kind: .chat, endpoint: "/v1/chat/completions")
        guard case .chat(let service) = entry else { throw ServerError.internalError("roster kind mismatch") }
        return service
    }

    func entry(id: String) -> Entry? { entries.first { $0.id == id } }

    private func resolve(_ requested: String?, kind: ModelKind, endpoint: String) throws -> Entry {
        let need = kind == .embedding ? "an embedding model" : "a chat model"
        if let requested, !requested.isEmpty {
            guard let entry = entry(id: requested) else { throw ServerError.modelNotFound(requested) }
            guard entry.kind == kind else {
                throw ServerError.invalidRequest("the model '\(requested)' is a \(entry.kind.rawValue) model; \(endpoint) needs \(need)\(available(kind))")
            }
            return entry
        }
        guard let first = entries.first(where: { $0.kind == kind }) else {
            throw ServerError.invalidRequest("this server has no \(kind.rawValue) model; \(endpoint) needs \(need)\(available(kind))")
        }
        return first
    }

    private func available(_ kind: ModelKind) -> String {
        let ids = entries.filter { $0.kind == kind }.map(\.id)
        return ids.isEmpty ? " (served: \(entries.map { "\($0.id) (\($0.kind.rawValue))" }.joined(separator: ", ")))" : " (\(ids.joined(separator: ", ")))"
    }

    /// Queue depths of every model, keyed "<model>/<queue>" when there is more than one model.
    public func queueDepths() -> [String: Int] {
        var out: [String: Int] = [:]
        let prefix = entries.count > 1
        for e in entries {
            let depths: [String: Int]
            switch e {
            case .embedding(let s): depths = s.batcher.queueDepths()
            case .chat(let s): depths = ["chat": s.scheduler.depth]
            }
            for (k, v) in depths { out[prefix ? "\(e.id)/\(k)" : k] = v }
        }
        return out
    }
}
