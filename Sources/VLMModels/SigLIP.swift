import Foundation
import VLMImage
import VLMLayers
import VLMTensor
import VLMTokenizers

// MARK: - Configuration

/// `text_config` of a SiglipConfig or Siglip2Config (identical). Defaults are transformers' SiglipTextConfig
/// defaults.
public struct SigLIPTextConfig: Decodable, Sendable {
    public var vocabSize = 32000
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var maxPositionEmbeddings = 64
    public var hiddenAct = "gelu_pytorch_tanh"
    public var layerNormEps: Float = 1e-6
    public var padTokenID: Int? = 1
    /// Width of `head`, the text projection; transformers defaults it to hidden_size (SiglipTextConfig.__post_init__).
    public var projectionSize: Int? = nil

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case padTokenID = "pad_token_id", projectionSize = "projection_size"
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
        projectionSize = try c.decodeIfPresent(Int.self, forKey: .projectionSize) ?? projectionSize
    }

    /// The width of text_embeds.
    public var projectionWidth: Int { projectionSize ?? hiddenSize }
}

/// config.json of `SiglipModel` (model_type "siglip", also the Hub's SigLIP2 FixRes checkpoints) and
/// `Siglip2Model` (model_type "siglip2", NaFlex).
public struct SigLIPConfig: Decodable, Sendable {
    public var modelType = "siglip"
    public var textConfig = SigLIPTextConfig()
    public var visionConfig = SigLIPVisionConfig()

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", textConfig = "text_config", visionConfig = "vision_config"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? modelType
        textConfig = try c.decodeIfPresent(SigLIPTextConfig.self, forKey: .textConfig) ?? textConfig
        visionConfig = try c.decodeIfPresent(SigLIPVisionConfig.self, forKey: .visionConfig) ?? visionConfig
    }

    /// SigLIP2 (Siglip2Model): patch-sequence input with a resized position table.
    public var isNaFlex: Bool { modelType == "siglip2" }

    /// Checks what the Decodable cannot: sizes that must divide, activations we implement, towers that meet.
    public func validate(path: String) throws {
        func fail(_ reason: String) -> ModelError { .invalidConfig(path: path, reason: reason) }
        let t = textConfig
        for (name, value) in [("hidden_size", t.hiddenSize), ("intermediate_size", t.intermediateSize),
                              ("num_attention_heads", t.numAttentionHeads), ("vocab_size", t.vocabSize),
                              ("max_position_embeddings", t.maxPositionEmbeddings), ("projection_size", t.projectionWidth)]
        where value <= 0 || value > 1 << 24 {
            throw fail("text_config.\(name) = \(value) is out of range")
        }
        if t.numHiddenLayers < 0 || t.numHiddenLayers > 1024 { throw fail("text_config.num_hidden_layers = \(t.numHiddenLayers) is out of range") }
        if t.hiddenSize % t.numAttentionHeads != 0 {
            throw fail("text_config.hidden_size \(t.hiddenSize) is not a multiple of num_attention_heads \(t.numAttentionHeads)")
        }
        if Activation(huggingFace: t.hiddenAct) == nil { throw fail("text_config.hidden_act '\(t.hiddenAct)' is not supported") }
        try visionConfig.validate(naflex: isNaFlex, fail: fail)
        // logits_per_text = text_embeds @ image_embeds.T: the two widths must agree.
        if t.projectionWidth != visionConfig.hiddenSize {
            throw fail("text_config.projection_size \(t.projectionWidth) differs from vision_config.hidden_size \(visionConfig.hiddenSize) (the image embedding width)")
        }
    }
}

// MARK: - Text

/// SiglipTextTransformer: tokens + positions -> bidirectional encoder (no causal mask, no attention mask: the
/// padding is attended as in training) -> final_layer_norm -> the LAST position -> head.
final class SigLIPTextTower: @unchecked Sendable {
    let config: SigLIPTextConfig
    let tokenEmbedding: Embedding     // text_model.embeddings.token_embedding.weight [vocab, C]
    let positionEmbedding: Embedding  // text_model.embeddings.position_embedding.weight [max_positions, C]
    let encoder: PreNormEncoder       // text_model.encoder.layers.{i}
    let finalLayerNorm: LayerNorm     // text_model.final_layer_norm
    let head: Linear                  // text_model.head.{weight [P, C], bias [P]}
    /// Sequences per encoder call.
    let maxBatch = 32

    init(_ s: WeightScope, config: SigLIPTextConfig) throws {
        self.config = config
        let c = config.hiddenSize
        tokenEmbedding = try Embedding(s.scope("embeddings.token_embedding"), count: config.vocabSize, dim: c)
        positionEmbedding = try Embedding(s.scope("embeddings.position_embedding"), count: config.maxPositionEmbeddings, dim: c)
        encoder = try PreNormEncoder(s.scope("encoder"), count: config.numHiddenLayers, dim: c, heads: config.numAttentionHeads,
                                     intermediate: config.intermediateSize,
                                     activation: Activation(huggingFace: config.hiddenAct) ?? .geluTanh, eps: config.layerNormEps)
        finalLayerNorm = try LayerNorm(s.scope("final_layer_norm"), dim: c, eps: config.layerNormEps)
        head = try Linear(s.scope("head"), in: c, out: config.projectionWidth)
    }

    /// ids: B sequences (as the processor made them: padded to max_length) -> [B, P] (get_text_features without an
    /// attention mask). Each sequence is encoded as it is; sequences of different lengths share a call with the
    /// shorter ones' extra keys masked, which leaves every real position exactly as alone.
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
        let order = ids.indices.sorted { ids[$0].count < ids[$1].count }
        let pooled = Tensor(uninitialized: [ids.count, c])
        var start = 0
        while start < order.count {
            let group = Array(order[start ..< min(start + maxBatch, order.count)])
            start += group.count
            let t = group.map { ids[$0].count }.max() ?? 1
            let h = Tensor(zeros: [group.count * t, c])
            var mask = [UInt8](repeating: 0, count: group.count * t)
            let position = Tensor(uninitialized: [c])
            for (bi, index) in group.enumerated() {
                for (pos, id) in ids[index].enumerated() {
                    let row = h.pointer + (bi * t + pos) * c
                    tokenEmbedding.copyRow(id, into: row)
                    positionEmbedding.copyRow(pos, into: position.pointer)
                    for j in 0 ..< c { row[j] += position.pointer[j] }
                    mask[bi * t + pos] = 1
                }
            }
            let ragged = group.contains { ids[$0].count != t }
            // pooled_output = last_hidden_state[:, -1, :]: the last position, padding or not; the last layer runs
            // only there (its other positions are never read).
            let last = group.map { ids[$0].count - 1 }
            let encoded = encoder(h, batch: group.count, length: t, keyMask: ragged ? mask : nil, rows: last)
            for (bi, index) in group.enumerated() {
                (pooled.pointer + index * c).update(from: encoded.pointer + bi * c, count: c)
            }
        }
        return head(finalLayerNorm(pooled))
    }
}

// MARK: - Model

/// SiglipModel / Siglip2Model: image and text towers in one space, scored by a sigmoid with a learned scale and
/// bias. The vision tower takes fixed-size pixels (siglip) or NaFlex patch sequences (siglip2, SigLIP2.swift).
public final class SigLIPModel: @unchecked Sendable {
    public let config: SigLIPConfig
    /// exp(logit_scale), the multiplier of cosine similarities.
    public let logitScale: Float
    /// logit_bias, added to every logit.
    public let logitBias: Float
    let vision: SigLIPVisionTransformer
    let text: SigLIPTextTower

    /// Loads config.json and the safetensors weights of a Hugging Face SigLIP or SigLIP2 checkpoint, unchanged.
    /// `storage`: how the towers' linear weights are kept (`--precision`: Precision says how each computes).
    public static func load(directory: URL, storage: WeightStorage = .float32) throws -> SigLIPModel {
        var (config, type) = try Checkpoint.config(SigLIPConfig.self, in: directory, types: ["siglip", "siglip2"]) { _, _ in }
        config.modelType = type
        try config.validate(path: ConfigFile.url(in: directory).path)
        let validated = config
        return try Checkpoint.weights(directory: directory, storage: storage, int8Compute: .standard(familyDefault: .dualEncoderDefault),
                                      ignorable: Checkpoint.isPositionIDsBuffer) {
            try SigLIPModel(config: validated, weights: $0.scope(""))
        }
    }

    /// A model of `config` with random weights (benchmarks; nothing meaningful comes out).
    public static func random(config: SigLIPConfig, seed: UInt64 = 0) throws -> SigLIPModel {
        try config.validate(path: "config")
        return try Checkpoint.random(seed: seed) { try SigLIPModel(config: config, weights: $0.scope("")) }
    }

    // MARK: Weights


    /// The Hub's layout, which transformers 5.25 `save_pretrained` writes unchanged (checked by the fixture
    /// script): text_model.*, vision_model.*, logit_scale [1], logit_bias [1].
    init(config: SigLIPConfig, weights root: WeightScope) throws {
        self.config = config
        vision = try SigLIPVisionTransformer(root.scope("vision_model"), config: config.visionConfig,
                                             input: config.isNaFlex ? .flattened : .convolution)
        text = try SigLIPTextTower(root.scope("text_model"), config: config.textConfig)
        logitScale = exp(try root.tensor("logit_scale", shape: [1])[0])
        logitBias = try root.tensor("logit_bias", shape: [1])[0]
    }

    public var embeddingDim: Int { config.visionConfig.hiddenSize }
    public var maxTextLength: Int { config.textConfig.maxPositionEmbeddings }

    /// pixelValues: [B, channels, S, S] -> [B, P], unnormalised (get_image_features' pooler_output). SigLIP only.
    public func imageFeatures(pixelValues: Tensor) throws -> Tensor {
        let v = config.visionConfig
        guard !config.isNaFlex else {
            throw ModelError.invalidInput("pixel_values have shape \(pixelValues.shape); this SigLIP2 (NaFlex) model takes patches [B, max_num_patches, \(v.patchWidth)] with pixel_attention_mask and spatial_shapes")
        }
        guard pixelValues.rank == 4, pixelValues.shape[1] == v.numChannels,
              pixelValues.shape[2] == v.imageSize, pixelValues.shape[3] == v.imageSize else {
            throw ModelError.invalidInput("pixel_values have shape \(pixelValues.shape); this model takes [B, \(v.numChannels), \(v.imageSize), \(v.imageSize)]")
        }
        let b = pixelValues.shape[0], t = v.patchesPerSide * v.patchesPerSide
        if b == 0 { return Tensor(zeros: [0, embeddingDim]) }
        let hidden = vision.lastHiddenState(vision.embeddings(pixels: pixelValues), batch: b, length: t, keyMask: nil)
        return try pooledOrThrow(hidden, batch: b, length: t, keyMask: nil)
    }

    /// last_hidden_state [B*T, C] -> the head's pooled output, or an error when the config has no head.
    func pooledOrThrow(_ hidden: Tensor, batch: Int, length: Int, keyMask: [UInt8]?) throws -> Tensor {
        guard let pooled = vision.pooled(hidden, batch: batch, length: length, keyMask: keyMask) else {
            throw ModelError.unsupported("this checkpoint has vision_config.vision_use_head = false: its vision tower has no pooled output, so no image embedding")
        }
        return pooled
    }

    /// The vision tower's last_hidden_state [B*T, C] of fixed-size pixels (SigLIP, also without a head).
    func visionLastHiddenState(pixelValues: Tensor) -> Tensor {
        let t = config.visionConfig.patchesPerSide * config.visionConfig.patchesPerSide
        return vision.lastHiddenState(vision.embeddings(pixels: pixelValues), batch: pixelValues.shape[0], length: t, keyMask: nil)
    }

    /// inputIDs: B token sequences as the processor made them (padded to max_length: the last position is pooled)
    /// -> [B, P], unnormalised (get_text_features).
    public func textFeatures(_ inputIDs: [[Int]]) throws -> Tensor {
        if inputIDs.isEmpty { return Tensor(zeros: [0, embeddingDim]) }
        return try text(inputIDs)
    }
}

// MARK: - Registry entry

extension SigLIPModel: DualEncoder {
    /// SigLIP, and the Hub's SigLIP2 FixRes checkpoints, which ship as model_type "siglip" / SiglipModel.
    public static let family = ModelFamily(name: "SigLIP", modelTypes: ["siglip"], architectures: ["SiglipModel"],
                                           kind: .embedding, loadStored: { .dualEncoder(try SigLIPModel.load(directory: $0, storage: $1)) }) {
        .dualEncoder(try SigLIPModel.load(directory: $0))
    }
    public var modelType: String { config.modelType }
    public var scoring: ScoreFunction { .sigmoid(logitScale: logitScale, logitBias: logitBias) }
    /// Padded to max_length with the tokenizer's pad token, as SiglipProcessor / the zero-shot pipeline do: the
    /// model pools the last position, so its embedding depends on that padding.
    public var textPolicy: TextPolicy { TextPolicy(maxLength: maxTextLength, padding: .maxLength(maxTextLength)) }
    public var defaultImageProcessor: String { config.isNaFlex ? "Siglip2ImageProcessor" : "SiglipImageProcessor" }

    public func imageFeatures(_ pixels: PixelInputs) throws -> Tensor {
        if config.isNaFlex { return try naflexImageFeatures(pixels) }
        if pixels.patchMask != nil || pixels.spatialShapes != nil {
            throw ModelError.invalidInput("this SigLIP model takes fixed-size pixel_values [B, \(config.visionConfig.numChannels), \(config.visionConfig.imageSize), \(config.visionConfig.imageSize)], not NaFlex patches")
        }
        return try imageFeatures(pixelValues: pixels.pixelValues)
    }
}
