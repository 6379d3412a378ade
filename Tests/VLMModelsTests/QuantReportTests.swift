import Foundation
import SwiftVLM
import Testing
import VLMImage
import VLMLayers
import VLMTestSupport

/// `vlm quant-report`'s library: fp32 against itself is exact, a weight format that equals fp32 for this
/// checkpoint reports exactly no cost, lower precisions report smaller weights, and a precision a family cannot
/// run is a row naming the reason.
@Suite struct QuantReportTests {
    @Test func generatorRowsMeasureEachPrecisionAgainstFp32() throws {
        // llama-gqa stores bf16 weights: its bf16 load's weights equal the fp32 one's. The report compares runs bit for
        // bit (fp32 against itself), so it holds the kernel-path lock: a concurrent test forcing another ISA would
        // put the two runs on different paths.
        let report = try KernelPaths.exclusive {
            try QuantReport.generator(directory: Fixtures.url("llama/llama-gqa"), precisions: [.bf16, .int8, .int4], newTokens: 8)
        }
        #expect(report.rows.map(\.precision) == ["fp32", "bf16", "int8", "int4"])
        #expect(report.inputs.contains("no tokenizer"))
        let fp32 = report.rows[0], bf16 = report.rows[1]
        #expect(fp32.greedyAgreement == 1 && fp32.top1Agreement == 1, "\(fp32)")
        #expect(abs(fp32.meanKL ?? 1) < 1e-12 && abs(fp32.perplexityChange ?? 1) < 1e-9, "\(fp32)")
        // bf16's weights equal fp32's here, so what its decode costs is its bf16 KV cache alone: small, never zero
        // (exactly zero when VLM_KV_CACHE=fp32 keeps the cache in fp32).
        #expect(bf16.greedyAgreement == 1 && bf16.top1Agreement == 1, "\(bf16)")
        if ProcessInfo.processInfo.environment["VLM_KV_CACHE"]?.lowercased() == "fp32" {
            #expect(abs(bf16.meanKL ?? 1) < 1e-12, "\(bf16)")
        } else {
            #expect((bf16.meanKL ?? 0) > 0 && (bf16.meanKL ?? 1) < 1e-3, "\(bf16)")
        }
        let bytes = report.rows.map { $0.weightBytes ?? 0 }
        #expect(bytes[0] > bytes[1] && bytes[1] > bytes[2] && bytes[2] > bytes[3], "\(bytes)")
        // Prefills of 16+ tokens: fp32 is exact against itself; bf16 computes in bf16 there (activations rounded),
        // so it is close to fp32 but not equal -- never fp32 under another name.
        #expect(report.rows[0].prefillTop1Agreement == 1 && report.rows[0].prefillMeanKL == 0, "\(report.rows[0])")
        let bf16KL = report.rows[1].prefillMeanKL ?? 0
        #expect(bf16KL > 0 && bf16KL < 1e-3, "\(report.rows[1])")
        let int4 = report.rows[3]
        #expect((int4.meanKL ?? 0) > 0 && (int4.top1Agreement ?? 1) < 1, "int4 costs something on random weights: \(int4)")
        let json = try JSONEncoder().encode(report)
        #expect(String(decoding: json, as: UTF8.self).contains("\"meanKL\""))
        #expect(QuantReport.table(report).contains("int4"))
    }

    @Test func generatorWithATokenizerUsesTheFixedTexts() throws {
        let report = try QuantReport.generator(directory: Fixtures.url("llava/llava-chat"), precisions: [.int8], newTokens: 4)
        #expect(report.inputs.contains("English sentences"), "\(report.inputs)")
        #expect(report.rows.count == 2)
    }

    @Test func dualEncoderRowsAndUnavailablePrecisions() throws {
        let dir = Fixtures.url("clip/images")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }
        let images = files.compactMap { try? ImageDecoder.load($0) }
        try #require(!images.isEmpty)
        let report = try QuantReport.dualEncoder(directory: Fixtures.url("clip/tiny-a"), precisions: [.int8], images: images,
                                                 imageSource: "clip/images", labels: ["a cat", "a dog", "a car"])
        #expect(report.rows[0].precision == "fp32")
        #expect(abs((report.rows[0].cosineMin ?? 0) - 1) < 1e-6 && report.rows[0].zeroShotAgreement == 1)
        // The int8 row measures the int8 towers: close to fp32, not equal (never fp32 under another name).
        let int8 = report.rows[1]
        #expect(int8.precision == "int8" && int8.unavailable == nil, "\(int8)")
        #expect((int8.cosineMin ?? 0) > 0.99 && (int8.cosineMin ?? 1) < 1, "\(int8)")
        #expect(int8.zeroShotAgreement != nil)
    }
}
