import Foundation
import VLMTensor

// MARK: - What an image processor hands a vision tower

/// The pixels of a batch of images as a vision tower takes them. Fixed-resolution processors (CLIP, SigLIP,
/// LLaVA's CLIP) fill `pixelValues` as [B, C, H, W]; patch-sequence processors (SigLIP2 NaFlex) fill it as
/// [B, maxPatches, C*p*p] with a patch mask and each image's patch grid.
public struct PixelInputs: @unchecked Sendable {
    /// [B, C, H, W] or [B, maxPatches, C*p*p] (NaFlex).
    public var pixelValues: Tensor
    /// NaFlex `pixel_attention_mask`: [B * maxPatches], 1 for a real patch, 0 for padding.
    public var patchMask: [UInt8]?
    /// NaFlex `spatial_shapes`: per image, the patch grid (rows, columns).
    public var spatialShapes: [PatchGrid]?
    /// Tiling processors (Idefics3/SmolVLM): how many consecutive entries of the batch (tiles, then the global
    /// image) each image has; nil when every image is one entry.
    public var tilesPerImage: [Int]?
    /// Tiling processors: per image, the grid its tiles were cut in (rows x columns; 0 x 0 when not split).
    public var tileGrids: [PatchGrid]?

    public init(pixelValues: Tensor, patchMask: [UInt8]? = nil, spatialShapes: [PatchGrid]? = nil, tilesPerImage: [Int]? = nil,
                tileGrids: [PatchGrid]? = nil) {
        self.pixelValues = pixelValues
        self.patchMask = patchMask
        self.spatialShapes = spatialShapes
        self.tilesPerImage = tilesPerImage
        self.tileGrids = tileGrids
    }

    /// Entries of the batch (images, or tiles of images for tiling processors).
    public var count: Int { pixelValues.shape.first ?? 0 }
    /// Images the batch holds.
    public var imageCount: Int { tilesPerImage?.count ?? count }
    /// The batch entries of images `range` (their tiles for tiling processors).
    public func entries(ofImages range: Range<Int>) -> Range<Int> {
        guard let tiles = tilesPerImage else { return range }
        let start = tiles[..<min(range.lowerBound, tiles.count)].reduce(0, +)
        return start ..< start + tiles[min(range.lowerBound, tiles.count) ..< min(range.upperBound, tiles.count)].reduce(0, +)
    }

    /// Batches concatenated along the first axis (e.g. images preprocessed one by one in parallel). All must
    /// have the same per-image shape, and either all or none a patch mask.
    public static func stacking(_ parts: [PixelInputs]) throws -> PixelInputs {
        guard let first = parts.first else { throw ImageError.invalidArgument("stacking no pixel inputs") }
        let inner = Array(first.pixelValues.shape.dropFirst())
        for (i, p) in parts.enumerated() where Array(p.pixelValues.shape.dropFirst()) != inner || (p.patchMask == nil) != (first.patchMask == nil) {
            throw ImageError.invalidArgument("pixel inputs \(i) have shape \(p.pixelValues.shape); input 0 has \(first.pixelValues.shape)")
        }
        if parts.count == 1 { return first }
        let total = parts.reduce(0) { $0 + $1.count }
        let values = Tensor(uninitialized: [total] + inner)
        var offset = 0
        for p in parts {
            (values.pointer + offset).update(from: p.pixelValues.pointer, count: p.pixelValues.count)
            offset += p.pixelValues.count
        }
        return PixelInputs(pixelValues: values, patchMask: first.patchMask == nil ? nil : parts.flatMap { $0.patchMask ?? [] },
                           spatialShapes: first.spatialShapes == nil ? nil : parts.flatMap { $0.spatialShapes ?? [] },
                           tilesPerImage: first.tilesPerImage == nil ? nil : parts.flatMap { $0.tilesPerImage ?? [$0.count] },
                           tileGrids: first.tileGrids == nil ? nil : parts.flatMap { $0.tileGrids ?? [] })
    }
}

/// A grid of patches: `rows` x `columns` (transformers' spatial_shapes row, (h, w)).
public struct PatchGrid: Sendable, Equatable, Codable {
    public var rows: Int
    public var columns: Int
    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }
}

/// An image processor as a model family uses it: decoded RGB images in, the tower's pixel inputs out. Each
/// implementation reproduces one transformers processor class (PIL backend) exactly.
public protocol ImageInputProcessor: Sendable {
    /// transformers' class name without backend suffix ("CLIPImageProcessor", "Siglip2ImageProcessor", ...).
    var processorClass: String { get }
    /// (height, width) of every image when fixed, else nil (the size depends on the image).
    var fixedOutputSize: (height: Int, width: Int)? { get }
    func pixelInputs(_ images: [RGBImage]) throws -> PixelInputs
}

extension ImageProcessor: ImageInputProcessor {
    public var processorClass: String { ImageProcessors.baseClass(config.imageProcessorType ?? "CLIPImageProcessor") }
    public var fixedOutputSize: (height: Int, width: Int)? {
        let s = outputSize
        return s.height > 0 ? s : nil
    }

    public func pixelInputs(_ images: [RGBImage]) throws -> PixelInputs { PixelInputs(pixelValues: try preprocess(images)) }
}

// MARK: - Loading from a checkpoint directory

/// Reads a checkpoint's image processor config from either file transformers writes: `preprocessor_config.json`
/// (the Hub's files, transformers 4.x) or the `image_processor` entry of `processor_config.json` (transformers 5.x
/// `save_pretrained` of a processor), and builds the processor its `image_processor_type` names.
public enum ImageProcessors {
    /// A config's JSON (one object) and the file (and key) it came from, for error messages.
    public struct ConfigSource: Sendable {
        public let json: Data
        public let file: String

        public init(json: Data, file: String) {
            self.json = json
            self.file = file
        }
    }

    public typealias Factory = @Sendable (ConfigSource) throws -> any ImageInputProcessor

    /// Processor classes by their base name. CLIP's and SigLIP's share one implementation (resize, optional crop,
    /// rescale, normalise); LLaVA checkpoints name CLIPImageProcessor; SigLIP2's NaFlex is `NaFlexProcessor`.
    public static let factories: [String: Factory] = [
        "CLIPImageProcessor": { try ImageProcessor(source: $0) },
        "SiglipImageProcessor": { try ImageProcessor(source: $0) },
        "Siglip2ImageProcessor": { try NaFlexProcessor(source: $0) },
        "Idefics3ImageProcessor": { try Idefics3ImageProcessor(source: $0) },
        "SmolVLMImageProcessor": { try Idefics3ImageProcessor(source: $0) },
    ]

    /// Names of the supported processor classes, for error messages.
    public static var supported: [String] { factories.keys.sorted() }

    /// "CLIPImageProcessorFast" / "CLIPImageProcessorPil" -> "CLIPImageProcessor" (the backends compute the same
    /// sizes; our reference is the PIL one).
    public static func baseClass(_ name: String) -> String {
        for suffix in ["Fast", "Pil"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return name
    }

    /// The config of `directory`: preprocessor_config.json if present, else processor_config.json's
    /// `image_processor`. Errors name the file and what is missing.
    public static func configSource(directory: URL) throws -> ConfigSource {
        let legacy = directory.appendingPathComponent("preprocessor_config.json")
        let processor = directory.appendingPathComponent("processor_config.json")
        let fm = FileManager.default
        if fm.fileExists(atPath: legacy.path) {
            return ConfigSource(json: try read(legacy), file: legacy.path)
        }
        guard fm.fileExists(atPath: processor.path) else {
            throw ImageError.unreadable(file: directory.path,
                                        reason: "no preprocessor_config.json or processor_config.json (the image processor's settings)")
        }
        let data = try read(processor)
        guard let object = try? JSONSerialization.jsonObject(with: data), let dict = object as? [String: Any] else {
            throw ImageError.invalidConfig(file: processor.path, key: "", reason: "not a JSON object")
        }
        guard let inner = dict["image_processor"] as? [String: Any] else {
            throw ImageError.invalidConfig(file: processor.path, key: "image_processor", reason: "missing (this processor has no image processor)")
        }
        guard let json = try? JSONSerialization.data(withJSONObject: inner) else {
            throw ImageError.invalidConfig(file: processor.path, key: "image_processor", reason: "not serialisable")
        }
        return ConfigSource(json: json, file: processor.path + " (image_processor)")
    }

    /// The processor of `directory`'s checkpoint. `defaultClass` is used when the config names none (old
    /// checkpoints omit image_processor_type); an unknown class names the supported ones.
    public static func load(directory: URL, defaultClass: String = "CLIPImageProcessor") throws -> any ImageInputProcessor {
        let source = try configSource(directory: directory)
        return try make(source, defaultClass: defaultClass)
    }

    public static func make(_ source: ConfigSource, defaultClass: String = "CLIPImageProcessor") throws -> any ImageInputProcessor {
        var name = defaultClass
        if let object = try? JSONSerialization.jsonObject(with: source.json), let dict = object as? [String: Any] {
            if let type = dict["image_processor_type"] as? String { name = type }
        } else {
            throw ImageError.invalidConfig(file: source.file, key: "", reason: "not a JSON object")
        }
        guard let factory = factories[baseClass(name)] else {
            throw ImageError.invalidConfig(file: source.file, key: "image_processor_type",
                                           reason: "'\(name)' is not supported (supported: \(supported.joined(separator: ", ")))")
        }
        return try factory(source)
    }

    static func read(_ url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw ImageError.unreadable(file: url.path, reason: error.localizedDescription)
        }
    }
}
