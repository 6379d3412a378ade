import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// The tiny llava-hf checkpoint and its transformers goldens (Scripts/fixtures, greedy generate()).
enum ChatTestServer {
    struct Reference: Decodable {
        struct Case: Decodable {
            let question: String
            let input_ids: [Int]
            let greedy: [Int]
            let text: String
        }
        let image: String
        let cases: [Case]
    }

    static let modelDir = GenerativeFixtures.llava

    static func reference() throws -> Reference { try Fixtures.json("llava/llava-chat.reference.json") }

    static func pipeline(_ dir: URL = modelDir) throws -> GenerativePipeline { try GenerativePipeline.load(directory: dir) }

    static func config(_ dir: URL = modelDir, _ edit: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
        var c = ServerConfig(modelDirectory: dir)
        c.port = 0
        edit(&c)
        return c
    }

    static func imageURL(_ name: String = "chelsea.jpg") throws -> String { try TestServer.dataURL(name) }

    /// A user turn with an image then text, as OpenAI clients send it.
    static func imageQuestion(_ question: String, image: String) -> [String: Any] {
        ["role": "user", "content": [["type": "image_url", "image_url": ["url": image]], ["type": "text", "text": question]]]
    }

    static func withApp(_ config: ServerConfig = ChatTestServer.config(), engine: ChatEngine? = nil,
                        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let e = try engine ?? .pipeline(pipeline(config.modelDirectory))
        let app = try buildApplication(config: config, chatEngine: e)
        try await app.test(.router) { client in try await body(client) }
    }
}

/// A server-sent event stream: the JSON payloads in order and whether it ended with `[DONE]`.
struct EventStream {
    var events: [[String: Any]] = []
    var done = false

    init(_ text: String) throws {
        for block in text.components(separatedBy: "\n\n") where !block.isEmpty && !block.hasPrefix(":") {  // ":" comments
            guard block.hasPrefix("data: "), !done else { throw TestFailure("unexpected event block: \(block)") }
            let payload = String(block.dropFirst(6))
            if payload == "[DONE]" { done = true; continue }
            guard let object = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else {
                throw TestFailure("event is not a JSON object: \(payload)")
            }
            events.append(object)
        }
    }

    /// `choices[0].delta` of every chunk that has a choice.
    var deltas: [[String: Any]] {
        events.compactMap { (($0["choices"] as? [[String: Any]])?.first)?["delta"] as? [String: Any] }
    }

    var content: String { deltas.compactMap { $0["content"] as? String }.joined() }

    var finishReasons: [String] {
        events.compactMap { (($0["choices"] as? [[String: Any]])?.first)?["finish_reason"] as? String }
    }
}

extension TestResponse {
    /// `choices[0].message.content`, `choices[0].finish_reason` and `usage` of a chat completion (its numbers,
    /// with `prompt_tokens_details.cached_tokens` as "cached_tokens").
    func completion() throws -> (content: String, finish: String, usage: [String: Int]) {
        let json = try json()
        guard let choice = (json["choices"] as? [[String: Any]])?.first,
              let message = choice["message"] as? [String: Any], let content = message["content"] as? String,
              let finish = choice["finish_reason"] as? String, let object = json["usage"] as? [String: Any]
        else { throw TestFailure("not a chat completion: \(text)") }
        var usage = object.compactMapValues { $0 as? Int }
        usage["cached_tokens"] = (object["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int
        return (content, finish, usage)
    }
}

extension ChatEngine {
    /// The engine with `hook` run on the generator thread before each generation.
    func holding(_ hook: @escaping @Sendable () -> Void) -> ChatEngine {
        var e = self
        let real = generate
        e.generate = { prepared, options, onText, shouldStop in
            hook()
            return try real(prepared, options, onText, shouldStop)
        }
        return e
    }
}
