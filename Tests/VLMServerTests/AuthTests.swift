import Foundation
import Hummingbird
import HummingbirdTesting
import SwiftVLM
import Testing
@testable import VLMServer

@Suite(.serialized) struct AuthTests {
    @Test func keyMatching() {
        #expect(APIKeyMiddleware<BasicRequestContext>.matches(header: "Bearer s3cret", key: "s3cret"))
        #expect(APIKeyMiddleware<BasicRequestContext>.matches(header: "bearer  s3cret", key: "s3cret"))
        #expect(!APIKeyMiddleware<BasicRequestContext>.matches(header: "Bearer s3cre", key: "s3cret"))
        #expect(!APIKeyMiddleware<BasicRequestContext>.matches(header: "Bearer s3cret!", key: "s3cret"))
        #expect(!APIKeyMiddleware<BasicRequestContext>.matches(header: "Basic s3cret", key: "s3cret"))
        #expect(!APIKeyMiddleware<BasicRequestContext>.matches(header: "s3cret", key: "s3cret"))
        #expect(!APIKeyMiddleware<BasicRequestContext>.matches(header: "Bearer ", key: "s3cret"))
    }

    @Test func authOffLetsEveryoneIn() async throws {
        try await TestServer.withApp(TestServer.config { $0.apiKey = "s3cret" }) { client in
            // With a key but without --protect-reads, the read-only endpoints stay open.
            let embeddings = try await client.post("/v1/embeddings", json: #"{"input": "a"}"#)
            let models = try await client.get("/v1/models")
            #expect(embeddings.status == .ok)
            #expect(models.status == .ok)
        }
        try await TestServer.withApp { client in
            let r = try await client.post("/v1/embeddings", json: #"{"input": "a"}"#, headers: [.authorization: "Bearer whatever"])
            #expect(r.status == .ok)
        }
    }

    @Test func protectedReadsNeedTheKey() async throws {
        try await TestServer.withApp(TestServer.config { $0.apiKey = "s3cret"; $0.protectReads = true }) { client in
            let none = try await client.post("/v1/embeddings", json: #"{"input": "a"}"#)
            try ErrorTests.expectError(none, .unauthorized, "invalid_api_key")
            #expect(none.headers[.wwwAuthenticate] == "Bearer")
            try ErrorTests.expectError(try await client.post("/v1/embeddings", json: #"{"input": "a"}"#, headers: [.authorization: "Bearer wrong"]),
                                       .unauthorized, "invalid_api_key")
            try ErrorTests.expectError(try await client.get("/v1/models"), .unauthorized, "invalid_api_key")
            #expect(try await client.post("/v1/embeddings", json: #"{"input": "a"}"#, headers: [.authorization: "Bearer s3cret"]).status == .ok)
            // Page, health and metrics stay open.
            #expect(try await client.get("/").status == .ok)
            #expect(try await client.get("/healthz").status == .ok)
            #expect(try await client.get("/metrics").status == .ok)
        }
    }

    /// The middleware as the mutating routes will use it (a group with the key), on a stand-in route.
    @Test func mutatingGroupNeedsTheKey() async throws {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        let writes = router.group("/v1/index").add(middleware: APIKeyMiddleware<BasicRequestContext>(key: "k"))
        writes.post("/") { _, _ in "added" }
        writes.delete("/{id}") { _, context in "deleted \(context.parameters.get("id") ?? "")" }
        router.get("/v1/open") { _, _ in "open" }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try ErrorTests.expectError(try await client.executeRequest(uri: "/v1/index", method: .post, headers: [:], body: nil),
                                       .unauthorized, "invalid_api_key")
            try ErrorTests.expectError(try await client.executeRequest(uri: "/v1/index/7", method: .delete, headers: [.authorization: "Bearer x"], body: nil),
                                       .unauthorized, "invalid_api_key")
            let ok = try await client.executeRequest(uri: "/v1/index/7", method: .delete, headers: [.authorization: "Bearer k"], body: nil)
            #expect(ok.status == .ok)
            #expect(ok.text == "deleted 7")
            #expect(try await client.get("/v1/open").status == .ok)
        }
    }

    @Test func invalidConfigurationsAreRefused() throws {
        #expect(throws: ServerError.self) { try TestServer.config { $0.maxBatch = 0 }.validate() }
        #expect(throws: ServerError.self) { try TestServer.config { $0.port = 70000 }.validate() }
        #expect(throws: ServerError.self) { try TestServer.config { $0.apiKey = "" }.validate() }
        #expect(throws: ServerError.self) { try TestServer.config { $0.protectReads = true }.validate() }
        #expect(throws: ServerError.self) { try TestServer.config { $0.queueCapacity = 0 }.validate() }
        try TestServer.config().validate()
        #expect(TestServer.config().resolvedModelID == "tiny-a")
    }
}
