import Foundation
import VLMImage
import VLMLayers
import VLMTensor

// MARK: - The protocol

/// A model that generates text token by token (LLaVA, the Llama family, ...). The generation loop, samplers,
/// streaming, the conversation cache and the server use this protocol, never a concrete family.
///
/// The shape follows mlx-swift-lm: the family's input processor turns messages + images into a
/// `PreparedInput`; `prefill` runs it into a model-owned `GenerationState` (continuing from what the state
/// already holds) and returns the last position's logits; `step` feeds one sampled token.
public protocol GenerativeModel: AnyObject, Sendable {
    /// config.json's model_type.
    var modelType: String { get }
    /// Whether the model takes images.
    var supportsImages: Bool { get }
    /// Tokens the model can attend to (prompt, image tokens and answer together).
    var contextLength: Int { get }
    /// Rows of the logits.
    var vocabularySize: Int { get }
    /// End-of-sequence ids from config.json.
    var eosTokenIDs: [Int] { get }
    /// Encoder-decoder models (Florence-2): the id `prefill` starts the decoder with after running the prompt
    /// through the encoder; generated ids then follow it, and a state never keeps a prompt prefix (the encoder
    /// sees the whole prompt). nil for decoder-only models (the default).
    var decoderStartTokenID: Int? { get }

    /// A fresh state for one sequence of up to `capacity` tokens (capped at the context length).
    func makeState(capacity: Int) -> any GenerationState
    /// Runs `input` (its ids, pixels and positions) after whatever `state` holds, appending to it.
    /// Returns the logits of the last new position: [1, vocab].
    func prefill(_ input: PreparedInput, state: any GenerationState) throws -> Tensor
    /// Feeds one token at the state's next position. Returns its logits: [1, vocab].
    func step(token: Int, state: any GenerationState) throws -> Tensor
    /// The image features `prefill` splices into the prompt for `pixels` (vision tower + projector), on their
    /// own: benchmarks time the image encode with it. Text-only models throw `imagesNotSupported`.
    func encodeImages(_ pixels: PixelInputs) throws -> Tensor
    /// Bytes of weights one decode step streams (the decoder's linear layers and LM head as packed in memory):
    /// the memory-bandwidth roofline of decode is bandwidth / this.
    var decodeWeightBytes: Int { get }
    /// The family's input processor for the checkpoint in `directory` (tokenizer, chat template or the family's
    /// own prompt format, image processor and image-token expansion), with the user's `options`.
    func makeInputProcessor(directory: URL, options: InputProcessingOptions) throws -> any GenerativeInputProcessor
    /// Weight precision of the language model as loaded: fp32, bf16, fp16, int8, int4, or mixed (served in
    /// /v1/models and /metrics).
    var weightPrecision: String { get }
    /// What the decoder's KV cache stores: fp32, or bf16 under a reduced precision (KVCachePrecision.standard;
    /// served in /v1/models).
    var kvCache: String { get }
}

extension GenerativeModel {
    public var weightPrecision: String { "fp32" }
    public var kvCache: String { "fp32" }
}

/// Choices about input processing that the checkpoint's files do not make. The defaults reproduce transformers.
public struct InputProcessingOptions: Sendable, Equatable {
    /// Tiling processors (SmolVLM/Idefics3): images are resized so their longest edge is at most this (and never
    /// upscaled past their own size) instead of to the config's `size.longest_edge`. Fewer tiles, far less
    /// compute; no longer the input transformers would build. nil: the checkpoint's rule.
    public var maxImageEdge: Int?

    public init(maxImageEdge: Int? = nil) { self.maxImageEdge = maxImageEdge }
}

extension GenerativeModel {
    public func makeInputProcessor(directory: URL) throws -> any GenerativeInputProcessor {
        try makeInputProcessor(directory: directory, options: InputProcessingOptions())
    }

    public func encodeImages(_ pixels: PixelInputs) throws -> Tensor { throw ModelError.imagesNotSupported(model: modelType) }

    public var decoderStartTokenID: Int? { nil }
    public var isEncoderDecoder: Bool { decoderStartTokenID != nil }
}

/// A VLM whose text half is a Llama-family decoder (LLaVA, Idefics3/SmolVLM): context, vocabulary, EOS ids, the
/// state, decode steps and the weights a step streams are the decoder's; the family adds its image path.
public protocol LlamaBackedModel: GenerativeModel {
    var language: LlamaModel { get }
}

extension LlamaBackedModel {
    public var contextLength: Int { language.contextLength }
    public var vocabularySize: Int { language.vocabularySize }
    public var eosTokenIDs: [Int] { language.eosTokenIDs }
    public var decodeWeightBytes: Int { language.linearWeightFootprint.bytes }
    public var weightPrecision: String { language.weightPrecision }
    public var kvCache: String { language.kvCache }
    public func makeState(capacity: Int) -> any GenerationState { language.makeState(capacity: capacity) }
    public func step(token: Int, state: any GenerationState) throws -> Tensor { try language.step(token: token, state: state) }
}

// MARK: - State

/// What a model keeps between calls for one sequence. Generic code reads its length and truncates it (cache
/// reuse across chat turns); everything else is the family's.
public protocol GenerationState: AnyObject, Sendable {
    /// Sequence rows held (prompt tokens, image tokens and generated tokens run so far).
    var length: Int { get }
    /// Bytes the state holds (caches), for bounding memory.
    var bytes: Int { get }
    /// Keeps the first `length` rows, dropping the rest, so generation can continue from that prefix.
    func truncate(to length: Int)
    /// An independent copy that continues from the same rows (beam search forks a sequence).
    func fork() throws -> any GenerationState
}

extension GenerationState {
    public func fork() throws -> any GenerationState {
        throw ModelError.unsupported("a \(type(of: self)) generation state cannot be copied (beam search needs it)")
    }
}

/// The state of a decoder-only model (and the decoder half of an encoder-decoder): the self-attention KV
/// cache, the position ids of the rows it holds (the next position continues after their maximum, so
/// multi-axis positions of images fit), and room for an encoder's outputs (Florence-2: the encoder runs once
/// per prompt; its cross-attention keys/values are computed once and kept here).
public final class DecoderState: GenerationState, @unchecked Sendable {
    public let cache: KVCache
    /// Rotary position of each held row (1-D; for multi-axis ids the text position that follows is what matters).
    public private(set) var positions: [Int] = []
    /// The position the next token takes (after the maximum held position).
    public private(set) var nextPosition = 0
    /// Encoder outputs [S, C] for cross-attention (encoder-decoder families), nil otherwise.
    public var encoderOutputs: Tensor?
    /// Per-layer cross-attention keys/values over `encoderOutputs` (computed once per prompt).
    public var crossCache: KVCache?
    /// Prefix-LM (PaliGemma): rows [0, prefixLength) attend each other bidirectionally.
    public var prefixLength = 0

    public init(cache: KVCache) { self.cache = cache }

    public var length: Int { cache.length }
    public var bytes: Int { cache.bytes + (crossCache?.bytes ?? 0) + (encoderOutputs?.count ?? 0) * 4 }
    /// Records the positions of rows just appended to the cache.
    public func appended(positions new: [Int]) {
        positions += new
        if let m = new.max() { nextPosition = max(nextPosition, m + 1) }
    }

    public func fork() throws -> any GenerationState {
        let other = DecoderState(cache: cache.copy())
        other.positions = positions
        other.nextPosition = nextPosition
        other.encoderOutputs = encoderOutputs
        other.crossCache = crossCache?.copy()
        other.prefixLength = prefixLength
        return other
    }

    public func truncate(to length: Int) {
        let n = min(max(length, 0), self.length)
        cache.truncate(to: n)
        positions.removeLast(positions.count - n)
        nextPosition = (positions.max() ?? -1) + 1
        if n < prefixLength { prefixLength = n }
    }
}

// MARK: - Prepared input

/// What an input processor hands the model: the prompt's token ids with each image's placeholder expanded to
/// its token run, the images' pixel inputs, where each image's run lies, and position ids when they are not
/// simply consecutive from the state's next position.
public struct PreparedInput: @unchecked Sendable {
    public var ids: [Int]
    /// The images' pixels in prompt order, nil without images.
    public var pixels: PixelInputs?
    /// Token rows of each image in `ids` (one run per image, in order).
    public var imageSpans: [Range<Int>]
    /// Per image, its patch grid when the family's token count depends on it (NaFlex, Qwen2-VL); nil otherwise.
    public var imageGrids: [PatchGrid]?
    /// Position ids of `ids` relative to the start of the sequence (nil: 0 ..< ids.count).
    public var positions: PositionIDs?
    /// Prefix-LM families: rows [0, prefixLength) are attended bidirectionally.
    public var prefixLength: Int?

    public init(ids: [Int], pixels: PixelInputs? = nil, imageSpans: [Range<Int>] = [], imageGrids: [PatchGrid]? = nil,
                positions: PositionIDs? = nil, prefixLength: Int? = nil) {
        self.ids = ids
        self.pixels = pixels
        self.imageSpans = imageSpans
        self.imageGrids = imageGrids
        self.positions = positions
        self.prefixLength = prefixLength
    }

    public var imageCount: Int { imageSpans.count }
    /// Image tokens in `ids`.
    public var imageTokenCount: Int { imageSpans.reduce(0) { $0 + $1.count } }

    /// The longest prefix of `ids` a state holding `held` may keep: up to the first differing token, moved back
    /// to the start of an image run it would cut (an image is kept only whole). Images before the cut must be
    /// the same pixels: the caller compares those (`heldImages`).
    public func reusablePrefix(held: [Int], heldImageSpans: [Range<Int>]) -> Int {
        var n = 0
        let limit = min(held.count, ids.count)
        while n < limit && held[n] == ids[n] { n += 1 }
        for span in imageSpans + heldImageSpans where span.lowerBound < n && n < span.upperBound { n = min(n, span.lowerBound) }
        return n
    }

    /// The part of this input from row `start` on (a state already holds the rows before): the ids, the
    /// images whose runs start there or later, and the positions. `start` must not cut an image's run.
    public func suffix(from start: Int) throws -> PreparedInput {
        guard start >= 0, start <= ids.count else {
            throw ModelError.invalidInput("cannot continue a prompt of \(ids.count) tokens from row \(start)")
        }
        if let cut = imageSpans.first(where: { $0.lowerBound < start && start < $0.upperBound }) {
            throw ModelError.invalidInput("row \(start) is inside the image tokens \(cut); an image is prefilled whole")
        }
        let kept = imageSpans.indices.filter { imageSpans[$0].lowerBound >= start }
        var pixels: PixelInputs?
        if let all = self.pixels, let first = kept.first {
            pixels = try all.images(first ..< first + kept.count)
        }
        return PreparedInput(ids: Array(ids[start...]), pixels: pixels,
                             imageSpans: kept.map { (imageSpans[$0].lowerBound - start) ..< (imageSpans[$0].upperBound - start) },
                             imageGrids: imageGrids.map { g in kept.map { g[$0] } },
                             positions: positions?.rows(start ..< ids.count), prefixLength: prefixLength)
    }
}

extension PixelInputs {
    /// Images [range] of the batch (fixed-size pixel values [B, ...]; patch masks, grids and tiles sliced alike).
    public func images(_ range: Range<Int>) throws -> PixelInputs {
        guard range.lowerBound >= 0, range.upperBound <= imageCount else {
            throw ModelError.invalidInput("images \(range) of a batch of \(imageCount)")
        }
        let rows = entries(ofImages: range)
        let per = pixelValues.count / max(count, 1)
        let values = Tensor(uninitialized: [rows.count] + Array(pixelValues.shape.dropFirst()))
        values.pointer.update(from: pixelValues.pointer + rows.lowerBound * per, count: rows.count * per)
        let patches = patchMask.map { mask -> [UInt8] in
            let m = mask.count / max(count, 1)
            return Array(mask[(rows.lowerBound * m) ..< (rows.upperBound * m)])
        }
        return PixelInputs(pixelValues: values, patchMask: patches, spatialShapes: spatialShapes.map { Array($0[range]) },
                           tilesPerImage: tilesPerImage.map { Array($0[range]) }, tileGrids: tileGrids.map { Array($0[range]) })
    }
}
