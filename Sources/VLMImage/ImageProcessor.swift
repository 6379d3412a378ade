import Foundation
import VLMTensor

/// CLIPImageProcessor / SiglipImageProcessor of transformers 5.24, PIL backend (`image_processing_pil_clip.py`,
/// `image_processing_pil_siglip.py`, i.e. `use_fast=False`): resize -> center crop -> rescale -> normalize,
/// channels first. This is the original CLIP / open_clip preprocessing (PIL bicubic on uint8).
///
/// The torchvision "fast" backend (`image_processing_clip.py`, AutoImageProcessor's default when torchvision is
/// installed) computes the same target sizes but resizes with torch's antialiased bicubic, whose rounding differs
/// from Pillow's fixed point: measured on the fixtures, ~0.4-0.7% of pixel_values differ, by 1-2 uint8 levels
/// (up to 0.03 after normalize). Our reference is the PIL path.
///
/// Images are expected in RGB already (`do_convert_rgb` happened at decode time: decode with
/// `AlphaHandling.compositeOnWhite` to match transformers on images with transparency).
public struct ImageProcessor: Sendable {
    public let config: ImageProcessorConfig

    public init(config: ImageProcessorConfig) {
        self.config = config
    }

    /// Reads the image processor config of `directory` (preprocessor_config.json, or processor_config.json's
    /// image_processor as transformers 5.x writes it); errors name the file and the key.
    public static func load(directory: URL) throws -> ImageProcessor {
        try ImageProcessor(source: ImageProcessors.configSource(directory: directory))
    }

    /// Decodes a config read by `ImageProcessors.configSource`.
    public init(source: ImageProcessors.ConfigSource) throws {
        do {
            self.init(config: try JSONDecoder().decode(ImageProcessorConfig.self, from: source.json))
        } catch let error as DecodingError {
            let (key, reason) = Self.describe(error)
            throw ImageError.invalidConfig(file: source.file, key: key, reason: reason)
        } catch {
            throw ImageError.invalidConfig(file: source.file, key: "", reason: "\(error)")
        }
    }

    /// (height, width) of every output when it does not depend on the input: the crop size with
    /// do_center_crop, else a fixed {"height", "width"} resize. (0, 0) when it depends on the image
    /// (shortest-edge resize without a crop).
    public var outputSize: (height: Int, width: Int) {
        if config.doCenterCrop { return config.cropSize }
        if config.doResize, case .heightWidth(let h, let w) = config.size { return (h, w) }
        return (0, 0)
    }

    /// (height, width) the resize step produces for an image of this size (transformers' PilBackend.resize).
    public func resizeTarget(height: Int, width: Int) throws -> (height: Int, width: Int) {
        switch config.size {
        case .shortestEdge(let size):
            // get_resize_output_image_size(default_to_square=False): the short side becomes `size`, the long side
            // int(size * long / short) — Python true division then truncation, so 3:2 at 224 is 336 and 4:3 is 298.
            let (short, long) = width <= height ? (width, height) : (height, width)
            let newLong = Int(Double(size * long) / Double(short))
            return width <= height ? (newLong, size) : (size, newLong)
        case .heightWidth(let h, let w):
            return (h, w)
        case .shortestLongest(let shortest, let longest):
            return sizeWithAspectRatio(height: height, width: width, size: shortest, maxSize: longest)
        case .maxHeightWidth(let maxH, let maxW):
            // get_image_size_for_max_height_width
            let scale = min(Double(maxH) / Double(height), Double(maxW) / Double(width))
            return (max(1, Int(Double(height) * scale)), max(1, Int(Double(width) * scale)))
        case .longestEdge:
            throw ImageError.invalidConfig(file: nil, key: "size",
                                           reason: "{\"longest_edge\"} alone is not a resize transformers' PIL backend performs")
        }
    }

    /// transformers' image_transforms.get_size_with_aspect_ratio (DETR-style shortest/longest edge), including
    /// Python's round-half-even in `int(round(raw_size))` and its left-to-right float expressions.
    private func sizeWithAspectRatio(height: Int, width: Int, size requested: Int, maxSize: Int) -> (height: Int, width: Int) {
        var size = requested
        var raw: Double?
        let minO = Double(min(height, width)), maxO = Double(max(height, width))
        if maxO / minO * Double(size) > Double(maxSize) {
            let r = Double(maxSize) * minO / maxO
            raw = r
            size = Int(r.rounded(.toNearestOrEven))
        }
        if (height <= width && height == size) || (width <= height && width == size) { return (height, width) }
        if width < height {
            let oh = raw.map { Int($0 * Double(height) / Double(width)) } ?? Int(Double(size * height) / Double(width))
            return (oh, size)
        }
        let ow = raw.map { Int($0 * Double(width) / Double(height)) } ?? Int(Double(size * width) / Double(height))
        return (size, ow)
    }

    /// Most pixels a resize without a crop may produce (its output is the processor's output): 2^26, and
    /// `ImageProcessorConfig.maxSide` per side. A larger target (a shortest-edge resize of an extreme aspect
    /// ratio) is refused before allocating, with an ImageError naming the sizes.
    public static let maxResizePixels = 1 << 26

    /// The uint8 image after resize and center crop (before rescale / normalize). Cost bound, in terms of the
    /// output: with a crop, resize + crop is one windowed resize (`resizeAndCenterCrop`: the crop, its filter
    /// coefficients and one intermediate of at most crop width x input height or input width x crop height);
    /// without one, the resize target itself is the output and is refused above `maxResizePixels` /
    /// `ImageProcessorConfig.maxSide`.
    public func geometry(_ image: RGBImage) throws -> RGBImage {
        let image = try image.validated()
        let crop = config.cropSize
        guard config.doResize else {
            return config.doCenterCrop ? try centerCrop(image, height: crop.height, width: crop.width) : image
        }
        let (h, w) = try resizeTarget(height: image.height, width: image.width)
        if config.doCenterCrop {
            return try resizeAndCenterCrop(image, width: w, height: h, filter: config.resample, cropHeight: crop.height,
                                           cropWidth: crop.width)
        }
        let side = ImageProcessorConfig.maxSide
        guard w <= side, h <= side, w * h <= Self.maxResizePixels else {
            throw ImageError.resizeTooLarge(width: image.width, height: image.height, targetWidth: w, targetHeight: h,
                                            limit: "\(side) per side and \(Self.maxResizePixels) pixels")
        }
        return try resize(image, width: w, height: h, filter: config.resample)
    }

    /// pixel_values of one image: [3, H, W].
    public func preprocess(_ image: RGBImage) throws -> Tensor {
        let g = try geometry(image)
        let t = Tensor(uninitialized: [3, g.height, g.width])
        write(g, to: t.pointer)
        return t
    }

    /// pixel_values of a batch: [B, 3, H, W]. All images must come out the same size (always true with a crop
    /// or a height x width resize), as transformers' return_tensors stacking requires.
    public func preprocess(_ images: [RGBImage]) throws -> Tensor {
        guard !images.isEmpty else { throw ImageError.invalidArgument("preprocess of an empty batch") }
        let first = try geometry(images[0])
        let plane = 3 * first.height * first.width
        let t = Tensor(uninitialized: [images.count, 3, first.height, first.width])
        write(first, to: t.pointer)
        for (i, image) in images.enumerated().dropFirst() {
            let g = try geometry(image)
            guard g.width == first.width, g.height == first.height else {
                throw ImageError.invalidArgument("batch image \(i) preprocesses to \(g.height)x\(g.width), image 0 to \(first.height)x\(first.width); use a crop or a height/width size")
            }
            write(g, to: t.pointer + i * plane)
        }
        return t
    }

    private func write(_ image: RGBImage, to out: UnsafeMutablePointer<Float>) {
        writePixelValues(image, rescale: config.doRescale ? config.rescaleFactor : nil,
                         mean: config.doNormalize ? config.imageMean : nil,
                         std: config.doNormalize ? config.imageStd : nil, to: out)
    }

    /// The key path and reason of a config decoding error (shared by the processors' config readers).
    static func describe(_ error: DecodingError) -> (key: String, reason: String) {
        func path(_ p: [CodingKey]) -> String { p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case .typeMismatch(let type, let ctx): return (path(ctx.codingPath), "expected \(type): \(ctx.debugDescription)")
        case .valueNotFound(let type, let ctx): return (path(ctx.codingPath), "missing \(type): \(ctx.debugDescription)")
        case .keyNotFound(let key, let ctx): return (path(ctx.codingPath + [key]), "missing: \(ctx.debugDescription)")
        case .dataCorrupted(let ctx): return (path(ctx.codingPath), ctx.debugDescription)
        @unknown default: return ("", "\(error)")
        }
    }
}
