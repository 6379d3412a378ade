import Foundation
import VLMTestSupport
import Testing
import VLMImage
@testable import VLMScenes

/// Image encoding and the on-disk dataset.
struct ExportTests {
    static func temporaryDirectory() -> URL {
        TestScratch.root.appendingPathComponent("vlm-scenes-\(UUID().uuidString)")
    }

    @Test func pngRoundTripsAndHasAValidHeader() throws {
        let g = try SceneGenerator(seed: 1).generate(index: 3, split: .train)
        let png = try ImageEncoder.png(width: g.image.width, height: g.image.height, rgb: g.image.pixels)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(String(decoding: png[12..<16], as: UTF8.self) == "IHDR")
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 64 && height == 64)
        #expect(png[24] == 8 && png[25] == 2)  // 8-bit, RGB
        // Decoded by the image front end (libpng), the pixels come back exactly, in RGBImage's layout.
        let decoded = try ImageDecoder.decode(png)
        #expect(decoded.width == 64 && decoded.height == 64 && decoded.pixels == g.image.pixels)
        #expect(decoded == (try g.image.rgbImage()))
        // Same pixels, same bytes.
        #expect(try ImageEncoder.png(width: 64, height: 64, rgb: g.image.pixels) == png)
    }

    @Test func jpegIsWrittenAndErrorsAreReported() throws {
        let pixels = [UInt8](repeating: 200, count: 16 * 8 * 3)
        let jpeg = try ImageEncoder.jpeg(width: 16, height: 8, rgb: pixels, quality: 90)
        #expect(Array(jpeg.prefix(2)) == [0xFF, 0xD8] && Array(jpeg.suffix(2)) == [0xFF, 0xD9])
        #expect(throws: ImageEncodeError.self) { try ImageEncoder.png(width: 16, height: 9, rgb: pixels) }
        #expect(throws: ImageEncodeError.self) { try ImageEncoder.png(width: 0, height: 8, rgb: pixels) }
        #expect(throws: ImageEncodeError.self) { try ImageEncoder.jpeg(width: 16, height: 8, rgb: pixels, quality: 0) }
        let decoded = try ImageDecoder.decode(jpeg)
        #expect(decoded.width == 16 && decoded.height == 8 && decoded.pixels.allSatisfy { abs(Int($0) - 200) <= 2 })
    }

    @Test func exportWritesImagesManifestAndInfo() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try SceneDataset.export(count: 12, seed: 5, split: .heldout, kind: .mixed, to: dir, threads: 2)
        #expect(summary.count == 12)
        let records = try SceneDataset.readManifest(dir.appendingPathComponent("manifest.jsonl"))
        #expect(records.count == 12)
        let images = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("images").path)
        #expect(images.count == 12)
        let memory = try SceneDataset.generate(count: 12, seed: 5, split: .heldout)
        for (i, (record, g)) in zip(records, memory).enumerated() {
            #expect(record.index == i && record.file == String(format: "images/%06d.png", i))
            #expect(record.split == "heldout" && record.caption == g.text.caption && record.captions.first == record.caption)
            #expect(record.objects.count == g.scene.objects.count && !record.negatives.isEmpty && !record.questions.isEmpty)
            #expect(!record.heldout.pairs.isEmpty || !record.heldout.triples.isEmpty)
            let png = try Data(contentsOf: dir.appendingPathComponent(record.file))
            #expect(try ImageDecoder.decode(png).pixels == g.image.pixels)
        }
        let info = try JSONDecoder().decode(DatasetInfo.self, from: Data(contentsOf: dir.appendingPathComponent("dataset.json")))
        #expect(info.count == 12 && info.seed == 5 && info.generator == SceneGenerator.version)
        #expect(info.heldoutPairs.count == SceneVocabulary.heldoutPairs.count && info.labels.count == SceneVocabulary.allTypes.count)
        // No staging directory is left next to the output.
        let siblings = try FileManager.default.contentsOfDirectory(atPath: dir.deletingLastPathComponent().path)
        #expect(!siblings.contains { $0.hasPrefix(".\(dir.lastPathComponent).partial") })
    }

    @Test func exportRefusesNonEmptyDirectoryUnlessOverwriting() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try SceneDataset.export(count: 2, seed: 1, split: .train, to: dir)
        #expect(throws: SceneError.outputExists(path: dir.standardizedFileURL.path)) {
            try SceneDataset.export(count: 3, seed: 1, split: .train, to: dir)
        }
        try SceneDataset.export(count: 3, seed: 1, split: .train, to: dir, overwrite: true)
        #expect(try SceneDataset.readManifest(dir.appendingPathComponent("manifest.jsonl")).count == 3)
    }

    @Test func exportBytesDoNotDependOnThreads() throws {
        let a = Self.temporaryDirectory(), b = Self.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(at: a)
            try? FileManager.default.removeItem(at: b)
        }
        try SceneDataset.export(count: 10, seed: 9, split: .test, format: .jpeg(quality: 85), to: a, threads: 1)
        try SceneDataset.export(count: 10, seed: 9, split: .test, format: .jpeg(quality: 85), to: b, threads: 2)
        for name in ["manifest.jsonl", "dataset.json", "images/000000.jpg", "images/000009.jpg"] {
            #expect(try Data(contentsOf: a.appendingPathComponent(name)) == Data(contentsOf: b.appendingPathComponent(name)), "\(name)")
        }
    }

    @Test func fileNamesArePaddedForLargeCounts() {
        #expect(SceneDataset.fileName(index: 7, count: 10, format: .png) == "images/000007.png")
        #expect(SceneDataset.fileName(index: 7, count: 10_000_001, format: .png) == "images/00000007.png")
    }
}
