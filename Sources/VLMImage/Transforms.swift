import CVLM
import Foundation
import VLMTensor

/// Pillow's resampling filters, with PIL.Image.Resampling's integer values (the `resample` of
/// preprocessor_config.json).
public enum ResampleFilter: Int, Sendable, CaseIterable {
    case nearest = 0
    case lanczos = 1
    case bilinear = 2
    case bicubic = 3
    case box = 4
    case hamming = 5
}

/// Pillow's `Image.resize((width, height), filter)` with the default box and no reducing_gap, bit-exact
/// (Sources/CVLM/image_resample.c: Resample.c's normalised coefficients in 22-bit fixed point, horizontal pass
/// then vertical pass, an unchanged axis skipped; NEAREST through ImagingScaleAffine).
public func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter) throws -> RGBImage {
    try resize(image, width: width, height: height, filter: filter, portable: false)
}

/// `portable: true` forces the scalar C path (the tests check it against the SIMD one).
func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, portable: Bool) throws -> RGBImage {
    let image = try image.validated()
    guard width > 0, height > 0, width <= Int(Int32.max) / 4, height <= Int(Int32.max) / 4 else {
        throw ImageError.invalidArgument("resize target \(width)x\(height)")
    }
    if width == image.width, height == image.height { return image }  // Pillow returns a copy
    let count = width * height * 3
    var status: Int32 = 0
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
        status = image.pixels.withUnsafeBufferPointer { src in
            vlm_image_resize_rgb8(src.baseAddress, Int64(image.width), Int64(image.height), out.baseAddress,
                                  Int64(width), Int64(height), Int32(filter.rawValue),
                                  portable ? Int32(VLM_RESAMPLE_FLAG_SCALAR) : 0)
        }
        if status != 0 { out.initialize(repeating: 0) }
        initialized = count
    }
    if status == Int32(VLM_IMG_ERR_NOMEM.rawValue) {
        throw ImageError.outOfMemory("resizing \(image.width)x\(image.height) to \(width)x\(height)")
    }
    guard status == 0 else { throw ImageError.invalidArgument("resize \(image.width)x\(image.height) to \(width)x\(height)") }
    return RGBImage(unchecked: width, height: height, pixels: pixels)
}

/// `centerCrop(resize(image, width: width, height: height, filter: filter), height: cropHeight, width: cropWidth)`,
/// bit-identical, without building the resized image: only the resized pixels inside the crop are computed
/// (Sources/CVLM/image_resample.c, vlm_image_resize_window_rgb8), the rest of the crop (where it reaches outside
/// the resized image) is zero as center_crop pads it. Memory and time scale with the crop — the output, the
/// window's filter coefficients and one intermediate pass of at most cropWidth x (source rows the window reads)
/// or (source columns it reads) x cropHeight — not with width x height, so an extreme aspect ratio (600000x4 to a
/// 224 shortest edge is a 33,600,000 x 224 resize) costs what the 224 x 224 crop needs. The resize target must be
/// within the resampler's 2^29 per side (an ImageError naming the sizes otherwise).
public func resizeAndCenterCrop(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, cropHeight: Int,
                                cropWidth: Int) throws -> RGBImage {
    try resizeAndCenterCrop(image, width: width, height: height, filter: filter, cropHeight: cropHeight,
                            cropWidth: cropWidth, portable: false)
}

func resizeAndCenterCrop(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter, cropHeight: Int,
                         cropWidth: Int, portable: Bool) throws -> RGBImage {
    let image = try image.validated()
    guard cropWidth > 0, cropHeight > 0 else { throw ImageError.invalidArgument("center crop size \(cropHeight)x\(cropWidth)") }
    guard width > 0, height > 0 else { throw ImageError.invalidArgument("resize target \(width)x\(height)") }
    let limit = Int(Int32.max) / 4
    guard width <= limit, height <= limit else {
        throw ImageError.resizeTooLarge(width: image.width, height: image.height, targetWidth: width,
                                        targetHeight: height, limit: "\(limit) per side")
    }
    // center_crop's offsets in the resized image, and the part of the crop that lies inside it.
    let top = floorDiv(height - cropHeight, 2), left = floorDiv(width - cropWidth, 2)
    let x0 = max(0, left), x1 = min(width, left + cropWidth), y0 = max(0, top), y1 = min(height, top + cropHeight)
    let (w, h) = (x1 - x0, y1 - y0)  // both > 0: the crop is centred on the image
    let window = try resizeWindow(image, width: width, height: height, x: x0, y: y0, windowWidth: w, windowHeight: h,
                                  filter: filter, portable: portable).pixels
    if w == cropWidth, h == cropHeight { return RGBImage(unchecked: w, height: h, pixels: window) }
    // The crop reaches outside the resized image: zero padding around the window.
    var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
    let (dx, dy) = (x0 - left, y0 - top)
    for y in 0..<h {
        let to = ((y + dy) * cropWidth + dx) * 3
        out.replaceSubrange(to..<(to + w * 3), with: window[(y * w * 3)..<((y + 1) * w * 3)])
    }
    return RGBImage(unchecked: cropWidth, height: cropHeight, pixels: out)
}

/// The window [y, y + windowHeight) x [x, x + windowWidth) of `resize(image, width:, height:, filter:)`, computed
/// alone (vlm_image_resize_window_rgb8): windowWidth x windowHeight pixels, bit-identical to cropping the full
/// resize. The window must lie inside width x height.
func resizeWindow(_ image: RGBImage, width: Int, height: Int, x: Int, y: Int, windowWidth w: Int, windowHeight h: Int,
                  filter: ResampleFilter, portable: Bool) throws -> RGBImage {
    let image = try image.validated()
    let what = "resizing \(image.width)x\(image.height) to \(width)x\(height), window \(w)x\(h) at (\(x), \(y))"
    guard width > 0, height > 0, x >= 0, y >= 0, w > 0, h > 0, x <= width - w, y <= height - h else {
        throw ImageError.invalidArgument(what)
    }
    let count = w * h * 3
    var status: Int32 = 0
    let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
        status = image.pixels.withUnsafeBufferPointer { src in
            vlm_image_resize_window_rgb8(src.baseAddress, Int64(image.width), Int64(image.height), Int64(width),
                                         Int64(height), Int64(x), Int64(y), out.baseAddress, Int64(w), Int64(h),
                                         Int32(filter.rawValue), portable ? Int32(VLM_RESAMPLE_FLAG_SCALAR) : 0)
        }
        if status != 0 { out.initialize(repeating: 0) }
        initialized = count
    }
    if status == Int32(VLM_IMG_ERR_NOMEM.rawValue) { throw ImageError.outOfMemory(what) }
    guard status == 0 else { throw ImageError.invalidArgument(what) }
    return RGBImage(unchecked: w, height: h, pixels: pixels)
}

/// transformers' `image_transforms.center_crop`: top = (H - h) // 2 and left = (W - w) // 2 with Python's floor
/// division; where the crop reaches outside the image (crop larger than the image) the image is first padded
/// with zeros, ceil((h - H) / 2) rows on top, which amounts to the same top = floor((H - h) / 2) offset with
/// zero pixels outside. The result is always exactly height x width.
public func centerCrop(_ image: RGBImage, height: Int, width: Int) throws -> RGBImage {
    let image = try image.validated()
    guard width > 0, height > 0 else { throw ImageError.invalidArgument("center crop size \(height)x\(width)") }
    if width == image.width, height == image.height { return image }
    let top = floorDiv(image.height - height, 2), left = floorDiv(image.width - width, 2)
    var out = [UInt8](repeating: 0, count: width * height * 3)
    // Columns of the crop that exist in the image.
    let x0 = max(0, -left), x1 = min(width, image.width - left)
    if x1 > x0 {
        let rowBytes = (x1 - x0) * 3
        for y in 0..<height {
            let sy = y + top
            guard sy >= 0, sy < image.height else { continue }
            let from = (sy * image.width + left + x0) * 3, to = (y * width + x0) * 3
            out.replaceSubrange(to..<(to + rowBytes), with: image.pixels[from..<(from + rowBytes)])
        }
    }
    return RGBImage(unchecked: width, height: height, pixels: out)
}

/// Python's `a // b` for b > 0.
@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int {
    a >= 0 ? a / b : -((-a + b - 1) / b)
}

/// Rescale + normalize into channels-first floats, written to `out` (3 * H * W floats: [3, H, W]).
/// Arithmetic as transformers' numpy backend: rescale in float64 then cast to float32 (`image.astype(float64) *
/// scale`), normalize in float32 (`(image - mean) / std` with float32 mean/std).
func writePixelValues(_ image: RGBImage, rescale: Double?, mean: [Double]?, std: [Double]?, to out: UnsafeMutablePointer<Float>) {
    let plane = image.width * image.height
    let table = pixelValueTable(rescale: rescale, mean: mean, std: std)
    image.pixels.withUnsafeBufferPointer { src in
        table.withUnsafeBufferPointer { t in
            for i in 0..<plane {
                out[i] = t[Int(src[3 * i])]
                out[plane + i] = t[256 + Int(src[3 * i + 1])]
                out[2 * plane + i] = t[512 + Int(src[3 * i + 2])]
            }
        }
    }
}

/// The float every uint8 value of each channel becomes: [3 * 256], channel c's value v at c * 256 + v, computed
/// with the reference arithmetic (rescale in float64 then cast to float32, normalize in float32). `mean`/`std`
/// must hold 3 values when given (callers validate them).
func pixelValueTable(rescale: Double?, mean: [Double]?, std: [Double]?) -> [Float] {
    var table = [Float](repeating: 0, count: 3 * 256)
    for c in 0..<3 {
        for v in 0..<256 {
            var x = rescale.map { Float(Double(v) * $0) } ?? Float(v)
            if let mean, let std, c < mean.count, c < std.count { x = (x - Float(mean[c])) / Float(std[c]) }
            table[c * 256 + v] = x
        }
    }
    return table
}

/// `pixel_values` of one image: [3, H, W]. `rescale` nil skips do_rescale; `mean`/`std` nil skip do_normalize.
public func pixelValues(_ image: RGBImage, rescale: Double? = 1.0 / 255.0, mean: [Double]?, std: [Double]?) throws -> Tensor {
    if let mean, let std, mean.count != 3 || std.count != 3 || std.contains(0) {
        throw ImageError.invalidArgument("normalize needs 3 means and 3 non-zero stds, got \(mean) and \(std)")
    }
    let image = try image.validated()
    let t = Tensor(uninitialized: [3, image.height, image.width])
    writePixelValues(image, rescale: rescale, mean: mean, std: std, to: t.pointer)
    return t
}
