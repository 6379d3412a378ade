import Foundation
import VLMImage
import VLMTensor
import VLMTokenizers

/// Training-time image changes that keep every caption true. No flips and no rotations: they would turn "left
/// of" into "right of". A shift keeps relations (all objects move together) and the background is uniform, so
/// edge replication adds nothing new; brightness stays small so "white" / "black" / the grey stay apart.
public struct Augmentation: Sendable, Codable, Equatable {
    /// Largest translation in pixels, each axis (0: none).
    public var maxShift: Int = 0
    /// Largest relative brightness change (0.05 = ±5%; 0: none).
    public var brightness: Float = 0
    /// Train on a random true caption of the sample (its paraphrases) instead of always the first.
    public var randomCaption: Bool = false
    public init(maxShift: Int = 0, brightness: Float = 0, randomCaption: Bool = false) {
        self.maxShift = maxShift
        self.brightness = brightness
        self.randomCaption = randomCaption
    }
    public static let none = Augmentation()
    public var isIdentityOnPixels: Bool { maxShift == 0 && brightness == 0 }

    public func apply(_ image: RGBImage, seed: UInt64) throws -> RGBImage {
        guard !isIdentityOnPixels else { return image }
        var rng = SplitMix64(seed: seed)
        let dx = maxShift > 0 ? Int(rng.next() % UInt64(2 * maxShift + 1)) - maxShift : 0
        let dy = maxShift > 0 ? Int(rng.next() % UInt64(2 * maxShift + 1)) - maxShift : 0
        let gain = 1 + brightness * (2 * rng.nextUniform() - 1)
        let w = image.width, h = image.height
        var out = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0 ..< h {
                let sy = min(max(y - dy, 0), h - 1)
                for x in 0 ..< w {
                    let sx = min(max(x - dx, 0), w - 1)
                    for c in 0 ..< 3 {
                        let v = Float(src[(sy * w + sx) * 3 + c]) * gain
                        out[(y * w + x) * 3 + c] = UInt8(min(max(v.rounded(), 0), 255))
                    }
                }
            }
        }
        return try RGBImage(width: w, height: h, pixels: out)
    }
}

/// Turns a `PairedDataSource` into training batches: a seeded shuffle per epoch, images through the checkpoint's
/// ImageProcessor (after augmentation), captions through its tokenizer (truncated to the model's length, EOS
/// kept). A sample whose image cannot be decoded is skipped and counted (`skipped`, `onSkip`), never fatal; the
/// batch is filled from the following samples. Incomplete last batches are dropped, as open_clip does.
/// Resume replays the consumed batches of the epoch through `nextBatch` (the protocol default): which samples
/// a batch used depends on which images failed to decode, so only replaying gives the exact same order.
public struct BatchPipeline: TrainingDataSource {
    public let source: any PairedDataSource
    public let processor: ImageProcessor
    public let tokenizer: any Tokenizer
    public let maxTextLength: Int
    public let batchSize: Int
    public let seed: UInt64
    public var augmentation: Augmentation
    public var shuffle = true
    /// Add one of each sample's false captions (its `negatives`, drawn per epoch) to the batch as an extra
    /// image->text candidate: the NegCLIP recipe that teaches attribute binding, counts and relations.
    public var hardNegatives = false
    /// Shuffle whole groups of `groupSize` consecutive samples and keep each group together in a batch (for
    /// sources whose neighbouring indices form contrast groups, e.g. scenes' minimal pairs). 1: plain shuffle.
    public var groupSize = 1
    /// Samples skipped so far (undecodable images, captions that tokenize to nothing).
    public private(set) var skipped = 0
    /// Called once per skipped sample with a one-line reason.
    public var onSkip: ((String) -> Void)?

    private var order: [Int] = []
    private var position = 0
    private var produced = 0
    private var epoch = 0

    public init(source: any PairedDataSource, processor: ImageProcessor, tokenizer: any Tokenizer, maxTextLength: Int,
                batchSize: Int, seed: UInt64, augmentation: Augmentation = .none) throws {
        guard batchSize >= 2 else { throw TrainingError.dataset("batch size \(batchSize): contrastive training needs at least 2 pairs per batch") }
        guard source.count >= 2 else { throw TrainingError.dataset("\(source.count) samples: at least 2 are needed") }
        let (h, w) = processor.outputSize
        guard h > 0, w > 0 else {
            throw TrainingError.dataset("the image processor's output size depends on the image (shortest_edge resize without a crop); batches need a fixed size")
        }
        self.source = source
        self.processor = processor
        self.tokenizer = tokenizer
        self.maxTextLength = maxTextLength
        self.batchSize = min(batchSize, source.count)
        self.seed = seed
        self.augmentation = augmentation
    }

    public var batchesPerEpoch: Int { max(1, (groupSize > 1 ? source.count / groupSize * groupSize : source.count) / batchSize) }

    public mutating func startEpoch(_ epoch: Int) throws {
        self.epoch = epoch
        let g = max(1, groupSize)
        if !shuffle {
            order = Array(0 ..< source.count)
        } else if g == 1 {
            order = seededPermutation(source.count, seed: mixSeed(seed, UInt64(epoch)))
        } else {
            // Whole groups in a shuffled order; a trailing partial group is dropped.
            order = seededPermutation(source.count / g, seed: mixSeed(seed, UInt64(epoch))).flatMap { $0 * g ..< $0 * g + g }
        }
        position = 0
        produced = 0
    }

    public mutating func nextBatch() throws -> TrainingBatch? {
        guard produced < batchesPerEpoch else { return nil }
        var pixels: [Tensor] = [], ids: [[Int]] = [], negatives: [[Int]] = []
        while pixels.count < batchSize && position < order.count {
            let want = min(batchSize - pixels.count, order.count - position)
            let indices = Array(order[position ..< position + want])
            position += want
            for result in prepare(indices) {
                switch result {
                case .success(let (p, t, n)):
                    pixels.append(p)
                    ids.append(t)
                    if let n { negatives.append(n) }
                case .failure(let error):
                    skipped += 1
                    onSkip?("\(error)")
                }
            }
        }
        guard pixels.count >= 2 else { return nil }
        produced += 1
        let (h, w) = processor.outputSize
        let plane = 3 * h * w
        let stacked = Tensor(uninitialized: [pixels.count, 3, h, w])
        for (i, p) in pixels.enumerated() { (stacked.pointer + i * plane).update(from: p.pointer, count: plane) }
        return TrainingBatch(pixels: stacked, ids: ids, negativeIDs: negatives)
    }

    /// Loads, augments, preprocesses and tokenizes samples on all cores (sources are pure functions of the index).
    private func prepare(_ indices: [Int]) -> [Result<(Tensor, [Int], [Int]?), Error>] {
        var results = [Result<(Tensor, [Int], [Int]?), Error>?](repeating: nil, count: indices.count)
        let epoch = UInt64(self.epoch), seed = self.seed
        let work = { (i: Int) -> Result<(Tensor, [Int], [Int]?), Error> in
            Result {
                let index = indices[i]
                let sample = try source.sample(at: index)
                let stream = mixSeed(seed, epoch, UInt64(index))
                let image: RGBImage
                do { image = try augmentation.apply(try sample.loadImage(), seed: stream) } catch {
                    throw TrainingError.data(file: sample.origin, line: nil, reason: "image skipped: \(error)")
                }
                var caption = sample.caption
                if augmentation.randomCaption, sample.captions.count > 1 {
                    caption = sample.captions[Int(mixSeed(stream, 1) % UInt64(sample.captions.count))]
                }
                let tokens = try tokenizer.encode(caption, maxLength: maxTextLength)
                guard !tokens.isEmpty else { throw TrainingError.data(file: sample.origin, line: nil, reason: "caption has no tokens") }
                var negative: [Int]? = nil
                if hardNegatives, !sample.negatives.isEmpty {
                    let pick = sample.negatives[Int(mixSeed(stream, 2) % UInt64(sample.negatives.count))]
                    negative = try tokenizer.encode(pick.caption, maxLength: maxTextLength)
                }
                return (try processor.preprocess(image), tokens, negative)
            }
        }
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = buffer  // each iteration writes only its own slot
            DispatchQueue.concurrentPerform(iterations: indices.count) { i in slots[i] = work(i) }
        }
        return results.map { $0 ?? .failure(TrainingError.dataset("sample not prepared")) }
    }
}
