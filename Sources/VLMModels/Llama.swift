import Foundation
import VLMLayers
import VLMTensor

// MARK: - Configuration

/// RoPE parameters: transformers' `rope_parameters` (v5) or the older `rope_scaling` dict (+ top-level `rope_theta`).
public struct RopeParameters: Decodable, Sendable {
    public var ropeType = "default"
    public var ropeTheta: Double?
    public var factor: Double?
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositionEmbeddings: Int?
    public var partialRotaryFactor: Double?

    enum CodingKeys: String, CodingKey {
        case ropeType = "rope_type", type, ropeTheta = "rope_theta", factor, lowFreqFactor = "low_freq_factor"
        case highFreqFactor = "high_freq_factor", originalMaxPositionEmbeddings = "original_max_position_embeddings"
        case partialRotaryFactor = "partial_rotary_factor"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Old configs say "type", new ones "rope_type" (standardize_rope_params accepts both).
        ropeType = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type) ?? ropeType
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFreqFactor = try c.decodeIfPresent(Double.self, forKey: .lowFreqFactor)
        highFreqFactor = try c.decodeIfPresent(Double.self, forKey: .highFreqFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
        partialRotaryFactor = try c.decodeIfPresent(Double.self, forKey: .partialRotaryFactor)
    }
}

/// config.json of a Llama-architecture causal LM (model_type llama, mistral, qwen2). Defaults are transformers'
/// LlamaConfig defaults; qwen2 differs only in q/k/v biases (Qwen2Attention has bias=True on q/k/v, not o).
public struct LlamaConfig: Decodable, Sendable {
    public var modelType = "llama"
    public var vocabSize = 32000
    public var hiddenSize = 4096
    public var intermediateSize = 11008
    public var numHiddenLayers = 32
    public var numAttentionHeads = 32
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var hiddenAct = "silu"
    public var maxPositionEmbeddings = 2048
    public var rmsNormEps: Float = 1e-6
    public var bosTokenID: Int? = 1
    public var eosTokenIDs: [Int] = [2]
    public var padTokenID: Int?
    public var tieWordEmbeddings = false
    public var ropeTheta: Double = 10000
    public var rope = RopeParameters()
    public var attentionBias = false
    public var mlpBias = false
    /// Sliding-window attention: Mistral's `sliding_window` (every layer; transformers' MistralConfig default
    /// 4096 when the key is absent, none when null); Qwen2's only with `use_sliding_window`, on the layers
    /// `layer_types` (or `max_window_layers`) marks "sliding_attention". A window W lets a query see the W most
    /// recent keys including itself (transformers' sliding_window_overlay: kv > q - W).
    public var slidingWindow: Int?
    public var useSlidingWindow = false
    public var maxWindowLayers: Int?
    public var layerTypes: [String]?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads", headDim = "head_dim"
        case hiddenAct = "hidden_act", maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
        case tieWordEmbeddings = "tie_word_embeddings", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case slidingWindow = "sliding_window", useSlidingWindow = "use_sliding_window", maxWindowLayers = "max_window_layers"
        case layerTypes = "layer_types"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? modelType
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? rmsNormEps
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenID) {
            eosTokenIDs = ids
        } else if let id = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) {
            eosTokenIDs = [id]
        }
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? tieWordEmbeddings
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? ropeTheta
        rope = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
            ?? c.decodeIfPresent(RopeParameters.self, forKey: .ropeScaling) ?? rope
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? (modelType == "qwen2")
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? mlpBias
        if c.contains(.slidingWindow) {
            slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        } else if modelType == "mistral" {
            slidingWindow = 4096
        }
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? useSlidingWindow
        maxWindowLayers = try c.decodeIfPresent(Int.self, forKey: .maxWindowLayers)
        layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
    }

    /// The sliding window of decoder layer `layer`, nil for full attention (see `slidingWindow`).
    public func window(ofLayer layer: Int) -> Int? {
        switch modelType {
        case "mistral":
            return slidingWindow
        case "qwen2":
            guard useSlidingWindow, let w = slidingWindow else { return nil }
            if let types = layerTypes, layer < types.count { return types[layer] == "sliding_attention" ? w : nil }
            return layer >= (maxWindowLayers ?? 28) ? w : nil
        default:
            return nil
        }
    }

    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }

    /// inv_freq for the configured rope type, as transformers' ROPE_INIT_FUNCTIONS compute it (float32).
    public func inverseFrequencies() throws -> [Float] {
        let base = Float(rope.ropeTheta ?? ropeTheta)
        let dim = Int(Double(resolvedHeadDim) * (rope.partialRotaryFactor ?? 1))
        // 1 / base ** (arange(0, dim, 2) / dim), in float32 as torch computes it.
        let inv = stride(from: 0, to: dim, by: 2).map { 1 / powf(base, Float($0) / Float(dim)) }
        switch rope.ropeType {
        case "default":
            return inv
        case "linear":
            guard let factor = rope.factor, factor > 0 else { throw ModelError.unsupported("rope_scaling linear needs a positive factor") }
            return inv.map { $0 / Float(factor) }
        case "llama3":
            guard let factor = rope.factor, let low = rope.lowFreqFactor, let high = rope.highFreqFactor, high != low else {
                throw ModelError.unsupported("rope_scaling llama3 needs factor, low_freq_factor and high_freq_factor")
            }
            // _compute_llama3_parameters: long wavelengths scaled by 1/factor, short kept, the band between smoothed.
            let old = Float(rope.originalMaxPositionEmbeddings ?? maxPositionEmbeddings)
            let lowWave = old / Float(low), highWave = old / Float(high)
            return inv.map { f in
                let wavelen = 2 * Float.pi / f
                let scaled = wavelen > lowWave ? f / Float(factor) : f
                if wavelen < highWave || wavelen > lowWave { return scaled }
                let smooth = (old / wavelen - Float(low)) / (Float(high) - Float(low))
                return (1 - smooth) * scaled / Float(factor) + smooth * scaled
            }
        default:
            throw ModelError.unsupported("rope type '\(rope.ropeType)' is not supported yet (default, linear, llama3 are)")
        }
    }

    /// Real architectures for benchmarks with random weights.
    public static func preset(_ name: String) -> LlamaConfig? {
        var c = LlamaConfig()
        switch name.lowercased() {
        case "smollm2-360m", "llama-360m", "360m":
            // HuggingFaceTB/SmolLM2-360M: 32 layers, width 960, 15 heads / 5 KV heads, tied embeddings.
            c.vocabSize = 49152; c.hiddenSize = 960; c.intermediateSize = 2560; c.numHiddenLayers = 32
            c.numAttentionHeads = 15; c.numKeyValueHeads = 5; c.maxPositionEmbeddings = 8192; c.rmsNormEps = 1e-5
            c.tieWordEmbeddings = true; c.ropeTheta = 100000
        case "smollm2-1.7b", "1.7b":
            // HuggingFaceTB/SmolLM2-1.7B: 24 layers, width 2048, 32 heads with as many KV heads, tied embeddings.
            c.vocabSize = 49152; c.hiddenSize = 2048; c.intermediateSize = 8192; c.numHiddenLayers = 24
            c.numAttentionHeads = 32; c.numKeyValueHeads = 32; c.maxPositionEmbeddings = 8192; c.rmsNormEps = 1e-5
            c.tieWordEmbeddings = true; c.ropeTheta = 130000
        case "smollm2-135m", "135m":
            c.vocabSize = 49152; c.hiddenSize = 576; c.intermediateSize = 1536; c.numHiddenLayers = 30
            c.numAttentionHeads = 9; c.numKeyValueHeads = 3; c.maxPositionEmbeddings = 8192; c.rmsNormEps = 1e-5
            c.tieWordEmbeddings = true; c.ropeTheta = 100000
        default: return nil
        }
        return c
    }

    public static let presetNames = ["smollm2-135m", "smollm2-360m", "smollm2-1.7b"]

    func validate(path: String) throws {
        func fail(_ reason: String) -> ModelError { .invalidConfig(path: path, reason: reason) }
        for (name, v) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                          ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", kvHeads),
                          ("max_position_embeddings", maxPositionEmbeddings), ("head_dim", resolvedHeadDim)]
        where v <= 0 || v > 1 << 24 {
            throw fail("\(name) = \(v) is out of range")
        }
        if numHiddenLayers < 0 || numHiddenLayers > 1024 { throw fail("num_hidden_layers = \(numHiddenLayers) is out of range") }
        if numAttentionHeads % kvHeads != 0 { throw fail("num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(kvHeads)") }
        if Activation(huggingFace: hiddenAct) == nil { throw fail("hidden_act '\(hiddenAct)' is not supported") }
        if let w = slidingWindow, w <= 0 { throw fail("sliding_window = \(w) must be positive") }
        _ = try inverseFrequencies()
    }
}

// MARK: - Model

/// A Llama-architecture causal language model (LlamaForCausalLM and its Mistral/Qwen2 relatives): token
/// embeddings, pre-norm decoder blocks with grouped-query attention and SwiGLU, final RMSNorm, LM head.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    let embedTokens: Embedding      // model.embed_tokens.weight [vocab, C]
    let layers: [DecoderLayer]      // model.layers.{i}
    let norm: RMSNorm               // model.norm.weight [C]
    let lmHead: Linear              // lm_head.weight [vocab, C] (the embedding table when tied)
    let rotary: RotaryEmbedding     // shared by every layer; tables computed once per forward
    /// What makeCache stores keys and values in: bf16 under a reduced --precision (KVCachePrecision.standard).
    public let kvCachePrecision: KVCachePrecision

    public static let supportedModelTypes = ["llama", "mistral", "qwen2"]

    /// Loads a LlamaForCausalLM-layout checkpoint directory unchanged. `storage: .asStored` keeps bf16/fp16
    /// linear weights and embeddings in 16 bits (half the memory and decode traffic, fp32 compute).
    public static func load(directory: URL, storage: WeightStorage = .asStored) throws -> LlamaModel {
        let (config, _) = try Checkpoint.config(LlamaConfig.self, in: directory, types: supportedModelTypes) { try $0.validate(path: $1) }
        return try Checkpoint.weights(directory: directory, storage: storage, ignorable: { $0.hasSuffix("rotary_emb.inv_freq") }) {
            try LlamaModel(config: config, body: $0.scope("model"), head: $0.scope("lm_head"))
        }
    }

    // MARK: - Weights

    /// body: the decoder's scope ("model" in LlamaForCausalLM, "model.language_model" in LLaVA); head: "lm_head".
    public init(config: LlamaConfig, body: WeightScope, head: WeightScope) throws {
        self.config = config
        kvCachePrecision = KVCachePrecision.standard(for: body.storage)
        let c = config.hiddenSize, act = Activation(huggingFace: config.hiddenAct) ?? .silu
        let rotary = RotaryEmbedding(inverseFrequencies: try config.inverseFrequencies())
        self.rotary = rotary
        embedTokens = try Embedding(body.scope("embed_tokens"), count: config.vocabSize, dim: c)
        layers = try (0 ..< config.numHiddenLayers).map { i in
            let s = body.scope("layers.\(i)")
            return DecoderLayer(
                inputNorm: try RMSNorm(s.scope("input_layernorm"), dim: c, eps: config.rmsNormEps),
                attention: try GroupedQueryAttention(
                    s.scope("self_attn"), dim: c, heads: config.numAttentionHeads, kvHeads: config.kvHeads,
                    headDim: config.resolvedHeadDim, bias: config.attentionBias,
                    outBias: config.attentionBias && config.modelType != "qwen2", rotary: rotary,
                    slidingWindow: config.window(ofLayer: i)),
                postAttentionNorm: try RMSNorm(s.scope("post_attention_layernorm"), dim: c, eps: config.rmsNormEps),
                mlp: try GatedMLP(s.scope("mlp"), dim: c, hidden: config.intermediateSize, activation: act, bias: config.mlpBias))
        }
        norm = try RMSNorm(body.scope("norm"), dim: c, eps: config.rmsNormEps)
        if config.tieWordEmbeddings && (head.loader.store == nil || !head.contains("weight")) {
            lmHead = Linear(packed: try embedTokens.packedForHead(), bias: nil)  // 16-bit tables are shared, not copied
        } else {
            lmHead = try Linear(head, in: c, out: config.vocabSize, bias: false)
        }
        // An int4 head decodes in W4A8 as the layers do: it is a vocabulary-sized GEMV each token, and the weight-only
        // int4 path is compute-bound at ~21 GB/s a core where W4A8 streams at the memory's rate. Its share of the
        // error is in `vlm quant-report` (Benchmarks/RESULTS.md, session 23).
        try body.applyW4A8Decode([lmHead])
    }

    /// A model of `config` with random weights (benchmarks); `storage` .bfloat16/.float16 rounds them to 16 bits.
    public static func random(config: LlamaConfig, seed: UInt64 = 0, storage: WeightStorage = .float32) throws -> LlamaModel {
        try config.validate(path: "config")
        return try Checkpoint.random(seed: seed, storage: storage) {
            try LlamaModel(config: config, body: $0.scope("model"), head: $0.scope("lm_head"))
        }
    }

    public var hiddenSize: Int { config.hiddenSize }
    public var vocabularySize: Int { config.vocabSize }
    /// Parameters (the tied head counted once).
    public var parameterCount: Int {
        let c = config, h = c.hiddenSize, d = c.resolvedHeadDim
        let attention = h * (c.numAttentionHeads * d) * 2 + h * (c.kvHeads * d) * 2
        let mlp = 3 * h * c.intermediateSize
        return c.vocabSize * h * (c.tieWordEmbeddings ? 1 : 2) + c.numHiddenLayers * (attention + mlp + 2 * h) + h
    }

    /// The linear layers' packed weights (fused projections and the LM head, which is the embedding table
    /// when tied): their parameter count and bytes in memory (rows padded to 32). These are what a decode
    /// step streams.
    public var linearWeightFootprint: (parameters: Int, bytes: Int) {
        var weights = layers.flatMap { [$0.attention.qkv.weight, $0.attention.out.weight, $0.mlp.gateUp.weight, $0.mlp.down.weight] }
        weights.append(lmHead.weight)
        return weights.reduce((0, 0)) { ($0.0 + $1.outFeatures * $1.inFeatures, $0.1 + $1.byteCount) }
    }

    /// The precision of the packed linear weights (fp32, bf16, fp16, int8, int4), "mixed" when they differ
    /// (e.g. an int4 checkpoint with an fp16 LM head reports its decoder layers': the head is listed apart).
    public var weightPrecision: String {
        func name(_ s: PackedLinearWeight.Storage) -> String {
            switch s {
            case .float32: return "fp32"
            case .bfloat16: return "bf16"
            case .float16: return "fp16"
            case .int8: return "int8"
            case .int4: return "int4"
            }
        }
        let body = Set(layers.flatMap { [$0.attention.qkv.weight, $0.attention.out.weight, $0.mlp.gateUp.weight, $0.mlp.down.weight] }.map { name($0.storage) })
        let head = name(lmHead.weight.storage)
        guard body.count <= 1 else { return "mixed" }
        let layersName = body.first ?? head
        return layersName == head ? layersName : "\(layersName) (lm_head \(head))"
    }

    /// A cache for one sequence of up to `capacity` tokens (capped at max_position_embeddings), in `precision`
    /// (default: the model's kvCachePrecision).
    public func makeCache(capacity: Int? = nil, precision: KVCachePrecision? = nil) -> KVCache {
        let cap = min(capacity ?? config.maxPositionEmbeddings, config.maxPositionEmbeddings)
        return KVCache(layers: layers.count, capacity: max(cap, 1), heads: config.kvHeads, headDim: config.resolvedHeadDim,
                       precision: precision ?? kvCachePrecision)
    }

    /// ids -> [T, C] token embeddings (ids validated against the vocabulary).
    public func embed(_ ids: [Int]) throws -> Tensor {
        let c = config.hiddenSize
        let out = Tensor(uninitialized: [ids.count, c])
        for (t, id) in ids.enumerated() {
            guard id >= 0, id < config.vocabSize else {
                throw ModelError.invalidInput("token id \(id) is outside the vocabulary (0..<\(config.vocabSize))")
            }
            embedTokens.copyRow(id, into: out.pointer + t * c)
        }
        return out
    }

    /// Runs T new rows through the decoder, appending to `cache`.
    /// embeddings: [T, C] -> logits [T, vocab] if `allLogits`, else [1, vocab] for the last row.
    /// positions: the rows' rotary position ids (default: consecutive from the cache length); mask: which keys
    /// each row sees (default causal; each layer adds its own sliding window).
    public func forward(embeddings: Tensor, cache: KVCache, positions: PositionIDs? = nil, mask: AttentionMask = .causal,
                        allLogits: Bool = false) throws -> Tensor {
        let t = embeddings.shape[0]
        guard t > 0 else { throw ModelError.invalidInput("no tokens to run") }
        guard cache.length + t <= cache.capacity else {
            throw ModelError.invalidInput("sequence of \(cache.length + t) tokens exceeds the context of \(cache.capacity)")
        }
        let ids = positions ?? .range(from: cache.length, count: t)
        guard ids.count == t else { throw ModelError.invalidInput("\(ids.count) position ids for \(t) tokens") }
        if let padding = mask.keyPadding, padding.count != cache.length + t {
            throw ModelError.invalidInput("key padding mask of \(padding.count) for \(cache.length + t) keys")
        }
        let tables = rotary.tables(for: ids)  // once per forward, shared by all layers
        var h = embeddings
        for (layer, layerCache) in zip(layers, cache.layers) { h = layer(h, cache: layerCache, rotary: tables, mask: mask) }
        let last = allLogits ? h : h.rows((t - 1) ..< t)
        return lmHead(norm(last))
    }

    /// Convenience: ids -> logits (see forward).
    public func forward(ids: [Int], cache: KVCache, positions: PositionIDs? = nil, allLogits: Bool = false) throws -> Tensor {
        try forward(embeddings: embed(ids), cache: cache, positions: positions, allLogits: allLogits)
    }

    // MARK: - Generation over a state

    /// Runs embeddings [T, C] after what `state` holds: positions from `input` (absolute) or consecutive from
    /// the state's next position; prefix-LM mask if the input has a prefix. Returns the last row's logits [1, vocab].
    func run(embeddings: Tensor, input: PreparedInput, state: DecoderState) throws -> Tensor {
        let t = embeddings.shape[0]
        let positions = input.positions ?? .range(from: state.nextPosition, count: t)
        var mask = AttentionMask.causal
        if let prefix = input.prefixLength {
            state.prefixLength = max(state.prefixLength, state.length + prefix)
        }
        if state.prefixLength > 0 { mask = .prefixLM(prefixLength: state.prefixLength) }
        let logits = try forward(embeddings: embeddings, cache: state.cache, positions: positions, mask: mask)
        state.appended(positions: positions.axes[0].indices.map { r in positions.axes.map { $0[r] }.max() ?? 0 })
        return logits
    }

    static func decoderState(_ state: any GenerationState, model: String) throws -> DecoderState {
        guard let s = state as? DecoderState else { throw ModelError.wrongState(model: model, state: "\(type(of: state))") }
        return s
    }
}

// MARK: - Registry entry

extension LlamaModel: GenerativeModel {
    public static let family = ModelFamily(name: "Llama", modelTypes: supportedModelTypes,
                                           architectures: ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"],
                                           kind: .chat, loadStored: { .generative(try LlamaModel.load(directory: $0, storage: $1)) }) {
        .generative(try LlamaModel.load(directory: $0))
    }
    public var modelType: String { config.modelType }
    public var kvCache: String { kvCachePrecision.rawValue }
    public var supportsImages: Bool { false }
    public var contextLength: Int { config.maxPositionEmbeddings }
    public var eosTokenIDs: [Int] { config.eosTokenIDs }
    public var decodeWeightBytes: Int { linearWeightFootprint.bytes }

    public func makeState(capacity: Int) -> any GenerationState { DecoderState(cache: makeCache(capacity: capacity)) }

    public func prefill(_ input: PreparedInput, state: any GenerationState) throws -> Tensor {
        guard input.pixels == nil, input.imageSpans.isEmpty else { throw ModelError.imagesNotSupported(model: config.modelType) }
        return try run(embeddings: embed(input.ids), input: input, state: Self.decoderState(state, model: config.modelType))
    }

    public func step(token: Int, state: any GenerationState) throws -> Tensor {
        try run(embeddings: embed([token]), input: PreparedInput(ids: [token]), state: Self.decoderState(state, model: config.modelType))
    }

    public func makeInputProcessor(directory: URL, options: InputProcessingOptions) throws -> any GenerativeInputProcessor {
        try TextInputProcessor.load(directory: directory, contextLength: contextLength)
    }
}
