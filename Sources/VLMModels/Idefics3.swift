import Foundation
import VLMImage
import VLMLayers
import VLMTensor

// MARK: - Configuration

/// config.json of Idefics3ForConditionalGeneration (model_type "idefics3": Idefics3 and the SmolVLM v1
/// checkpoints, e.g. HuggingFaceTB/SmolVLM-256M-Instruct) and SmolVLMForConditionalGeneration ("smolvlm":
/// SmolVLM2): a SigLIP vision tower without head, a pixel-shuffle connector with a linear projection, and a
/// Llama decoder. Defaults are transformers' Idefics3Config defaults.
public struct Idefics3Config: Decodable, Sendable {
    public var modelType = "idefics3"
    public var visionConfig: SigLIPVisionConfig = {
        // Idefics3VisionConfig's defaults; the tower never has an attention-pooling head.
        var v = SigLIPVisionConfig()
        v.hiddenSize = 1152
        v.intermediateSize = 3072
        v.numHiddenLayers = 32
        v.numAttentionHeads = 16
        v.imageSize = 224
        v.patchSize = 32
        v.visionUseHead = false
        return v
    }()
    public var visionModelType = "idefics3_vision"
    public var textConfig = LlamaConfig()
    /// Pixel shuffle: each s x s block of patch states becomes one token of s^2 times the width.
    public var scaleFactor = 2
    public var imageTokenID = 128257
    /// Top-level tie_word_embeddings (transformers ties the head when set here or in text_config).
    public var tieWordEmbeddings: Bool?

    public static let modelTypes = ["idefics3", "smolvlm"]
    static let visionModelTypes = ["idefics3_vision", "smolvlm_vision"]

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", visionConfig = "vision_config", textConfig = "text_config"
        case scaleFactor = "scale_factor", imageTokenID = "image_token_id", imageTokenIndex = "image_token_index"
        case tieWordEmbeddings = "tie_word_embeddings"
    }

    private struct ModelTypeProbe: Decodable {
        let modelType: String?
        enum CodingKeys: String, CodingKey { case modelType = "model_type" }
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? modelType
        if c.contains(.visionConfig) {
            visionConfig = try c.decode(SigLIPVisionConfig.self, forKey: .visionConfig)
            visionConfig.visionUseHead = false
            visionModelType = try c.decode(ModelTypeProbe.self, forKey: .visionConfig).modelType ?? visionModelType
        }
        textConfig = try c.decodeIfPresent(LlamaConfig.self, forKey: .textConfig) ?? textConfig
        scaleFactor = try c.decodeIfPresent(Int.self, forKey: .scaleFactor) ?? scaleFactor
        imageTokenID = try c.decodeIfPresent(Int.self, forKey: .imageTokenID)
            ?? c.decodeIfPresent(Int.self, forKey: .imageTokenIndex) ?? imageTokenID
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings)
        if tieWordEmbeddings == true { textConfig.tieWordEmbeddings = true }
    }

    /// Patches per side of a tile (the vision tower's image_size / patch_size).
    public var patchesPerSide: Int { visionConfig.imageSize / visionConfig.patchSize }
    /// Image tokens per tile: the tile's patches after the pixel shuffle (Idefics3Processor's image_seq_len).
    public var tokensPerTile: Int { (patchesPerSide / scaleFactor) * (patchesPerSide / scaleFactor) }

    func validate(path: String) throws {
        func fail(_ reason: String) -> ModelError { .invalidConfig(path: path, reason: reason) }
        guard Self.visionModelTypes.contains(visionModelType) else {
            throw fail("vision_config.model_type '\(visionModelType)' is not supported (\(Self.visionModelTypes.joined(separator: ", ")) are)")
        }
        guard LlamaModel.supportedModelTypes.contains(textConfig.modelType) else {
            throw fail("text_config.model_type '\(textConfig.modelType)' is not supported (\(LlamaModel.supportedModelTypes.joined(separator: ", ")) are)")
        }
        try visionConfig.validate(naflex: false, fail: fail)
        guard scaleFactor >= 1, scaleFactor <= 16, patchesPerSide % scaleFactor == 0 else {
            throw fail("scale_factor \(scaleFactor) does not divide the \(patchesPerSide) patches per side of vision_config")
        }
        guard imageTokenID >= 0, imageTokenID < textConfig.vocabSize else {
            throw fail("image_token_id \(imageTokenID) is outside the vocabulary of \(textConfig.vocabSize)")
        }
        try textConfig.validate(path: path)
    }
}

// MARK: - Model

/// Idefics3ForConditionalGeneration / SmolVLMForConditionalGeneration: each tile of each image goes through the
/// SigLIP tower (post-layernorm states, no head), the connector folds s x s patch states into one token
/// (pixel shuffle) and projects it to the decoder's width, and the tokens replace the prompt's `<image>` tokens
/// in order.
public final class Idefics3Model: @unchecked Sendable {
    public let config: Idefics3Config
    let vision: SigLIPVisionTransformer  // model.vision_model.*
    let projection: Linear               // model.connector.modality_projection.proj.weight [text C, vision C * s^2]
    public let language: LlamaModel      // model.text_model.* + lm_head.weight

    /// `storage: .asStored` keeps the decoder's and projection's bf16/fp16 weights in 16 bits; the vision tower
    /// is widened to float32 (it runs once per image, as transformers' float32 reference does), except under
    /// `.bfloat16` (WeightScope.storingVisionTower).
    public static func load(directory: URL, storage: WeightStorage = .asStored) throws -> Idefics3Model {
        let (config, _) = try Checkpoint.config(Idefics3Config.self, in: directory, types: Idefics3Config.modelTypes) {
            try $0.validate(path: $1)
        }
        return try Checkpoint.weights(directory: directory, storage: storage,
                                      ignorable: { Checkpoint.isPositionIDsBuffer($0) || $0.hasSuffix("rotary_emb.inv_freq") }) {
            try Idefics3Model(config: config, weights: $0)
        }
    }

    /// A model of `config` with random weights (benchmarks); `storage` rounds the decoder's weights.
    public static func random(config: Idefics3Config, seed: UInt64 = 0, storage: WeightStorage = .float32) throws -> Idefics3Model {
        try config.validate(path: "config")
        return try Checkpoint.random(seed: seed, storage: storage) { try Idefics3Model(config: config, weights: $0) }
    }

    // MARK: - Weights

    /// Key prefixes: the Hub's files and transformers 5.x `save_pretrained` agree (the module names).
    static let keyLayout = (vision: ["model.vision_model"], connector: ["model.connector"],
                            language: ["model.text_model"], head: ["lm_head"])

    init(config: Idefics3Config, weights loader: WeightLoader) throws {
        self.config = config
        let layout = Self.keyLayout
        vision = try SigLIPVisionTransformer(loader.scope(oneOf: layout.vision, probe: "embeddings.patch_embedding.weight")
            .storingVisionTower(), config: config.visionConfig, input: .convolution)
        let s = config.scaleFactor, text = config.textConfig.hiddenSize
        projection = try Linear(loader.scope(oneOf: layout.connector, probe: "modality_projection.proj.weight")
            .scope("modality_projection.proj"), in: config.visionConfig.hiddenSize * s * s, out: text, bias: false)
        language = try LlamaModel(config: config.textConfig,
                                  body: loader.scope(oneOf: layout.language, probe: "embed_tokens.weight"),
                                  head: loader.scope(oneOf: layout.head, probe: "weight", required: false))
    }

    // MARK: - Image features

    /// Tiles -> image tokens. pixels: [N, 3, S, S] (square tiles, S a multiple of the patch size), patchMask:
    /// [N * (S/p)^2] with 0 for patches of pure padding (nil: all real) -> [N * (S/p/s)^2, text C].
    public func imageFeatures(_ pixels: Tensor, patchMask: [UInt8]?) throws -> Tensor {
        try imageFeatures(pixels, patchMask: patchMask, tileGroup: nil)
    }

    /// tileGroup: tiles encoded together (nil: as many as keep the activations under ~48 MiB).
    func imageFeatures(_ pixels: Tensor, patchMask: [UInt8]?, tileGroup: Int?) throws -> Tensor {
        let v = config.visionConfig, p = v.patchSize, s = config.scaleFactor
        guard pixels.rank == 4, pixels.shape[1] == v.numChannels, pixels.shape[2] == pixels.shape[3],
              pixels.shape[2] % p == 0, (pixels.shape[2] / p) % s == 0, pixels.shape[0] > 0 else {
            throw ModelError.invalidInput("pixel_values have shape \(pixels.shape); this model takes square tiles [N, \(v.numChannels), S, S] with S a multiple of \(p * s)")
        }
        let n = pixels.shape[0], side = pixels.shape[2] / p, tokens = side * side
        if let patchMask, patchMask.count != n * tokens {
            throw ModelError.invalidInput("patch mask of \(patchMask.count) for \(n) tiles of \(tokens) patches")
        }
        let mask = patchMask.flatMap { $0.allSatisfy { $0 != 0 } ? nil : $0 }
        // Tiles in groups whose largest activation (the MLP's, tokens x intermediate floats per tile) stays under
        // ~48 MiB: 13 tiles of 1024 patches at once made 163 MB blocks that the allocator maps and zeroes afresh in
        // every layer (and ran 25% slower). No tile's arithmetic depends on another's: the result is the same up to
        // float rounding (the GEMM's row tiles have other heights).
        let perTile = tokens * max(v.intermediateSize, 3 * v.hiddenSize) * MemoryLayout<Float>.size
        let group = max(1, tileGroup ?? (48 << 20) / max(perTile, 1))
        if n > group {
            let outPerTile = tokens / (s * s), width = config.textConfig.hiddenSize
            let out = Tensor(uninitialized: [n * outPerTile, width])
            let tileValues = pixels.count / n
            for t0 in stride(from: 0, to: n, by: group) {
                let m = min(group, n - t0)
                let part = Tensor(uninitialized: [m] + Array(pixels.shape.dropFirst()))
                part.pointer.update(from: pixels.pointer + t0 * tileValues, count: m * tileValues)
                let partMask = mask.map { Array($0[(t0 * tokens) ..< ((t0 + m) * tokens)]) }
                let features = try imageFeatures(part, patchMask: partMask, tileGroup: n)
                (out.pointer + t0 * outPerTile * width).update(from: features.pointer, count: m * outPerTile * width)
            }
            return out
        }
        let embedded = tileEmbeddings(pixels, side: side, patchMask: mask)
        let states = vision.lastHiddenState(embedded, batch: n, length: tokens, keyMask: mask)
        return projection(pixelShuffle(states, tiles: n, side: side))
    }

    /// Idefics3VisionEmbeddings: the patch convolution plus learned positions, where a tile of rows x cols real
    /// patches takes the positions of the fractional coordinates (i / rows, j / cols) bucketed into the
    /// position grid (float32 arithmetic and torch.bucketize(right=True) as the reference computes them).
    /// pixels: [N, 3, S, S] -> [N * side^2, C].
    func tileEmbeddings(_ pixels: Tensor, side: Int, patchMask: [UInt8]?) -> Tensor {
        let v = config.visionConfig, n = pixels.shape[0], c = v.hiddenSize, grid = config.patchesPerSide
        let h = vision.patchEmbedding(im2colPatches(pixels, channels: v.numChannels, height: side * v.patchSize,
                                                     width: side * v.patchSize, patch: v.patchSize))
        // torch.arange(1/grid, 1.0, 1/grid): computed in double, stored as float32.
        let step = 1.0 / Double(grid)
        let count = Int(((1.0 - step) / step).rounded(.up))
        let boundaries = (0 ..< count).map { Float(step + Double($0) * step) }
        func buckets(_ real: Int) -> [Int] {
            let stride = 1 / Float(max(real, 1))
            return (0 ..< side).map { i in
                let x = min(Float(i) * stride, 1 - 1e-6)
                return boundaries.reduce(0) { $0 + ($1 <= x ? 1 : 0) }
            }
        }
        let full = buckets(side)
        for t in 0 ..< n {
            var rows = side, cols = side
            if let patchMask {
                rows = (0 ..< side).reduce(0) { $0 + Int(patchMask[t * side * side + $1 * side]) }
                cols = (0 ..< side).reduce(0) { $0 + Int(patchMask[t * side * side + $1]) }
            }
            let bh = rows == side ? full : buckets(rows), bw = cols == side ? full : buckets(cols)
            for i in 0 ..< side {
                for j in 0 ..< side {
                    let row = t * side * side + i * side + j
                    let real = patchMask.map { $0[row] != 0 } ?? true
                    let position = real ? bh[i] * grid + bw[j] : 0
                    let dst = h.pointer + row * c, src = vision.positionTable.pointer + position * c
                    for k in 0 ..< c { dst[k] += src[k] }
                }
            }
        }
        return h
    }

    /// Idefics3Connector.pixel_shuffle: token (i', j') of the side/s grid is the concatenation, over di then dj
    /// in 0..<s, of the states at (i'*s + di, j'*s + dj). states: [N * side^2, C] -> [N * (side/s)^2, C * s^2].
    func pixelShuffle(_ states: Tensor, tiles n: Int, side: Int) -> Tensor {
        let s = config.scaleFactor, c = states.shape[1], out = side / s
        let shuffled = Tensor(uninitialized: [n * out * out, c * s * s])
        var dst = shuffled.pointer
        for t in 0 ..< n {
            for i in 0 ..< out {
                for j in 0 ..< out {
                    for di in 0 ..< s {
                        for dj in 0 ..< s {
                            dst.update(from: states.pointer + (t * side * side + (i * s + di) * side + j * s + dj) * c, count: c)
                            dst += c
                        }
                    }
                }
            }
        }
        return shuffled
    }

    /// Token embeddings with the image tokens replaced, in order, by the tiles' features. ids: [T] -> [T, C].
    /// The image-token count must equal tiles x tokensPerTile.
    public func embed(ids: [Int], pixels: PixelInputs?) throws -> Tensor {
        let embedded = try language.embed(ids)
        let slots = ids.indices.filter { ids[$0] == config.imageTokenID }
        let tiles = pixels?.count ?? 0
        guard let pixels, tiles > 0 else {
            guard slots.isEmpty else {
                throw ModelError.invalidInput("the prompt has \(slots.count) image tokens but no image")
            }
            return embedded
        }
        let features = try imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask)
        guard slots.count == features.shape[0] else {
            throw ModelError.invalidInput("the prompt has \(slots.count) image tokens but the \(tiles) tile(s) give \(features.shape[0]) (\(features.shape[0] / tiles) each)")
        }
        let c = config.textConfig.hiddenSize
        for (k, row) in slots.enumerated() {
            (embedded.pointer + row * c).update(from: features.pointer + k * c, count: c)
        }
        return embedded
    }
}

// MARK: - Registry entry

extension Idefics3Model: LlamaBackedModel {
    public static let family = ModelFamily(name: "Idefics3/SmolVLM", modelTypes: Idefics3Config.modelTypes,
                                           architectures: ["Idefics3ForConditionalGeneration", "SmolVLMForConditionalGeneration"],
                                           kind: .chat, loadStored: { .generative(try Idefics3Model.load(directory: $0, storage: $1)) }) {
        .generative(try Idefics3Model.load(directory: $0))
    }
    public var modelType: String { config.modelType }
    public var supportsImages: Bool { true }

    public func prefill(_ input: PreparedInput, state: any GenerationState) throws -> Tensor {
        let s = try LlamaModel.decoderState(state, model: modelType)
        return try language.run(embeddings: embed(ids: input.ids, pixels: input.pixels), input: input, state: s)
    }

    public func encodeImages(_ pixels: PixelInputs) throws -> Tensor { try imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask) }

    public func makeInputProcessor(directory: URL, options: InputProcessingOptions) throws -> any GenerativeInputProcessor {
        try Idefics3InputProcessor.load(directory: directory, config: config, contextLength: contextLength, options: options)
    }
}
