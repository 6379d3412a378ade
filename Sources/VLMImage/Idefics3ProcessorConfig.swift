import Foundation

/// preprocessor_config.json of an Idefics3 / SmolVLM image processor (transformers 5.25's
/// `Idefics3ImageProcessorPil` and `SmolVLMImageProcessorPil`: the same algorithm and the same class defaults).
/// Unknown keys (`processor_class`, `video_sampling`, ...) are ignored; a missing or null key takes the class
/// default.
public struct Idefics3ImageProcessorConfig: Sendable, Equatable {
    /// The first resize (`size`): `{"longest_edge": L}` (every shipped checkpoint; the longest side becomes L,
    /// then both sides are capped at 4096) or `{"height", "width"}` (a resize straight to that size).
    public enum Size: Sendable, Equatable {
        case longestEdge(Int)
        case heightWidth(height: Int, width: Int)
    }

    public var imageProcessorType: String?
    public var doConvertRgb: Bool
    public var doResize: Bool
    public var size: Size
    public var resample: ResampleFilter
    public var doImageSplitting: Bool
    /// `max_image_size["longest_edge"]`: the side M of every tile (and of the global image).
    public var maxImageSize: Int
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]
    public var doPad: Bool

    /// The class defaults (Idefics3ImageProcessorPil = SmolVLMImageProcessorPil): LANCZOS, 4 * 364 / 364, 0.5 / 0.5.
    public static let defaults = Idefics3ImageProcessorConfig(
        imageProcessorType: "Idefics3ImageProcessor", doConvertRgb: true, doResize: true, size: .longestEdge(4 * 364),
        resample: .lanczos, doImageSplitting: true, maxImageSize: 364, doRescale: true, rescaleFactor: 1.0 / 255.0,
        doNormalize: true, imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5], doPad: true)

    /// HuggingFaceTB/SmolVLM-256M-Instruct's (and -500M's) values: longest edge 2048, tiles of 512.
    public static let smolVLM = Idefics3ImageProcessorConfig(
        imageProcessorType: "Idefics3ImageProcessor", doConvertRgb: true, doResize: true, size: .longestEdge(2048),
        resample: .lanczos, doImageSplitting: true, maxImageSize: 512, doRescale: true, rescaleFactor: 1.0 / 255.0,
        doNormalize: true, imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5], doPad: true)

    public init(imageProcessorType: String?, doConvertRgb: Bool, doResize: Bool, size: Size, resample: ResampleFilter,
                doImageSplitting: Bool, maxImageSize: Int, doRescale: Bool, rescaleFactor: Double, doNormalize: Bool,
                imageMean: [Double], imageStd: [Double], doPad: Bool) {
        self.imageProcessorType = imageProcessorType
        self.doConvertRgb = doConvertRgb
        self.doResize = doResize
        self.size = size
        self.resample = resample
        self.doImageSplitting = doImageSplitting
        self.maxImageSize = maxImageSize
        self.doRescale = doRescale
        self.rescaleFactor = rescaleFactor
        self.doNormalize = doNormalize
        self.imageMean = imageMean
        self.imageStd = imageStd
        self.doPad = doPad
    }

    /// transformers' MAX_IMAGE_SIZE: after the longest-edge resize no side is above 4096.
    public static let maxImageSide = 4096
    /// Largest tile side a config may ask for (`max_image_size`). Every image is at most 4096 per side after the
    /// first resize, so a larger tile only pads one upscaled frame; 4096 keeps one frame at 50M floats.
    public static let maxTileSide = 4096
    /// Largest `size` a config may ask for, per side and in pixels (ImageProcessorConfig's limits: 16384, 2^26).
    public static let maxSide = ImageProcessorConfig.maxSide
    public static let maxPixels = ImageProcessorConfig.maxPixels

    /// The first problem of this config as (key, reason), nil when it can run. Checked at load, before anything
    /// is allocated; every check is on values bounded before they are multiplied (no overflow).
    public func problem() -> (key: String, reason: String)? {
        if !(1...Self.maxTileSide).contains(maxImageSize) {
            return ("max_image_size", "longest_edge \(maxImageSize) is outside 1...\(Self.maxTileSide) (transformers caps every image at \(Self.maxImageSide) per side)")
        }
        switch size {
        case .longestEdge(let l) where !(1...Self.maxSide).contains(l):
            return ("size", "longest_edge \(l) is outside 1...\(Self.maxSide)")
        case .heightWidth(let h, let w) where !(1...Self.maxSide).contains(h) || !(1...Self.maxSide).contains(w) || h * w > Self.maxPixels:
            return ("size", "\(h)x\(w) is outside 1...\(Self.maxSide) per side / \(Self.maxPixels) pixels")
        default: break
        }
        if imageMean.count != 3 { return ("image_mean", "needs 3 values (RGB), got \(imageMean.count)") }
        if imageStd.count != 3 { return ("image_std", "needs 3 values (RGB), got \(imageStd.count)") }
        if doNormalize, imageStd.contains(where: { $0 == 0 || !$0.isFinite }) {
            return ("image_std", "values must be finite and non-zero, got \(imageStd)")
        }
        if doNormalize, imageMean.contains(where: { !$0.isFinite }) { return ("image_mean", "values must be finite") }
        if !rescaleFactor.isFinite { return ("rescale_factor", "not finite") }
        return nil
    }
}

extension Idefics3ImageProcessorConfig: Decodable {
    enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type"
        case doConvertRgb = "do_convert_rgb"
        case doResize = "do_resize"
        case size
        case resample
        case doImageSplitting = "do_image_splitting"
        case maxImageSize = "max_image_size"
        case doRescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case doPad = "do_pad"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Idefics3ImageProcessorConfig.defaults
        imageProcessorType = try c.decodeIfPresent(String.self, forKey: .imageProcessorType) ?? d.imageProcessorType
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb) ?? d.doConvertRgb
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? d.doResize
        doImageSplitting = try c.decodeIfPresent(Bool.self, forKey: .doImageSplitting) ?? d.doImageSplitting
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? d.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? d.doNormalize
        doPad = try c.decodeIfPresent(Bool.self, forKey: .doPad) ?? d.doPad
        imageMean = try Self.channels(c, .imageMean) ?? d.imageMean
        imageStd = try Self.channels(c, .imageStd) ?? d.imageStd
        if let r = try c.decodeIfPresent(Int.self, forKey: .resample) {
            guard let f = ResampleFilter(rawValue: r) else {
                throw DecodingError.dataCorruptedError(forKey: .resample, in: c, debugDescription:
                    "unknown PIL resample filter \(r) (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)")
            }
            resample = f
        } else {
            resample = d.resample
        }
        size = d.size
        if let s = try c.decodeIfPresent([String: Int?].self, forKey: .size) {
            if let l = s["longest_edge"] ?? nil {
                size = .longestEdge(l)
            } else if let h = s["height"] ?? nil, let w = s["width"] ?? nil {
                size = .heightWidth(height: h, width: w)
            } else {
                throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription:
                    "needs {\"longest_edge\"} or {\"height\", \"width\"}, got keys \(s.keys.sorted())")
            }
        }
        maxImageSize = d.maxImageSize
        if let m = try c.decodeIfPresent([String: Int?].self, forKey: .maxImageSize) {
            // split_images reads max_image_size["longest_edge"] (a KeyError in transformers without it).
            guard let l = m["longest_edge"] ?? nil else {
                throw DecodingError.dataCorruptedError(forKey: .maxImageSize, in: c, debugDescription:
                    "needs {\"longest_edge\": n}, got keys \(m.keys.sorted())")
            }
            maxImageSize = l
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
