import Foundation
import Testing
import VLMTestSupport

/// transformers' outputs for tiny-a (Scripts/fixtures/clip_fixtures.py), the fields the CLI tests need.
struct Reference: Decodable {
    let images: [String]
    let texts: [String]
    let input_ids: [[Int]]
    let pixel_values_shape: [Int]
    let pixel_values: [Float]
    let image_embeds: [[Float]]
    let text_embeds: [[Float]]
    let logits_per_image: [[Float]]
}

struct EmbedRow: Decodable {
    let kind: String
    let input: String
    let embedding: [Float]
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

/// End to end through the built `vlm` binary, as a user runs it. The tiny checkpoint's numbers come from
/// transformers; images go through our decoder and CLIPImageProcessor, so these also check that chain.
/// Tolerance: 1e-4 on normalised embeddings (pixels agree to 1e-5, the model to ~1e-6).
@Suite(.serialized) struct CLITests {
    let model = Fixtures.url("clip/tiny-a").path
    func image(_ name: String) -> String { Fixtures.url("clip/images/\(name)").path }

    @Test func embedJSONMatchesTransformersInInputOrder() throws {
        let ref: Reference = try Fixtures.json("clip/tiny-a.reference.json")
        let r = try Executables.run(["embed", "--model", model, "--text", ref.texts[0], "--image", image(ref.images[0]),
                                     "--text", ref.texts[2], "--image", image(ref.images[1]), "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONDecoder().decode([EmbedRow].self, from: Data(r.stdout.utf8))
        #expect(rows.map(\.kind) == ["text", "image", "text", "image"])
        #expect(rows[0].input == ref.texts[0])
        #expect(maxAbsDiff(rows[0].embedding, ref.text_embeds[0]) <= 1e-4)
        #expect(maxAbsDiff(rows[1].embedding, ref.image_embeds[0]) <= 1e-4)
        #expect(maxAbsDiff(rows[2].embedding, ref.text_embeds[2]) <= 1e-4)
        #expect(maxAbsDiff(rows[3].embedding, ref.image_embeds[1]) <= 1e-4)
    }

    @Test func rawEmbeddingsAreUnnormalised() throws {
        let r = try Executables.run(["embed", "--model", model, "--text", "a photo of a cat", "--raw", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try JSONDecoder().decode([EmbedRow].self, from: Data(r.stdout.utf8))
        let norm = rows[0].embedding.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(abs(norm - 1) > 1e-3)
    }

    @Test func tokenizeMatchesTransformers() throws {
        let ref: Reference = try Fixtures.json("clip/tiny-a.reference.json")
        let r = try Executables.run(["tokenize", "--model", model] + ref.texts)
        #expect(r.status == 0, "\(r.stderr)")
        let ids = try JSONDecoder().decode([[Int]].self, from: Data(r.stdout.utf8))
        #expect(ids == ref.input_ids)
    }

    @Test func similarityLogitsMatchTransformers() throws {
        let ref: Reference = try Fixtures.json("clip/tiny-a.reference.json")
        struct Output: Decodable { let cosine: [[Float]]; let logits: [[Float]] }
        var args = ["similarity", "--model", model, "--format", "json"]
        for name in ref.images { args += ["--image", image(name)] }
        for text in ref.texts { args += ["--text", text] }
        let r = try Executables.run(args)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONDecoder().decode(Output.self, from: Data(r.stdout.utf8))
        for (ours, theirs) in zip(out.logits, ref.logits_per_image) { #expect(maxAbsDiff(ours, theirs) <= 1e-3) }
    }

    @Test func classifyPrintsProbabilitiesBestFirst() throws {
        struct Score: Decodable { let label: String; let probability: Float }
        let r = try Executables.run(["classify", "--model", model, image("chelsea.jpg"), "--labels", "cat, dog,car", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let scores = try JSONDecoder().decode([Score].self, from: Data(r.stdout.utf8))
        #expect(Set(scores.map(\.label)) == ["cat", "dog", "car"])
        #expect(abs(scores.reduce(0) { $0 + $1.probability } - 1) < 1e-5)
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        let top = try Executables.run(["classify", "--model", model, image("chelsea.jpg"), "--labels", "cat,dog,car", "--top", "1"])
        #expect(top.status == 0)
        #expect(top.stdout.split(separator: "\n").count == 1)
        #expect(top.stdout.hasPrefix(scores[0].label))
    }

    @Test func preprocessWritesTheModelInput() throws {
        let ref: Reference = try Fixtures.json("clip/tiny-a.reference.json")
        let out = TestScratch.root.appendingPathComponent("pv-\(UUID().uuidString).npy")
        let r = try Executables.run(["preprocess", "--model", model, image(ref.images[0]), "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        let data = try Data(contentsOf: out)
        // NumPy v1 header: magic, version, little-endian header length, dict; then float32 data.
        #expect(data.prefix(6) == Data([0x93]) + Data("NUMPY".utf8))
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10 ..< 10 + headerLength], as: UTF8.self)
        #expect(header.contains("'descr': '<f4'") && header.contains("(1, 3, 32, 32)"))
        let floats = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let perImage = ref.pixel_values.count / ref.pixel_values_shape[0]
        #expect(maxAbsDiff(floats, Array(ref.pixel_values[0 ..< perImage])) <= 1e-5)
    }

    @Test func benchReportsThroughput() throws {
        struct Bench: Decodable { let image_per_s: Double; let text_per_s: Double }
        let r = try Executables.run(["bench", "--model", model, "--batch", "2", "--seconds", "0.05", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let b = try JSONDecoder().decode(Bench.self, from: Data(r.stdout.utf8))
        #expect(b.image_per_s > 0 && b.text_per_s > 0)
    }

    /// A real training step runs (finite positive throughput), and the loss is not what is timed: the
    /// command reports the steps it timed.
    @Test func benchTrainReportsThroughput() throws {
        struct Bench: Decodable { let samples_per_s: Double; let steps: Int; let step_ms: Double }
        let r = try Executables.run(["bench-train", "--config", "micro", "--batch", "4", "--tokens", "6", "--seconds", "0.05", "--format", "json"])
        #expect(r.status == 0, "\(r.stderr)")
        let b = try JSONDecoder().decode(Bench.self, from: Data(r.stdout.utf8))
        #expect(b.steps >= 5 && b.step_ms > 0 && b.samples_per_s.isFinite && b.samples_per_s > 0)
        try expectCleanFailure(["bench-train", "--config", "huge9"], mentions: "huge9")
        try expectCleanFailure(["bench-train", "--batch", "1"], mentions: "--batch")
    }

    // MARK: Bad input: one line on stderr, non-zero exit, no crash.

    func expectCleanFailure(_ args: [String], mentions: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try Executables.run(args)
        #expect(r.status == 1, "exit \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(mentions), "\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)", sourceLocation: sourceLocation)
    }

    func scratch(_ name: String, _ data: Data) throws -> String {
        let dir = TestScratch.root.appendingPathComponent("vlm-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    @Test func badImagesFailCleanly() throws {
        let zero = try scratch("empty.jpg", Data())
        try expectCleanFailure(["embed", "--model", model, "--image", zero], mentions: "empty.jpg")
        let text = try scratch("notes.jpg", Data("just some text, not a picture\n".utf8))
        try expectCleanFailure(["embed", "--model", model, "--image", text], mentions: "notes.jpg")
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: image("chelsea.jpg")))
        let truncated = try scratch("cut.jpg", jpeg.prefix(jpeg.count / 3))
        try expectCleanFailure(["embed", "--model", model, "--image", truncated], mentions: "cut.jpg")
        let huge = try scratch("huge.png", Self.pngHeader(width: 30000, height: 30000))
        try expectCleanFailure(["classify", "--model", model, huge, "--labels", "a,b"], mentions: "huge.png")
        try expectCleanFailure(["embed", "--model", model, "--image", "/nonexistent/cat.jpg"], mentions: "/nonexistent/cat.jpg")
    }

    @Test func badModelsAndArgumentsFailCleanly() throws {
        try expectCleanFailure(["embed", "--model", "/nonexistent/model", "--text", "x"], mentions: "/nonexistent/model")
        try expectCleanFailure(["embed", "--model", model], mentions: "--image")
        try expectCleanFailure(["classify", "--model", model, image("chelsea.jpg"), "--labels", " , "], mentions: "labels")
        try expectCleanFailure(["bench", "--config", "z99"], mentions: "z99")
        let r = try Executables.run(["embed", "--bogus-flag"])
        #expect(r.status != 0)
    }

    /// A PNG signature and IHDR claiming width x height, with a valid CRC, and nothing else: a decoder must
    /// refuse it from the header, before allocating width x height pixels.
    static func pngHeader(width: UInt32, height: UInt32) -> Data {
        var chunk = Data("IHDR".utf8)
        for v in [width, height] { withUnsafeBytes(of: v.bigEndian) { chunk.append(contentsOf: $0) } }
        chunk.append(contentsOf: [8, 2, 0, 0, 0])  // 8-bit RGB, deflate, no filter, no interlace
        var data = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        withUnsafeBytes(of: UInt32(13).bigEndian) { data.append(contentsOf: $0) }
        data.append(chunk)
        withUnsafeBytes(of: crc32(chunk).bigEndian) { data.append(contentsOf: $0) }
        return data
    }

    static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}
