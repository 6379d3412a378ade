import Foundation
import VLMLayers
import VLMTensor

// Florence-2's language model: a BART encoder-decoder (transformers' BartModel as Florence2Model builds it from
// `text_config`), post-LN layers, learned positions with BART's offset of 2, `layernorm_embedding`, and an LM
// head tied to `shared` (no final_logits_bias). Hugging Face names are relative to `model.language_model`.

// MARK: - Configuration

/// `text_config` of a Florence2Config (transformers' BartConfig). Defaults are BartConfig's.
public struct BartConfig: Codable, Sendable {
    public var vocabSize = 50265
    public var dModel = 1024
    public var encoderLayers = 12
    public var decoderLayers = 12
    public var encoderAttentionHeads = 16
    public var decoderAttentionHeads = 16
    public var encoderFfnDim = 4096
    public var decoderFfnDim = 4096
    public var maxPositionEmbeddings = 1024
    public var activationFunction = "gelu"
    /// Token embeddings multiplied by sqrt(d_model).
    public var scaleEmbedding = false
    public var padTokenId = 1
    public var bosTokenId = 0
    public var eosTokenId = 2
    public var decoderStartTokenId = 2
    public var forcedEosTokenId: Int? = 2

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", dModel = "d_model", encoderLayers = "encoder_layers", decoderLayers = "decoder_layers"
        case encoderAttentionHeads = "encoder_attention_heads", decoderAttentionHeads = "decoder_attention_heads"
        case encoderFfnDim = "encoder_ffn_dim", decoderFfnDim = "decoder_ffn_dim", maxPositionEmbeddings = "max_position_embeddings"
        case activationFunction = "activation_function", scaleEmbedding = "scale_embedding", padTokenId = "pad_token_id"
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", decoderStartTokenId = "decoder_start_token_id"
        case forcedEosTokenId = "forced_eos_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        dModel = try c.decodeIfPresent(Int.self, forKey: .dModel) ?? dModel
        encoderLayers = try c.decodeIfPresent(Int.self, forKey: .encoderLayers) ?? encoderLayers
        decoderLayers = try c.decodeIfPresent(Int.self, forKey: .decoderLayers) ?? decoderLayers
        encoderAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .encoderAttentionHeads) ?? encoderAttentionHeads
        decoderAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .decoderAttentionHeads) ?? decoderAttentionHeads
        encoderFfnDim = try c.decodeIfPresent(Int.self, forKey: .encoderFfnDim) ?? encoderFfnDim
        decoderFfnDim = try c.decodeIfPresent(Int.self, forKey: .decoderFfnDim) ?? decoderFfnDim
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? maxPositionEmbeddings
        activationFunction = try c.decodeIfPresent(String.self, forKey: .activationFunction) ?? activationFunction
        scaleEmbedding = try c.decodeIfPresent(Bool.self, forKey: .scaleEmbedding) ?? scaleEmbedding
        padTokenId = try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? padTokenId
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? bosTokenId
        eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? eosTokenId
        decoderStartTokenId = try c.decodeIfPresent(Int.self, forKey: .decoderStartTokenId) ?? decoderStartTokenId
        forcedEosTokenId = c.contains(.forcedEosTokenId) ? try c.decodeIfPresent(Int.self, forKey: .forcedEosTokenId) : forcedEosTokenId
    }

    public var activation: Activation? { Activation(huggingFace: activationFunction) }
    public var embedScale: Float { scaleEmbedding ? Float(dModel).squareRoot() : 1 }

    /// Checks that would fail later (or silently mis-size); messages name the key.
    public func validate(fail: (String) -> ModelError) throws {
        let sizes: [(String, Int, ClosedRange<Int>)] = [
            ("vocab_size", vocabSize, 1 ... 1 << 22), ("d_model", dModel, 1 ... 1 << 16), ("encoder_layers", encoderLayers, 0 ... 1024),
            ("decoder_layers", decoderLayers, 0 ... 1024), ("encoder_attention_heads", encoderAttentionHeads, 1 ... 1 << 12),
            ("decoder_attention_heads", decoderAttentionHeads, 1 ... 1 << 12), ("encoder_ffn_dim", encoderFfnDim, 1 ... 1 << 20),
            ("decoder_ffn_dim", decoderFfnDim, 1 ... 1 << 20), ("max_position_embeddings", maxPositionEmbeddings, 2 ... 1 << 20)]
        for (key, v, range) in sizes where !range.contains(v) { throw fail("text_config.\(key) = \(v) is out of range \(range)") }
        for (key, heads) in [("encoder_attention_heads", encoderAttentionHeads), ("decoder_attention_heads", decoderAttentionHeads)]
        where dModel % heads != 0 {
            throw fail("text_config.d_model = \(dModel) is not a multiple of \(key) = \(heads)")
        }
        for (key, id) in [("decoder_start_token_id", decoderStartTokenId), ("eos_token_id", eosTokenId)] where !(0 ..< vocabSize).contains(id) {
            throw fail("text_config.\(key) = \(id) is outside the vocabulary of \(vocabSize)")
        }
        if activation == nil { throw fail("text_config.activation_function '\(activationFunction)' is not supported") }
    }
}

// MARK: - Layers

/// BartEncoderLayer (post-LN): x = ln1(x + attn(x)); x = ln2(x + fc2(act(fc1(x)))).
final class BartEncoderLayer: @unchecked Sendable {
    let attention: SelfAttention  // self_attn.{q,k,v,out}_proj
    let attentionNorm: LayerNorm  // self_attn_layer_norm
    let mlp: MLP                  // fc1, fc2
    let finalNorm: LayerNorm      // final_layer_norm

    init(_ s: WeightScope, config: BartConfig) throws {
        let c = config.dModel
        attention = try SelfAttention(s.scope("self_attn"), dim: c, heads: config.encoderAttentionHeads)
        attentionNorm = try LayerNorm(s.scope("self_attn_layer_norm"), dim: c, eps: 1e-5)
        mlp = try MLP(s, dim: c, hidden: config.encoderFfnDim, activation: config.activation ?? .gelu)
        finalNorm = try LayerNorm(s.scope("final_layer_norm"), dim: c, eps: 1e-5)
    }

    /// x: [T, C] (one sequence, bidirectional) -> [T, C]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = attentionNorm(Ops.add(x, attention(x, batch: 1, length: x.shape[0], causal: false)))
        return finalNorm(Ops.add(h, mlp(h)))
    }
}

/// BartDecoderLayer (post-LN): causal self-attention over the cache, cross-attention over the encoder output,
/// MLP, each followed by its residual add and LayerNorm.
final class BartDecoderLayer: @unchecked Sendable {
    let attention: SelfAttention   // self_attn.{q,k,v,out}_proj
    let attentionNorm: LayerNorm   // self_attn_layer_norm
    let cross: CrossAttention      // encoder_attn.{q,k,v,out}_proj
    let crossNorm: LayerNorm       // encoder_attn_layer_norm
    let mlp: MLP                   // fc1, fc2
    let finalNorm: LayerNorm       // final_layer_norm

    init(_ s: WeightScope, config: BartConfig) throws {
        let c = config.dModel
        attention = try SelfAttention(s.scope("self_attn"), dim: c, heads: config.decoderAttentionHeads)
        attentionNorm = try LayerNorm(s.scope("self_attn_layer_norm"), dim: c, eps: 1e-5)
        cross = try CrossAttention(s.scope("encoder_attn"), dim: c, heads: config.decoderAttentionHeads)
        crossNorm = try LayerNorm(s.scope("encoder_attn_layer_norm"), dim: c, eps: 1e-5)
        mlp = try MLP(s, dim: c, hidden: config.decoderFfnDim, activation: config.activation ?? .gelu)
        finalNorm = try LayerNorm(s.scope("final_layer_norm"), dim: c, eps: 1e-5)
    }

    /// x: [T, C] new decoder rows; cache: this layer's self-attention cache; keysValues: [S, 2C] -> [T, C]
    func callAsFunction(_ x: Tensor, cache: LayerKVCache, keysValues: Tensor) -> Tensor {
        after(attentionNorm(Ops.add(x, attention(x, cache: cache))), keysValues: keysValues)
    }

    /// One new row per sequence (beams): x: [B, C], row b after caches[b]; keysValues: [S, 2C] shared -> [B, C]
    func callAsFunction(_ x: Tensor, caches: [LayerKVCache], keysValues: Tensor) -> Tensor {
        after(attentionNorm(Ops.add(x, attention(x, caches: caches))), keysValues: keysValues)
    }

    /// Cross-attention and MLP blocks after self-attention: h: [T, C] -> [T, C]
    private func after(_ h: Tensor, keysValues: Tensor) -> Tensor {
        let h = crossNorm(Ops.add(h, cross(h, keysValues: keysValues)))
        return finalNorm(Ops.add(h, mlp(h)))
    }
}

// MARK: - Encoder-decoder

/// The BART stack: `shared` token embeddings (also the LM head), encoder and decoder with their learned
/// positions (row = position + 2) and `layernorm_embedding`.
public final class BartLanguageModel: @unchecked Sendable {
    public let config: BartConfig
    let shared: Embedding            // shared.weight [vocab, C]
    let encoderPositions: Embedding  // encoder.embed_positions.weight [max_position_embeddings + 2, C]
    let encoderNorm: LayerNorm       // encoder.layernorm_embedding
    let encoderLayers: [BartEncoderLayer]  // encoder.layers.{i}
    let decoderPositions: Embedding  // decoder.embed_positions.weight [max_position_embeddings + 2, C]
    let decoderNorm: LayerNorm       // decoder.layernorm_embedding
    let decoderLayers: [BartDecoderLayer]  // decoder.layers.{i}
    let lmHead: Linear               // lm_head.weight, tied to shared.weight
    static let positionOffset = 2

    init(_ s: WeightScope, config: BartConfig) throws {
        self.config = config
        let c = config.dModel, rows = config.maxPositionEmbeddings + Self.positionOffset
        shared = try Embedding(s.scope("shared"), count: config.vocabSize, dim: c)
        encoderPositions = try Embedding(s.scope("encoder.embed_positions"), count: rows, dim: c)
        encoderNorm = try LayerNorm(s.scope("encoder.layernorm_embedding"), dim: c, eps: 1e-5)
        encoderLayers = try (0 ..< config.encoderLayers).map { try BartEncoderLayer(s.scope("encoder.layers.\($0)"), config: config) }
        decoderPositions = try Embedding(s.scope("decoder.embed_positions"), count: rows, dim: c)
        decoderNorm = try LayerNorm(s.scope("decoder.layernorm_embedding"), dim: c, eps: 1e-5)
        decoderLayers = try (0 ..< config.decoderLayers).map { try BartDecoderLayer(s.scope("decoder.layers.\($0)"), config: config) }
        lmHead = Linear(packed: try shared.packedForHead(), bias: nil)
    }

    /// Checkpoint keys transformers ties to `shared` (written by some exports, never read).
    static func isTiedCopy(_ key: String) -> Bool {
        key == "model.language_model.encoder.embed_tokens.weight" || key == "model.language_model.decoder.embed_tokens.weight"
            || key == "lm_head.weight"
    }

    /// Token embeddings (scaled as BartScaledWordEmbedding) of `ids`, checked against the vocabulary: [T, C].
    func embed(_ ids: [Int]) throws -> Tensor {
        let c = config.dModel, scale = config.embedScale
        let out = Tensor(uninitialized: [ids.count, c])
        for (r, id) in ids.enumerated() {
            guard id >= 0, id < config.vocabSize else {
                throw ModelError.invalidInput("token id \(id) is outside the vocabulary of \(config.vocabSize)")
            }
            let row = out.pointer + r * c
            shared.copyRow(id, into: row)
            if scale != 1 { for i in 0 ..< c { row[i] *= scale } }
        }
        return out
    }

    /// Adds the learned positions start ..< start + T to x [T, C] and applies `norm`.
    private func positioned(_ x: Tensor, start: Int, table: Embedding, norm: LayerNorm) throws -> Tensor {
        try positioned(x, positions: Array(start ..< start + x.shape[0]), table: table, norm: norm)
    }

    /// Adds the learned position positions[r] to row r of x [T, C] and applies `norm`.
    private func positioned(_ x: Tensor, positions: [Int], table: Embedding, norm: LayerNorm) throws -> Tensor {
        let c = config.dModel
        if let last = positions.max(), last >= config.maxPositionEmbeddings {
            throw ModelError.promptTooLong(tokens: last + 1, imageTokens: 0, context: config.maxPositionEmbeddings)
        }
        var row = [Float](repeating: 0, count: c)
        for (r, position) in positions.enumerated() {
            row.withUnsafeMutableBufferPointer { table.copyRow(position + Self.positionOffset, into: $0.baseAddress!) }  // safe: c > 0
            let dst = x.pointer + r * c
            for i in 0 ..< c { dst[i] += row[i] }
        }
        return norm(x)
    }

    /// BartEncoder over input embeddings (text embeddings with image features spliced in): [T, C] -> [T, C].
    public func encode(embeddings: Tensor) throws -> Tensor {
        var h = try positioned(embeddings, start: 0, table: encoderPositions, norm: encoderNorm)
        for layer in encoderLayers { h = layer(h) }
        return h
    }

    /// Each decoder layer's cross-attention keys and values over an encoder output [S, C]: per layer [S, 2C].
    public func crossKeysValues(_ encoded: Tensor) -> [Tensor] { decoderLayers.map { $0.cross.keysValues(encoded) } }

    /// Runs decoder ids after the rows `cache` holds. Returns the last row's logits [1, vocab].
    public func decode(_ ids: [Int], cache: KVCache, crossKeysValues: [Tensor]) throws -> Tensor {
        var h = try positioned(try embed(ids), start: cache.length, table: decoderPositions, norm: decoderNorm)
        for (i, layer) in decoderLayers.enumerated() { h = layer(h, cache: cache.layers[i], keysValues: crossKeysValues[i]) }
        let c = config.dModel, last = Tensor(uninitialized: [1, c])
        last.pointer.update(from: h.pointer + (h.shape[0] - 1) * c, count: c)
        return lmHead(last)
    }

    /// One decoder step for several sequences at once (beam search's beams): ids[b] follows the rows caches[b]
    /// holds; all read the same cross-attention keys/values. Every linear layer runs over the B rows together,
    /// each row's result being that of `decode([ids[b]], cache: caches[b], ...)`. Returns logits [B, vocab].
    public func decode(beams ids: [Int], caches: [KVCache], crossKeysValues: [Tensor]) throws -> Tensor {
        precondition(ids.count == caches.count && !ids.isEmpty, "decode(beams:): \(ids.count) ids for \(caches.count) caches")
        var h = try positioned(try embed(ids), positions: caches.map(\.length), table: decoderPositions, norm: decoderNorm)
        for (i, layer) in decoderLayers.enumerated() {
            h = layer(h, caches: caches.map { $0.layers[i] }, keysValues: crossKeysValues[i])
        }
        return lmHead(h)
    }

    /// A decoder self-attention cache for up to `capacity` decoder rows.
    func makeCache(capacity: Int) -> KVCache {
        // The layers' SelfAttention checked at load that d_model splits into the heads.
        let heads = max(config.decoderAttentionHeads, 1)
        return KVCache(layers: config.decoderLayers, capacity: min(max(capacity, 1), config.maxPositionEmbeddings), heads: heads,
                       headDim: config.dModel / heads)
    }

    /// Bytes one decode step streams: every decoder linear weight and the LM head.
    var decodeWeightBytes: Int {
        decoderLayers.reduce(lmHead.weight.byteCount) { sum, l in
            sum + [l.attention.qkv, l.attention.out, l.cross.query, l.cross.out, l.mlp.fc1, l.mlp.fc2].reduce(0) { $0 + $1.weight.byteCount }
        }
    }
}
