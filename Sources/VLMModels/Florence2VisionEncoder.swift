import Foundation
import VLMLayers
import VLMTensor

// MARK: - Projector

/// Florence2MultiModalProjector: the last DaViT feature map plus learned 2-D positions and the temporal
/// embedding of frame 0, then [mean over tokens; every token] projected and normed. Hugging Face names are
/// relative to `model.multi_modal_projector`.
final class Florence2Projector: @unchecked Sendable {
    let rowEmbeddings: Tensor     // image_position_embed.row_embeddings.weight [max_position_embeddings, D / 2]
    let columnEmbeddings: Tensor  // image_position_embed.column_embeddings.weight [max_position_embeddings, D - D / 2]
    let temporal: [Float]         // visual_temporal_embed.pos_idx_to_embed [max_temporal_embeddings, D], row 0
    let projection: Linear        // image_projection.weight [projection_dim, D] (no bias)
    let norm: LayerNorm           // image_proj_norm [projection_dim]
    let dim: Int

    init(_ s: WeightScope, config: Florence2VisionConfig) throws {
        let d = config.featureDim, rows = config.maxPositionEmbeddings
        dim = d
        rowEmbeddings = try s.tensor("image_position_embed.row_embeddings.weight", shape: [rows, d / 2])
        columnEmbeddings = try s.tensor("image_position_embed.column_embeddings.weight", shape: [rows, d - d / 2])
        // A persistent buffer in the Hub files and in save_pretrained's; transformers' initialiser recomputes it
        // when absent (and random weights have no meaningful value for it): sin(0) = 0, cos(0) = 1, interleaved.
        let key = "visual_temporal_embed.pos_idx_to_embed"
        if s.loader.store != nil, s.contains(key) {
            temporal = Array(try s.tensor(key, shape: [config.maxTemporalEmbeddings, d]).scalars.prefix(d))
        } else {
            temporal = (0 ..< d).map { $0 % 2 == 0 ? 0 : 1 }
        }
        projection = try Linear(s.scope("image_projection"), in: d, out: config.projectionDim, bias: false)
        try s.applyReducedCompute(.all, [projection])
        norm = try LayerNorm(s.scope("image_proj_norm"), dim: config.projectionDim, eps: 1e-5)
    }

    /// features: [B, H, W, D] -> [B, 1 + H*W, projection_dim] (the mean-pooled token first). H and W must not
    /// exceed the position tables (checked by the caller).
    func callAsFunction(_ features: Tensor) -> Tensor {
        let (b, h, w, d) = (features.shape[0], features.shape[1], features.shape[2], features.shape[3])
        let n = h * w, half = d - d / 2
        let tokens = Tensor(uninitialized: [b, 1 + n, d])
        var sum = [Double](repeating: 0, count: d)
        for bi in 0 ..< b {
            for i in 0 ..< d { sum[i] = 0 }
            for y in 0 ..< h {
                for x in 0 ..< w {
                    let src = features.pointer + ((bi * h + y) * w + x) * d
                    let dst = tokens.pointer + (bi * (1 + n) + 1 + y * w + x) * d
                    let column = columnEmbeddings.pointer + x * half, row = rowEmbeddings.pointer + y * (d / 2)
                    for i in 0 ..< d {
                        // (feature + position) first, then the temporal term, in transformers' order of additions.
                        let v = (src[i] + (i < half ? column[i] : row[i - half])) + temporal[i]
                        dst[i] = v
                        sum[i] += Double(v)
                    }
                }
            }
            let mean = tokens.pointer + bi * (1 + n) * d
            for i in 0 ..< d { mean[i] = Float(sum[i] / Double(n)) }
        }
        return norm(projection(tokens))
    }
}

// MARK: - Encoder

/// Florence-2's image side (get_image_features): DaViT then the projector, loaded from a florence2 checkpoint
/// (`model.vision_tower.*`, `model.multi_modal_projector.*`, the layout of the Hub's florence-community files and
/// of transformers 5.25 save_pretrained). The BART keys are left to the language model.
public final class Florence2VisionEncoder: @unchecked Sendable {
    public let config: Florence2VisionConfig
    let stages: [DaViTStage]          // model.vision_tower
    let projector: Florence2Projector // model.multi_modal_projector

    /// The largest input side accepted: stage-0 maps grow with the square of the side (Florence-2 itself runs at
    /// 768; a 4096 px square would already hold ~1M tokens of 128+ channels per map).
    public static let maxInputSide = 4096

    public init(_ loader: WeightLoader, config: Florence2VisionConfig) throws {
        self.config = config
        let model = try loader.scope(oneOf: ["model"], probe: "vision_tower.convs.0.conv.weight")
        let tower = model.scope("vision_tower")
        stages = try (0 ..< config.stageCount).map { try DaViTStage(tower, config: config, stage: $0) }
        projector = try Florence2Projector(model.scope("multi_modal_projector"), config: config)
    }

    /// Loads config.json (model_type florence2) and the vision and projector tensors of `directory`; a missing or
    /// mis-shaped tensor, or an unknown one outside the language model, is an error naming it.
    public static func load(directory: URL) throws -> Florence2VisionEncoder {
        let (config, _) = try Checkpoint.config(Florence2Config.self, in: directory, types: Florence2Config.modelTypes) { c, path in
            try c.visionConfig.validate { ModelError.invalidConfig(path: path, reason: $0) }
        }
        return try Checkpoint.weights(directory: directory, ignorable: isLanguageModelKey) {
            try Florence2VisionEncoder($0, config: config.visionConfig)
        }
    }

    /// A validated config with seeded random weights (benchmarks).
    public static func random(config: Florence2VisionConfig, seed: UInt64) throws -> Florence2VisionEncoder {
        try config.validate { ModelError.invalidConfig(path: "(random)", reason: $0) }
        return try Checkpoint.random(seed: seed) { try Florence2VisionEncoder($0, config: config) }
    }

    /// Keys of the BART language model and its head (not this component's).
    static func isLanguageModelKey(_ key: String) -> Bool {
        key.hasPrefix("model.language_model.") || key.hasPrefix("lm_head.")
    }

    /// Side lengths of each stage's feature map for an input of height x width (0 where a stage empties it).
    public func stageGrids(height: Int, width: Int) -> [(height: Int, width: Int)] {
        var (h, w) = (height, width)
        return stages.map { stage in
            h = h > 0 ? stage.embed.outputSize(h) : 0
            w = w > 0 ? stage.embed.outputSize(w) : 0
            return (h, w)
        }
    }

    /// Image tokens per image (1 + final height x width): the processor's image_seq_length.
    public func imageTokenCount(height: Int, width: Int) -> Int {
        let last = stageGrids(height: height, width: width).last ?? (0, 0)
        return 1 + last.height * last.width
    }

    /// Every stage's output. pixelValues: [B, in_channels, H, W] (the processor's NCHW) -> per stage [B, H_i, W_i, C_i]
    /// (channels last; transformers' [B, C_i, H_i, W_i] transposed).
    public func featureMaps(pixelValues: Tensor) throws -> [Tensor] {
        try validate(pixelValues)
        var h = channelsLast(pixelValues)
        return stages.map { stage in
            h = stage(h)
            return h
        }
    }

    /// get_image_features(pixel_values).pooler_output: [B, in_channels, H, W] -> [B, 1 + H_last * W_last, projection_dim].
    public func imageFeatures(pixelValues: Tensor) throws -> Tensor {
        guard let last = try featureMaps(pixelValues: pixelValues).last else {
            throw ModelError.invalidConfig(path: "vision_config", reason: "embed_dim has no stages")
        }
        return projector(last)
    }

    private func validate(_ pixels: Tensor) throws {
        guard pixels.rank == 4, pixels.shape[1] == config.inChannels else {
            throw ModelError.invalidInput("Florence-2 pixel_values must be [batch, \(config.inChannels), height, width]; got \(pixels.shape)")
        }
        let (b, h, w) = (pixels.shape[0], pixels.shape[2], pixels.shape[3])
        guard b >= 1, h >= 1, w >= 1, h <= Self.maxInputSide, w <= Self.maxInputSide else {
            throw ModelError.invalidInput("Florence-2 pixel_values \(pixels.shape): batch and sides must be 1 ... \(Self.maxInputSide)")
        }
        let grids = stageGrids(height: h, width: w)
        if let empty = grids.firstIndex(where: { $0.height < 1 || $0.width < 1 }) {
            throw ModelError.invalidInput("a \(h)x\(w) image is too small for Florence-2: DaViT stage \(empty) leaves no feature map")
        }
        if let last = grids.last, last.height > config.maxPositionEmbeddings || last.width > config.maxPositionEmbeddings {
            throw ModelError.invalidInput("a \(h)x\(w) image gives a \(last.height)x\(last.width) feature map; the position tables "
                + "(vision_config.max_position_embeddings) hold \(config.maxPositionEmbeddings) per side")
        }
    }
}

/// [B, C, H, W] -> [B, H, W, C]
func channelsLast(_ x: Tensor) -> Tensor {
    let (b, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    let out = Tensor(uninitialized: [b, x.shape[2], x.shape[3], c])
    for bi in 0 ..< b { transpose(x.pointer + bi * c * hw, rows: c, cols: hw, into: out.pointer + bi * hw * c) }
    return out
}
