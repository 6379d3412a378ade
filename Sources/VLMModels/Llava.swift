import Foundation
import VLMImage
import VLMLayers
import VLMTensor
import VLMTokenizers

// MARK: - Configuration

/// config.json of LlavaForConditionalGeneration (model_type "llava"): a CLIP vision tower, a Llama-family
/// decoder and a two-layer projector. Defaults are transformers' LlavaConfig defaults (llava-1.5).
public struct LlavaConfig: Decodable, Sendable {
    public var modelType = "llava"
    public var textConfig = LlamaConfig()
    public var visionConfig: CLIPVisionConfig = {
        // LlavaConfig's default vision tower is CLIP ViT-L/14 at 336 px.
        var v = CLIPVisionConfig()
        v.hiddenSize = 1024
        v.intermediateSize = 4096
        v.numHiddenLayers = 24
        v.numAttentionHeads = 16
        v.imageSize = 336
        v.patchSize = 14
        return v
    }()
    public var visionModelType = "clip_vision_model"
    public var imageTokenIndex = 32000
    public var projectorHiddenAct = "gelu"
    public var visionFeatureSelectStrategy = "default"
    /// One layer or several (their features are concatenated), transformers' hidden_states indexing.
    public var visionFeatureLayers = [-2]
    public var multimodalProjectorBias = true
    /// SwiftVLM extension (not in transformers' LlavaConfig): a learned row per image token,
    /// `multi_modal_projector.position_embedding` [imageTokensPerImage, text hidden], added to the projector's
    /// output. It gives the decoder where each patch is without touching the tower: a contrastive tower's own patch
    /// positions collapse (nothing in captions needs them), and a position code added inside the tower changes the
    /// attention its features were learned with. transformers ignores the key and the tensor (its outputs differ).
    public var imagePositionEmbedding = false

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", textConfig = "text_config", visionConfig = "vision_config"
        case imageTokenIndex = "image_token_index", imageTokenID = "image_token_id"
        case projectorHiddenAct = "projector_hidden_act", visionFeatureSelectStrategy = "vision_feature_select_strategy"
        case visionFeatureLayer = "vision_feature_layer", multimodalProjectorBias = "multimodal_projector_bias"
        case imagePositionEmbedding = "image_position_embedding"
    }

    private struct ModelTypeProbe: Decodable {
        let modelType: String?
        enum CodingKeys: String, CodingKey { case modelType = "model_type" }
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? modelType
        textConfig = try c.decodeIfPresent(LlamaConfig.self, forKey: .textConfig) ?? textConfig
        if c.contains(.visionConfig) {
            visionConfig = try c.decode(CLIPVisionConfig.self, forKey: .visionConfig)
            visionModelType = try c.decode(ModelTypeProbe.self, forKey: .visionConfig).modelType ?? visionModelType
        }
        imageTokenIndex = try c.decodeIfPresent(Int.self, forKey: .imageTokenIndex)
            ?? c.decodeIfPresent(Int.self, forKey: .imageTokenID) ?? imageTokenIndex
        projectorHiddenAct = try c.decodeIfPresent(String.self, forKey: .projectorHiddenAct) ?? projectorHiddenAct
        visionFeatureSelectStrategy = try c.decodeIfPresent(String.self, forKey: .visionFeatureSelectStrategy) ?? visionFeatureSelectStrategy
        if let layers = try? c.decodeIfPresent([Int].self, forKey: .visionFeatureLayer) {
            visionFeatureLayers = layers
        } else if let layer = try c.decodeIfPresent(Int.self, forKey: .visionFeatureLayer) {
            visionFeatureLayers = [layer]
        }
        multimodalProjectorBias = try c.decodeIfPresent(Bool.self, forKey: .multimodalProjectorBias) ?? multimodalProjectorBias
        imagePositionEmbedding = try c.decodeIfPresent(Bool.self, forKey: .imagePositionEmbedding) ?? imagePositionEmbedding
    }

    /// Image tokens per image: patches, plus the CLS token with the "full" strategy (LlavaProcessor's rule).
    public var imageTokensPerImage: Int {
        visionConfig.patchesPerSide * visionConfig.patchesPerSide + (visionFeatureSelectStrategy == "full" ? 1 : 0)
    }

    func validate(path: String) throws {
        func fail(_ reason: String) -> ModelError { .invalidConfig(path: path, reason: reason) }
        guard visionModelType == "clip_vision_model" else {
            throw fail("vision_config.model_type '\(visionModelType)' is not supported (clip_vision_model is)")
        }
        guard LlamaModel.supportedModelTypes.contains(textConfig.modelType) else {
            throw fail("text_config.model_type '\(textConfig.modelType)' is not supported (\(LlamaModel.supportedModelTypes.joined(separator: ", ")) are)")
        }
        guard ["default", "full"].contains(visionFeatureSelectStrategy) else {
            throw fail("vision_feature_select_strategy '\(visionFeatureSelectStrategy)' is not default or full")
        }
        guard Activation(huggingFace: projectorHiddenAct) != nil else { throw fail("projector_hidden_act '\(projectorHiddenAct)' is not supported") }
        let layers = visionConfig.numHiddenLayers
        for l in visionFeatureLayers where l < -(layers + 1) || l > layers {
            throw fail("vision_feature_layer \(l) is outside the vision tower's \(layers) layers")
        }
        guard !visionFeatureLayers.isEmpty else { throw fail("vision_feature_layer is empty") }
        guard imageTokenIndex >= 0, imageTokenIndex < textConfig.vocabSize else {
            throw fail("image_token_index \(imageTokenIndex) is outside the vocabulary of \(textConfig.vocabSize)")
        }
        var probe = CLIPConfig()
        probe.visionConfig = visionConfig
        probe.textConfig.numAttentionHeads = 1
        try probe.validate(path: path)
        try textConfig.validate(path: path)
    }
}

// MARK: - Model

/// LlavaForConditionalGeneration: image features from an intermediate layer of the CLIP vision tower, projected
/// (linear_1 -> act -> linear_2) into the decoder's embedding space, replacing the image placeholder tokens.
public final class LlavaModel: @unchecked Sendable {
    public let config: LlavaConfig
    let vision: CLIPVisionTransformer  // vision_tower.vision_model.* (Hub) | vision_tower.* (5.x save_pretrained) (keyLayout)
    let projector1: Linear             // multi_modal_projector.linear_1 [text C, vision C x layers]
    let projector2: Linear             // multi_modal_projector.linear_2 [text C, text C]
    let projectorActivation: Activation
    let imagePositions: Tensor?        // multi_modal_projector.position_embedding [image tokens, text C] (config.imagePositionEmbedding)
    public let language: LlamaModel    // language_model.model.* + language_model.lm_head (Hub) | model.language_model.* + lm_head (keyLayout)

    /// `storage: .asStored` keeps the language model's and projector's bf16/fp16 weights in 16 bits; the CLIP
    /// vision tower (small) is widened to float32.
    public static func load(directory: URL, storage: WeightStorage = .asStored) throws -> LlavaModel {
        let (config, _) = try Checkpoint.config(LlavaConfig.self, in: directory, types: ["llava"]) { try $0.validate(path: $1) }
        return try Checkpoint.weights(directory: directory, storage: storage,
                                      ignorable: { $0.hasSuffix("position_ids") || $0.hasSuffix("rotary_emb.inv_freq") }) {
            try LlavaModel(config: config, weights: $0)
        }
    }

    /// A model of `config` with random weights (benchmarks); `storage` rounds the language model's weights.
    public static func random(config: LlavaConfig, seed: UInt64 = 0, storage: WeightStorage = .float32) throws -> LlavaModel {
        try config.validate(path: "config")
        return try Checkpoint.random(seed: seed, storage: storage) { try LlavaModel(config: config, weights: $0) }
    }

    /// Every tensor a checkpoint of `config` holds, with its shape, in the order this model's layers claim them
    /// (llava-hf layout: vision_tower.vision_model.*, multi_modal_projector.*, language_model.model.*,
    /// language_model.lm_head.weight unless tied). Training builds its parameters from this list, so what it
    /// exports is what `load` reads.
    public static func parameterShapes(config: LlavaConfig) throws -> [(name: String, shape: [Int])] {
        try config.validate(path: "config")
        let loader = WeightLoader(randomSeed: 0)
        _ = try loadingWeights { try LlavaModel(config: config, weights: loader) }
        return loader.requested.map { ($0.key, $0.shape) }
    }

    // MARK: - Weights

    /// Key prefixes of each component in the layouts transformers 5.x loads: the Hub's llava-hf files
    /// (`vision_tower.vision_model.*`, `language_model.model.*`, `language_model.lm_head`), what transformers 5.x
    /// `save_pretrained` writes (`vision_tower.*` without `vision_model`, `language_model.model.*`) and the
    /// in-memory v5 module names (`model.vision_tower.*`, `model.language_model.*`, `lm_head`).
    static let keyLayout = (
        vision: ["vision_tower.vision_model", "vision_tower", "model.vision_tower.vision_model", "model.vision_tower"],
        projector: ["multi_modal_projector", "model.multi_modal_projector"],
        language: ["language_model.model", "model.language_model", "language_model"],
        head: ["language_model.lm_head", "lm_head"])

    init(config: LlavaConfig, weights loader: WeightLoader) throws {
        self.config = config
        let layout = Self.keyLayout
        vision = try CLIPVisionTransformer(loader.scope(oneOf: layout.vision, probe: "embeddings.patch_embedding.weight")
            .storingVisionTower(), config: config.visionConfig)
        let projector = try loader.scope(oneOf: layout.projector, probe: "linear_1.weight")
        let text = config.textConfig.hiddenSize
        let visionWidth = config.visionConfig.hiddenSize * config.visionFeatureLayers.count
        projector1 = try Linear(projector.scope("linear_1"), in: visionWidth, out: text, bias: config.multimodalProjectorBias)
        projector2 = try Linear(projector.scope("linear_2"), in: text, out: text, bias: config.multimodalProjectorBias)
        projectorActivation = Activation(huggingFace: config.projectorHiddenAct) ?? .gelu
        imagePositions = config.imagePositionEmbedding
            ? try projector.tensor("position_embedding", shape: [config.imageTokensPerImage, text]) : nil
        language = try LlamaModel(config: config.textConfig,
                                  body: loader.scope(oneOf: layout.language, probe: "embed_tokens.weight"),
                                  head: loader.scope(oneOf: layout.head, probe: "weight", required: false))
    }

    /// Parameters of the vision tower (all its layers) and the projector.
    public var visionParameterCount: Int {
        let v = config.visionConfig, c = v.hiddenSize, i = v.intermediateSize, t = config.textConfig.hiddenSize
        let embeddings = v.numChannels * v.patchSize * v.patchSize * c + c + (vision.tokens) * c
        let layer = 4 * (c * c + c) + (c * i + i) + (i * c + c) + 4 * c
        let width = c * config.visionFeatureLayers.count
        return embeddings + 4 * c + v.numHiddenLayers * layer + (width * t + t) + (t * t + t) + (imagePositions?.count ?? 0)
    }

    /// pixelValues: [N, 3, S, S] -> [N * imageTokensPerImage, text hidden] (get_image_features, flattened).
    public func imageFeatures(_ pixelValues: Tensor) throws -> Tensor {
        let v = config.visionConfig
        guard pixelValues.rank == 4, pixelValues.shape[1] == v.numChannels, pixelValues.shape[2] == v.imageSize,
              pixelValues.shape[3] == v.imageSize else {
            throw ModelError.invalidInput("pixel_values have shape \(pixelValues.shape); this model takes [N, \(v.numChannels), \(v.imageSize), \(v.imageSize)]")
        }
        let n = pixelValues.shape[0], c = v.hiddenSize, tokens = vision.tokens
        let keep = config.imageTokensPerImage, skip = tokens - keep  // "default" drops the CLS token
        let states = vision.hiddenStates(pixelValues, indices: config.visionFeatureLayers)
        let width = c * states.count
        let selected = Tensor(uninitialized: [n * keep, width])
        for (li, state) in states.enumerated() {
            for img in 0 ..< n {
                for t in 0 ..< keep {
                    (selected.pointer + (img * keep + t) * width + li * c)
                        .update(from: state.pointer + (img * tokens + skip + t) * c, count: c)
                }
            }
        }
        let features = projector2(projector1(selected, activation: projectorActivation))
        if let imagePositions { Self.addImagePositions(imagePositions, to: features) }
        return features
    }

    /// features: [N * tokens, C] += positions: [tokens, C], row t of every image.
    public static func addImagePositions(_ positions: Tensor, to features: Tensor) {
        let rows = positions.count, images = features.count / max(rows, 1)
        for img in 0 ..< images {
            let dst = features.pointer + img * rows
            for i in 0 ..< rows { dst[i] += positions.pointer[i] }
        }
    }

    /// Token embeddings with each run of image placeholders replaced, in order, by the images' features.
    /// ids: [T] -> [T, C]. The placeholder count must equal images x imageTokensPerImage.
    public func embed(ids: [Int], pixelValues: Tensor?) throws -> Tensor {
        let embedded = try language.embed(ids)
        let slots = ids.indices.filter { ids[$0] == config.imageTokenIndex }
        let images = pixelValues?.shape.first ?? 0
        guard slots.count == images * config.imageTokensPerImage else {
            throw ModelError.invalidInput("the prompt has \(slots.count) image tokens but \(images) image(s) need \(images * config.imageTokensPerImage) (\(config.imageTokensPerImage) each)")
        }
        guard let pixelValues, images > 0 else { return embedded }
        let features = try imageFeatures(pixelValues)
        let c = config.textConfig.hiddenSize
        for (k, row) in slots.enumerated() {
            (embedded.pointer + row * c).update(from: features.pointer + k * c, count: c)
        }
        return embedded
    }

    /// Prefill (or continue) with ids and optional images; logits as LlamaModel.forward.
    public func forward(ids: [Int], pixelValues: Tensor?, cache: KVCache, allLogits: Bool = false) throws -> Tensor {
        try language.forward(embeddings: embed(ids: ids, pixelValues: pixelValues), cache: cache, allLogits: allLogits)
    }
}

// MARK: - Registry entry

extension LlavaModel: LlamaBackedModel {
    public static let family = ModelFamily(name: "LLaVA", modelTypes: ["llava"], architectures: ["LlavaForConditionalGeneration"],
                                           kind: .chat, loadStored: { .generative(try LlavaModel.load(directory: $0, storage: $1)) }) {
        .generative(try LlavaModel.load(directory: $0))
    }
    public var modelType: String { config.modelType }
    public var supportsImages: Bool { true }

    /// The images in `input.pixels` replace the image-token runs of `input.ids` (the runs of this input only).
    public func prefill(_ input: PreparedInput, state: any GenerationState) throws -> Tensor {
        let s = try LlamaModel.decoderState(state, model: modelType)
        return try language.run(embeddings: embed(ids: input.ids, pixelValues: input.pixels?.pixelValues), input: input, state: s)
    }

    public func encodeImages(_ pixels: PixelInputs) throws -> Tensor { try imageFeatures(pixels.pixelValues) }

    /// LlavaProcessor: the template's `<image>` becomes `imageTokensPerImage` image tokens; CLIP pixels.
    public func makeInputProcessor(directory: URL, options: InputProcessingOptions) throws -> any GenerativeInputProcessor {
        ImageTokenInputProcessor(tokenizer: try TokenizerLoader.load(directory: directory),
                                 chat: try ChatPrompt.load(directory: directory, contentParts: true),
                                 images: try ImageProcessors.load(directory: directory),
                                 imageTokenID: config.imageTokenIndex, tokensPerImage: config.imageTokensPerImage,
                                 contextLength: contextLength, modelName: directory.lastPathComponent)
    }
}
