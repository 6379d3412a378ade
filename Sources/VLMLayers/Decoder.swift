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

/// Keys and values of one layer for one sequence, head-major: head g's keys are one contiguous run of
/// positions ([heads, allocated, headDim]), so a decode step reads each head's keys and values as a stream instead
/// of one headDim slice every `heads * headDim` floats (with 32 key/value heads of 64, a row every 8 KB: a page
/// per key, which the hardware prefetchers do not follow). Storage grows on demand (doubling) up to `capacity`
/// positions, so a cache sized for a whole context costs only what it holds.
public final class LayerKVCache: @unchecked Sendable {
    public private(set) var keys: Tensor     // [heads, allocated, headDim]
    public private(set) var values: Tensor   // [heads, allocated, headDim]
    public private(set) var length = 0
    public let capacity: Int
    public let heads: Int
    public let headDim: Int
    public var width: Int { heads * headDim }

    public init(capacity: Int, heads: Int, headDim: Int, reserve: Int = 256) {
        self.capacity = capacity
        self.heads = heads
        self.headDim = headDim
        let initial = min(capacity, max(reserve, 1))
        keys = Tensor(zeros: [heads, initial, headDim])
        values = Tensor(zeros: [heads, initial, headDim])
    }

    /// Positions allocated now.
    public var allocated: Int { keys.shape[1] }

    /// Floats from one head's run to the next (the attention kernels' kvHeadStride; rows are headDim apart).
    public var headStride: Int { allocated * headDim }

    /// Makes room for `rows` positions in total (at most `capacity`), keeping what is held.
    func reserve(_ rows: Int) {
        guard rows > allocated else { return }
        let grown = min(capacity, max(rows, allocated * 2))
        let k = Tensor(zeros: [heads, grown, headDim]), v = Tensor(zeros: [heads, grown, headDim])
        for g in 0 ..< heads {
            (k.pointer + g * grown * headDim).update(from: keys.pointer + g * headStride, count: length * headDim)
            (v.pointer + g * grown * headDim).update(from: values.pointer + g * headStride, count: length * headDim)
        }
        keys = k
        values = v
    }

    /// Appends `rows` keys and values read from `source` rows (stride `ld`), each `heads * headDim` wide (head after
    /// head, as a projection writes them) at column offsets. source: [rows, ld]
    func append(_ source: Tensor, rows: Int, ld: Int, keyOffset: Int, valueOffset: Int) {
        reserve(length + rows)
        let stride = headStride
        for r in 0 ..< rows {
            let k = source.pointer + r * ld + keyOffset, v = source.pointer + r * ld + valueOffset
            let at = (length + r) * headDim
            for g in 0 ..< heads {
                (keys.pointer + g * stride + at).update(from: k + g * headDim, count: headDim)
                (values.pointer + g * stride + at).update(from: v + g * headDim, count: headDim)
            }
        }
        length += rows
    }

    public func reset() { length = 0 }

    /// Drops positions from `newLength` on (e.g. to reuse a shared prompt prefix).
    public func truncate(to newLength: Int) { length = min(length, max(newLength, 0)) }

    /// An independent cache holding the same positions (same capacity).
    public func copy() -> LayerKVCache {
        let other = LayerKVCache(capacity: capacity, heads: heads, headDim: headDim, reserve: max(length, 1))
        for g in 0 ..< heads {
            (other.keys.pointer + g * other.headStride).update(from: keys.pointer + g * headStride, count: length * headDim)
            (other.values.pointer + g * other.headStride).update(from: values.pointer + g * headStride, count: length * headDim)
        }
        other.length = length
        return other
    }

    /// Bytes allocated for keys and values.
    public var bytes: Int { 2 * allocated * width * MemoryLayout<Float>.stride }
}

/// Per-sequence cache for every layer of a decoder.
public final class KVCache: @unchecked Sendable {
    public let layers: [LayerKVCache]
    public var length: Int { layers.first?.length ?? 0 }
    public var capacity: Int { layers.first?.capacity ?? 0 }
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }

    public init(layers count: Int, capacity: Int, heads: Int, headDim: Int) {
        layers = (0 ..< count).map { _ in LayerKVCache(capacity: capacity, heads: heads, headDim: headDim) }
    }

    /// A cache over existing per-layer caches (copies for beam search).
    public init(layerCaches: [LayerKVCache]) { layers = layerCaches }

    public func reset() { layers.forEach { $0.reset() } }
    public func truncate(to length: Int) { layers.forEach { $0.truncate(to: length) } }
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
        let output = Ops.attention(
            q: fused, ldq: ld, k: cache.keys, ldk: headDim, v: cache.values, ldv: headDim, kvHeadStride: cache.headStride, batch: 1, heads: heads,
            kvHeads: kvHeads, queryLength: t, keyLength: total, headDim: headDim, scale: 1 / Float(headDim).squareRoot(),
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
