import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// `/openapi.json` describes exactly the routes the router answers (per server shape: embedding with and
/// without an index, chat only, both; with and without --api-key / --protect-reads), real responses conform
/// to its schemas, and `/docs` shows every path.
@Suite(.serialized) struct OpenAPITests {
    /// Every route any server can have (the full shape's operations), with a concrete URI for templates.
    static let allRoutes: [(method: HTTPRequest.Method, template: String)] = {
        let full = OpenAPIDocument.Shape(embeddingIDs: ["e"], chatIDs: ["c"], index: true, visionIDs: ["c"])
        return OpenAPIDocument.operations(full).map { (HTTPRequest.Method($0.method.uppercased()) ?? .get, $0.path) }
    }()

    static func uri(_ template: String) -> String {
        template.replacingOccurrences(of: "{id}", with: "1")
    }

    static func document(_ client: any TestClientProtocol) async throws -> JSONObject {
        let r = try await client.get("/openapi.json")
        #expect(r.status == .ok)
        #expect(r.headers[.contentType] == "application/json")
        return try r.json()
    }

    static func documented(_ doc: JSONObject) -> Set<String> {
        var out = Set<String>()
        for (path, item) in doc["paths"] as? [String: JSONObject] ?? [:] {
            for method in item.keys { out.insert("\(method.uppercased()) \(path)") }
        }
        return out
    }

    /// Each documented route answers (anything but the router's own 404 `not_found`), each other route of
    /// `allRoutes` is the router's 404, and `/docs` names every documented path.
    static func expectDocumentMatchesRouter(_ client: any TestClientProtocol, headers: HTTPFields = [:]) async throws -> JSONObject {
        let doc = try await document(client)
        #expect(doc["openapi"] as? String == "3.0.3")
        let documented = Self.documented(doc)
        for route in allRoutes {
            let body: ByteBuffer? = route.method == .post ? ByteBuffer(string: "{}") : nil
            var h = headers
            h[.contentType] = "application/json"
            let r = try await client.executeRequest(uri: uri(route.template), method: route.method, headers: h, body: body)
            let routerMiss = r.status == .notFound && (try? r.errorCode()) == "not_found"
            let name = "\(route.method.rawValue) \(route.template)"
            #expect(routerMiss != documented.contains(name), "\(name): documented \(documented.contains(name)), answered \(r.status) \(r.text.prefix(200))")
        }
        let docs = try await client.get("/docs")
        #expect(docs.status == .ok)
        #expect(docs.headers[.contentType]?.hasPrefix("text/html") == true)
        for path in Set(documented.map { String($0.split(separator: " ")[1]) }) {
            #expect(docs.text.contains("<code>\(APIDocsPage.escape(path))</code>"), "/docs does not show \(path)")
        }
        return doc
    }

    @Test func embeddingServerWithIndexDocumentsItsRoutesAndResponsesConform() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        try await TestServer.withApp(lib.config()) { client in
            let doc = try await Self.expectDocumentMatchesRouter(client)
            #expect(!Self.documented(doc).contains("POST /v1/chat/completions"))
            let check = SchemaCheck(document: doc)
            func expectConforms(_ r: TestResponse, _ schema: String, _ what: String) throws {
                let value = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))
                let v = check.violations(value, Schema.ref(schema))
                #expect(v.isEmpty, "\(what): \(v) in \(r.text.prefix(300))")
            }
            try expectConforms(try await client.get("/healthz"), "Health", "healthz")
            try expectConforms(try await client.get("/v1/models"), "ModelList", "models")
            try expectConforms(try await client.get("/v1/models/tiny-a"), "Model", "model")
            try expectConforms(try await client.post("/v1/embeddings", object: ["input": ["a cat", try TestServer.dataURL("coffee.png")]]), "EmbeddingsResponse", "embeddings")
            try expectConforms(try await client.post("/v1/embeddings", object: ["input": "a cat", "encoding_format": "base64"]), "EmbeddingsResponse", "base64")
            try expectConforms(try await client.post("/v1/classify", object: ["image": try TestServer.dataURL("chelsea.jpg"), "labels": ["cat", "dog"]]), "ClassifyResponse", "classify")
            let added = try await client.addRoot()
            try expectConforms(added, "IndexAddResponse", "index add")
            try expectConforms(try await client.post("/v1/search", object: ["query": "a cat", "top_k": 2]), "SearchResponse", "search")
            let id = try #require(try added.items().first?["id"] as? Int)
            try expectConforms(try await client.delete("/v1/index/\(id)"), "IndexDeleteResponse", "delete")
            for bad in [try await client.post("/v1/embeddings", json: "{"), try await client.get("/v1/models/nope"),
                        try await client.delete("/v1/index/999999"), try await client.get("/nowhere")] {
                try expectConforms(bad, "Error", "error \(bad.status)")
            }
        }
    }

    @Test func embeddingServerWithoutIndexDocumentsThe501() async throws {
        try await TestServer.withApp { client in
            let doc = try await Self.expectDocumentMatchesRouter(client)
            let search = ((doc["paths"] as? [String: JSONObject])?["/v1/search"]?["post"] as? JSONObject)?["responses"] as? JSONObject
            #expect(search?["501"] != nil)
            let r = try await client.post("/v1/search", object: ["query": "a cat"])
            #expect(r.status == .notImplemented)
        }
    }

    @Test func chatServerDocumentsChatOnlyAndItsAnswersConform() async throws {
        try await ChatTestServer.withApp { client in
            let doc = try await Self.expectDocumentMatchesRouter(client)
            let documented = Self.documented(doc)
            #expect(documented.contains("POST /v1/chat/completions"))
            #expect(!documented.contains("POST /v1/embeddings") && !documented.contains("POST /v1/search"))
            let check = SchemaCheck(document: doc)
            let messages: [[String: Any]] = [["role": "user", "content": "Hello"]]
            let r = try await client.post("/v1/chat/completions", object: ["messages": messages, "max_tokens": 3])
            let value = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))
            #expect(check.violations(value, Schema.ref("ChatCompletion")).isEmpty, "\(r.text)")
            let streamed = try await client.post("/v1/chat/completions", object: ["messages": messages, "max_tokens": 3, "stream": true,
                                                                                  "stream_options": ["include_usage": true]])
            #expect(streamed.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            for event in try EventStream(streamed.text).events {
                #expect(check.violations(event, Schema.ref("ChatCompletionChunk")).isEmpty, "\(event)")
            }
            let health = try JSONSerialization.jsonObject(with: Data(try await client.get("/healthz").body.readableBytesView))
            #expect(check.violations(health, Schema.ref("Health")).isEmpty)
            let models = try JSONSerialization.jsonObject(with: Data(try await client.get("/v1/models").body.readableBytesView))
            #expect(check.violations(models, Schema.ref("ModelList")).isEmpty)
        }
    }

    /// Every request example in the document conforms to its schema, and the server answers it with 200.
    @Test func requestExamplesConformAndSucceed() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        var config = lib.config()
        config.modelDirectories = [Fixtures.url("clip/tiny-a"), Fixtures.url("llava/llava-chat")]
        let app = try await buildApplication(config: config)
        try await app.test(.router) { client in
            let doc = try await Self.document(client)
            let check = SchemaCheck(document: doc)
            var tried = 0
            for (path, item) in doc["paths"] as? [String: JSONObject] ?? [:] {
                for (method, op) in item {
                    let media = (((op as? JSONObject)?["requestBody"] as? JSONObject)?["content"] as? JSONObject)?["application/json"] as? JSONObject
                    guard let media, let example = media["example"], let schema = media["schema"] as? JSONObject else { continue }
                    #expect(check.violations(example, schema).isEmpty, "\(method) \(path): \(check.violations(example, schema))")
                    let r = try await client.post(path, object: example)
                    #expect(r.status == .ok, "\(method) \(path) example: \(r.status) \(r.text.prefix(300))")
                    tried += 1
                }
            }
            #expect(tried == 5)
        }
    }

    @Test func bothKindsAndTheAPIKeyAppearAsBearerSecurityOnGuardedRoutes() async throws {
        let lib = try IndexLibrary()
        defer { lib.remove() }
        var config = lib.config { $0.apiKey = "k3y" }
        config.modelDirectories = [Fixtures.url("clip/tiny-a"), Fixtures.url("llava/llava-chat")]
        for protectReads in [false, true] {
            config.protectReads = protectReads
            let app = try await buildApplication(config: config)
            try await app.test(.router) { client in
                let doc = try await Self.expectDocumentMatchesRouter(client, headers: [.authorization: "Bearer k3y"])
                let components = try #require(doc["components"] as? JSONObject)
                let scheme = (components["securitySchemes"] as? JSONObject)?["bearerAuth"] as? JSONObject
                #expect(scheme?["type"] as? String == "http" && scheme?["scheme"] as? String == "bearer")
                let open: Set<String> = ["GET /", "GET /healthz", "GET /metrics", "GET /openapi.json", "GET /docs"]
                let writes: Set<String> = ["POST /v1/index", "DELETE /v1/index/{id}"]
                for (path, item) in doc["paths"] as? [String: JSONObject] ?? [:] {
                    for (method, op) in item {
                        let name = "\(method.uppercased()) \(path)"
                        let guarded = (op as? JSONObject)?["security"] != nil
                        let expected = writes.contains(name) || (protectReads && !open.contains(name))
                        #expect(guarded == expected, "\(name) protectReads=\(protectReads)")
                        // And the router agrees: a guarded route refuses a request without the token.
                        let r = try await client.executeRequest(uri: Self.uri(path), method: HTTPRequest.Method(method.uppercased()) ?? .get,
                                                                headers: [:], body: method == "post" ? ByteBuffer(string: "{}") : nil)
                        #expect((r.status == .unauthorized) == expected, "\(name): \(r.status)")
                        if expected { #expect(((op as? JSONObject)?["responses"] as? JSONObject)?["401"] != nil) }
                    }
                }
            }
        }
    }
}
