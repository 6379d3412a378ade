import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

@Suite struct ProcessorTests {
    /// pixel_values of transformers' PIL-backend processors (Image.open(path) in Python, so transparency is
    /// composited onto white) for every good fixture and every config: within 1e-5 of the float32 goldens; where
    /// only the uint8 resize+crop is stored (most of clip224), that must match exactly and the floats must match
    /// transformers' rescale/normalize of it (the fixture script asserts that reconstruction to 1e-6).
    @Test(arguments: ["clip224", "siglip32", "crop40x32x48"])
    func pixelValuesMatchTransformers(config name: String) throws {
        let manifest = try ImageManifest.load()
        let entry = try #require(manifest.configs[name])
        #expect(Set(entry.pixels + entry.crops) == Set(manifest.good))
        let processor = try ImageProcessor.load(directory: imageFixture("configs/" + name))
        for file in manifest.good {
            let image = try ImageDecoder.load(imageFixture("good/" + file), alpha: .compositeOnWhite)
            let t = try processor.preprocess(image)
            let expected: Npy.Array
            if entry.pixels.contains(file) {
                expected = try Npy.read(imageFixture("pixels/\(name)/\(file).npy"))
            } else {
                let crop = try Npy.read(imageFixture("crops/\(name)/\(file).npy"))  // uint8 [3, H, W]
                let geometry = try processor.geometry(image)
                let chw = (0..<3).flatMap { c in stride(from: c, to: geometry.pixels.count, by: 3).map { geometry.pixels[$0] } }
                let d = diff(chw, crop.uint8s ?? [])
                #expect(d.count == 0, "\(name)/\(file): resize+crop differs in \(d.count) bytes, first at \(d.first ?? -1)")
                expected = try reference(crop, processor.config)
            }
            #expect(t.shape == expected.shape, "\(name)/\(file)")
            let want = expected.floats
            var worst: Float = 0
            for i in 0..<min(want.count, t.count) { worst = max(worst, abs(t[i] - want[i])) }
            #expect(worst <= 1e-5, "\(name)/\(file): max |diff| \(worst)")
        }
    }

    /// transformers' np rescale (float64 * scale -> float32) and normalize (float32) of a uint8 [3, H, W] crop,
    /// written independently of the library's table-driven path.
    func reference(_ crop: Npy.Array, _ config: ImageProcessorConfig) throws -> Npy.Array {
        let px = try #require(crop.uint8s)
        let plane = px.count / 3
        var out = Data(count: px.count * 4)
        out.withUnsafeMutableBytes { raw in
            for i in 0..<px.count {
                let c = i / plane
                let v = (Float(Double(px[i]) * config.rescaleFactor) - Float(config.imageMean[c])) / Float(config.imageStd[c])
                raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        return Npy.Array(shape: crop.shape, dtype: .float32, bytes: out)
    }

    @Test func batchStacksAndChecksSizes() throws {
        let processor = try ImageProcessor.load(directory: imageFixture("configs/siglip32"))
        #expect(processor.outputSize == (32, 32))
        let a = try ImageDecoder.load(imageFixture("good/tiny_3x3.png"))
        let b = try ImageDecoder.load(imageFixture("good/tall_7x300.png"))
        let batch = try processor.preprocess([a, b])
        #expect(batch.shape == [2, 3, 32, 32])
        #expect(Array(batch.scalars[(3 * 32 * 32)...]) == (try processor.preprocess(b)).scalars)
        #expect(throws: ImageError.self) { try processor.preprocess([RGBImage]()) }
        // Shortest-edge resize without a crop gives image-dependent sizes: stacking them must fail clearly.
        var config = ImageProcessorConfig.clip
        config.doCenterCrop = false
        let noCrop = ImageProcessor(config: config)
        #expect(noCrop.outputSize == (0, 0))
        #expect(throws: ImageError.self) { try noCrop.preprocess([a, b]) }
    }

    @Test func shortestEdgeTargetTruncatesLikeTransformers() throws {
        let p = ImageProcessor(config: .clip)
        #expect(try p.resizeTarget(height: 3000, width: 4000) == (224, 298))  // 298.67 -> 298
        #expect(try p.resizeTarget(height: 451, width: 300) == (336, 224))    // 336.77 -> 336
        #expect(try p.resizeTarget(height: 1, width: 50) == (224, 11200))
        #expect(try p.resizeTarget(height: 224, width: 224) == (224, 224))
        var c = ImageProcessorConfig.clip
        c.size = .shortestLongest(shortest: 800, longest: 1333)
        // get_size_with_aspect_ratio: 1333 * 480 / 1920 = 333.25 -> round 333; oh = int(333.25 * 1920 / 480) = 1333.
        #expect(try ImageProcessor(config: c).resizeTarget(height: 1920, width: 480) == (1333, 333))
        #expect(try ImageProcessor(config: c).resizeTarget(height: 600, width: 800) == (800, 1066))
        c.size = .longestEdge(100)
        #expect(throws: ImageError.self) { try ImageProcessor(config: c).resizeTarget(height: 10, width: 10) }
    }

    @Test func configDecodingAndDefaults() throws {
        func decode(_ json: String) throws -> ImageProcessorConfig {
            try JSONDecoder().decode(ImageProcessorConfig.self, from: Data(json.utf8))
        }
        // The written fixtures round-trip to the class defaults they were made from.
        let clip = try ImageProcessor.load(directory: imageFixture("configs/clip224")).config
        #expect(clip == .clip)
        #expect(clip.rescaleFactor == 1.0 / 255.0)
        // Empty: CLIP defaults. SigLIP type: SigLIP defaults (no crop, 0.5 mean/std).
        #expect(try decode("{}") == .clip)
        #expect(try decode(#"{"image_processor_type": "SiglipImageProcessor", "do_center_crop": null}"#) == .siglip)
        // Old-style ints and lists, unknown keys, a scalar mean.
        let old = try decode(#"{"size": 336, "crop_size": 300, "image_mean": 0.5, "feature_extractor_type": "x", "resample": 2}"#)
        #expect(old.size == .shortestEdge(336) && old.cropSize == (300, 300) && old.imageMean == [0.5, 0.5, 0.5] && old.resample == .bilinear)
        #expect(try decode(#"{"size": [100, 50]}"#).size == .heightWidth(height: 100, width: 50))
        #expect(try decode(#"{"size": {"shortest_edge": 10, "longest_edge": 20}}"#).size == .shortestLongest(shortest: 10, longest: 20))
        #expect(try decode(#"{"size": {"longest_edge": 20}}"#).size == .longestEdge(20))
    }

    @Test func configErrorsNameFileAndKey() throws {
        let dir = TestScratch.root.appendingPathComponent("vlm-cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("preprocessor_config.json")
        for (json, key) in [(#"{"resample": 9}"#, "resample"), (#"{"size": {"foo": 1}}"#, "size"),
                            (#"{"image_std": [1, 0, 1]}"#, "image_std"), (#"{"image_mean": [1, 2]}"#, "image_mean"),
                            (#"{"do_resize": "yes"}"#, "do_resize"), (#"{"crop_size": {"height": 0, "width": 3}}"#, "crop_size")] {
            try Data(json.utf8).write(to: file)
            do {
                _ = try ImageProcessor.load(directory: dir)
                Issue.record("loaded \(json)")
            } catch let error as ImageError {
                guard case .invalidConfig(let f, let k, _) = error else { Issue.record("\(error)"); continue }
                #expect(f == file.path && k == key, "\(json): \(error)")
            }
        }
        #expect(throws: ImageError.self) { try ImageProcessor.load(directory: dir.appendingPathComponent("nope")) }
    }
}
