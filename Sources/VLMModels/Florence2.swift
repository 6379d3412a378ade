import Foundation
import VLMImage
import VLMLayers
import VLMTensor
import VLMTokenizers

// Florence2ForConditionalGeneration (transformers 5.25, model_type florence2): DaViT + projector
// (Florence2VisionEncoder), image features spliced into the `<image>` rows of the prompt embeddings, the BART
// encoder over them, and the BART decoder generating from decoder_start_token_id with cross-attention keys and
// values over the encoder output computed once per prompt.

// MARK: - State

/// One Florence-2 generation: the decoder's self-attention cache and each decoder layer's cross-attention keys
/// and values over the encoder output (shared, never modified, by forks).
public final class Florence2State: GenerationState, @unchecked Sendable {
    public let cache: KVCache
    /// Per decoder layer [S, 2C]; empty before prefill.
    public internal(set) var crossKeysValues: [Tensor] = []
    /// Encoder rows (prompt tokens with the image's).
    public internal(set) var encoderLength = 0

    init(cache: KVCache) { self.cache = cache }

    /// Decoder rows held (decoder start + generated tokens fed back).
    public var length: Int { cache.length }
    public var bytes: Int { cache.bytes + crossKeysValues.reduce(0) { $0 + $1.count * 4 } }
    public func truncate(to length: Int) { cache.truncate(to: length) }

    public func fork() throws -> any GenerationState {
        let other = Florence2State(cache: cache.copy())
        other.crossKeysValues = crossKeysValues
        other.encoderLength = encoderLength
        return other
    }
}

// MARK: - Model

public final class Florence2Model: @unchecked Sendable {
    public let config: Florence2Config
    public let vision: Florence2VisionEncoder  // model.vision_tower, model.multi_modal_projector
    public let language: BartLanguageModel     // model.language_model (+ lm_head tied to shared)

    init(config: Florence2Config, loader: WeightLoader) throws {
        self.config = config
        vision = try Florence2VisionEncoder(loader, config: config.visionConfig)
        language = try BartLanguageModel(loader.scope("model.language_model"), config: config.textConfig)
    }

    /// Loads config.json (model_type florence2) and every tensor of `directory` (float32, or 16-bit kept as stored
    /// with `storage: .asStored`).
    public static func load(directory: URL, storage: WeightStorage = .float32) throws -> Florence2Model {
        let (config, _) = try Checkpoint.config(Florence2Config.self, in: directory, types: Florence2Config.modelTypes) { c, path in
            try c.validate(path: path)
        }
        return try Checkpoint.weights(directory: directory, storage: storage, ignorable: BartLanguageModel.isTiedCopy) {
            try Florence2Model(config: config, loader: $0)
        }
    }

    /// A validated config with seeded random weights (benchmarks).
    public static func random(config: Florence2Config, seed: UInt64 = 0, storage: WeightStorage = .float32) throws -> Florence2Model {
        try config.validate(path: "(random)")
        return try Checkpoint.random(seed: seed, storage: storage) { try Florence2Model(config: config, loader: $0) }
    }

    /// Prompt embeddings with the image features in the `<image>` rows, through the BART encoder: ids [T],
    /// pixelValues [1, 3, H, W] or nil -> [T, C] (encoder_last_hidden_state).
    public func encode(ids: [Int], pixelValues: Tensor?) throws -> Tensor {
        guard !ids.isEmpty else { throw ModelError.invalidInput("Florence-2 needs a non-empty prompt") }
        let embeddings = try language.embed(ids)
        let slots = ids.indices.filter { ids[$0] == config.imageTokenId }
        if let pixelValues {
            let features = try vision.imageFeatures(pixelValues: pixelValues)  // [B, N, C]
            let c = config.textConfig.dModel
            guard features.shape[2] == c else {
                throw ModelError.invalidConfig(path: "config.json", reason: "vision_config.projection_dim \(features.shape[2]) differs from text_config.d_model \(c)")
            }
            guard slots.count == features.shape[0] * features.shape[1] else {
                throw ModelError.invalidInput("Image features and image tokens do not match, tokens: \(slots.count), features: \(features.shape[0] * features.shape[1])")
            }
            for (k, row) in slots.enumerated() { (embeddings.pointer + row * c).update(from: features.pointer + k * c, count: c) }
        } else if !slots.isEmpty {
            throw ModelError.invalidInput("the prompt has \(slots.count) image tokens but no image was given")
        }
        return try language.encode(embeddings: embeddings)
    }

    /// Logits [decoder rows, vocab] of a whole decoder input after the encoder (tests: one forward pass).
    public func logits(ids: [Int], pixelValues: Tensor?, decoderIDs: [Int]) throws -> [Tensor] {
        let state = Florence2State(cache: language.makeCache(capacity: decoderIDs.count))
        state.crossKeysValues = language.crossKeysValues(try encode(ids: ids, pixelValues: pixelValues))
        return try decoderIDs.map { try language.decode([$0], cache: state.cache, crossKeysValues: state.crossKeysValues) }
    }
}

// MARK: - Configuration

extension Florence2Config {
    func validate(path: String) throws {
        try visionConfig.validate { ModelError.invalidConfig(path: path, reason: $0) }
        try textConfig.validate { ModelError.invalidConfig(path: path, reason: $0) }
        guard visionConfig.projectionDim == textConfig.dModel else {
            throw ModelError.invalidConfig(path: path, reason: "vision_config.projection_dim \(visionConfig.projectionDim) differs from text_config.d_model \(textConfig.dModel)")
        }
        guard (0 ..< textConfig.vocabSize).contains(imageTokenId) else {
            throw ModelError.invalidConfig(path: path, reason: "image_token_id \(imageTokenId) is outside the vocabulary of \(textConfig.vocabSize)")
        }
    }
}

// MARK: - Registry entry

extension Florence2Model: GenerativeModel {
    public static let family = ModelFamily(name: "Florence-2", modelTypes: Florence2Config.modelTypes,
                                           architectures: ["Florence2ForConditionalGeneration"], kind: .chat,
                                           loadStored: { .generative(try Florence2Model.load(directory: $0, storage: $1)) }) {
        .generative(try Florence2Model.load(directory: $0))
    }
    public var modelType: String { "florence2" }
    public var supportsImages: Bool { true }
    /// Decoder (and encoder) positions.
    public var contextLength: Int { config.textConfig.maxPositionEmbeddings }
    public var vocabularySize: Int { config.textConfig.vocabSize }
    public var eosTokenIDs: [Int] { [config.textConfig.eosTokenId] }
    public var decoderStartTokenID: Int? { config.textConfig.decoderStartTokenId }
    public var decodeWeightBytes: Int { language.decodeWeightBytes }

    public func makeState(capacity: Int) -> any GenerationState { Florence2State(cache: language.makeCache(capacity: capacity)) }

    /// Runs the prompt (and its image) through the encoder, computes the cross-attention keys/values, and feeds
    /// decoder_start_token_id to a fresh decoder: the logits of the first answer token [1, vocab].
    public func prefill(_ input: PreparedInput, state: any GenerationState) throws -> Tensor {
        guard let s = state as? Florence2State else { throw ModelError.wrongState(model: modelType, state: "\(type(of: state))") }
        let encoded = try encode(ids: input.ids, pixelValues: input.pixels?.pixelValues)
        s.cache.reset()
        s.crossKeysValues = language.crossKeysValues(encoded)
        s.encoderLength = input.ids.count
        return try language.decode([config.textConfig.decoderStartTokenId], cache: s.cache, crossKeysValues: s.crossKeysValues)
    }

    public func step(token: Int, state: any GenerationState) throws -> Tensor {
        guard let s = state as? Florence2State, !s.crossKeysValues.isEmpty else {
            throw ModelError.wrongState(model: modelType, state: "\(type(of: state)) without a prefilled prompt")
        }
        return try language.decode([token], cache: s.cache, crossKeysValues: s.crossKeysValues)
    }

    public func encodeImages(_ pixels: PixelInputs) throws -> Tensor { try vision.imageFeatures(pixelValues: pixels.pixelValues) }

    public func makeInputProcessor(directory: URL, options: InputProcessingOptions) throws -> any GenerativeInputProcessor {
        try Florence2InputProcessor.load(directory: directory, imageTokenID: config.imageTokenId, contextLength: contextLength)
    }
}

extension Florence2Model: BatchedStepModel {
    /// Beams of one prompt share the encoder's cross-attention keys/values: one decoder pass for all of them.
    /// States of different prompts are stepped one by one.
    public func step(tokens: [Int], states: [any GenerationState]) throws -> Tensor {
        guard tokens.count == states.count, !tokens.isEmpty else {
            throw ModelError.invalidInput("a batched step needs one token per state (\(tokens.count) tokens, \(states.count) states)")
        }
        let s = try states.map { state in
            guard let s = state as? Florence2State, !s.crossKeysValues.isEmpty else {
                throw ModelError.wrongState(model: modelType, state: "\(type(of: state)) without a prefilled prompt")
            }
            return s
        }
        let shared = s.allSatisfy { $0.crossKeysValues.first?.storage === s[0].crossKeysValues.first?.storage }
        let distinct = Set(s.map { ObjectIdentifier($0.cache) }).count == s.count
        if shared && distinct {
            return try language.decode(beams: tokens, caches: s.map(\.cache), crossKeysValues: s[0].crossKeysValues)
        }
        let rows = try zip(tokens, s).map { try step(token: $0, state: $1) }
        let vocab = rows[0].count, out = Tensor(uninitialized: [rows.count, vocab])
        for (b, row) in rows.enumerated() { (out.pointer + b * vocab).update(from: row.pointer, count: vocab) }
        return out
    }
}

// MARK: - Input processor

/// Florence2Processor: the user's text (a task token with its argument, or free text) becomes the task's prompt,
/// wrapped as `<image><s>prompt</s>` with `<image>` repeated image_seq_length times; CLIP-style pixels.
public struct Florence2InputProcessor: GenerativeInputProcessor {
    public let tokenizer: any Tokenizer
    public let images: any ImageInputProcessor
    public let imageTokenID: Int
    /// image_seq_length of the image processor config.
    public let tokensPerImage: Int
    public let contextLength: Int
    public let postProcessor: Florence2PostProcessor
    public var supportsImages: Bool { true }

    public static func load(directory: URL, imageTokenID: Int, contextLength: Int) throws -> Florence2InputProcessor {
        let url = directory.appendingPathComponent("preprocessor_config.json")
        let object = try? JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let length = (object as? [String: Any])?["image_seq_length"] as? Int, length > 0, length < contextLength else {
            throw ModelError.invalidConfig(path: url.path, reason: "image_seq_length must be a positive number of tokens below \(contextLength)")
        }
        return Florence2InputProcessor(tokenizer: try TokenizerLoader.load(directory: directory), images: try ImageProcessors.load(directory: directory),
                                       imageTokenID: imageTokenID, tokensPerImage: length, contextLength: contextLength,
                                       postProcessor: Florence2PostProcessor(config: try Florence2PostProcessorConfig.load(directory: directory)))
    }

    /// The last user message's text.
    static func userText(_ messages: [ChatMessage]) throws -> String {
        guard let last = messages.last(where: { $0.role == "user" }) else { throw ModelError.invalidConversation("no user message") }
        switch last.content {
        case .text(let s): return s
        case .parts(let parts): return parts.compactMap(\.text).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        case .none: return ""
        }
    }

    public func prompt(for messages: [ChatMessage]) throws -> String { try Florence2Tasks.constructPrompt(Self.userText(messages)) }

    public func prepare(messages: [ChatMessage], images pictures: [RGBImage]) throws -> PreparedInput {
        guard pictures.count <= 1 else { throw ModelError.invalidInput("Florence-2 takes one image per prompt (got \(pictures.count))") }
        let prompt = try prompt(for: messages)
        guard let image = pictures.first else { return PreparedInput(ids: try tokenizer.encode(prompt, addSpecialTokens: false)) }
        guard let imageToken = tokenizer.token(for: imageTokenID) else { throw ModelError.imageTokenMissing(id: imageTokenID, model: "florence2") }
        // image_token * image_seq_length + bos_token + prompt + eos_token (BART's <s> and </s>).
        let text = String(repeating: imageToken, count: tokensPerImage) + "<s>" + prompt + "</s>"
        let ids = try tokenizer.encode(text, addSpecialTokens: false)
        guard ids.count < contextLength else { throw ModelError.promptTooLong(tokens: ids.count, imageTokens: tokensPerImage, context: contextLength) }
        let first = ids.firstIndex(of: imageTokenID) ?? 0
        return PreparedInput(ids: ids, pixels: try images.pixelInputs([image]), imageSpans: [first ..< first + tokensPerImage])
    }
}
