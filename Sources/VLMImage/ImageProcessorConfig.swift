import Foundation

/// preprocessor_config.json of a CLIP- or SigLIP-style image processor (transformers 5.24). Unknown keys are
/// ignored; a missing key takes the class default of transformers' processor for `image_processor_type`
/// (CLIPImageProcessor unless the type names SigLIP).
public struct ImageProcessorConfig: Decodable, Sendable, Equatable {
    /// transformers' size dict, after get_size_dict (an int `size` means {"shortest_edge": n} because CLIP and
    /// SigLIP both have default_to_square = False; a 2-list means {"height", "width"}).
    public enum Size: Sendable, Equatable {
        case shortestEdge(Int)
        case heightWidth(height: Int, width: Int)
        /// {"shortest_edge", "longest_edge"}: get_size_with_aspect_ratio.
        case shortestLongest(shortest: Int, longest: Int)
        /// {"max_height", "max_width"}: get_image_size_for_max_height_width.
        case maxHeightWidth(maxHeight: Int, maxWidth: Int)
        /// {"longest_edge"} alone: accepted by transformers' config validation but its PIL backend raises on
        /// resize; kept so such a config loads, and refused by `preprocess` when do_resize is true.
        case longestEdge(Int)
    }

    public var imageProcessorType: String?
    public var doResize: Bool
    public var size: Size
    public var resample: ResampleFilter
    public var doCenterCrop: Bool
    public var cropSize: (height: Int, width: Int) {
        get { (cropHeight, cropWidth) }
        set { (cropHeight, cropWidth) = newValue }
    }
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]
    public var doConvertRgb: Bool

    private var cropHeight: Int
    private var cropWidth: Int

    /// transformers' image_utils constants.
    public static let openAIClipMean = [0.48145466, 0.4578275, 0.40821073]
    public static let openAIClipStd = [0.26862954, 0.26130258, 0.27577711]
    public static let imagenetStandardMean = [0.5, 0.5, 0.5]
    public static let imagenetStandardStd = [0.5, 0.5, 0.5]

    /// CLIPImageProcessor's defaults (image_processing_pil_clip.py).
    public static let clip = ImageProcessorConfig(
        imageProcessorType: "CLIPImageProcessor", doResize: true, size: .shortestEdge(224), resample: .bicubic,
        doCenterCrop: true, cropHeight: 224, cropWidth: 224, doRescale: true, rescaleFactor: 1.0 / 255.0,
        doNormalize: true, imageMean: openAIClipMean, imageStd: openAIClipStd, doConvertRgb: true)

    /// SiglipImageProcessor's defaults (image_processing_pil_siglip.py): resize straight to 224x224, no crop.
    public static let siglip = ImageProcessorConfig(
        imageProcessorType: "SiglipImageProcessor", doResize: true, size: .heightWidth(height: 224, width: 224),
        resample: .bicubic, doCenterCrop: false, cropHeight: 224, cropWidth: 224, doRescale: true,
        rescaleFactor: 1.0 / 255.0, doNormalize: true, imageMean: imagenetStandardMean, imageStd: imagenetStandardStd,
        doConvertRgb: true)

    public init(imageProcessorType: String?, doResize: Bool, size: Size, resample: ResampleFilter, doCenterCrop: Bool,
                cropHeight: Int, cropWidth: Int, doRescale: Bool, rescaleFactor: Double, doNormalize: Bool,
                imageMean: [Double], imageStd: [Double], doConvertRgb: Bool) {
        self.imageProcessorType = imageProcessorType
        self.doResize = doResize
        self.size = size
        self.resample = resample
        self.doCenterCrop = doCenterCrop
        self.cropHeight = cropHeight
        self.cropWidth = cropWidth
        self.doRescale = doRescale
        self.rescaleFactor = rescaleFactor
        self.doNormalize = doNormalize
        self.imageMean = imageMean
        self.imageStd = imageStd
        self.doConvertRgb = doConvertRgb
    }

    enum CodingKeys: String, CodingKey {
        case imageProcessorType = "image_processor_type"
        case doResize = "do_resize"
        case size
        case resample
        case doCenterCrop = "do_center_crop"
        case cropSize = "crop_size"
        case doRescale = "do_rescale"
        case rescaleFactor = "rescale_factor"
        case doNormalize = "do_normalize"
        case imageMean = "image_mean"
        case imageStd = "image_std"
        case doConvertRgb = "do_convert_rgb"
    }

    /// A JSON size: int, [h, w] or a dict of the transformers size keys.
    private struct SizeJSON: Decodable {
        var int: Int?
        var dict: [String: Int]?
        var list: [Int]?
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Int.self) { int = v } else if let v = try? c.decode([Int].self) { list = v } else {
                dict = try c.decode([String: Int].self)
            }
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decodeIfPresent(String.self, forKey: .imageProcessorType)
        let d = (type ?? "").lowercased().contains("siglip") ? ImageProcessorConfig.siglip : ImageProcessorConfig.clip
        imageProcessorType = type ?? d.imageProcessorType
        // transformers writes null for unset booleans (e.g. SigLIP's do_center_crop): decodeIfPresent gives nil.
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? d.doResize
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? d.doCenterCrop
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? d.doRescale
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? d.doNormalize
        doConvertRgb = try c.decodeIfPresent(Bool.self, forKey: .doConvertRgb) ?? d.doConvertRgb
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
        size = d.size
        if let s = try c.decodeIfPresent(SizeJSON.self, forKey: .size) {
            size = try Self.parseSize(s, c)
        }
        cropHeight = d.cropHeight
        cropWidth = d.cropWidth
        if let s = try c.decodeIfPresent(SizeJSON.self, forKey: .cropSize) {
            // crop_size goes through get_size_dict with default_to_square = True: an int n is n x n.
            if let n = s.int { (cropHeight, cropWidth) = (n, n) } else if let l = s.list, l.count == 2 {
                (cropHeight, cropWidth) = (l[0], l[1])
            } else if let h = s.dict?["height"], let w = s.dict?["width"] {
                (cropHeight, cropWidth) = (h, w)
            } else {
                throw DecodingError.dataCorruptedError(forKey: .cropSize, in: c, debugDescription: "crop_size needs height and width")
            }
        }
        try validate(c)
    }

    private static func parseSize(_ s: SizeJSON, _ c: KeyedDecodingContainer<CodingKeys>) throws -> Size {
        if let n = s.int { return .shortestEdge(n) }
        if let l = s.list, l.count == 2 { return .heightWidth(height: l[0], width: l[1]) }
        if let l = s.list, l.count == 1 { return .shortestEdge(l[0]) }
        let d = s.dict ?? [:]
        if let h = d["height"], let w = d["width"] { return .heightWidth(height: h, width: w) }
        if let se = d["shortest_edge"], let le = d["longest_edge"] { return .shortestLongest(shortest: se, longest: le) }
        if let se = d["shortest_edge"] { return .shortestEdge(se) }
        if let mh = d["max_height"], let mw = d["max_width"] { return .maxHeightWidth(maxHeight: mh, maxWidth: mw) }
        if let le = d["longest_edge"] { return .longestEdge(le) }
        throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription:
            "size must be an int, [height, width] or a dict with height+width, shortest_edge, max_height+max_width or longest_edge; got \(d.keys.sorted())")
    }

    /// image_mean / image_std: a list, or one number for every channel (as transformers broadcasts it).
    private static func channels(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> [Double]? {
        guard c.contains(key), try !c.decodeNil(forKey: key) else { return nil }
        if let v = try? c.decode(Double.self, forKey: key) { return [v, v, v] }
        let list = try c.decode([Double].self, forKey: key)
        guard list.count == 3 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "needs 3 values (RGB), got \(list.count)")
        }
        return list
    }

    /// Largest size a config may ask for, per side and in pixels (16384 and 2^26: 64M pixels are 192 MB of uint8 and
    /// 768 MB of float pixel values). Checked at load, before anything is allocated; the error names the file and key.
    public static let maxSide = 16384
    public static let maxPixels = 1 << 26

    private func validate(_ c: KeyedDecodingContainer<CodingKeys>) throws {
        let sizes: [Int], box: Bool  // box: the two sides bound an area (height x width, max_height x max_width)
        switch size {
        case .shortestEdge(let n), .longestEdge(let n): (sizes, box) = ([n], false)
        case .heightWidth(let h, let w), .maxHeightWidth(let h, let w): (sizes, box) = ([h, w], true)
        case .shortestLongest(let s, let l): (sizes, box) = ([s, l], false)
        }
        let side = Self.maxSide
        // Sides first: the area is only multiplied once both are <= 16384 (no overflow on hostile values).
        if sizes.contains(where: { $0 <= 0 || $0 > side }) || box && sizes[0] * sizes[1] > Self.maxPixels {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription:
                "sizes must be in 1...\(side) per side and at most \(Self.maxPixels) pixels, got \(size)")
        }
        if cropHeight <= 0 || cropWidth <= 0 || cropHeight > side || cropWidth > side || cropHeight * cropWidth > Self.maxPixels {
            throw DecodingError.dataCorruptedError(forKey: .cropSize, in: c, debugDescription:
                "crop size \(cropHeight)x\(cropWidth) is outside 1...\(side) per side / \(Self.maxPixels) pixels")
        }
        if imageStd.contains(0) {
            throw DecodingError.dataCorruptedError(forKey: .imageStd, in: c, debugDescription: "a standard deviation of 0")
        }
        if !rescaleFactor.isFinite {
            throw DecodingError.dataCorruptedError(forKey: .rescaleFactor, in: c, debugDescription: "not finite")
        }
    }
}
