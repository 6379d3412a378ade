import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
import VLMTestSupport
@testable import VLMServer

/// `POST /v1/vision/tasks` on the tiny Florence-2 checkpoint (Tests/Fixtures/florence2/tiny): `result` equals
/// what the library (and so `vlm task --format json`) produces for the same image, task and options, and the
/// fixture's transformers post_process_generation result (generation.json, beam search, 16 new tokens); every
/// bad input is the right 4xx naming the problem; servers without a vision-task model have no such route.
@Suite(.serialized) struct VisionTasksEndpointTests {
    static let modelDir = Fixtures.url("florence2/tiny")
    static let loaded = Result { try GenerativePipeline.load(directory: modelDir) }
    static var pipeline: GenerativePipeline { get throws { try loaded.get() } }

    static func config(_ edit: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
        var c = ServerConfig(modelDirectory: modelDir)
        c.port = 0
        edit(&c)
        return c
    }

    static func withApp(_ config: ServerConfig = config(), _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = try buildApplication(config: config, generative: try pipeline)
        try await app.test(.router) { client in try await body(client) }
    }

    /// The recorded beam-search result of `task` (generation.json's `parsed`).
    static func expected(_ task: String) throws -> NSDictionary? {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("florence2/generation.json"))) as? [String: Any]
        let cases = root?["cases"] as? [[String: Any]] ?? []
        return (cases.first { $0["task"] as? String == task }?["beam"] as? [String: Any])?["parsed"] as? NSDictionary
    }

    static let chelsea = Result { try TestServer.dataURL("chelsea.jpg") }

    @Test(arguments: [("<OD>", nil), ("<CAPTION>", nil), ("<OCR_WITH_REGION>", nil), ("<REGION_PROPOSAL>", nil),
                      ("<CAPTION_TO_PHRASE_GROUNDING>", "a cat on a sofa"),
                      ("<REGION_TO_DESCRIPTION>", "<loc_52><loc_333><loc_613><loc_980>")] as [(String, String?)])
    func resultIsTheLibrarysAndTransformers(task: String, text: String?) async throws {
        let runner = try VisionTaskRunner(pipeline: try Self.pipeline)
        let library = try runner.run(image: try TestServer.decoded("chelsea.jpg"), task: task, text: text,
                                     options: try runner.options(maxTokens: 16))
        let libraryJSON = try #require(try JSONSerialization.jsonObject(with: Data(library.json.utf8)) as? NSDictionary)
        let reference = try #require(try Self.expected(task))
        var request: [String: Any] = ["image": try Self.chelsea.get(), "task": task, "max_tokens": 16]
        if let text { request["text"] = text }
        let body = request
        try await Self.withApp { client in
            let r = try await client.post("/v1/vision/tasks", object: body)
            #expect(r.status == .ok, "\(r.text.prefix(300))")
            let json = try r.json()
            let result = try #require(json["result"] as? NSDictionary)
            #expect(result.isEqual(libraryJSON), "\(result) vs library \(libraryJSON)")
            #expect(result.isEqual(reference), "\(result) vs transformers \(reference)")
            #expect(json["text"] as? String == library.generatedText)
            #expect(json["object"] as? String == "vision.task" && json["task"] as? String == task && json["model"] as? String == "tiny")
            #expect(json["image_size"] as? NSDictionary == ["width": 150, "height": 100] as NSDictionary)
            #expect(json["finish_reason"] as? String == library.generation.finishReason)
            let usage = try #require(json["usage"] as? [String: Any]).compactMapValues { $0 as? Int }
            #expect(usage["completion_tokens"] == library.generation.tokens.count && usage["prompt_tokens"] == library.generation.promptTokens)
            #expect(usage["total_tokens"] == library.generation.promptTokens + library.generation.tokens.count)
        }
    }

    /// A box in pixels is the region argument quantized to location bins: the same answer as the tokens.
    @Test func regionAsABox() async throws {
        let box = [7.83, 33.35, 92.0, 98.05]
        #expect(try Florence2Tasks.regionTokens(box: box, imageSize: (150, 100)) == "<loc_52><loc_333><loc_613><loc_980>")
        let reference = try #require(try Self.expected("<REGION_TO_DESCRIPTION>"))
        try await Self.withApp { client in
            let r = try await client.post("/v1/vision/tasks", object: ["image": try Self.chelsea.get(), "task": "<REGION_TO_DESCRIPTION>",
                                                                       "box": box, "max_tokens": 16, "model": "tiny"])
            #expect(r.status == .ok, "\(r.text.prefix(300))")
            let result = try r.json()["result"] as? NSDictionary
            #expect(result?.isEqual(reference) == true, "\(r.text.prefix(300))")
        }
    }

    @Test func badInputIsA4xxNamingTheProblem() async throws {
        let image = try Self.chelsea.get()
        let notAnImage = Data("hello, this is not an image at all".utf8).base64EncodedString()
        let cases: [(body: Any, status: HTTPResponse.Status, code: String, message: String)] = [
            (["image": image, "task": "<DETECT>"], .badRequest, "invalid_request", "unknown Florence-2 task '<DETECT>'"),
            (["image": image, "task": "<CAPTION_TO_PHRASE_GROUNDING>"], .badRequest, "invalid_request", "needs text"),
            (["image": image, "task": "<CAPTION_TO_PHRASE_GROUNDING>", "text": "  "], .badRequest, "invalid_request", "needs text"),
            (["image": image, "task": "<REGION_TO_DESCRIPTION>"], .badRequest, "invalid_request", "needs a region"),
            (["image": image, "task": "<REGION_TO_DESCRIPTION>", "box": [10, 20, 5000, 80]], .badRequest, "invalid_request", "not inside the 150x100 image"),
            (["image": image, "task": "<REGION_TO_DESCRIPTION>", "box": [30, 20, 10, 80]], .badRequest, "invalid_request", "not inside"),
            (["image": image, "task": "<REGION_TO_DESCRIPTION>", "box": [1, 2, 3]], .badRequest, "malformed_json", "box: expected four numbers"),
            (["image": image, "task": "<REGION_TO_DESCRIPTION>", "box": [1, 2, 30, 40], "text": "a cat"], .badRequest, "invalid_request", "not both"),
            (["image": image, "task": "<OD>", "box": [1, 2, 30, 40]], .badRequest, "invalid_request", "takes no region"),
            (["image": image, "task": "<OD>", "text": "cats"], .badRequest, "invalid_request", "takes no text"),
            (["image": image, "task": "<OD>", "num_beams": 0], .badRequest, "invalid_request", "num beams must be 1 ... 64"),
            (["image": image, "task": "<OD>", "max_tokens": 0], .badRequest, "invalid_request", "max tokens must be >= 1"),
            (["task": "<OD>"], .badRequest, "invalid_request", "'image' is required"),
            (["image": image], .badRequest, "malformed_json", "missing field 'task'"),
            (["image": image, "task": 5], .badRequest, "malformed_json", "task"),
            (["image": "data:image/png;base64", "task": "<OD>"], .badRequest, "invalid_base64", "without a ','"),
            (["image": "data:image/png;base64,!!!!", "task": "<OD>"], .badRequest, "invalid_base64", "not valid base64"),
            (["image": notAnImage, "task": "<OD>"], .badRequest, "invalid_image", "cannot decode image"),
            (["image": "https://example.com/cat.jpg", "task": "<OD>"], .badRequest, "invalid_request", "not fetched"),
            (["image": image, "task": "<OD>", "model": "nope"], .notFound, "model_not_found", "the model 'nope' does not exist"),
            ("{", .badRequest, "malformed_json", "malformed JSON"),
            ("", .badRequest, "malformed_json", "empty body"),
            ("[1, 2]", .badRequest, "malformed_json", "malformed JSON"),
        ]
        try await Self.withApp { client in
            for c in cases {
                let r = c.body is String ? try await client.post("/v1/vision/tasks", json: c.body as? String ?? "")
                                         : try await client.post("/v1/vision/tasks", object: c.body)
                let message = ((try? r.json())?["error"] as? [String: Any])?["message"] as? String ?? ""
                let code = try r.errorCode()
                #expect(r.status == c.status && code == c.code && message.contains(c.message),
                        "\(c.body): \(r.status) \(r.text.prefix(300))")
            }
        }
        // An image above --max-image-pixels: 422 before any decoding.
        try await Self.withApp(Self.config { $0.maxImagePixels = 1000 }) { client in
            let r = try await client.post("/v1/vision/tasks", object: ["image": image, "task": "<OD>"])
            let code = try r.errorCode()
            #expect(r.status == .unprocessableContent && code == "image_too_large", "\(r.text)")
        }
    }

    /// Without a model that runs vision tasks the route does not exist (404 naming it); on a server with several
    /// models, naming one that runs none is 400 naming the ones that do, and /healthz lists each model's tasks.
    @Test func serversWithoutFlorence() async throws {
        let body: [String: Any] = ["image": try Self.chelsea.get(), "task": "<OD>", "max_tokens": 4]
        try await ChatTestServer.withApp { client in
            let r = try await client.post("/v1/vision/tasks", object: body)
            let code = try r.errorCode()
            #expect(r.status == .notFound && code == "not_found" && r.text.contains("POST /v1/vision/tasks"), "\(r.text)")
        }
        try await TestServer.withApp { client in
            let r = try await client.post("/v1/vision/tasks", object: body)
            #expect(r.status == .notFound)
        }
        var config = Self.config()
        config.modelDirectories = [Fixtures.url("clip/tiny-a"), ChatTestServer.modelDir, Self.modelDir]
        let app = try await buildApplication(config: config)
        try await app.test(.router) { client in
            for other in ["tiny-a", "llava-chat"] {
                let r = try await client.post("/v1/vision/tasks", object: body.merging(["model": other]) { a, _ in a })
                #expect(r.status == .badRequest && r.text.contains("the model '\(other)' does not run vision tasks; models that run vision tasks: tiny"), "\(r.text)")
            }
            let r = try await client.post("/v1/vision/tasks", object: body)  // no model: the first that runs vision tasks
            let model = try r.json()["model"] as? String
            #expect(r.status == .ok && model == "tiny", "\(r.text.prefix(300))")
            let models = try await client.get("/healthz").json()["models"] as? [[String: Any]] ?? []
            #expect(models.map { $0["id"] as? String } == ["tiny-a", "llava-chat", "tiny"])
            #expect(models.map { ($0["tasks"] as? [String])?.contains("<OD>") } == [nil, nil, true])
        }
    }

    /// The document shows the route (and only servers with a vision-task model have it: OpenAPITests' shapes),
    /// real answers conform to its schemas, and its example request succeeds.
    @Test func openAPIDocumentsTheRoute() async throws {
        try await Self.withApp { client in
            let doc = try await OpenAPITests.expectDocumentMatchesRouter(client)
            #expect(OpenAPITests.documented(doc).contains("POST /v1/vision/tasks"))
            let check = SchemaCheck(document: doc)
            let op = ((doc["paths"] as? [String: JSONObject])?["/v1/vision/tasks"]?["post"] as? JSONObject)
            let media = ((op?["requestBody"] as? JSONObject)?["content"] as? JSONObject)?["application/json"] as? JSONObject
            let example = try #require(media?["example"])
            #expect(check.violations(example, Schema.ref("VisionTaskRequest")).isEmpty)
            let answered = try await client.post("/v1/vision/tasks", object: example)
            #expect(answered.status == .ok, "\(answered.text.prefix(300))")
            for (task, text) in [("<OD>", nil), ("<CAPTION>", nil), ("<OCR_WITH_REGION>", nil), ("<CAPTION_TO_PHRASE_GROUNDING>", "a cat")] as [(String, String?)] {
                var body: [String: Any] = ["image": try Self.chelsea.get(), "task": task, "max_tokens": 8]
                if let text { body["text"] = text }
                let r = try await client.post("/v1/vision/tasks", object: body)
                let value = try JSONSerialization.jsonObject(with: Data(r.body.readableBytesView))
                #expect(check.violations(value, Schema.ref("VisionTaskResponse")).isEmpty, "\(task): \(r.text.prefix(300))")
            }
            let bad = try await client.post("/v1/vision/tasks", object: ["image": try Self.chelsea.get(), "task": "<NOPE>"])
            #expect(check.violations(try JSONSerialization.jsonObject(with: Data(bad.body.readableBytesView)), Schema.ref("Error")).isEmpty)
            let health = try JSONSerialization.jsonObject(with: Data(try await client.get("/healthz").body.readableBytesView))
            #expect(check.violations(health, Schema.ref("Health")).isEmpty)
            let tasks = ((check.schemas["VisionTaskRequest"]?["properties"] as? JSONObject)?["task"] as? JSONObject)?["enum"] as? [String]
            #expect(tasks == Florence2Tasks.allTasks)
        }
    }

    @Test func webPageHasTheVisionTasksPanel() async throws {
        try await Self.withApp { client in
            let page = try await client.get("/").text
            for needle in ["id=\"vtask\"", "id=\"task\"", "/v1/vision/tasks", "createElementNS(SVG", "m.tasks"] {
                #expect(page.contains(needle), "\(needle)")
            }
            #expect(!page.contains("<script src") && !page.contains("<link"), "no external resources")
        }
    }
}
