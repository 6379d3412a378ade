import Foundation
import VLMImage

/// A caption that is known to be false for its image, with what kind of edit made it false ("swap" is the
/// attribute-swapped twin the binding test uses; files without types give "negative").
public struct NegativeCaption: Sendable, Equatable, Codable {
    public var type: String
    public var caption: String
    public init(type: String, caption: String) {
        self.type = type
        self.caption = caption
    }
}

/// One image with its text: what training and evaluation consume, whatever the origin (files, generator).
public struct PairedSample: Sendable {
    public enum Image: Sendable {
        /// Decoded when the batch is built; a file that fails to decode is skipped, not fatal.
        case file(URL)
        case pixels(RGBImage)
    }

    public var image: Image
    /// The caption used for training and as the retrieval key.
    public var caption: String
    /// Every true caption, `caption` first (training may draw from these).
    public var captions: [String]
    public var negatives: [NegativeCaption]
    /// Zero-shot class, if the sample has one ("red circle").
    public var label: String?
    /// "train", "test", "heldout", ... when the source says; nil otherwise.
    public var split: String?
    /// Where the sample came from ("manifest.jsonl:12"), for warnings.
    public var origin: String

    public init(image: Image, caption: String, captions: [String]? = nil, negatives: [NegativeCaption] = [], label: String? = nil,
                split: String? = nil, origin: String = "") {
        self.image = image
        self.caption = caption
        self.captions = [caption] + (captions ?? []).filter { $0 != caption }
        self.negatives = negatives
        self.label = label
        self.split = split
        self.origin = origin
    }

    /// The decoded image (files composited on white, as the inference pipeline decodes them).
    public func loadImage() throws -> RGBImage {
        switch image {
        case .pixels(let img): return img
        case .file(let url): return try ImageDecoder.load(url, alpha: .compositeOnWhite)
        }
    }
}

/// Random access to paired samples. Sources are deterministic: `sample(at: i)` is the same every call, which
/// makes a shuffled epoch replayable (resume) from (seed, epoch) alone.
public protocol PairedDataSource {
    var count: Int { get }
    func sample(at index: Int) throws -> PairedSample
}

/// Samples held in memory (loaded manifests, tests).
public struct ArrayDataSource: PairedDataSource {
    public var samples: [PairedSample]
    public init(_ samples: [PairedSample]) { self.samples = samples }
    public var count: Int { samples.count }
    public func sample(at index: Int) throws -> PairedSample {
        guard samples.indices.contains(index) else { throw TrainingError.dataset("sample \(index) of \(samples.count)") }
        return samples[index]
    }

    /// Only the samples of one split (samples without a split count as every split's).
    public func filtered(split: String) -> ArrayDataSource {
        ArrayDataSource(samples.filter { $0.split == nil || $0.split == split })
    }

    /// The splits present, in first-seen order.
    public var splits: [String] {
        var seen: [String] = []
        for s in samples { if let sp = s.split, !seen.contains(sp) { seen.append(sp) } }
        return seen
    }
}

/// SplitMix64 stream mixing, so (seed, epoch, index) give independent streams without shared state.
public func mixSeed(_ values: UInt64...) -> UInt64 {
    var h: UInt64 = 0x9E37_79B9_7F4A_7C15
    for v in values {
        h ^= v &+ 0x9E37_79B9_7F4A_7C15 &+ (h << 6) &+ (h >> 2)
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
    }
    return h
}

/// Fisher-Yates permutation of 0..<n from a seed (the same on every platform, unlike `shuffled()`).
public func seededPermutation(_ n: Int, seed: UInt64) -> [Int] {
    var order = Array(0 ..< n)
    var state = seed
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    if n > 1 {
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int(next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }
    return order
}
