import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// Shared helpers: the tiny CLIP fixture, configs, requests, JSON and metrics parsing.
enum TestServer {
    static let modelDir = Fixtures.url("clip/tiny-a")

    static func pipeline() throws -> EmbeddingPipeline { try EmbeddingPipeline.load(directory: modelDir) }

    static func config(_ edit: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
        var c = ServerConfig(modelDirectory: modelDir)
        c.port = 0
        edit(&c)
        return c
    }

    static func imageData(_ name: String) throws -> Data {
        try Data(contentsOf: Fixtures.url("clip/images/\(name)"))
    }

    static func dataURL(_ name: String) throws -> String {
        let mime = name.hasSuffix(".png") ? "image/png" : "image/jpeg"
        return "data:\(mime);base64,\(try imageData(name).base64EncodedString())"
    }

    /// The pixels the server decodes for a fixture (alpha composited on white, as the pipeline does).
    static func decoded(_ name: String) throws -> RGBImage {
        try ImageDecoder.decode(imageData(name), alpha: .compositeOnWhite)
    }

    /// Runs `body` against an in-process server (router test mode: no sockets).
    static func withApp(_ config: ServerConfig = TestServer.config(), pipeline: EmbeddingPipeline? = nil,
                        engine: EmbeddingEngine? = nil,
                        _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let p = try pipeline ?? Self.pipeline()
        let app = try buildApplication(config: config, pipeline: p, engine: engine ?? .pipeline(p))
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    func post(_ uri: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await executeRequest(uri: uri, method: .post, headers: h, body: ByteBuffer(string: json))
    }

    func post(_ uri: String, object: Any, headers: HTTPFields = [:]) async throws -> TestResponse {
        let data = try JSONSerialization.data(withJSONObject: object)
        return try await post(uri, json: String(decoding: data, as: UTF8.self), headers: headers)
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await executeRequest(uri: uri, method: .get, headers: headers, body: nil)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(body.readableBytesView))
        guard let dict = object as? [String: Any] else { throw TestFailure("response is not a JSON object: \(text)") }
        return dict
    }

    /// `error.code` of an OpenAI-style error body.
    func errorCode() throws -> String? {
        ((try json()["error"]) as? [String: Any])?["code"] as? String
    }

    /// The `data[i].embedding` arrays of an embeddings response.
    func embeddings() throws -> [[Float]] {
        guard let data = try json()["data"] as? [[String: Any]] else { throw TestFailure("no data: \(text)") }
        return try data.map { item in
            guard let v = item["embedding"] as? [Double] else { throw TestFailure("no embedding: \(item)") }
            return v.map(Float.init)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func expectClose(_ a: [[Float]], _ b: [[Float]], tolerance: Float = 1e-6, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, sourceLocation: sourceLocation)
    for (x, y) in zip(a, b) {
        #expect(x.count == y.count, sourceLocation: sourceLocation)
        let worst = zip(x, y).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= tolerance, "max difference \(worst)", sourceLocation: sourceLocation)
    }
}

/// Prometheus text: sample lines as (name with labels, value); throws on any line that is not a comment or
/// a valid sample, so the test checks the exposition format, not just substrings.
func parsePrometheus(_ text: String) throws -> [(series: String, value: Double)] {
    var samples: [(String, Double)] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
        guard let space = line.lastIndex(of: " ") else { throw TestFailure("bad line: \(line)") }
        let series = String(line[..<space]), valueText = line[line.index(after: space)...]
        guard let value = Double(valueText) else { throw TestFailure("bad value: \(line)") }
        let name = series.prefix { $0 != "{" }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else {
            throw TestFailure("bad metric name: \(line)")
        }
        if series.contains("{") {
            guard series.hasSuffix("}") else { throw TestFailure("unclosed labels: \(line)") }
            let labels = series[series.index(after: series.firstIndex(of: "{")!) ..< series.index(before: series.endIndex)]
            for pair in labels.split(separator: ",") {
                guard pair.contains("=\""), pair.hasSuffix("\"") else { throw TestFailure("bad label: \(pair) in \(line)") }
            }
        }
        samples.append((series, value))
    }
    return samples
}

/// A wrapper around the real engine that can hold the encoder worker inside a call, to fill the queue
/// deterministically.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var isOpen = false
    private var entered = 0

    func pass() {
        condition.lock()
        entered += 1
        condition.broadcast()
        while !isOpen { condition.wait() }
        condition.unlock()
    }

    func open() {
        condition.lock()
        isOpen = true
        condition.broadcast()
        condition.unlock()
    }

    var enteredCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return entered
    }

    func engine(_ pipeline: EmbeddingPipeline) -> EmbeddingEngine {
        var e = EmbeddingEngine.pipeline(pipeline)
        let texts = e.encodeTexts, images = e.encodeImages
        e.encodeTexts = { [self] ids in pass(); return try texts(ids) }
        e.encodeImages = { [self] im in pass(); return try images(im) }
        return e
    }
}

/// Polls until `condition` holds (or fails the test after `seconds`).
func eventually(_ what: String, seconds: Double = 60, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(nanoseconds: 5_000_000)
    }
    throw TestFailure("timed out waiting for \(what)")
}
