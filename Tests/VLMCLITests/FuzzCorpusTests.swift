import Foundation
import Testing
import VLMTestSupport

/// The fuzzers' committed corpora (Fuzz/corpus/<target>: seeds plus inputs that once found new code paths)
/// replayed through the normal build's `vlm-fuzz`: every parser of outside input returns or throws on each,
/// without crashing. (Scripts/fuzz.sh runs libFuzzer with AddressSanitizer over the same targets.)
@Suite struct FuzzCorpusTests {
    static let targets = ["image", "npy", "template", "safetensors", "config", "tokenizer", "spiece",
                          "dataurl", "embeddings", "chat", "index", "search", "classify", "tasks"]

    @Test(arguments: targets)
    func corpusReplaysWithoutCrashing(target: String) throws {
        let vlm = try #require(Executables.vlm, "the vlm executable was not built")
        let fuzz = vlm.deletingLastPathComponent().appendingPathComponent("vlm-fuzz")
        let corpus = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/\(target)")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path)
        #expect(files.count >= 3, "the \(target) corpus is nearly empty")
        let process = Process()
        process.executableURL = fuzz
        process.arguments = [target, corpus.path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "vlm-fuzz \(target) ended with \(process.terminationStatus)")
        #expect(text.contains("\(target): \(files.count) inputs replayed"), "\(text)")
    }
}
