import Foundation
import VLMImage
import VLMLayers
import VLMTensor

// MARK: - Configuration

/// `text_config` of a CLIPConfig. Defaults are transformers' CLIPTextConfig defaults.
public struct CLIPTextConfig: Decodable, Sendable {
    public var vocabSize = 49408
    public var hiddenSize = 512
    public var intermediateSize = 2048
    public var numHiddenLayers = 12
    public var numAttentionHeads = 8
    public var maxPositionEmbeddings = 77
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5
    public var padTokenID: Int? = 1
    public var bosTokenID: Int? = 49406
    /// An int or a list in config.json; pooling uses the first.
    public var eosTokenID: Int? = 49407

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case padTokenID = "pad_token_id", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID) ?? padTokenID
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID) ?? bosTokenID
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenID) {
            eosTokenID = ids.first
        } else {
            eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) ?? eosTokenID
        }
    }
}

/// `vision_config` of a CLIPConfig. Defaults are transformers' CLIPVisionConfig defaults (ViT-B/32).
public struct CLIPVisionConfig: Decodable, Sendable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
        case patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? numChannels
        imageSize = try c.squareSize(.imageSize, model: "CLIP") ?? imageSize
        patchSize = try c.squareSize(.patchSize, model: "CLIP") ?? patchSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
    }

    public var patchesPerSide: Int { imageSize / patchSize }
    public var numPositions: Int { patchesPerSide * patchesPerSide + 1 }
}

/// config.json of `CLIPModel` (model_type "clip").
public struct CLIPConfig: Decodable, Sendable {
    public var modelType = "clip"
    public var textConfig = CLIPTextConfig()
    public var visionConfig = CLIPVisionConfig()
    public var projectionDim = 512
    public var logitScaleInitValue: Float = 2.6592

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", textConfig = "text_config", visionConfig = "vision_config"
        case textConfigDict = "text_config_dict", visionConfigDict = "vision_config_dict"
        case projectionDim = "projection_dim", logitScaleInitValue = "logit_scale_init_value"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? modelType
        // Old checkpoints carry `*_config_dict`, which transformers lets override `*_config` (CLIPConfig.__post_init__).
        textConfig = try c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfigDict)
            ?? c.decodeIfPresent(CLIPTextConfig.self, forKey: .textConfig) ?? textConfig
        visionConfig = try c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfigDict)
            ?? c.decodeIfPresent(CLIPVisionConfig.self, forKey: .visionConfig) ?? visionConfig
        projectionDim = try c.decodeIfPresent(Int.self, forKey: .projectionDim) ?? projectionDim
        logitScaleInitValue = try c.decodeIfPresent(Float.self, forKey: .logitScaleInitValue) ?? logitScaleInitValue
    }

    /// Architectures of OpenAI's released CLIPs, for benchmarks with random weights (`vlm bench --config b32`).
    public static func preset(_ name: String) -> CLIPConfig? {
        var c = CLIPConfig()
        switch name.lowercased() {
        case "b32", "vit-b/32", "vit-b-32": break  // transformers' defaults are ViT-B/32
        case "b16", "vit-b/16", "vit-b-16": c.visionConfig.patchSize = 16
        case "l14", "vit-l/14", "vit-l-14":
            c.visionConfig.patchSize = 14
            c.visionConfig.hiddenSize = 1024
            c.visionConfig.intermediateSize = 4096
            c.visionConfig.numHiddenLayers = 24
            c.visionConfig.numAttentionHeads = 16
            c.textConfig.hiddenSize = 768
            c.textConfig.intermediateSize = 3072
            c.textConfig.numAttentionHeads = 12
            c.projectionDim = 768
        default: return nil
        }
        return c
    }

    public static let presetNames = ["b32", "b16", "l14"]

    /// Checks what the Decodable cannot: sizes that must divide, activations we implement.
    public func validate(path: String) throws {
        func fail(_ reason: String) -> ModelError { .invalidConfig(path: path, reason: reason) }
        let v = visionConfig, t = textConfig
        for (name, value) in [("vision_config.hidden_size", v.hiddenSize), ("vision_config.num_hidden_layers", v.numHiddenLayers),
                              ("vision_config.num_attention_heads", v.numAttentionHeads), ("vision_config.image_size", v.imageSize),
                              ("vision_config.patch_size", v.patchSize), ("vision_config.intermediate_size", v.intermediateSize),
                              ("vision_config.num_channels", v.numChannels), ("text_config.hidden_size", t.hiddenSize),
                              ("text_config.num_attention_heads", t.numAttentionHeads), ("text_config.vocab_size", t.vocabSize),
                              ("text_config.max_position_embeddings", t.maxPositionEmbeddings),
                              ("text_config.intermediate_size", t.intermediateSize), ("projection_dim", projectionDim)]
        where value <= 0 || value > 1 << 20 {
            throw fail("\(name) = \(value) is out of range")
        }
        if v.numHiddenLayers < 0 || t.numHiddenLayers < 0 || t.numHiddenLayers > 1024 || v.numHiddenLayers > 1024 {
            throw fail("num_hidden_layers out of range")
        }
        if v.imageSize % v.patchSize != 0 { throw fail("vision_config.image_size \(v.imageSize) is not a multiple of patch_size \(v.patchSize)") }
        if v.hiddenSize % v.numAttentionHeads != 0 { throw fail("vision_config.hidden_size is not a multiple of num_attention_heads") }
        if t.hiddenSize % t.numAttentionHeads != 0 { throw fail("text_config.hidden_size is not a multiple of num_attention_heads") }
        for (name, act) in [("vision_config.hidden_act", v.hiddenAct), ("text_config.hidden_act", t.hiddenAct)]
        where Activation(huggingFace: act) == nil {
            throw fail("\(name) '\(act)' is not supported")
        }
    }
}

// MARK: - Vision

/// CLIP's image tower: CLIPVisionTransformer (Sources/VLMModels/CLIPVision.swift) + visual_projection.
private final class CLIPVisionTower: @unchecked Sendable {
    let transformer: CLIPVisionTransformer  // vision_model.*
    let projection: Linear                  // visual_projection.weight [P, C], no bias

    init(_ root: WeightScope, config: CLIPVisionConfig, projectionDim: Int) throws {
        transformer = try CLIPVisionTransformer(root.scope("vision_model"), config: config)
        projection = try Linear(root.scope("visual_projection"), in: config.hiddenSize, out: projectionDim, bias: false)
    }

    /// pixels: [B, channels, S, S] -> [B, P] (the projected pooled output, get_image_features).
    func callAsFunction(_ pixels: Tensor) -> Tensor { projection(transformer.pooled(pixels)) }
}

// MARK: - Text

/// CLIPTextTransformer + text_projection: tokens + positions -> causal encoder -> final LN at the pooled token -> projection.
private final class CLIPTextTower: @unchecked Sendable {
    let config: CLIPTextConfig
    let tokenEmbedding: Embedding     // text_model.embeddings.token_embedding.weight [vocab, C]
    let positionEmbedding: Embedding  // text_model.embeddings.position_embedding.weight [max_positions, C]
    let encoder: PreNormEncoder       // text_model.encoder.layers.{i}
    let finalLayerNorm: LayerNorm     // text_model.final_layer_norm
    let projection: Linear            // text_projection.weight [P, C], no bias
    /// Sequences per encoder call; sorted by length so padding waste stays small.
    let maxBatch = 32

    init(_ root: WeightScope, config: CLIPTextConfig, projectionDim: Int) throws {
        self.config = config
        let s = root.scope("text_model")
        let c = config.hiddenSize
        tokenEmbedding = try Embedding(s.scope("embeddings.token_embedding"), count: config.vocabSize, dim: c)
        positionEmbedding = try Embedding(s.scope("embeddings.position_embedding"), count: config.maxPositionEmbeddings, dim: c)
        encoder = try PreNormEncoder(s.scope("encoder"), count: config.numHiddenLayers, dim: c, heads: config.numAttentionHeads,
                                     intermediate: config.intermediateSize,
                                     activation: Activation(huggingFace: config.hiddenAct) ?? .quickGelu, eps: config.layerNormEps)
        finalLayerNorm = try LayerNorm(s.scope("final_layer_norm"), dim: c, eps: config.layerNormEps)
        projection = try Linear(root.scope("text_projection"), in: c, out: projectionDim, bias: false)
    }

    func pooledIndex(_ ids: [Int]) -> Int { config.pooledIndex(ids) }

    /// ids: B sequences -> [B, P] (get_text_features). Each sequence stops at its pooled token: attention is
    /// causal, so later tokens cannot change it. Sequences are batched by length.
    func callAsFunction(_ ids: [[Int]]) throws -> Tensor {
        let c = config.hiddenSize
        for (n, seq) in ids.enumerated() {
            guard !seq.isEmpty else { throw ModelError.invalidInput("text \(n) has no tokens") }
            guard seq.count <= config.maxPositionEmbeddings else {
                throw ModelError.invalidInput("text \(n) has \(seq.count) tokens; the model takes at most \(config.maxPositionEmbeddings)")
            }
            if let bad = seq.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw ModelError.invalidInput("text \(n) has token id \(bad) outside the vocabulary (0..<\(config.vocabSize))")
            }
        }
        let lengths = ids.map { pooledIndex($0) + 1 }
        let order = ids.indices.sorted { lengths[$0] < lengths[$1] }
        let pooled = Tensor(uninitialized: [ids.count, c])
        var start = 0
        while start < order.count {
            let group = Array(order[start ..< min(start + maxBatch, order.count)])
            start += group.count
            let t = group.map { lengths[$0] }.max() ?? 1
            let h = Tensor(zeros: [group.count * t, c])
            let pe = UnsafeMutablePointer<Float>.allocate(capacity: c)
            defer { pe.deallocate() }
            for (bi, index) in group.enumerated() {
                for pos in 0 ..< lengths[index] {
                    // copyRow: the tables may be packed (bf16/int8/int4 with --precision) and are widened per row.
                    let row = h.pointer + (bi * t + pos) * c
                    tokenEmbedding.copyRow(ids[index][pos], into: row)
                    positionEmbedding.copyRow(pos, into: pe)
                    for j in 0 ..< c { row[j] += pe[j] }
                }
                // Rows past this sequence's end stay zero: causal attention keeps them out of its pooled token.
            }
            let encoded = encoder(h, batch: group.count, length: t, causal: true)
            for (bi, index) in group.enumerated() {
                (pooled.pointer + index * c).update(from: encoded.pointer + (bi * t + lengths[index] - 1) * c, count: c)
            }
        }
        return projection(finalLayerNorm(pooled))
    }
}

// MARK: - Model

/// CLIPModel: image and text towers projected into one space, with the learned temperature.
public final class CLIPModel: @unchecked Sendable {
    public let config: CLIPConfig
    /// exp(logit_scale), the multiplier of cosine similarities in logits_per_image.
    public let logitScale: Float
    private let vision: CLIPVisionTower
    private let text: CLIPTextTower

    /// Loads config.json and the safetensors weights of a Hugging Face CLIP checkpoint directory, unchanged.
    /// `storage`: how the towers' linear weights are kept (`--precision`: Precision says how each computes).
    public static func load(directory: URL, storage: WeightStorage = .float32) throws -> CLIPModel {
        let (config, _) = try Checkpoint.config(CLIPConfig.self, in: directory, types: ["clip"]) { try $0.validate(path: $1) }
        return try Checkpoint.weights(directory: directory, storage: storage, int8Compute: .standard(familyDefault: .dualEncoderDefault),
                                      ignorable: Checkpoint.isPositionIDsBuffer) {
            try CLIPModel(config: config, weights: $0.scope(""))
        }
    }

    /// A model of `config` with random weights (benchmarks; nothing meaningful comes out).
    public static func random(config: CLIPConfig, seed: UInt64 = 0, storage: WeightStorage = .float32) throws -> CLIPModel {
        try config.validate(path: "config")
        return try Checkpoint.random(seed: seed, storage: storage, int8Compute: .standard(familyDefault: .dualEncoderDefault)) { try CLIPModel(config: config, weights: $0.scope("")) }
    }

    // MARK: - Weights


    init(config: CLIPConfig, weights root: WeightScope) throws {
        self.config = config
        vision = try CLIPVisionTower(root, config: config.visionConfig, projectionDim: config.projectionDim)
        text = try CLIPTextTower(root, config: config.textConfig, projectionDim: config.projectionDim)
        logitScale = exp(try root.tensor("logit_scale", shape: [])[0])  // logit_scale: [] (a scalar)
    }

    public var imageSize: Int { config.visionConfig.imageSize }
    public var embeddingDim: Int { config.projectionDim }
    public var maxTextLength: Int { config.textConfig.maxPositionEmbeddings }

    /// pixelValues: [B, channels, S, S] -> [B, P], unnormalised (get_image_features).
    public func imageFeatures(_ pixelValues: Tensor) throws -> Tensor {
        let v = config.visionConfig
        guard pixelValues.rank == 4, pixelValues.shape[1] == v.numChannels,
              pixelValues.shape[2] == v.imageSize, pixelValues.shape[3] == v.imageSize else {
            throw ModelError.invalidInput("pixel_values have shape \(pixelValues.shape); this model takes [B, \(v.numChannels), \(v.imageSize), \(v.imageSize)]")
        }
        if pixelValues.shape[0] == 0 { return Tensor(zeros: [0, config.projectionDim]) }
        return vision(pixelValues)
    }

    /// inputIDs: B token sequences (BOS ... EOS, unpadded) -> [B, P], unnormalised (get_text_features).
    public func textFeatures(_ inputIDs: [[Int]]) throws -> Tensor {
        if inputIDs.isEmpty { return Tensor(zeros: [0, config.projectionDim]) }
        return try text(inputIDs)
    }
}

// MARK: - Registry entry

extension CLIPModel: DualEncoder {
    public static let family = ModelFamily(name: "CLIP", modelTypes: ["clip"], architectures: ["CLIPModel"],
                                           kind: .embedding, loadStored: { .dualEncoder(try CLIPModel.load(directory: $0, storage: $1)) }) {
        .dualEncoder(try CLIPModel.load(directory: $0))
    }
    public var modelType: String { config.modelType }
    public var scoring: ScoreFunction { .softmax(logitScale: logitScale) }
    /// Unpadded, truncated to the position table with EOS kept: CLIP pools the EOS token under a causal mask.
    public var textPolicy: TextPolicy { TextPolicy(maxLength: maxTextLength) }
    public var defaultImageProcessor: String { "CLIPImageProcessor" }
    public func imageFeatures(_ pixels: PixelInputs) throws -> Tensor { try imageFeatures(pixels.pixelValues) }
}

// MARK: - Rules shared with training (VLMTraining)

extension CLIPVisionConfig {
    /// im2col for the stride-p patch convolution. pixels: [B, channels, S, S] -> [B*g*g, channels*p*p]: row
    /// (b, gy, gx) holds the patch's pixels in (channel, ky, kx) order, matching the conv weight's layout.
    public func patches(_ pixels: Tensor) -> Tensor {
        im2colPatches(pixels, channels: numChannels, size: imageSize, patch: patchSize)
    }
}

/// im2col for a stride-p patch convolution over square images (CLIP, SigLIP). pixels: [B, channels, S, S] ->
/// [B*g*g, channels*p*p] with g = S/p: row (b, gy, gx) holds the patch's pixels in (channel, ky, kx) order, the
/// conv weight's layout, so the convolution is one GEMM.
func im2colPatches(_ pixels: Tensor, channels ch: Int, size s: Int, patch p: Int) -> Tensor {
    im2colPatches(pixels, channels: ch, height: s, width: s, patch: p)
}

/// The same over [B, channels, H, W] -> [B*(H/p)*(W/p), channels*p*p], patches in row-major grid order.
func im2colPatches(_ pixels: Tensor, channels ch: Int, height: Int, width: Int, patch p: Int) -> Tensor {
    let b = pixels.shape[0], gh = height / p, gw = width / p
    let patches = Tensor(uninitialized: [b * gh * gw, ch * p * p])
    var dst = patches.pointer
    for bi in 0 ..< b {
        for gy in 0 ..< gh {
            for gx in 0 ..< gw {
                for k in 0 ..< ch {
                    let plane = pixels.pointer + (bi * ch + k) * height * width
                    for ky in 0 ..< p {
                        dst.update(from: plane + (gy * p + ky) * width + gx * p, count: p)
                        dst += p
                    }
                }
            }
        }
    }
    return patches
}

extension CLIPTextConfig {
    /// The token whose state is pooled, by transformers' CLIPTextTransformer rule: with the legacy
    /// `eos_token_id == 2` the argmax of the ids (the EOS has the highest id in CLIP's vocabulary), otherwise the
    /// first position of `eos_token_id` (or the last token if there is none, where transformers' argmax of an
    /// all-false row would give 0; we keep the whole sequence instead, which is what a user means).
    public func pooledIndex(_ ids: [Int]) -> Int {
        if eosTokenID == 2 || eosTokenID == nil {
            var best = 0
            for (i, id) in ids.enumerated() where id > ids[best] { best = i }
            return best
        }
        return ids.firstIndex(of: eosTokenID ?? -1) ?? (ids.count - 1)
    }
}
