import Foundation
import VLMLayers
import VLMTensor

// MARK: - Vision configuration

/// `vision_config` of a Florence2Config (transformers' Florence2VisionConfig, model_type "florence_vision"): the
/// DaViT stages and the projector's sizes. Defaults are transformers 5.25's (those of Florence-2-large's tower;
/// Florence-2-base's config.json sets embed_dim [128, 256, 512, 1024], num_heads/num_groups [4, 8, 16, 32]).
public struct Florence2VisionConfig: Codable, Sendable {
    public var inChannels = 3
    /// Blocks (one spatial + one channel block each) per stage.
    public var depths = [1, 1, 9, 1]
    /// Kernel, stride and padding of each stage's convolutional patch embedding.
    public var patchSize = [7, 3, 3, 3]
    public var patchStride = [4, 2, 2, 2]
    public var patchPadding = [3, 1, 1, 1]
    /// Whether a stage's LayerNorm runs before its patch convolution (over the input channels) or after it.
    public var patchPrenorm = [false, true, true, true]
    public var embedDim = [128, 256, 512, 1024]
    /// Heads of the spatial window attention, per stage.
    public var numHeads = [4, 8, 16, 32]
    /// Channel groups of the channel attention, per stage.
    public var numGroups = [4, 8, 16, 32]
    /// Side of the square attention windows (feature maps are zero-padded up to a multiple).
    public var windowSize = 12
    public var mlpRatio = 4.0
    public var qkvBias = true
    public var activationFunction = "gelu"
    /// Width of the image tokens handed to the language model.
    public var projectionDim = 1024
    /// Rows of the sinusoidal temporal table (only row 0 is used for one image).
    public var maxTemporalEmbeddings = 100
    /// Rows of the learned row / column position tables: the largest final feature map side.
    public var maxPositionEmbeddings = 50

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", depths, patchSize = "patch_size", patchStride = "patch_stride"
        case patchPadding = "patch_padding", patchPrenorm = "patch_prenorm", embedDim = "embed_dim"
        case numHeads = "num_heads", numGroups = "num_groups", windowSize = "window_size", mlpRatio = "mlp_ratio"
        case qkvBias = "qkv_bias", activationFunction = "activation_function", projectionDim = "projection_dim"
        case maxTemporalEmbeddings = "max_temporal_embeddings", maxPositionEmbeddings = "max_position_embeddings"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? inChannels
        depths = try c.decodeIfPresent([Int].self, forKey: .depths) ?? depths
        patchSize = try c.decodeIfPresent([Int].self, forKey: .patchSize) ?? patchSize
        patchStride = try c.decodeIfPresent([Int].self, forKey: .patchStride) ?? patchStride
        patchPadding = try c.decodeIfPresent([Int].self, forKey: .patchPadding) ?? patchPadding
        patchPrenorm = try c.decodeIfPresent([Bool].self, forKey: .patchPrenorm) ?? patchPrenorm
        embedDim = try c.decodeIfPresent([Int].self, forKey: .embedDim) ?? embedDim
        numHeads = try c.decodeIfPresent([Int].self, forKey: .numHeads) ?? numHeads
        numGroups = try c.decodeIfPresent([Int].self, forKey: .numGroups) ?? numGroups
        windowSize = try c.decodeIfPresent(Int.self, forKey: .windowSize) ?? windowSize
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? mlpRatio
        qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? qkvBias
        activationFunction = try c.decodeIfPresent(String.self, forKey: .activationFunction) ?? activationFunction
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
        maxTemporalEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxTemporalEmbeddings) ?? maxTemporalEmbeddings
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
    }

    public var stageCount: Int { embedDim.count }
    /// Width of the feature map the projector reads (the last stage's).
    public var featureDim: Int { embedDim.last ?? 0 }
    /// Hidden width of stage `i`'s MLPs: int(embed_dim * mlp_ratio), as nn.Linear is built.
    public func mlpHidden(_ i: Int) -> Int { Int(Double(embedDim[i]) * mlpRatio) }
    public var activation: Activation? { Activation(huggingFace: activationFunction) }

    /// Every check transformers would fail on later (or silently mis-size); messages name the key.
    public func validate(fail: (String) -> ModelError) throws {
        let n = embedDim.count
        guard n >= 1, n <= 16 else { throw fail("vision_config.embed_dim has \(n) stages (1 to 16 supported)") }
        let perStage: [(String, Int)] = [("depths", depths.count), ("patch_size", patchSize.count), ("patch_stride", patchStride.count),
                                         ("patch_padding", patchPadding.count), ("patch_prenorm", patchPrenorm.count),
                                         ("num_heads", numHeads.count), ("num_groups", numGroups.count)]
        for (key, count) in perStage where count != n {
            throw fail("vision_config.\(key) has \(count) entries but embed_dim has \(n) stages")
        }
        func check(_ key: String, _ values: [Int], _ range: ClosedRange<Int>) throws {
            for (i, v) in values.enumerated() where !range.contains(v) {
                throw fail("vision_config.\(key)[\(i)] = \(v) is out of range \(range)")
            }
        }
        try check("embed_dim", embedDim, 1 ... 1 << 16)
        try check("depths", depths, 0 ... 1024)
        try check("patch_size", patchSize, 1 ... 64)
        try check("patch_stride", patchStride, 1 ... 64)
        try check("patch_padding", patchPadding, 0 ... 64)
        try check("num_heads", numHeads, 1 ... 1 << 12)
        try check("num_groups", numGroups, 1 ... 1 << 12)
        try check("in_channels", [inChannels], 1 ... 64)
        try check("window_size", [windowSize], 1 ... 1024)
        try check("projection_dim", [projectionDim], 1 ... 1 << 16)
        try check("max_position_embeddings", [maxPositionEmbeddings], 1 ... 1 << 16)
        try check("max_temporal_embeddings", [maxTemporalEmbeddings], 1 ... 1 << 16)
        for i in 0 ..< n {
            if embedDim[i] % numHeads[i] != 0 {
                throw fail("vision_config.embed_dim[\(i)] = \(embedDim[i]) is not a multiple of num_heads[\(i)] = \(numHeads[i])")
            }
            if embedDim[i] % numGroups[i] != 0 {
                throw fail("vision_config.embed_dim[\(i)] = \(embedDim[i]) is not a multiple of num_groups[\(i)] = \(numGroups[i])")
            }
            if mlpHidden(i) < 1 || mlpHidden(i) > 1 << 20 {
                throw fail("vision_config.mlp_ratio = \(mlpRatio) gives an MLP width of \(mlpHidden(i)) at stage \(i)")
            }
        }
        if featureDim % 2 != 0 {
            throw fail("vision_config.embed_dim[-1] = \(featureDim) must be even (sine/cosine temporal table)")
        }
        if activation == nil { throw fail("vision_config.activation_function '\(activationFunction)' is not supported") }
    }
}

// MARK: - Model configuration

/// A Florence2Config (model_type "florence2"): the DaViT `vision_config` and the BART `text_config`.
public struct Florence2Config: Codable, Sendable {
    public var visionConfig = Florence2VisionConfig()
    public var textConfig = BartConfig()
    /// Id of `<image>`, whose positions take the image features (51289 in the Hub checkpoints).
    public var imageTokenId = 51289

    enum CodingKeys: String, CodingKey {
        case visionConfig = "vision_config", textConfig = "text_config", imageTokenId = "image_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        visionConfig = try c.decodeIfPresent(Florence2VisionConfig.self, forKey: .visionConfig) ?? visionConfig
        textConfig = try c.decodeIfPresent(BartConfig.self, forKey: .textConfig) ?? textConfig
        imageTokenId = try c.decodeIfPresent(Int.self, forKey: .imageTokenId) ?? imageTokenId
    }

    public static let modelTypes = ["florence2"]
}
