import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

/// Tests/Fixtures/smolvlm/processor/manifest.json, written by Scripts/fixtures/smolvlm_processor_fixtures.py from
/// transformers 5.25's SmolVLMImageProcessorPil / Idefics3ImageProcessorPil.
struct Idefics3Manifest: Decodable {
    struct Case: Decodable {
        let config: String
        let image: String
        let width: Int
        let height: Int
        let rows: Int
        let cols: Int
        let frames: Int
        /// pixel_values of the one sample: [N, 3, M, M].
        let shape: [Int]
        /// FNV-1a 64 of the whole uint8 output (do_rescale / do_normalize off), float64 sum and samples of the floats.
        let fnv1a64_uint8: String
        let sum: Double
        let samples: [[Double]]
        let golden: String?
        let golden_float: String?
    }
    struct Grid: Decodable {
        let config: String
        let height: Int
        let width: Int
        let rows: Int
        let cols: Int
        let frames: Int
        /// get_number_of_image_patches: [num_patches, rows, cols].
        let patches_helper: [Int]
    }
    struct Batch: Decodable {
        let config: String
        let images: [String]
        let shape: [Int]
        let mask_shape: [Int]
        let rows: [Int]
        let cols: [Int]
        let flat_shape: [Int]
        let flat_rows: [Int]
        let flat_cols: [Int]
        let flat_mask_all_ones: Bool
        let sum: Double
    }
    let cases: [Case]
    let grids: [Grid]
    let batch: Batch
}

let idefics3Configs = ["smol_l128_m32", "idefics3_l192_m48_bicubic", "smol_l100_m30_bilinear", "smol_l96_m48_nosplit",
                       "idefics3_m40_noresize", "idefics3_m32_noresize_nosplit", "smolvlm_256m"]

private func smolFixture(_ relative: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
    let url = Fixtures.url(relative)
    guard FileManager.default.fileExists(atPath: url.path) else {
        Issue.record("missing fixture \(relative): run ~/vlmpy/bin/python Scripts/fixtures/smolvlm_processor_fixtures.py", sourceLocation: sourceLocation)
        throw ImageError.unreadable(file: url.path, reason: "missing fixture")
    }
    return url
}

private func manifest() throws -> Idefics3Manifest {
    try JSONDecoder().decode(Idefics3Manifest.self, from: Data(contentsOf: try smolFixture("smolvlm/processor/manifest.json")))
}

private func processor(_ config: String, maxLongestEdge: Int? = nil) throws -> Idefics3ImageProcessor {
    try Idefics3ImageProcessor.load(directory: try smolFixture("smolvlm/processor/configs/\(config)"), maxLongestEdge: maxLongestEdge)
}

/// The same processor without rescale / normalize: its pixel values are the uint8 frames.
private func raw(_ p: Idefics3ImageProcessor) throws -> Idefics3ImageProcessor {
    var c = p.config
    c.doRescale = false
    c.doNormalize = false
    return try Idefics3ImageProcessor(config: c, maxLongestEdge: p.maxLongestEdge)
}

@Suite struct Idefics3ProcessorTests {
    /// Tolerance on every float compared with transformers (pixel_values): the frames' uint8 values are compared
    /// exactly (hash of the whole output), and both sides compute the same float32 rescale / normalize of them, so
    /// any difference is a bug; 1e-5 is the issue's bound (the observed difference is 0).
    static let tolerance: Float = 1e-5

    @Test func manifestCoversEveryConfig() throws {
        let m = try manifest()
        #expect(Set(m.cases.map(\.config)) == Set(idefics3Configs))
        #expect(m.cases.count >= 60)
        #expect(m.cases.contains { $0.image.hasSuffix("noise_w4000_h2.png") } && m.cases.contains { $0.image.hasSuffix("noise_w2_h3000.png") })
    }

    @Test(arguments: idefics3Configs)
    func pixelValuesMatchTransformers(config name: String) throws {
        let m = try manifest()
        let p = try processor(name), u8p = try raw(p)
        let cfg = p.config
        let cases = m.cases.filter { $0.config == name }
        #expect(!cases.isEmpty)
        for c in cases {
            let label = "\(name) \(c.image) (\(c.width)x\(c.height))"
            let image = try ImageDecoder.load(try smolFixture(c.image))
            #expect(image.width == c.width && image.height == c.height, "\(label)")
            let out = try p.process([image])
            #expect(out.pixelValues.shape == c.shape, "\(label): shape \(out.pixelValues.shape)")
            #expect(out.grids == [TileGrid(rows: c.rows, cols: c.cols)] && out.tilesPerImage == [c.frames], "\(label): \(out.grids)")
            #expect(p.tileGrid(height: c.height, width: c.width) == TileGrid(rows: c.rows, cols: c.cols), "\(label)")
            #expect(out.pixelAttentionMask.count == c.frames * c.shape[2] * c.shape[3] && out.pixelAttentionMask.allSatisfy { $0 == 1 })
            // Every uint8 value of every frame, exactly.
            let u8 = try u8p.process([image]).pixelValues.scalars.map { UInt8(exactly: $0) ?? 0 }
            #expect(fnv1a64(u8) == c.fnv1a64_uint8, "\(label): uint8 frames differ from transformers'")
            // Every float: the reference arithmetic on those uint8 values (the script asserts transformers' floats
            // are exactly that).
            let values = out.pixelValues.scalars
            let plane = c.shape[2] * c.shape[3]
            var worst: Float = 0
            for i in 0..<u8.count {
                let want = referenceValue(u8[i], channel: (i / plane) % 3, rescale: cfg.doRescale ? cfg.rescaleFactor : nil,
                                          mean: cfg.doNormalize ? cfg.imageMean : nil, std: cfg.doNormalize ? cfg.imageStd : nil)
                worst = max(worst, abs(values[i] - want))
            }
            #expect(worst <= Self.tolerance, "\(label): max |diff| \(worst)")
            for s in c.samples {
                let i = Int(s[0])
                #expect(i < values.count && abs(values[i] - Float(s[1])) <= Self.tolerance, "\(label): value \(i)")
            }
            let sum = values.reduce(0.0) { $0 + Double($1) }
            #expect(abs(sum - c.sum) <= 1e-9 * Double(values.count) + 1e-6, "\(label): sum \(sum), transformers \(c.sum)")
            if let g = c.golden {
                let d = diff(u8, try Npy.read(try smolFixture("smolvlm/processor/" + g)).uint8s ?? [])
                #expect(d.count == 0, "\(label): \(d.count) uint8 values differ from the golden, first at \(d.first ?? -1)")
            }
            if let g = c.golden_float {
                let want = try Npy.read(try smolFixture("smolvlm/processor/" + g))
                #expect(want.shape == c.shape)
                let w = want.floats
                let worstGolden = zip(values, w).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
                #expect(w.count == values.count && worstGolden <= Self.tolerance, "\(label): float golden max |diff| \(worstGolden)")
            }
        }
    }

    /// rows / cols for many sizes (zero images through transformers' preprocess), from the size alone.
    @Test func tileGridsMatchPreprocess() throws {
        let m = try manifest()
        #expect(m.grids.count >= 80)
        var helperDiffers = 0
        for g in m.grids {
            let p = try processor(g.config)
            let grid = p.tileGrid(height: g.height, width: g.width)
            #expect(grid == TileGrid(rows: g.rows, cols: g.cols) && grid.frameCount == g.frames, "\(g.config) \(g.height)x\(g.width): \(grid)")
            if g.patches_helper[1] != g.rows || g.patches_helper[2] != g.cols { helperDiffers += 1 }
        }
        // get_number_of_image_patches disagrees with preprocess where max_image_size does not divide size (100 / 30):
        // the fixtures cover that, and tileGrid follows preprocess.
        #expect(helperDiffers > 0)
    }

    /// A nested batch [[a], [b]]: frames padded to the longest sample with zero frames of mask 0; a flat list is one
    /// sample (frames concatenated).
    @Test func batchPaddingAndMask() throws {
        let m = try manifest(), b = m.batch
        let p = try processor(b.config)
        let images = try b.images.map { try ImageDecoder.load(try smolFixture($0)) }
        let out = try p.process(images)
        #expect(out.grids.map(\.rows) == b.flat_rows && out.grids.map(\.cols) == b.flat_cols)
        #expect([1] + out.pixelValues.shape == b.flat_shape && b.flat_mask_all_ones && out.pixelAttentionMask.allSatisfy { $0 == 1 })
        let (values, mask) = try out.batched(imagesPerSample: [1, 1])
        #expect(values.shape == b.shape)
        let sum = values.scalars.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - b.sum) <= 1e-9 * Double(values.count) + 1e-6, "sum \(sum), transformers \(b.sum)")
        let wantMask = try Npy.read(try smolFixture("smolvlm/processor/golden/batch/pixel_attention_mask.npy"))
        #expect(wantMask.shape == b.mask_shape && diff(mask, wantMask.uint8s ?? []).count == 0)
        let (u8, _) = try raw(p).process(images).batched(imagesPerSample: [1, 1])
        let wantU8 = try Npy.read(try smolFixture("smolvlm/processor/golden/batch/pixel_values_uint8.npy"))
        #expect(wantU8.shape == b.shape)
        // Raw padding frames are 0 as in transformers' raw output (zeros after normalisation in the float output).
        let d = diff(u8.scalars.map { UInt8(exactly: $0) ?? 255 }, wantU8.uint8s ?? [])
        #expect(d.count == 0, "\(d.count) values differ, first at \(d.first ?? -1)")
        // One sample holding both images: no padding.
        let (one, oneMask) = try out.batched(imagesPerSample: [2])
        #expect(one.shape == b.flat_shape && one.scalars == out.pixelValues.scalars && oneMask == out.pixelAttentionMask)
        #expect(throws: ImageError.self) { try out.batched(imagesPerSample: [1]) }
        #expect(throws: ImageError.self) { try out.batched(imagesPerSample: [3, -1]) }
    }

    @Test func loadsBothConfigFilesAndTheRegistry() throws {
        let json = try processor("processor_json")
        #expect(json.config == (try processor("smol_l128_m32")).config)
        let any = try ImageProcessors.load(directory: try smolFixture("smolvlm/processor/configs/processor_json"))
        #expect(any.processorClass == "Idefics3ImageProcessor")
        let size = try #require(any.fixedOutputSize)
        #expect(size.height == 32 && size.width == 32)
        let image = try ImageDecoder.load(try smolFixture("clip/images/coffee.png"))
        #expect(try any.pixelInputs([image]).pixelValues.scalars == json.process([image]).pixelValues.scalars)
        // The Hub's SmolVLM-256M file (image_processor_type Idefics3ImageProcessor, unknown keys ignored).
        let hub = #"{"do_convert_rgb": true, "do_image_splitting": true, "do_normalize": true, "do_pad": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "Idefics3ImageProcessor", "image_std": [0.5, 0.5, 0.5], "max_image_size": {"longest_edge": 512}, "processor_class": "Idefics3Processor", "resample": 1, "rescale_factor": 0.00392156862745098, "size": {"longest_edge": 2048}}"#
        let p = try Idefics3ImageProcessor(source: .init(json: Data(hub.utf8), file: "preprocessor_config.json"))
        #expect(p.config == Idefics3ImageProcessorConfig.smolVLM)
        #expect(p.config == (try processor("smolvlm_256m")).config.with(type: "Idefics3ImageProcessor"))
        // null values take the defaults (transformers writes null for unset keys).
        let nulls = try Idefics3ImageProcessor(source: .init(json: Data(#"{"resample": null, "size": null, "do_pad": null}"#.utf8), file: "x.json"))
        #expect(nulls.config == Idefics3ImageProcessorConfig.defaults)
    }

    /// Absurd sizes and broken values are refused at load, naming the file and the key.
    @Test func badConfigsNameFileAndKey() throws {
        for (json, key) in [(#"{"resample": 7}"#, "resample"), (#"{"resample": -1}"#, "resample"),
                            (#"{"max_image_size": {"longest_edge": 0}}"#, "max_image_size"),
                            (#"{"max_image_size": {"longest_edge": 100000}}"#, "max_image_size"),
                            (#"{"max_image_size": {"height": 512, "width": 512}}"#, "max_image_size"),
                            (#"{"max_image_size": 512}"#, "max_image_size"),
                            (#"{"size": {"longest_edge": 4611686018427387904}}"#, "size"),
                            (#"{"size": {"longest_edge": -5}}"#, "size"), (#"{"size": {"shortest_edge": 5}}"#, "size"),
                            (#"{"size": {"height": 16384, "width": 16384}}"#, "size"),
                            (#"{"image_std": [0.5, 0, 0.5]}"#, "image_std"), (#"{"image_mean": [0.5, 0.5]}"#, "image_mean"),
                            (#"{"do_image_splitting": "yes"}"#, "do_image_splitting")] {
            do {
                _ = try Idefics3ImageProcessor(source: .init(json: Data(json.utf8), file: "/ckpt/preprocessor_config.json"))
                Issue.record("\(json) loaded")
            } catch let error as ImageError {
                guard case .invalidConfig(let file, let k, _) = error else { Issue.record("\(json): \(error)"); continue }
                #expect(file == "/ckpt/preprocessor_config.json" && k == key, "\(json): \(error)")
                #expect(error.description.contains(key))
            }
        }
        #expect(throws: ImageError.self) { try Idefics3ImageProcessor(config: .smolVLM, maxLongestEdge: 0) }
    }

    /// Extreme shapes stay bounded by the output; outputs above the per-image limit are refused before allocating.
    @Test func extremeShapesAreBounded() throws {
        let p = try Idefics3ImageProcessor(config: .smolVLM)
        for (w, h, grid) in [(4000, 2, TileGrid(rows: 1, cols: 4)), (2, 4000, TileGrid(rows: 4, cols: 1)), (1, 1, TileGrid(rows: 4, cols: 4)),
                             (100_000, 1, TileGrid(rows: 1, cols: 4))] {
            #expect(p.tileGrid(height: h, width: w) == grid, "\(w)x\(h)")
        }
        let wide = try RGBImage(width: 4000, height: 2, pixels: [UInt8](repeating: 200, count: 4000 * 2 * 3))
        let out = try p.process([wide])
        #expect(out.pixelValues.shape == [5, 3, 512, 512] && out.grids == [TileGrid(rows: 1, cols: 4)])
        // Nonsense sizes never trap in the size arithmetic.
        for (h, w) in [(0, 0), (-3, 5), (Int.max, 1), (1, Int.max), (Int.max, Int.max)] { _ = p.tileGrid(height: h, width: w) }
        // Without do_resize an image is tiled at its own size: a huge one is refused, naming the sizes.
        var noResize = Idefics3ImageProcessorConfig.smolVLM
        noResize.doResize = false
        let q = try Idefics3ImageProcessor(config: noResize)
        #expect(throws: ImageError.self) { try q.checkedValues(height: 100_000, width: 100_000) }
        // Tiles that do not divide 4096 can round a 4096 side up to two tiles: refused above the limit.
        var odd = Idefics3ImageProcessorConfig.smolVLM
        (odd.size, odd.maxImageSize) = (.longestEdge(4096), 4095)
        let r = try Idefics3ImageProcessor(config: odd)
        do {
            _ = try r.checkedValues(height: 4096, width: 4096)
            Issue.record("a 4 x 4095^2 tiling was accepted")
        } catch let error as ImageError {
            guard case .resizeTooLarge(4096, 4096, 8190, 8190, _) = error else { Issue.record("\(error)"); return }
        }
        #expect(throws: ImageError.self) { try p.process([]) }
    }

    /// The upscaling cap: off by default (transformers exactly); when set, no first-resize upscaling and no side
    /// above the cap, so fewer tiles; identical output where the cap changes nothing.
    @Test func upscalingCap() throws {
        let p = try Idefics3ImageProcessor(config: .smolVLM)
        #expect(p.maxLongestEdge == nil)
        #expect(p.tileGrid(height: 384, width: 512) == TileGrid(rows: 3, cols: 4))
        let capped = try Idefics3ImageProcessor(config: .smolVLM, maxLongestEdge: 512)
        #expect(capped.tileGrid(height: 384, width: 512) == TileGrid(rows: 0, cols: 0))
        #expect(capped.tileGrid(height: 3, width: 3) == TileGrid(rows: 0, cols: 0))
        let c1024 = try Idefics3ImageProcessor(config: .smolVLM, maxLongestEdge: 1024)
        #expect(c1024.tileGrid(height: 3000, width: 4000) == TileGrid(rows: 2, cols: 2))
        #expect(p.tileGrid(height: 3000, width: 4000) == TileGrid(rows: 3, cols: 4))
        // A cap at or above size.longest_edge changes nothing for images at least that large.
        let small = try processor("smol_l128_m32"), same = try processor("smol_l128_m32", maxLongestEdge: 128)
        let image = try ImageDecoder.load(try smolFixture("images/good/coffee.jpg"))
        #expect(try small.process([image]).pixelValues.scalars == same.process([image]).pixelValues.scalars)
        // The grid process returns follows the cap (the prompt is expanded with the same processor's tileGrid).
        let tiny = try ImageDecoder.load(try smolFixture("clip/images/chelsea.jpg"))
        let out = try capped.process([tiny])
        #expect(out.grids == [capped.tileGrid(height: tiny.height, width: tiny.width)] && out.pixelValues.shape == [1, 3, 512, 512])
    }
}

extension Idefics3ImageProcessorConfig {
    fileprivate func with(type: String) -> Idefics3ImageProcessorConfig {
        var c = self
        c.imageProcessorType = type
        return c
    }
}
