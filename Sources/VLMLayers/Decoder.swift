import Foundation
import VLMTensor

/// RMSNorm as LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight, computed in float32.
public struct RMSNorm: @unchecked Sendable {
    public let weight: Tensor
    public let eps: Float

    public init(_ scope: WeightScope, dim: Int, eps: Float) throws {
        weight = try scope.tensor("weight", shape: [dim])
        self.eps = eps
    }

    /// x: [..., dim]
    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.rmsNorm(x, weight: weight, eps: eps) }
}

/// Rotary position embedding with the "rotate_half" layout of transformers' Llama (the two halves of each head
/// are the pair (x_i, x_{i+D/2})), from a table of inverse frequencies the config's rope type produced.
/// `tables(for:)` (Positions.swift) computes cos/sin once per forward; every layer applies the same tables.
public struct RotaryEmbedding: Sendable {
    /// inv_freq: [rotaryDim / 2]
    public let inverseFrequencies: [Float]
    /// Multiplier of cos and sin (1 except for yarn-style scaling).
    public let attentionScaling: Float
    /// Multi-axis RoPE (M-RoPE): how many frequencies read each position axis, in order; nil for 1-D.
    public let sections: [Int]?
    public var rotaryDim: Int { inverseFrequencies.count * 2 }

    public init(inverseFrequencies: [Float], attentionScaling: Float = 1, sections: [Int]? = nil) {
        self.inverseFrequencies = inverseFrequencies
        self.attentionScaling = attentionScaling
        self.sections = sections
    }
}

/// Grouped-query causal self-attention with rotary embeddings (Llama, Mistral, Qwen2 naming:
/// q_proj, k_proj, v_proj, o_proj), q/k/v fused at load into one projection.
public final class GroupedQueryAttention: @unchecked Sendable {
    public let qkv: Linear
    public let out: Linear
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    public let rotary: RotaryEmbedding
    /// This layer's sliding window (Mistral's sliding_window, Qwen2's sliding layers), nil for full attention.
    public let slidingWindow: Int?
    /// bf16 attention for prefill (Ops.attention `bf16`; decode steps keep the fp32 kernel) when the projections
    /// compute in bf16 or int8 (`WeightScope.attendsInBF16`): beside them at two to four times the fp32 rate, fp32
    /// attention was 8% of a 128-token int8 prefill of SmolLM2-360M.
    public let bf16: Bool

    public init(_ scope: WeightScope, dim: Int, heads: Int, kvHeads: Int, headDim: Int, bias: Bool, outBias: Bool,
                rotary: RotaryEmbedding, slidingWindow: Int? = nil) throws {
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw WeightError.invalid("\(scope.prefix): \(heads) attention heads are not a multiple of \(kvHeads) key/value heads")
        }
        guard rotary.rotaryDim <= headDim, rotary.rotaryDim % 2 == 0 else {
            throw WeightError.invalid("\(scope.prefix): rotary dimension \(rotary.rotaryDim) does not fit head_dim \(headDim)")
        }
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.rotary = rotary
        self.slidingWindow = slidingWindow
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        // Packed straight from the checkpoint into one fused weight (no float32 copy of 16-bit tensors).
        let names = ["q_proj", "k_proj", "v_proj"], widths = [qWidth, kvWidth, kvWidth]
        let weight = try scope.packedWeight(names.map { "\($0).weight" }, rows: widths, cols: dim)
        let biases = bias ? try zip(names, widths).map { try scope.tensor("\($0).bias", shape: [$1]) } : []
        qkv = Linear(packed: weight, bias: bias ? concatenateRows(biases) : nil)
        out = try Linear(scope.scope("o_proj"), in: qWidth, out: dim, bias: outBias)
        try scope.applyReducedCompute(.all, [qkv, out])
        bf16 = scope.attendsInBF16
    }

    /// x: [T, C], the next T rows of one sequence, appended to `cache` -> [T, C]. `rotary`: the T rows' cos/sin
    /// (from their position ids, shared by all layers); `mask`: which cached and new keys each row sees
    /// (this layer's sliding window is applied on top).
    public func callAsFunction(_ x: Tensor, cache: LayerKVCache, rotary tables: RotaryTables, mask: AttentionMask) -> Tensor {
        let t = x.shape[0]
        precondition(tables.rows == t, "attention: rotary tables for \(tables.rows) rows, input has \(t)")
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim, ld = qWidth + 2 * kvWidth
        let fused = qkv(x)  // [T, q | k | v]
        let start = cache.length
        tables.apply(fused, offset: 0, ld: ld, heads: heads, headDim: headDim)
        tables.apply(fused, offset: qWidth, ld: ld, heads: kvHeads, headDim: headDim)
        cache.append(fused, rows: t, ld: ld, keyOffset: qWidth, valueOffset: qWidth + kvWidth)
        let total = cache.length
        let ranges = mask.windowed(slidingWindow).keyRanges(queryStart: start, queryCount: t, keyCount: total)
        // Query head h reads key/value head h / (heads / kvHeads) (repeat_kv) in place: one call for all heads.
        let output = cache.attend(q: fused, ldq: ld, heads: heads, queryLength: t, scale: 1 / Float(headDim).squareRoot(),
                                  keyBegin: ranges.begin, keyEnd: ranges.end, keyMask: mask.keyPadding, bf16: bf16)
        return out(output.reshaped([t, qWidth]))
    }
}

/// SwiGLU MLP (LlamaMLP): down(act(gate(x)) * up(x)), gate and up fused into one GEMM.
public final class GatedMLP: @unchecked Sendable {
    public let gateUp: Linear
    public let down: Linear
    public let hidden: Int
    public let activation: Activation

    public init(_ scope: WeightScope, dim: Int, hidden: Int, activation: Activation, bias: Bool) throws {
        let gateUpWeight = try scope.packedWeight(["gate_proj.weight", "up_proj.weight"], rows: [hidden, hidden], cols: dim)
        let b = bias ? concatenateRows([try scope.tensor("gate_proj.bias", shape: [hidden]), try scope.tensor("up_proj.bias", shape: [hidden])]) : nil
        gateUp = Linear(packed: gateUpWeight, bias: b)
        down = try Linear(scope.scope("down_proj"), in: hidden, out: dim, bias: bias)
        self.hidden = hidden
        self.activation = activation
        try scope.applyReducedCompute(.mlp, [gateUp, down])
    }

    /// x: [T, C] -> [T, C]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let t = x.shape[0]
        let gu = gateUp(x)  // [T, gate | up]
        let h = Tensor(uninitialized: [t, hidden])
        for r in 0 ..< t {
            (h.pointer + r * hidden).update(from: gu.pointer + r * 2 * hidden, count: hidden)
        }
        let activated = Ops.activate(h, activation)
        for r in 0 ..< t {
            let a = activated.pointer + r * hidden, u = gu.pointer + r * 2 * hidden + hidden
            for i in 0 ..< hidden { a[i] *= u[i] }
        }
        return down(activated)
    }
}

/// Llama decoder block: x += attn(input_layernorm(x)); x += mlp(post_attention_layernorm(x)).
public final class DecoderLayer: @unchecked Sendable {
    public let inputNorm: RMSNorm              // input_layernorm
    public let attention: GroupedQueryAttention  // self_attn
    public let postAttentionNorm: RMSNorm      // post_attention_layernorm
    public let mlp: GatedMLP                   // mlp

    public init(inputNorm: RMSNorm, attention: GroupedQueryAttention, postAttentionNorm: RMSNorm, mlp: GatedMLP) {
        self.inputNorm = inputNorm
        self.attention = attention
        self.postAttentionNorm = postAttentionNorm
        self.mlp = mlp
    }

    /// x: [T, C] -> [T, C] (see GroupedQueryAttention for `rotary` and `mask`).
    public func callAsFunction(_ x: Tensor, cache: LayerKVCache, rotary: RotaryTables, mask: AttentionMask) -> Tensor {
        let h = Ops.add(x, attention(inputNorm(x), cache: cache, rotary: rotary, mask: mask))
        Ops.addInPlace(h, mlp(postAttentionNorm(h)))
        return h
    }
}
