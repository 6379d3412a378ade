import Foundation
import VLMTensor

// SigLIP2's NaFlex image processor: transformers 5.25 `Siglip2ImageProcessorPil`
// (models/siglip2/image_processing_pil_siglip2.py), reproduced step by step as small pure functions:
//
//   naflexTargetSize      get_image_size_for_max_num_patches: (H, W) -> (th, tw), multiples of p, th/p * tw/p <= N
//   resize                PilBackend.resize -> Image.resize((tw, th), resample) (our PIL-exact resampler)
//   pixelValueTable       rescale (float64 * factor -> float32) and normalize (float32), as a uint8 lookup table
//   writeNaFlexPatches    convert_image_to_patches: [th/p * tw/p, p*p*3], patch (row, col) row-major, inside a patch
//                         (ky, kx, channel) — i.e. each patch row is p consecutive RGB pixels of an image row
//   padding               pad_along_first_dim: zeros up to N patches, pixel_attention_mask 1 for real patches
//
// The reference is the PIL backend, never the torchvision one (`Siglip2ImageProcessor`, AutoImageProcessor's
// default with torchvision installed), which resizes with torch's antialiased interpolation.
//
// Input images are RGB (`RGBImage`). transformers' Siglip2 processors leave do_convert_rgb unset (None): given a
// grey, palette or RGBA PIL image they raise in normalize ("mean must have 1 elements"); decode to RGB first
// (ImageDecoder does), as Python callers do with `.convert("RGB")`.
//
// Cost, per image, in terms of the output (N = max_num_patches, p = patch_size): the output row block is
// N * 3 * p * p floats; the resized uint8 image is at most N * p * p * 3 bytes; time is one PIL resize
// (O((Hin * max(Win, Wout) + Wout * max(Hin, Hout)) * filter support), one intermediate buffer of at most
// max(Hin * Wout, Hout * Win) * 3 bytes) plus O(N * 3 * p * p) for rescale/normalize/patching; the target-size
// search is ~24 bisection steps. Configs are refused when N * 3 * p * p exceeds
// `NaFlexConfig.maxValuesPerImage` (256 MiB of float32 per image).

/// preprocessor_config.json of a Siglip2ImageProcessor (transformers 5.25; `size` is ignored, as the PIL backend
/// computes it from patch_size and max_num_patches). Missing or null keys take the class defaults.
public struct NaFlexConfig: Sendable, Equatable {
    public var imageProcessorType: String?
    public var doResize: Bool
    /// Siglip2ImageProcessorPil.resample = BILINEAR; a null resample is BILINEAR too (PilBackend.resize).
    public var resample: ResampleFilter
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]
    public var patchSize: Int
    public var maxNumPatches: Int
    /// Recorded only: the input is an `RGBImage` already (see the file comment).
    public var doConvertRgb: Bool?

    /// Bounds that keep one image's output and working memory sane: patch_size in 1...1024, max_num_patches in
    /// 1...1_048_576 and max_num_patches * 3 * patch_size^2 <= 2^26 floats (256 MiB) per image.
    public static let patchSizeRange = 1...1024
    public static let maxNumPatchesRange = 1...(1 << 20)
    public static let maxValuesPerImage = 1 << 26

    /// Siglip2ImageProcessorPil's class defaults (google/siglip2-*-naflex ship exactly these).
    public static let siglip2 = NaFlexConfig(
        imageProcessorType: "Siglip2ImageProcessor", doResize: true, resample: .bilinear, doRescale: true,
        rescaleFactor: 1.0 / 255.0, doNormalize: true, imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5],
        patchSize: 16, maxNumPatches: 256, doConvertRgb: nil)

    public init(imageProcessorType: String?, doResize: Bool, resample: ResampleFilter, doRescale: Bool,
                rescaleFactor: Double, doNormalize: Bool, imageMean: [Double], imageStd: [Double], patchSize: Int,
                maxNumPatches: Int, doConvertRgb: Bool?) {
        self.imageProcessorType = imageProcessorType
        self.doResize = doResize
        self.resample = resample
        self.doRescale = doRescale
        self.rescaleFactor = rescaleFactor
        self.doNormalize = doNormalize
        self.imageMean = imageMean
        self.imageStd = imageStd
        self.patchSize = patchSize
        self.maxNumPatches = maxNumPatches
        self.doConvertRgb = doConvertRgb
    }

    /// Values of one image's output rows: max_num_patches * 3 * patch_size^2.
    public var valuesPerImage: Int { maxNumPatches * patchValues }
    /// Values of one patch: 3 * patch_size^2 (the last axis of pixel_values).
    public var patchValues: Int { 3 * patchSize * patchSize }

    /// The first problem of this config as (key, reason), nil when it can run.
    public func problem() -> (key: String, reason: String)? {
        if !Self.patchSizeRange.contains(patchSize) {
            return ("patch_size", "\(patchSize) is outside \(Self.patchSizeRange)")
        }
        if !Self.maxNumPatchesRange.contains(maxNumPatches) {
            return ("max_num_patches", "\(maxNumPatches) is outside \(Self.maxNumPatchesRange)")
        }
        if valuesPerImage > Self.maxValuesPerImage {  // both factors are bounded above: no overflow
            return ("max_num_patches", "\(maxNumPatches) patches of 3x\(patchSize)x\(patchSize) are \(valuesPerImage) floats per image, above the limit of \(Self.maxValuesPerImage)")
        }
        if imageMean.count != 3 { return ("image_mean", "needs 3 values (RGB), got \(imageMean.count)") }
        if imageStd.count != 3 { return ("image_std", "needs 3 values (RGB), got \(imageStd.count)") }
        if doNormalize, imageStd.contains(where: { $0 == 0 || !$0.isFinite }) || imageMean.contains(where: { !$0.isFinite }) {
            return (imageStd.contains(where: { $0 == 0 || !$0.isFinite }) ? "image_std" : "image_mean", "values must be finite and std non-zero")
        }
        if !rescaleFactor.isFinite { return ("rescale_factor", "not finite") }
        return nil
    }
}

extension NaFlexConfig: Decodable {
    enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type"
        case doResize = "do_resize"
        case resample
        case doRescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case patchSize = "patch_size"
        case maxNumPatches = "max_num_patches"
        case doConvertRgb = "do_convert_rgb"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NaFlexConfig.siglip2
        imageProcessorType = try c.decodeIfPresent(String.self, forKey: .imageProcessorType) ?? d.imageProcessorType
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? d.doResize
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? d.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? d.doNormalize
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb)
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        maxNumPatches = try c.decodeIfPresent(Int.self, forKey: .maxNumPatches) ?? d.maxNumPatches
        imageMean = try Self.channels(c, .imageMean) ?? d.imageMean
        imageStd = try Self.channels(c, .imageStd) ?? d.imageStd
        if let r = try c.decodeIfPresent(Int.self, forKey: .resample) {
            guard let f = ResampleFilter(rawValue: r) else {
                throw DecodingError.dataCorruptedError(forKey: .resample, in: c, debugDescription: "unknown PIL resample filter \(r) (0...5)")
            }
            resample = f
        } else {
            resample = d.resample
        }
        if let problem = problem(), let key = CodingKeys(rawValue: problem.key) {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: problem.reason)
        }
    }

    /// image_mean / image_std: a list of 3, or one number for every channel (transformers broadcasts it).
    private static func channels(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Double]? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let v = try? c.decode(Double.self, forKey: key) { return [v, v, v] }
        return try c.decode([Double].self, forKey: key)  // the count is checked by problem()
    }
}

// MARK: - The steps, as pure functions

/// transformers' `get_scaled_image_size`: `size * scale`, rounded up to a multiple of `patchSize`, at least one
/// patch. Python: `math.ceil(size * scale / patch_size) * patch_size`, then `max(patch_size, ...)`; the same IEEE
/// double operations in the same order. `size * scale` stays far below 2^62 (size <= 2^40, scale < 100).
func naflexScaledSize(scale: Double, size: Int, patchSize: Int) -> Int {
    let scaled = Double(size) * scale
    let patches = Int((scaled / Double(patchSize)).rounded(.up))
    return max(patchSize, patches * patchSize)
}

/// transformers' `get_image_size_for_max_num_patches(image_height, image_width, patch_size, max_num_patches,
/// eps=1e-5)`: the largest scale in [1e-6, 100) found by bisection (until the interval is narrower than eps)
/// whose patch-aligned size has at most `maxNumPatches` patches; returns (target height, target width).
///
/// Each side is at least one patch, so an image smaller than a patch (1x1, 3x500) is scaled up (at most 100x),
/// and an extreme aspect ratio keeps its short side at one patch. When even the smallest scale gives more than
/// `maxNumPatches` patches (a side above ~1e6 * patch_size * max_num_patches pixels), the result has more patches
/// than allowed, as in transformers; `NaFlexProcessor` refuses that.
public func naflexTargetSize(height: Int, width: Int, patchSize: Int, maxNumPatches: Int) throws -> (height: Int, width: Int) {
    guard height > 0, width > 0, height <= 1 << 40, width <= 1 << 40, patchSize > 0, maxNumPatches > 0 else {
        throw ImageError.invalidArgument("NaFlex target size of a \(height)x\(width) image with patch size \(patchSize) and \(maxNumPatches) patches")
    }
    let eps = 1e-5
    var scaleMin = eps / 10, scaleMax = 100.0
    let p = Double(patchSize)
    while scaleMax - scaleMin >= eps {
        let scale = (scaleMin + scaleMax) / 2
        let th = naflexScaledSize(scale: scale, size: height, patchSize: patchSize)
        let tw = naflexScaledSize(scale: scale, size: width, patchSize: patchSize)
        let numPatches = (Double(th) / p) * (Double(tw) / p)  // Python float arithmetic, as the reference
        if numPatches <= Double(maxNumPatches) { scaleMin = scale } else { scaleMax = scale }
    }
    return (naflexScaledSize(scale: scaleMin, size: height, patchSize: patchSize),
            naflexScaledSize(scale: scaleMin, size: width, patchSize: patchSize))
}

/// `convert_image_to_patches` fused with rescale/normalize: writes the (th/p) * (tw/p) patches of `image`
/// (th x tw, both multiples of p) to `out` as rows of 3 * p * p floats. Row `r * columns + c` is the patch at
/// patch-row r, patch-column c; inside it value `(ky * p + kx) * 3 + channel` is pixel (c * p + kx, r * p + ky)
/// (numpy: reshape(C, rows, p, cols, p).transpose(1, 3, 2, 4, 0)). `table` is `pixelValueTable`'s [3 * 256].
func writeNaFlexPatches(_ image: RGBImage, patchSize p: Int, table: [Float], to out: UnsafeMutablePointer<Float>) {
    let rows = image.height / p, columns = image.width / p
    let rowValues = 3 * p  // one patch row: p RGB pixels, contiguous in the HWC image and in the patch
    image.pixels.withUnsafeBufferPointer { src in
        table.withUnsafeBufferPointer { t in
            var o = out
            for r in 0..<rows {
                for c in 0..<columns {
                    for ky in 0..<p {
                        let s = ((r * p + ky) * image.width + c * p) * 3
                        for i in stride(from: 0, to: rowValues, by: 3) {
                            o[i] = t[Int(src[s + i])]
                            o[i + 1] = t[256 + Int(src[s + i + 1])]
                            o[i + 2] = t[512 + Int(src[s + i + 2])]
                        }
                        o += rowValues
                    }
                }
            }
        }
    }
}

// MARK: - The processor

/// `Siglip2ImageProcessor` (PIL backend): each image becomes `maxNumPatches` rows of 3 * p * p values, the
/// first rows * columns real (mask 1), the rest zeros (mask 0), plus its patch grid.
///
/// Output of `pixelInputs` for B images: pixelValues [B, maxNumPatches, 3 * p * p] float32, patchMask
/// [B * maxNumPatches] (1 = real patch), spatialShapes [B] (rows, columns). Memory: the output
/// (B * maxNumPatches * 3 * p^2 floats) plus one resized image at a time (see the file comment).
public struct NaFlexProcessor: ImageInputProcessor {
    public let config: NaFlexConfig
    private let table: [Float]

    /// Refuses configs `NaFlexConfig.problem()` rejects (invalidConfig naming the key).
    public init(config: NaFlexConfig) throws {
        if let problem = config.problem() {
            throw ImageError.invalidConfig(file: nil, key: problem.key, reason: problem.reason)
        }
        self.config = config
        table = pixelValueTable(rescale: config.doRescale ? config.rescaleFactor : nil,
                                mean: config.doNormalize ? config.imageMean : nil,
                                std: config.doNormalize ? config.imageStd : nil)
    }

    /// Decodes a config read by `ImageProcessors.configSource`; errors name the file and the key.
    public init(source: ImageProcessors.ConfigSource) throws {
        let config: NaFlexConfig
        do {
            config = try JSONDecoder().decode(NaFlexConfig.self, from: source.json)
        } catch let error as DecodingError {
            let (key, reason) = ImageProcessor.describe(error)
            throw ImageError.invalidConfig(file: source.file, key: key, reason: reason)
        } catch {
            throw ImageError.invalidConfig(file: source.file, key: "", reason: "\(error)")
        }
        try self.init(config: config)
    }

    public var processorClass: String { "Siglip2ImageProcessor" }
    /// NaFlex sizes depend on each image.
    public var fixedOutputSize: (height: Int, width: Int)? { nil }

    /// (height, width) the image is resized to: `naflexTargetSize`, or the image's own size without do_resize.
    /// Throws when the result cannot be patched the way transformers would without failing: a side that is not
    /// a multiple of patch_size (only without do_resize; numpy's reshape raises), or more patches than
    /// max_num_patches (transformers then returns more patches than mask entries; we refuse).
    public func targetSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
        let p = config.patchSize
        let target = config.doResize
            ? try naflexTargetSize(height: height, width: width, patchSize: p, maxNumPatches: config.maxNumPatches)
            : (height: height, width: width)
        guard target.height % p == 0, target.width % p == 0, target.height >= p, target.width >= p else {
            throw ImageError.invalidArgument("a \(width)x\(height) image is not a whole number of \(p)x\(p) patches and do_resize is false (transformers raises ValueError: cannot reshape)")
        }
        let patches = (target.height / p) * (target.width / p)
        guard patches <= config.maxNumPatches else {
            throw ImageError.invalidArgument("a \(width)x\(height) image makes \(target.height / p)x\(target.width / p) = \(patches) patches of \(p)x\(p), more than max_num_patches \(config.maxNumPatches)\(config.doResize ? " even at the smallest scale" : " without do_resize") (transformers returns more patches than mask entries)")
        }
        return target
    }

    /// The uint8 image after the resize step (before rescale / normalize / patching).
    public func resized(_ image: RGBImage) throws -> RGBImage {
        let image = try image.validated()
        let (h, w) = try targetSize(height: image.height, width: image.width)
        return config.doResize ? try resize(image, width: w, height: h, filter: config.resample) : image
    }

    /// One image into `out` (maxNumPatches * 3 * p^2 floats, already zeroed): returns its patch grid.
    func write(_ image: RGBImage, to out: UnsafeMutablePointer<Float>) throws -> PatchGrid {
        let r = try resized(image)
        writeNaFlexPatches(r, patchSize: config.patchSize, table: table, to: out)
        return PatchGrid(rows: r.height / config.patchSize, columns: r.width / config.patchSize)
    }

    public func pixelInputs(_ images: [RGBImage]) throws -> PixelInputs {
        guard !images.isEmpty else { throw ImageError.invalidArgument("preprocess of an empty batch") }
        let n = config.maxNumPatches, per = config.valuesPerImage
        let (total, overflow) = images.count.multipliedReportingOverflow(by: per)
        guard !overflow, total <= Int.max / MemoryLayout<Float>.stride else {
            throw ImageError.outOfMemory("\(images.count) NaFlex images of \(per) floats")
        }
        let values = Tensor(zeros: [images.count, n, config.patchValues])  // padding rows stay 0
        var mask = [UInt8](repeating: 0, count: images.count * n)
        var grids: [PatchGrid] = []
        grids.reserveCapacity(images.count)
        for (i, image) in images.enumerated() {
            let grid = try write(image, to: values.pointer + i * per)
            for j in 0..<(grid.rows * grid.columns) { mask[i * n + j] = 1 }
            grids.append(grid)
        }
        return PixelInputs(pixelValues: values, patchMask: mask, spatialShapes: grids)
    }
}
