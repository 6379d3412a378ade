import Foundation
import VLMTensor

// Idefics3ImageProcessor / SmolVLMImageProcessor of transformers 5.25, PIL backend
// (models/idefics3/image_processing_pil_idefics3.py; smolvlm's file is the same algorithm). Per image, on uint8
// pixels with Pillow-exact resampling (the config's `resample`; the Hub checkpoints ship LANCZOS):
//   1. do_resize: the longest side becomes size.longest_edge (small images are upscaled), the other side
//      int(L / aspect) made even, then both capped at 4096 (`idefics3ResizeTarget`);
//   2. do_image_splitting: resize to multiples of M = max_image_size.longest_edge (`idefics3EncoderSize`); when that
//      is larger than M x M it is cut into rows x cols tiles of M x M (row-major) followed by the global image (the
//      whole resized to M x M); else the single M x M image, rows = cols = 0. Without splitting: the image resized
//      to M x M (aspect not kept, as transformers does);
//   3. rescale + normalize into float32, channels first (numpy's arithmetic, `pixelValueTable`).
// Every frame is therefore M x M, so transformers' height/width padding never pads pixels: its batch padding only
// adds all-zero frames (mask 0) to the samples of a nested batch that have fewer frames (`Idefics3PixelInputs
// .batched`).
//
// Memory and time are bounded by the output: the largest intermediate is the uint8 encoder-size image (a quarter
// of its tiles' float bytes); the first resize reads the input once. An image whose frames would exceed
// `maxValuesPerImage` floats is refused before anything is allocated (only reachable with do_resize false or
// tiles that do not divide 4096). A windowed resize would not save anything here: every pixel of the encoder-size
// image is part of a tile.

/// rows x cols of tiles an image is cut into; (0, 0) when it is not split (one frame).
public struct TileGrid: Sendable, Equatable, Codable {
    public var rows: Int
    public var cols: Int
    public init(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
    }
    /// Frames of the image in pixel_values: its tiles plus the global image, or 1 when not split.
    public var frameCount: Int { rows == 0 && cols == 0 ? 1 : rows * cols + 1 }
}

/// The output of `Idefics3ImageProcessor.process` for a list of images (one prompt's images, in order).
public struct Idefics3PixelInputs: @unchecked Sendable {
    /// [N, 3, H, W] float32 (H = W = max_image_size): every frame of every image in order (per image its row-major
    /// tiles, then its global image). transformers' pixel_values of the same images as one sample are
    /// [1, N, 3, H, W] with these values.
    public var pixelValues: Tensor
    /// [N, H, W], 1 = real pixel. All ones (every frame is H x W); kept for the model's patch mask.
    public var pixelAttentionMask: [UInt8]
    /// Per image: its tile grid ((0, 0) when not split).
    public var grids: [TileGrid]
    /// Per image: its frame count (`grids[i].frameCount`); sums to N.
    public var tilesPerImage: [Int]

    public init(pixelValues: Tensor, pixelAttentionMask: [UInt8], grids: [TileGrid], tilesPerImage: [Int]) {
        self.pixelValues = pixelValues
        self.pixelAttentionMask = pixelAttentionMask
        self.grids = grids
        self.tilesPerImage = tilesPerImage
    }

    /// transformers' layout of a nested batch: images [[a, b], [c]] (imagesPerSample [2, 1]) become pixel_values
    /// [B, maxFrames, 3, H, W] and pixel_attention_mask [B, maxFrames, H, W] (uint8), where a sample with fewer
    /// frames than the longest is followed by all-zero frames with mask 0 (do_pad). The images of `self` must be
    /// in sample order; `imagesPerSample` must sum to the image count.
    public func batched(imagesPerSample: [Int]) throws -> (pixelValues: Tensor, pixelAttentionMask: [UInt8]) {
        let shape = pixelValues.shape
        guard shape.count == 4, tilesPerImage.count == grids.count,
              pixelValues.count == tilesPerImage.reduce(0, +) * shape.dropFirst().reduce(1, *),
              pixelAttentionMask.count == pixelValues.count / 3 else {
            throw ImageError.invalidArgument("batched: inconsistent pixel inputs (shape \(shape), \(tilesPerImage.count) images)")
        }
        guard imagesPerSample.allSatisfy({ $0 >= 0 }), imagesPerSample.reduce(0, +) == grids.count, !imagesPerSample.isEmpty else {
            throw ImageError.invalidArgument("batched: images per sample \(imagesPerSample) do not add up to \(grids.count) images")
        }
        let (h, w) = (shape[2], shape[3]), frameValues = 3 * h * w
        var sampleFrames: [Range<Int>] = []  // frame ranges of each sample in pixelValues
        var image = 0, frame = 0
        for n in imagesPerSample {
            let count = tilesPerImage[image..<(image + n)].reduce(0, +)
            sampleFrames.append(frame..<(frame + count))
            image += n
            frame += count
        }
        let maxFrames = sampleFrames.map(\.count).max() ?? 0
        let out = Tensor(zeros: [imagesPerSample.count, maxFrames, 3, h, w])
        var mask = [UInt8](repeating: 0, count: imagesPerSample.count * maxFrames * h * w)
        for (b, frames) in sampleFrames.enumerated() {
            (out.pointer + b * maxFrames * frameValues).update(from: pixelValues.pointer + frames.lowerBound * frameValues,
                                                                count: frames.count * frameValues)
            let m = b * maxFrames * h * w
            mask.replaceSubrange(m..<(m + frames.count * h * w), with: pixelAttentionMask[(frames.lowerBound * h * w)..<(frames.upperBound * h * w)])
        }
        return (out, mask)
    }
}

// MARK: - Sizes, as pure functions (transformers' float expressions, in the same order)

/// `_resize_output_size_rescale_to_max_len(height, width, max_len=maxLen)` then
/// `_resize_output_size_scale_below_upper_bound(..., max_len=4096)`: (height, width) of the first resize.
/// Python's `int(x)` truncates the positive float; an odd short side is made even (+1); sides are at least 1.
func idefics3ResizeTarget(height: Int, width: Int, longestEdge maxLen: Int) -> (height: Int, width: Int) {
    var (h, w) = (height, width)
    let aspect = Double(width) / Double(height)
    if w >= h {
        w = maxLen
        h = Int(Double(w) / aspect)
        if h % 2 != 0 { h += 1 }
    } else {
        h = maxLen
        w = Int(Double(h) * aspect)
        if w % 2 != 0 { w += 1 }
    }
    (h, w) = (max(h, 1), max(w, 1))
    let upper = Idefics3ImageProcessorConfig.maxImageSide
    let aspect2 = Double(w) / Double(h)
    if w >= h, w > upper {
        w = upper
        h = Int(Double(w) / aspect2)
    } else if h > w, h > upper {
        h = upper
        w = Int(Double(h) * aspect2)
    }
    return (max(h, 1), max(w, 1))
}

/// `resize_for_vision_encoder`: the long side rounded up to a multiple of `tile`, the other side int(long / aspect)
/// (from the rounded long side) rounded up to a multiple of `tile`. Sides are at most 2^40 (no overflow).
func idefics3EncoderSize(height: Int, width: Int, tile m: Int) -> (height: Int, width: Int) {
    let aspect = Double(width) / Double(height)
    func up(_ x: Int) -> Int { (x + m - 1) / m * m }  // math.ceil(x / m) * m: x / m is exact or not an integer
    if width >= height {
        let w = up(width)
        return (up(Int(Double(w) / aspect)), w)
    }
    let h = up(height)
    return (h, up(Int(Double(h) * aspect)))
}

// MARK: - The processor

/// `Idefics3ImageProcessor` / `SmolVLMImageProcessor` (PIL backend), see the file comment. Images are expected
/// in RGB already (do_convert_rgb happens at decode time: decode with `AlphaHandling.compositeOnWhite`, as
/// transformers composites transparent images on white).
public struct Idefics3ImageProcessor: Sendable {
    public let config: Idefics3ImageProcessorConfig
    /// Optional cap of the first resize (off = nil = transformers exactly). When set to C, an image's longest side
    /// is resized to min(size.longest_edge, C, its own longest side) instead of size.longest_edge: images are never
    /// upscaled by the first resize and never made longer than C, so they make fewer tiles (a 512x384 photo with
    /// SmolVLM's 2048 / 512 is 4x3 tiles + global = 13 frames in transformers, 1 frame with C = 512; with C = 1024 a
    /// 4000x3000 photo is 2x2 + 1 = 5 frames instead of 4x3 + 1). Everything else (rounding to even, the 4096 cap,
    /// rounding up to tiles, the global image, resampling, normalisation) is unchanged; the second resize still
    /// rounds up to whole tiles, which upscales by less than one tile. Only applies to size {"longest_edge"}; the
    /// prompt must be expanded with `tileGrid` of the same processor.
    public var maxLongestEdge: Int?

    /// Largest number of floats the frames of one image may take (2^27 = 512 MiB); see the file comment.
    public static let maxValuesPerImage = 1 << 27

    /// Refuses configs `Idefics3ImageProcessorConfig.problem()` rejects, and a cap below 1.
    public init(config: Idefics3ImageProcessorConfig, maxLongestEdge: Int? = nil) throws {
        if let problem = config.problem() {
            throw ImageError.invalidConfig(file: nil, key: problem.key, reason: problem.reason)
        }
        if let cap = maxLongestEdge, cap < 1 {
            throw ImageError.invalidArgument("maximum longest edge \(cap) (must be at least 1)")
        }
        self.config = config
        self.maxLongestEdge = maxLongestEdge
    }

    /// Decodes a config read by `ImageProcessors.configSource`; errors name the file and the key.
    public init(source: ImageProcessors.ConfigSource, maxLongestEdge: Int? = nil) throws {
        let config: Idefics3ImageProcessorConfig
        do {
            config = try JSONDecoder().decode(Idefics3ImageProcessorConfig.self, from: source.json)
        } catch let error as DecodingError {
            let (key, reason) = ImageProcessor.describe(error)
            throw ImageError.invalidConfig(file: source.file, key: key, reason: reason)
        } catch {
            throw ImageError.invalidConfig(file: source.file, key: "", reason: "\(error)")
        }
        do {
            try self.init(config: config, maxLongestEdge: maxLongestEdge)
        } catch let error as ImageError {
            throw error.naming(source.file)
        }
    }

    /// The processor of a checkpoint directory: preprocessor_config.json, or processor_config.json's
    /// image_processor (transformers 5.x).
    public static func load(directory: URL, maxLongestEdge: Int? = nil) throws -> Idefics3ImageProcessor {
        try Idefics3ImageProcessor(source: ImageProcessors.configSource(directory: directory), maxLongestEdge: maxLongestEdge)
    }

    /// What happens to an image of a given size: the first resize's target (nil without do_resize), the size cut
    /// into tiles (nil without splitting), the grid.
    struct Plan {
        var resize: (height: Int, width: Int)?
        var encoder: (height: Int, width: Int)?
        var grid: TileGrid
    }

    /// The plan of a height x width image (both clamped to 1...2^30, so any Int is safe here).
    func plan(height: Int, width: Int) -> Plan {
        var (h, w) = (min(max(height, 1), 1 << 30), min(max(width, 1), 1 << 30))
        var resize: (height: Int, width: Int)?
        if config.doResize {
            switch config.size {
            case .longestEdge(let l):
                let target = maxLongestEdge.map { min(l, $0, max(h, w)) } ?? l
                resize = idefics3ResizeTarget(height: h, width: w, longestEdge: target)
            case .heightWidth(let th, let tw):
                resize = (th, tw)
            }
            if let r = resize { (h, w) = (r.height, r.width) }
        }
        let m = config.maxImageSize
        guard config.doImageSplitting else { return Plan(resize: resize, encoder: nil, grid: TileGrid(rows: 0, cols: 0)) }
        let e = idefics3EncoderSize(height: h, width: w, tile: m)
        let grid = e.height > m || e.width > m ? TileGrid(rows: e.height / m, cols: e.width / m) : TileGrid(rows: 0, cols: 0)
        return Plan(resize: resize, encoder: e, grid: grid)
    }

    /// rows / cols of an image of this size, from its size alone (what `process` returns for it, and the rows /
    /// cols transformers' preprocess returns, which SmolVLMProcessor expands the prompt with). transformers'
    /// `get_number_of_image_patches` rounds the short side differently and disagrees with preprocess when
    /// max_image_size does not divide size (e.g. 100 / 30); this follows preprocess.
    public func tileGrid(height: Int, width: Int) -> TileGrid { plan(height: height, width: width).grid }

    /// Floats the frames of a height x width image take, or an error naming the sizes when above
    /// `maxValuesPerImage` (checked before anything is allocated).
    func checkedValues(height: Int, width: Int) throws -> Int {
        let p = plan(height: height, width: width), m = config.maxImageSize
        var pixels = m * m
        if let e = p.encoder, p.grid.rows > 0 { pixels += e.height * e.width }  // both <= 2^30 + 4096: no overflow
        guard pixels <= Self.maxValuesPerImage / 3 else {
            let (eh, ew) = p.encoder.map { ($0.height, $0.width) } ?? (m, m)
            throw ImageError.resizeTooLarge(width: width, height: height, targetWidth: ew, targetHeight: eh,
                                            limit: "\(Self.maxValuesPerImage) floats of tiles per image")
        }
        return 3 * pixels
    }

    /// The uint8 frames of one image, in pixel_values order (tiles row-major, then the global image).
    public func frames(_ image: RGBImage) throws -> [RGBImage] {
        let image = try image.validated()
        _ = try checkedValues(height: image.height, width: image.width)
        let p = plan(height: image.height, width: image.width), m = config.maxImageSize, f = config.resample
        var x = image
        if let r = p.resize { x = try resize(x, width: r.width, height: r.height, filter: f) }
        guard let e = p.encoder else { return [try resize(x, width: m, height: m, filter: f)] }
        x = try resize(x, width: e.width, height: e.height, filter: f)
        guard p.grid.rows > 0 else { return [x] }  // e is m x m
        var out: [RGBImage] = []
        out.reserveCapacity(p.grid.frameCount)
        for r in 0..<p.grid.rows {
            for c in 0..<p.grid.cols { out.append(tile(x, x: c * m, y: r * m, side: m)) }
        }
        out.append(try resize(x, width: m, height: m, filter: f))
        return out
    }

    /// The side x side square of `image` at (x, y); it must lie inside the image.
    private func tile(_ image: RGBImage, x: Int, y: Int, side: Int) -> RGBImage {
        var pixels = [UInt8]()
        pixels.reserveCapacity(side * side * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for row in y..<(y + side) {
                let from = (row * image.width + x) * 3
                pixels.append(contentsOf: src[from..<(from + side * 3)])
            }
        }
        return RGBImage(unchecked: side, height: side, pixels: pixels)
    }

    /// pixel_values etc. of `images` (one prompt's images, in order); see `Idefics3PixelInputs`. Every image's
    /// size is checked before the output is allocated.
    public func process(_ images: [RGBImage]) throws -> Idefics3PixelInputs {
        guard !images.isEmpty else { throw ImageError.invalidArgument("preprocess of an empty image list") }
        var total = 0
        for image in images {
            let image = try image.validated()
            let (sum, overflow) = total.addingReportingOverflow(try checkedValues(height: image.height, width: image.width))
            guard !overflow, sum <= Int.max / 8 else { throw ImageError.outOfMemory("\(images.count) images of tiles") }
            total = sum
        }
        let m = config.maxImageSize, frameValues = 3 * m * m
        let grids = images.map { tileGrid(height: $0.height, width: $0.width) }
        let counts = grids.map(\.frameCount)
        let n = counts.reduce(0, +)
        let values = Tensor(uninitialized: [n, 3, m, m])
        let rescale = config.doRescale ? config.rescaleFactor : nil
        let (mean, std) = config.doNormalize ? (config.imageMean, config.imageStd) : (nil, nil)
        var offset = 0
        for (i, image) in images.enumerated() {
            let frames = try frames(image)
            guard frames.count == counts[i] else {  // safe: plan() decides both; unreachable
                throw ImageError.invalidArgument("image \(i): \(frames.count) frames, expected \(counts[i])")
            }
            for frame in frames {
                writePixelValues(frame, rescale: rescale, mean: mean, std: std, to: values.pointer + offset)
                offset += frameValues
            }
        }
        return Idefics3PixelInputs(pixelValues: values, pixelAttentionMask: [UInt8](repeating: 1, count: n * m * m),
                                   grids: grids, tilesPerImage: counts)
    }
}

extension Idefics3ImageProcessor: ImageInputProcessor {
    public var processorClass: String { "Idefics3ImageProcessor" }
    /// Every frame is max_image_size x max_image_size.
    public var fixedOutputSize: (height: Int, width: Int)? { (config.maxImageSize, config.maxImageSize) }
    /// [N, 3, M, M]: the frames of all images (N is the total frame count, not the image count), with each
    /// image's frame count and tile grid (what the prompt expansion needs). Every frame is a full M x M square,
    /// so no patch is padding (transformers' pixel_attention_mask is all ones for one prompt's images).
    public func pixelInputs(_ images: [RGBImage]) throws -> PixelInputs {
        let p = try process(images)
        return PixelInputs(pixelValues: p.pixelValues, tilesPerImage: p.tilesPerImage,
                           tileGrids: p.grids.map { PatchGrid(rows: $0.rows, columns: $0.cols) })
    }
}
