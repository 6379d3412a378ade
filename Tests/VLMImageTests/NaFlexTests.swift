import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

/// Tests/Fixtures/images/naflex/manifest.json, written by Scripts/fixtures/naflex_fixtures.py from transformers
/// 5.25's PIL backends (Siglip2ImageProcessorPil, SiglipImageProcessorPil).
struct NaFlexManifest: Decodable {
    struct Case: Decodable {
        let config: String
        let image: String
        let width: Int
        let height: Int
        /// What transformers raised (or why its result is not a valid input); the Swift side must throw.
        let error: String?
        /// Reference pixel_values shape of one image: [maxPatches, 3*p*p] or [3, H, W].
        let shape: [Int]?
        let spatial_shape: [Int]?
        let num_patches: Int?
        let target: [Int]?
        /// FNV-1a 64 of the processor's uint8 output with do_rescale / do_normalize off (real patches only).
        let fnv1a64_uint8: String?
        /// float64 sum of pixel_values and (flat index, value) samples of it.
        let sum: Double?
        let samples: [[Double]]?
        let golden: String?
        let golden_dtype: String?
    }
    let naflex: [Case]
    let siglip: [Case]
    /// [height, width, patch_size, max_num_patches, target height, target width]
    let target_sizes: [[Int]]
}

/// Every NaFlex / SigLIP fixture config the script writes (a partial regeneration shows up as a failure).
let naflexConfigs = ["siglip2_p16_n256", "p8_n64", "p8_n16_bicubic", "p14_n32_lanczos_clipnorm", "p4_n256_noresize", "p8_n24_nonorm"]
let siglipConfigs = ["siglip_224", "siglip_40x64_bilinear"]

/// A fixture under Tests/Fixtures that must exist: a missing one is a recorded test failure that says how to make it.
func requiredFixture(_ relative: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
    let url = Fixtures.url(relative)
    guard FileManager.default.fileExists(atPath: url.path) else {
        Issue.record("missing fixture \(relative): run ~/vlmpy/bin/python Scripts/fixtures/naflex_fixtures.py", sourceLocation: sourceLocation)
        throw ImageError.unreadable(file: url.path, reason: "missing fixture")
    }
    return url
}

func naflexManifest() throws -> NaFlexManifest {
    let url = try requiredFixture("images/naflex/manifest.json")
    return try JSONDecoder().decode(NaFlexManifest.self, from: Data(contentsOf: url))
}

/// FNV-1a 64, as the fixture script hashes uint8 outputs.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    let s = String(h, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// numpy's convert_image_to_patches of a uint8 HWC image, element by element from the reference's index formula
/// (reshape(C, rows, p, cols, p).transpose(1, 3, 2, 4, 0).reshape(rows * cols, -1)), independent of the
/// library's row-copy loop.
func referencePatches(_ image: RGBImage, patchSize p: Int) -> [UInt8] {
    let rows = image.height / p, cols = image.width / p, per = 3 * p * p
    var out = [UInt8](repeating: 0, count: rows * cols * per)
    for i in 0..<out.count {
        let patch = i / per, inner = i % per
        let (r, c) = (patch / cols, patch % cols)
        let (ky, kx, ch) = (inner / (3 * p), (inner / 3) % p, inner % 3)
        out[i] = image.pixels[((r * p + ky) * image.width + c * p + kx) * 3 + ch]
    }
    return out
}

/// transformers' np rescale (float64 * factor -> float32) then normalize (float32), per value.
func referenceValue(_ v: UInt8, channel c: Int, rescale: Double?, mean: [Double]?, std: [Double]?) -> Float {
    var x = rescale.map { Float(Double(v) * $0) } ?? Float(v)
    if let mean, let std { x = (x - Float(mean[c])) / Float(std[c]) }
    return x
}

@Suite struct NaFlexTests {
    /// Tolerance on every float compared with transformers: both sides compute the same float32 operations on
    /// identical uint8 values, so any difference is a bug; 1e-6 leaves room only for a different rounding order.
    static let tolerance: Float = 1e-6

    @Test func targetSizesMatchTransformers() throws {
        let m = try naflexManifest()
        #expect(m.target_sizes.count >= 100)
        for row in m.target_sizes {
            let (h, w, p, n) = (row[0], row[1], row[2], row[3])
            let got = try naflexTargetSize(height: h, width: w, patchSize: p, maxNumPatches: n)
            #expect(got == (row[4], row[5]), "\(h)x\(w) p\(p) n\(n): \(got), transformers \(row[4])x\(row[5])")
        }
    }

    @Test func manifestCoversEveryConfig() throws {
        let m = try naflexManifest()
        #expect(Set(m.naflex.map(\.config)) == Set(naflexConfigs))
        #expect(Set(m.siglip.map(\.config)) == Set(siglipConfigs))
        // Both orientations of the sub-patch and extreme shapes are in every config.
        let images = Set(m.naflex.map(\.image))
        for pair in [("noise_w1_h17", "noise_w17_h1"), ("noise_w3_h500", "noise_w500_h3"), ("noise_w2_h3000", "noise_w3000_h2"),
                     ("noise_w33_h17", "noise_w17_h33"), ("noise_w1_h1", "noise_w1_h1")] {
            #expect(images.contains("images/naflex/inputs/\(pair.0).png") && images.contains("images/naflex/inputs/\(pair.1).png"))
        }
    }

    @Test(arguments: naflexConfigs)
    func naflexMatchesTransformers(config name: String) throws {
        let m = try naflexManifest()
        let processor = try ImageProcessors.load(directory: try requiredFixture("images/naflex/configs/\(name)"))
        let naflex = try #require(processor as? NaFlexProcessor)
        let cfg = naflex.config
        let p = cfg.patchSize, per = cfg.patchValues, n = cfg.maxNumPatches
        let cases = m.naflex.filter { $0.config == name }
        #expect(cases.count >= 20)
        for c in cases {
            let label = "\(name) \(c.image) (\(c.width)x\(c.height))"
            let image = try ImageDecoder.load(try requiredFixture(c.image))
            #expect(image.width == c.width && image.height == c.height, "\(label)")
            if let error = c.error {
                #expect(throws: ImageError.self, "\(label): transformers: \(error)") { try naflex.pixelInputs([image]) }
                continue
            }
            let out = try naflex.pixelInputs([image])
            let grid = try #require(out.spatialShapes?.first)
            #expect(out.pixelValues.shape == [1] + (c.shape ?? []), "\(label)")
            #expect([grid.rows, grid.columns] == c.spatial_shape, "\(label): grid \(grid)")
            let real = grid.rows * grid.columns
            #expect(real == c.num_patches)
            #expect(out.patchMask == [UInt8](repeating: 1, count: real) + [UInt8](repeating: 0, count: n - real), "\(label): mask")
            let values = out.pixelValues.scalars
            #expect(values[(real * per)...].allSatisfy { $0 == 0 }, "\(label): padding not zero")

            // uint8 geometry: the resized image, patched by the reference index formula.
            let resized = try naflex.resized(image)
            #expect([resized.height, resized.width] == c.target, "\(label)")
            let u8 = referencePatches(resized, patchSize: p)
            #expect(fnv1a64(u8) == c.fnv1a64_uint8, "\(label): uint8 patches differ from transformers'")
            // Floats: exactly the reference arithmetic on those uint8 values (the script asserts transformers'
            // floats are that, bit for bit).
            var worst: Float = 0
            for i in 0..<u8.count {
                let want = referenceValue(u8[i], channel: i % 3, rescale: cfg.doRescale ? cfg.rescaleFactor : nil,
                                          mean: cfg.doNormalize ? cfg.imageMean : nil, std: cfg.doNormalize ? cfg.imageStd : nil)
                worst = max(worst, abs(values[i] - want))
            }
            #expect(worst <= Self.tolerance, "\(label): max |diff| \(worst) against the reference arithmetic")
            try checkSamplesAndSum(c, values, label)
            try checkGolden(c, floats: Array(values[0..<(real * per)]), uint8: u8, label)
        }
    }

    @Test(arguments: siglipConfigs)
    func siglipFixResMatchesTransformers(config name: String) throws {
        let m = try naflexManifest()
        let processor = try ImageProcessor.load(directory: try requiredFixture("images/naflex/configs/\(name)"))
        let cases = m.siglip.filter { $0.config == name }
        #expect(cases.count >= 20)
        for c in cases {
            let label = "\(name) \(c.image) (\(c.width)x\(c.height))"
            let image = try ImageDecoder.load(try requiredFixture(c.image))
            let t = try processor.preprocess(image)
            #expect(t.shape == c.shape, "\(label)")
            let g = try processor.geometry(image)
            let chw = (0..<3).flatMap { ch in stride(from: ch, to: g.pixels.count, by: 3).map { g.pixels[$0] } }
            #expect(fnv1a64(chw) == c.fnv1a64_uint8, "\(label): resized uint8 differs from transformers'")
            try checkSamplesAndSum(c, t.scalars, label)
            try checkGolden(c, floats: t.scalars, uint8: chw, label)
        }
    }

    func checkSamplesAndSum(_ c: NaFlexManifest.Case, _ values: [Float], _ label: String) throws {
        let samples = try #require(c.samples, "\(label): no samples")
        #expect(samples.count >= 2)
        for s in samples {
            let i = Int(s[0])
            #expect(i < values.count && abs(values[i] - Float(s[1])) <= Self.tolerance, "\(label): value \(i)")
        }
        let sum = values.reduce(0.0) { $0 + Double($1) }
        let want = try #require(c.sum)
        #expect(abs(sum - want) <= 1e-9 * Double(values.count) + 1e-6, "\(label): sum \(sum), transformers \(want)")
    }

    /// The stored golden, when the case has one: float32 rows within the tolerance, or uint8 values identical.
    func checkGolden(_ c: NaFlexManifest.Case, floats: [Float], uint8: [UInt8], _ label: String) throws {
        guard let file = c.golden else { return }
        let golden = try Npy.read(try requiredFixture("images/naflex/" + file))
        #expect(golden.count == (c.golden_dtype == "uint8" ? uint8.count : floats.count), "\(label): golden \(golden.shape)")
        if c.golden_dtype == "uint8" {
            let d = diff(uint8, golden.uint8s ?? [])
            #expect(d.count == 0, "\(label): \(d.count) uint8 values differ, first at \(d.first ?? -1)")
        } else {
            let want = golden.floats
            var worst: Float = 0
            for i in 0..<min(want.count, floats.count) { worst = max(worst, abs(floats[i] - want[i])) }
            #expect(worst <= Self.tolerance, "\(label): max |diff| \(worst)")
        }
    }

    /// google/siglip2-*-naflex's file (and Siglip2ImageProcessorPil's defaults) load through the registry.
    @Test func registryBuildsNaFlexFromPreprocessorConfig() throws {
        let p = try ImageProcessors.load(directory: try requiredFixture("images/naflex/configs/siglip2_p16_n256"))
        let naflex = try #require(p as? NaFlexProcessor)
        #expect(naflex.config == .siglip2)
        #expect(p.processorClass == "Siglip2ImageProcessor")
        #expect(p.fixedOutputSize == nil)
        // The backend suffixes name the same class.
        for type in ["Siglip2ImageProcessorFast", "Siglip2ImageProcessorPil"] {
            let source = ImageProcessors.ConfigSource(json: Data(#"{"image_processor_type": "\#(type)", "patch_size": 4}"#.utf8), file: "x.json")
            #expect((try ImageProcessors.make(source) as? NaFlexProcessor)?.config.patchSize == 4)
        }
    }

    /// transformers 5.x processor_config.json (image_processor nested) loads, and gives what the same settings in
    /// a preprocessor_config.json give.
    @Test func processorConfigJsonLoads() throws {
        let dir = try requiredFixture("images/naflex/configs/processor_json")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("preprocessor_config.json").path))
        let p = try #require(try ImageProcessors.load(directory: dir) as? NaFlexProcessor)
        #expect(p.config.patchSize == 8 && p.config.maxNumPatches == 16 && p.config.resample == .bicubic)
        let same = try #require(try ImageProcessors.load(directory: try requiredFixture("images/naflex/configs/p8_n16_bicubic")) as? NaFlexProcessor)
        #expect(p.config == same.config)
        let image = try ImageDecoder.load(try requiredFixture("clip/images/chelsea.jpg"))
        #expect(try p.pixelInputs([image]).pixelValues.scalars == same.pixelInputs([image]).pixelValues.scalars)
    }

    @Test func unknownTypeNamesSupportedClasses() throws {
        let source = ImageProcessors.ConfigSource(json: Data(#"{"image_processor_type": "Qwen2VLImageProcessor"}"#.utf8), file: "pp.json")
        do {
            _ = try ImageProcessors.make(source)
            Issue.record("an unknown image_processor_type loaded")
        } catch let error as ImageError {
            guard case .invalidConfig(let file, let key, let reason) = error else { Issue.record("\(error)"); return }
            #expect(file == "pp.json" && key == "image_processor_type")
            for name in ["CLIPImageProcessor", "SiglipImageProcessor", "Siglip2ImageProcessor", "Idefics3ImageProcessor"] {
                #expect(reason.contains(name), "\(reason)")
            }
        }
        #expect(ImageProcessors.supported.contains("Siglip2ImageProcessor"))
    }

    /// Sizes that would allocate absurd amounts, and broken values, are refused naming the file and the key.
    @Test func absurdConfigsAreRefused() throws {
        let dir = TestScratch.root.appendingPathComponent("vlm-naflex-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("preprocessor_config.json")
        let type = #""image_processor_type": "Siglip2ImageProcessor""#
        for (json, key) in [(#"{\#(type), "patch_size": 0}"#, "patch_size"), (#"{\#(type), "patch_size": -16}"#, "patch_size"),
                            (#"{\#(type), "patch_size": 100000}"#, "patch_size"), (#"{\#(type), "max_num_patches": 0}"#, "max_num_patches"),
                            (#"{\#(type), "max_num_patches": 4611686018427387904}"#, "max_num_patches"),
                            (#"{\#(type), "patch_size": 1024, "max_num_patches": 4096}"#, "max_num_patches"),
                            (#"{\#(type), "patch_size": "16"}"#, "patch_size"), (#"{\#(type), "resample": 7}"#, "resample"),
                            (#"{\#(type), "image_std": [0.5, 0, 0.5]}"#, "image_std"), (#"{\#(type), "image_mean": [0.5, 0.5]}"#, "image_mean")] {
            try Data(json.utf8).write(to: file)
            do {
                _ = try ImageProcessors.load(directory: dir)
                Issue.record("loaded \(json)")
            } catch let error as ImageError {
                guard case .invalidConfig(let f, let k, _) = error else { Issue.record("\(json): \(error)"); continue }
                #expect(f == file.path && k == key, "\(json): \(error)")
            }
        }
        var big = NaFlexConfig.siglip2
        big.maxNumPatches = 1 << 20
        #expect(throws: ImageError.self) { try NaFlexProcessor(config: big) }
        // The largest accepted config stays within the stated bound.
        big.patchSize = 16
        big.maxNumPatches = NaFlexConfig.maxValuesPerImage / (3 * 16 * 16)
        #expect(try NaFlexProcessor(config: big).config.valuesPerImage <= NaFlexConfig.maxValuesPerImage)
    }

    /// Images smaller than a patch and extreme aspect ratios, both orientations: transposing the image transposes
    /// the target and the grid; where transformers' result is not a valid input we throw instead of crashing.
    @Test func subPatchAndExtremeShapesBothOrientations() throws {
        let p = try NaFlexProcessor(config: .siglip2)
        for (h, w) in [(1, 1), (1, 17), (3, 500), (2, 3000), (1, 100_000), (7, 300), (1, 1 << 30)] {
            let a = try p.targetSize(height: h, width: w), b = try p.targetSize(height: w, width: h)
            #expect(a.height == b.width && a.width == b.height, "\(h)x\(w)")
            #expect(a.height >= 16 && a.width >= 16 && (a.height / 16) * (a.width / 16) <= 256, "\(h)x\(w): \(a)")
        }
        #expect(try p.targetSize(height: 1, width: 1) == (112, 112))  // scaled up ~100x, 7x7 patches
        // 1 x 20M with one patch allowed: even the smallest scale (1e-6) gives 2 patches. transformers returns 2
        // patches with a 1-entry mask; we refuse (no image is allocated: the check runs on the size).
        var one = NaFlexConfig.siglip2
        one.maxNumPatches = 1
        let tiny = try NaFlexProcessor(config: one)
        #expect(try naflexTargetSize(height: 1, width: 20_000_000, patchSize: 16, maxNumPatches: 1) == (16, 32))
        #expect(throws: ImageError.self) { try tiny.targetSize(height: 1, width: 20_000_000) }
        #expect(throws: ImageError.self) { try tiny.targetSize(height: 20_000_000, width: 1) }
        #expect(throws: ImageError.self) { try naflexTargetSize(height: 0, width: 5, patchSize: 16, maxNumPatches: 4) }
        // Real pixels, both orientations.
        for (w, h) in [(1, 1), (2, 9), (9, 2), (1, 40), (40, 1)] {
            let image = try RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { UInt8(($0 * 37) % 256) })
            let out = try p.pixelInputs([image])
            let grid = try #require(out.spatialShapes?.first)
            #expect(out.pixelValues.shape == [1, 256, 768])
            #expect(grid.rows * grid.columns <= 256 && grid.rows >= 1 && grid.columns >= 1)
        }
        // Without do_resize, a side that is not a whole number of patches raises (numpy's reshape does).
        var noResize = NaFlexConfig.siglip2
        noResize.doResize = false
        let raw = try NaFlexProcessor(config: noResize)
        #expect(throws: ImageError.self) { try raw.pixelInputs([RGBImage(width: 8, height: 8, pixels: [UInt8](repeating: 1, count: 192))]) }
        #expect(try raw.pixelInputs([RGBImage(width: 32, height: 16, pixels: [UInt8](repeating: 1, count: 1536))]).spatialShapes == [PatchGrid(rows: 1, columns: 2)])
    }

    @Test func batchesConcatenateImages() throws {
        let p = try #require(try ImageProcessors.load(directory: try requiredFixture("images/naflex/configs/p8_n64")) as? NaFlexProcessor)
        let a = try ImageDecoder.load(try requiredFixture("clip/images/chelsea.jpg"))
        let b = try ImageDecoder.load(try requiredFixture("images/good/tall_7x300.png"))
        let batch = try p.pixelInputs([a, b])
        let (one, two) = (try p.pixelInputs([a]), try p.pixelInputs([b]))
        #expect(batch.pixelValues.shape == [2, 64, 192])
        #expect(batch.pixelValues.scalars == one.pixelValues.scalars + two.pixelValues.scalars)
        #expect(batch.patchMask == (one.patchMask ?? []) + (two.patchMask ?? []))
        #expect(batch.spatialShapes == (one.spatialShapes ?? []) + (two.spatialShapes ?? []))
        let stacked = try PixelInputs.stacking([one, two])
        #expect(stacked.pixelValues.scalars == batch.pixelValues.scalars && stacked.patchMask == batch.patchMask)
        #expect(throws: ImageError.self) { try p.pixelInputs([]) }
    }

    /// SiglipImageProcessorPil 5.25: BICUBIC, 224x224 straight resize (no crop), rescale 1/255, mean/std 0.5 —
    /// the saved default config decodes to our SigLIP defaults.
    @Test func siglipDefaultsAreTransformers() throws {
        let c = try ImageProcessor.load(directory: try requiredFixture("images/naflex/configs/siglip_224")).config
        #expect(c == .siglip)
        #expect(c.resample == .bicubic && !c.doCenterCrop && c.size == .heightWidth(height: 224, width: 224))
    }

    /// A missing fixture is a visible failure, not a silent skip.
    @Test func missingFixtureIsVisible() {
        withKnownIssue("deliberately missing fixture") {
            _ = try requiredFixture("images/naflex/does-not-exist.npy")
        }
    }
}
