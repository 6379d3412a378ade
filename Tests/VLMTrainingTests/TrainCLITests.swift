import Foundation
import Testing
import VLMImage
import VLMModels
import VLMTokenizers
import VLMTestSupport
@testable import VLMTraining

/// `vlm train clip` / `vlm eval` / `vlm demo` end to end through the built executable (skipped when it is absent).
@Suite(.serialized) struct TrainCLITests {
    /// 24 images: 4 colours x 2 positions of a square, captions saying which; one broken and one missing image.
    func writeDataset(_ dir: URL) throws -> URL {
        let colours: [(String, [UInt8])] = [("red", [220, 30, 30]), ("green", [30, 200, 40]), ("blue", [30, 60, 220]), ("yellow", [230, 220, 30])]
        var lines: [String] = []
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("img"), withIntermediateDirectories: true)
        for i in 0 ..< 24 {
            let (name, rgb) = colours[i % 4]
            let left = (i / 4) % 2 == 0
            var px = [UInt8](repeating: 128, count: 64 * 64 * 3)
            let x0 = left ? 4 : 36, y0 = (i * 7) % 36
            for y in y0 ..< y0 + 24 { for x in x0 ..< x0 + 24 { for k in 0 ..< 3 { px[(y * 64 + x) * 3 + k] = rgb[k] } } }
            try ImageEncoder.png(width: 64, height: 64, rgb: px).write(to: dir.appendingPathComponent("img/\(i).png"))
            let other = colours[(i + 1) % 4].0
            lines.append("{\"image\": \"img/\(i).png\", \"caption\": \"a \(name) square on the \(left ? "left" : "right")\", \"label\": \"\(name) square\", \"negatives\": [{\"type\": \"swap\", \"caption\": \"a \(other) square on the \(left ? "left" : "right")\"}]}")
        }
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("img/broken.png"))
        lines.append("{\"image\": \"img/broken.png\", \"caption\": \"a broken file\"}")
        lines.append("{\"image\": \"img/missing.png\", \"caption\": \"a missing file\"}")
        let manifest = dir.appendingPathComponent("manifest.jsonl")
        try Data(lines.joined(separator: "\n").utf8).write(to: manifest)
        return manifest
    }

    func log(_ dir: URL) throws -> TrainingLog {
        try JSONDecoder().decode(TrainingLog.self, from: Data(contentsOf: dir.appendingPathComponent("training_log.json")))
    }

    @Test(.enabled(if: Executables.vlm != nil, "vlm not built")) func trainEvalResume() throws {
        let tmp = try TempDir()
        let manifest = try writeDataset(tmp.url.appendingPathComponent("data"))
        let out = tmp.url.appendingPathComponent("run")
        let r = try Executables.run(["train", "clip", "--data", manifest.path, "--config", "micro", "--steps", "20", "--batch", "8",
                                     "--lr", "3e-3", "--warmup", "2", "--save-every", "10", "--seed", "1", "--quiet", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let l = try log(out)
        #expect(l.steps == 20 && l.loss.count == 20)
        #expect(l.skippedSamples >= 2, "broken and missing images are skipped, not fatal")
        let first = l.loss.prefix(3).reduce(0, +) / 3, last = l.loss.suffix(3).reduce(0, +) / 3
        #expect(last < first, "loss \(first) -> \(last)")
        // A normal Hugging Face checkpoint: the inference model, tokenizer and processor load as EmbeddingPipeline does.
        let model = try CLIPModel.load(directory: out)
        let tok = try TokenizerLoader.load(directory: out)
        let proc = try ImageProcessor.load(directory: out)
        #expect(model.imageSize == 64 && proc.outputSize.height == 64)
        #expect(try tok.encode("a red square", maxLength: nil).count == 5)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("loss_curve.svg").path))
        // transformers 5 rejects an integer initializer_factor.
        #expect(try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8).contains("\"initializer_factor\" : 1.0,"))
        let embed = try Executables.run(["embed", "--model", out.path, "--text", "a red square on the left"])
        #expect(embed.status == 0, "\(embed.stderr)")

        // Resume from step 10 continues to 20 and keeps the first 10 losses.
        let ck = out.appendingPathComponent("checkpoints/checkpoint-10")
        let out2 = tmp.url.appendingPathComponent("resumed")
        let r2 = try Executables.run(["train", "clip", "--resume", ck.path, "--out", out2.path, "--quiet"])
        #expect(r2.status == 0, "\(r2.stderr)")
        let l2 = try log(out2)
        #expect(l2.steps == 20)
        #expect(Array(l2.loss.prefix(10)) == Array(l.loss.prefix(10)))
        #expect(zip(l2.loss.suffix(10), l.loss.suffix(10)).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) }, "\(l2.loss) vs \(l.loss)")

        let e = try Executables.run(["eval", "--model", out.path, "--data", manifest.path, "--format", "json"])
        #expect(e.status == 0, "\(e.stderr)")
        let report = try JSONDecoder().decode(EvaluationReport.self, from: Data(e.stdout.utf8))
        #expect(report.splits.first?.retrieval?.images == 24)
        #expect(report.splits.first?.skipped == 2)
        #expect(report.splits.first?.binding?.pairs == 24)
        #expect(report.splits.first?.zeroShot?.classes == 4)
    }

    /// --vision-position-init sincos: patch rows of one grid row share the row half of the code exactly (their
    /// random parts replaced by the mean), rows of one column the column half; other rows and columns differ.
    @Test(.enabled(if: Executables.vlm != nil, "vlm not built")) func sincosPatchPositions() throws {
        let tmp = try TempDir()
        let manifest = try writeDataset(tmp.url.appendingPathComponent("data"))
        let out = tmp.url.appendingPathComponent("run")
        // One step at a negligible learning rate: the rows are the initialisation up to ~1e-7.
        let r = try Executables.run(["train", "clip", "--data", manifest.path, "--config", "micro", "--steps", "1", "--batch", "8",
                                     "--lr", "1e-9", "--warmup", "0", "--seed", "1", "--quiet", "--vision-position-init", "sincos",
                                     "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let pos = try TrainableCLIP.load(directory: out).parameters["vision_model.embeddings.position_embedding.weight"]
        let grid = 4, c = pos.shape[1], half = c / 2  // micro: 64-pixel images, patch 16, width 32
        #expect(pos.shape == [1 + grid * grid, c])
        func row(_ r: Int, _ col: Int) -> [Float] { Array(UnsafeBufferPointer(start: pos.pointer + (1 + r * grid + col) * c, count: c)) }
        func maxDiff(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
        for r0 in 0 ..< grid {
            for c0 in 0 ..< grid {
                let a = row(r0, c0), sameRow = row(r0, (c0 + 1) % grid), sameCol = row((r0 + 1) % grid, c0)
                #expect(maxDiff(a[..<half], sameRow[..<half]) < 1e-5, "row \(r0): row half differs across columns")
                #expect(maxDiff(a[half...], sameCol[half...]) < 1e-5, "column \(c0): column half differs across rows")
                #expect(maxDiff(a[half...], sameRow[half...]) > 0.05 && maxDiff(a[..<half], sameCol[..<half]) > 0.05)
            }
        }
        let bad = try Executables.run(["train", "clip", "--data", manifest.path, "--config", "micro", "--vision-position-init", "grid",
                                       "--out", tmp.url.appendingPathComponent("o").path])
        #expect(bad.status != 0 && bad.stderr.contains("--vision-position-init must be random or sincos"), "\(bad.stderr)")
        let noInit = try Executables.run(["train", "clip", "--data", manifest.path, "--config", "micro", "--vision-position-amplitude", "0.1",
                                          "--out", tmp.url.appendingPathComponent("o").path])
        #expect(noInit.status != 0 && noInit.stderr.contains("needs --vision-position-init sincos"), "\(noInit.stderr)")
    }

    @Test(.enabled(if: Executables.vlm != nil, "vlm not built")) func errorsAreOneLine() throws {
        let tmp = try TempDir()
        let bad = try tmp.write("bad.jsonl", "{\"image\": \"a.png\"}\n")
        let r = try Executables.run(["train", "clip", "--data", bad.path, "--config", "micro", "--out", tmp.url.appendingPathComponent("o").path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("bad.jsonl:1: missing caption"), "\(r.stderr)")
    }

    static let models = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Models")
    static let demoRunnable = Executables.vlm != nil && FileManager.default.fileExists(atPath: models.appendingPathComponent("scenes-clip/config.json").path)

    /// With no arguments the demo classifies and searches with the contrastive default and, when the generative
    /// default is there, captions every scene and answers questions on the page too.
    @Test(.enabled(if: demoRunnable, "vlm or Models/scenes-clip missing")) func demoWritesHTML() throws {
        let tmp = try TempDir()
        let html = tmp.url.appendingPathComponent("demo.html")
        let r = try Executables.run(["demo", "--count", "4", "--output", html.path])
        #expect(r.status == 0, "\(r.stderr)")
        let page = try String(contentsOf: html, encoding: .utf8)
        #expect(page.contains("data:image/png;base64,") && page.contains("Text query"))
        #expect(r.stdout.contains("wrote"))
        if FileManager.default.fileExists(atPath: Self.models.appendingPathComponent("scenes-vlm/config.json").path) {
            #expect(r.stdout.contains("generative model:") && r.stdout.components(separatedBy: "   caption: ").count == 5, "\(r.stdout)")
            #expect(page.components(separatedBy: "<i>says:</i>").count == 5)
        }
    }
}
