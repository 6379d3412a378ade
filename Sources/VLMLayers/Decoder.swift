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
public struct RotaryEmbedding: Sendable {
    /// inv_freq: [rotaryDim / 2]
    public let inverseFrequencies: [Float]
    /// Multiplier of cos and sin (1 except for yarn-style scaling).
    public let attentionScaling: Float
    public var rotaryDim: Int { inverseFrequencies.count * 2 }

    public init(inverseFrequencies: [Float], attentionScaling: Float = 1) {
        self.inverseFrequencies = inverseFrequencies
        self.attentionScaling = attentionScaling
    }

    /// Rotates `heads` heads of size `headDim` in each of `rows` rows of x (row stride `ld`, first head at
    /// `offset`), row r at position `startPosition + r`. Like transformers, cos/sin are float32 of
    /// float32(position * inv_freq).
    public func apply(_ x: Tensor, offset: Int, ld: Int, rows: Int, heads: Int, headDim: Int, startPosition: Int) {
        let half = rotaryDim / 2
        var cosTable = [Float](repeating: 0, count: half), sinTable = [Float](repeating: 0, count: half)
        for r in 0 ..< rows {
            let position = Float(startPosition + r)
            for i in 0 ..< half {
                let angle = position * inverseFrequencies[i]
                cosTable[i] = cos(angle) * attentionScaling
                sinTable[i] = sin(angle) * attentionScaling
            }
            for h in 0 ..< heads {
                let p = x.pointer + r * ld + offset + h * headDim
                // Only the first rotaryDim dims rotate (partial_rotary_factor); the pair is (i, i + rotaryDim/2).
                for i in 0 ..< half {
                    let a = p[i], b = p[i + half]
                    p[i] = a * cosTable[i] - b * sinTable[i]
                    p[i + half] = b * cosTable[i] + a * sinTable[i]
                }
            }
        }
    }
}

/// Keys and values of one layer for one sequence, preallocated for `capacity` positions.
public final class LayerKVCache: @unchecked Sendable {
    public let keys: Tensor     // [capacity, kvHeads * headDim]
    public let values: Tensor   // [capacity, kvHeads * headDim]
    public private(set) var length = 0
    public let capacity: Int
    public let width: Int

    public init(capacity: Int, width: Int) {
        self.capacity = capacity
        self.width = width
        keys = Tensor(zeros: [capacity, width])
        values = Tensor(zeros: [capacity, width])
    }

    /// Appends `rows` keys and values read from `source` rows (stride `ld`) at column offsets.
    func append(_ source: Tensor, rows: Int, ld: Int, keyOffset: Int, valueOffset: Int) {
        for r in 0 ..< rows {
            (keys.pointer + (length + r) * width).update(from: source.pointer + r * ld + keyOffset, count: width)
            (values.pointer + (length + r) * width).update(from: source.pointer + r * ld + valueOffset, count: width)
        }
        length += rows
    }

    public func reset() { length = 0 }

    /// Drops positions from `newLength` on (e.g. to reuse a shared prompt prefix).
    public func truncate(to newLength: Int) { length = min(length, max(newLength, 0)) }
}

/// Per-sequence cache for every layer of a decoder.
public final class KVCache: @unchecked Sendable {
    public let layers: [LayerKVCache]
    public var length: Int { layers.first?.length ?? 0 }
    public var capacity: Int { layers.first?.capacity ?? 0 }

    public init(layers count: Int, capacity: Int, width: Int) {
        layers = (0 ..< count).map { _ in LayerKVCache(capacity: capacity, width: width) }
    }

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

    public init(_ scope: WeightScope, dim: Int, heads: Int, kvHeads: Int, headDim: Int, bias: Bool, outBias: Bool,
                rotary: RotaryEmbedding) throws {
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
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        // Packed straight from the checkpoint into one fused weight (no float32 copy of 16-bit tensors).
        let names = ["q_proj", "k_proj", "v_proj"], widths = [qWidth, kvWidth, kvWidth]
        let weight = try scope.packedWeight(names.map { "\($0).weight" }, rows: widths, cols: dim)
        let biases = bias ? try zip(names, widths).map { try scope.tensor("\($0).bias", shape: [$1]) } : []
        qkv = Linear(packed: weight, bias: bias ? concatenateRows(biases) : nil)
        out = try Linear(scope.scope("o_proj"), in: qWidth, out: dim, bias: outBias)
    }

    /// x: [T, C], the next T positions of one sequence, appended to `cache` -> [T, C].
    public func callAsFunction(_ x: Tensor, cache: LayerKVCache) -> Tensor {
        let t = x.shape[0]
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim, ld = qWidth + 2 * kvWidth
        let fused = qkv(x)  // [T, q | k | v]
        let start = cache.length
        rotary.apply(fused, offset: 0, ld: ld, rows: t, heads: heads, headDim: headDim, startPosition: start)
        rotary.apply(fused, offset: qWidth, ld: ld, rows: t, heads: kvHeads, headDim: headDim, startPosition: start)
        cache.append(fused, rows: t, ld: ld, keyOffset: qWidth, valueOffset: qWidth + kvWidth)
        let total = cache.length
        let output = Tensor(uninitialized: [t, qWidth])
        let group = heads / kvHeads
        // Each query head reads its group's key/value head (repeat_kv); one single-head call per query head keeps
        // the kernel's in-place head layout. Causal with Tq < Tk masks keys past each query's own position.
        for h in 0 ..< heads {
            let kv = h / group
            let head = Ops.attention(
                q: fused, qOffset: h * headDim, ldq: ld, k: cache.keys, kOffset: kv * headDim, ldk: kvWidth,
                v: cache.values, vOffset: kv * headDim, ldv: kvWidth, batch: 1, heads: 1, queryLength: t, keyLength: total,
                headDim: headDim, scale: 1 / Float(headDim).squareRoot(), causal: true)
            for r in 0 ..< t {
                (output.pointer + r * qWidth + h * headDim).update(from: head.pointer + r * headDim, count: headDim)
            }
        }
        return out(output)
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

    /// x: [T, C] -> [T, C]
    public func callAsFunction(_ x: Tensor, cache: LayerKVCache) -> Tensor {
        let h = Ops.add(x, attention(inputNorm(x), cache: cache))
        Ops.addInPlace(h, mlp(postAttentionNorm(h)))
        return h
    }
}
