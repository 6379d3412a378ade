import Foundation
import Testing
import VLMTestSupport

/// `vlm quant-report` as a user runs it: a quantized checkpoint (GPTQ fixture) loads and reports, JSON parses,
/// a bad precision name and a dual encoder without --images are errors naming the problem.
@Suite struct QuantReportCLITests {
    @Test func reportsAQuantizedCheckpointAsJSONAndATable() throws {
        let model = Fixtures.url("quant/gptq-llama").path
        let json = try Executables.run(["quant-report", "--model", model, "--precisions", "int4", "--format", "json", "--new-tokens", "4"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.map { $0["precision"] as? String } == ["fp32", "int4"])
        #expect(rows[0]["greedyAgreement"] as? Double == 1)
        let table = try Executables.run(["quant-report", "--model", model, "--precisions", "bf16", "--new-tokens", "4"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("precision") && table.stdout.contains("bf16       unavailable:") && table.stdout.contains("re-round"), "\(table.stdout)")
    }

    @Test func badArgumentsAreErrors() throws {
        let bad = try Executables.run(["quant-report", "--model", Fixtures.url("llama/llama-gqa").path, "--precisions", "fp8"])
        #expect(bad.status != 0 && bad.stderr.contains("fp8"), "\(bad.stderr)")
        let clip = try Executables.run(["quant-report", "--model", Fixtures.url("clip/tiny-a").path])
        #expect(clip.status != 0 && clip.stderr.contains("--images"), "\(clip.stderr)")
    }
}
