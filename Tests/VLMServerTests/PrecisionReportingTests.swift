import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import VLMLayers
import VLMTestSupport
@testable import VLMServer

/// The precision each served model runs is in its /v1/models entry and in /metrics (vlm_model_info).
@Suite struct PrecisionReportingTests {
    static func app(_ precisions: [Precision?]) async throws -> some ApplicationProtocol {
        var c = ServerConfig(modelDirectories: [Fixtures.url("clip/tiny-a"), Fixtures.url("llava/llava-chat")])
        c.port = 0
        c.modelPrecisions = precisions
        return try await buildApplication(config: c)
    }

    @Test(arguments: [(Precision?.none, "fp32"), (.bf16, "bf16"), (.int4, "int4")])
    func modelsAndMetricsNameThePrecision(requested: Precision?, expected: String) async throws {
        let app = try await Self.app([nil, requested])
        try await app.test(.router) { client in
            let list = try #require(try await client.get("/v1/models").json()["data"] as? [[String: Any]])
            #expect(list.map { $0["precision"] as? String } == ["fp32", expected])
            let one = try await client.get("/v1/models/llava-chat").json()
            #expect(one["precision"] as? String == expected)
            // A reduced precision keeps the decoder's KV cache in bf16 (unless VLM_KV_CACHE overrides it).
            if ProcessInfo.processInfo.environment["VLM_KV_CACHE"] == nil {
                #expect(one["kv_cache"] as? String == (expected == "fp32" ? "fp32" : "bf16"), "\(one)")
            }
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains("# TYPE vlm_model_info gauge"))
            #expect(metrics.contains(#"vlm_model_info{model="tiny-a",kind="embedding",precision="fp32"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"vlm_model_info{model="llava-chat",kind="chat",precision="\#(expected)"} 1"#), "\(metrics)")
        }
    }
}
