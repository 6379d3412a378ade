import VLMTensor

/// Multi-head self-attention with separate q/k/v projections in the checkpoint (CLIP, SigLIP, ViT naming),
/// fused at load into one [3C, C] projection so a single GEMM feeds the attention kernel, which reads the
/// heads in place from the fused rows (no transposes).
public final class SelfAttention: @unchecked Sendable {
    public let qkv: Linear
    public let out: Linear
    public let heads: Int
    public let headDim: Int
    /// bf16 attention (Ops.attention `bf16`) when the projections compute in bf16 (`--precision bf16`) or all of them
    /// in int8 (`WeightScope.attendsInBF16`, as the decoders): with them at twice the fp32 rate, fp32 attention was
    /// 28% of a 1024-token tile encode; beside int8 projections 8.5% of a ViT-B/32 encode (batch 8, Zen 5).
    public let bf16: Bool
    public var dim: Int { heads * headDim }

    /// Loads `<scope>.{q,k,v,out}_proj.{weight,bias}` (weight [dim, dim], bias [dim]).
    public init(_ scope: WeightScope, dim: Int, heads: Int) throws {
        guard heads > 0, dim % heads == 0 else {
            throw WeightError.invalid("\(scope.prefix): hidden size \(dim) is not a multiple of the \(heads) attention heads")
        }
        self.heads = heads
        headDim = dim / heads
        // Packed straight from the checkpoint into one fused weight in the scope's storage (--precision applies to
        // it as to every other projection).
        let names = ["q_proj", "k_proj", "v_proj"]
        let weight = try scope.packedWeight(names.map { "\($0).weight" }, rows: [dim, dim, dim], cols: dim)
        let biases = try names.map { try scope.tensor("\($0).bias", shape: [dim]) }
        qkv = Linear(packed: weight, bias: concatenateRows(biases))
        out = try Linear(scope.scope("out_proj"), in: dim, out: dim)
        try scope.applyReducedCompute(.all, [qkv, out])
        bf16 = scope.attendsInBF16
    }

    /// x: [B*T, C] (B sequences of T tokens, token-major) -> [B*T, C].
    /// causal: token t sees tokens <= t. keyMask: [B*T] with 0 for padding keys, or nil.
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, causal: Bool, keyMask: [UInt8]? = nil) -> Tensor {
        let fused = qkv(x)  // [B*T, 3C]: q | k | v per row
        let c = dim
        let attended = Ops.attention(
            q: fused, qOffset: 0, ldq: 3 * c, k: fused, kOffset: c, ldk: 3 * c, v: fused, vOffset: 2 * c, ldv: 3 * c,
            batch: batch, heads: heads, queryLength: length, keyLength: length, headDim: headDim,
            scale: 1 / Float(headDim).squareRoot(), causal: causal, keyMask: keyMask, bf16: bf16)
        return out(attended.reshaped([batch * length, c]))
    }
}

extension SelfAttention {
    /// The attention output at one row per sequence: every row's keys and values, the query of `rows[b]` only.
    /// x: [B*T, C], rows: B indices into each sequence -> [B, C]. For a last layer whose output is read at one
    /// position (SigLIP's text pooler), the other rows' queries, output projections and MLPs are not computed.
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, keyMask: [UInt8]?, rows: [Int]) -> Tensor {
        let fused = qkv(x)  // [B*T, 3C]: q | k | v per row
        let c = dim
        let q = Tensor(uninitialized: [batch, c])
        for b in 0 ..< batch { (q.pointer + b * c).update(from: fused.pointer + (b * length + rows[b]) * 3 * c, count: c) }
        let attended = Ops.attention(
            q: q, ldq: c, k: fused, kOffset: c, ldk: 3 * c, v: fused, vOffset: 2 * c, ldv: 3 * c,
            batch: batch, heads: heads, queryLength: 1, keyLength: length, headDim: headDim,
            scale: 1 / Float(headDim).squareRoot(), causal: false, keyMask: keyMask)
        return out(attended.reshaped([batch, c]))
    }
}

/// fc1 -> activation (fused in the GEMM epilogue) -> fc2, as CLIPMLP / SiglipMLP.
public final class MLP: @unchecked Sendable {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation

    public init(_ scope: WeightScope, dim: Int, hidden: Int, activation: Activation) throws {
        fc1 = try Linear(scope.scope("fc1"), in: dim, out: hidden)
        fc2 = try Linear(scope.scope("fc2"), in: hidden, out: dim)
        self.activation = activation
        try scope.applyReducedCompute(.mlp, [fc1, fc2])
    }

    /// x: [N, dim] -> [N, dim]
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Ops.linearChain(x, fc1.weight, bias1: fc1.bias, activation: activation, fc2.weight, bias2: fc2.bias)
    }
}

/// Pre-LayerNorm transformer block: x += attn(ln1(x)); x += mlp(ln2(x)).
/// Hugging Face names: layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2.
public final class PreNormEncoderLayer: @unchecked Sendable {
    public let norm1: LayerNorm      // layer_norm1
    public let attention: SelfAttention  // self_attn
    public let norm2: LayerNorm      // layer_norm2
    public let mlp: MLP              // mlp

    public init(_ scope: WeightScope, dim: Int, heads: Int, intermediate: Int, activation: Activation, eps: Float) throws {
        norm1 = try LayerNorm(scope.scope("layer_norm1"), dim: dim, eps: eps)
        attention = try SelfAttention(scope.scope("self_attn"), dim: dim, heads: heads)
        norm2 = try LayerNorm(scope.scope("layer_norm2"), dim: dim, eps: eps)
        mlp = try MLP(scope.scope("mlp"), dim: dim, hidden: intermediate, activation: activation)
    }

    /// x: [B*T, C] -> [B*T, C]
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, causal: Bool, keyMask: [UInt8]? = nil) -> Tensor {
        let h = Ops.add(x, attention(norm1(x), batch: batch, length: length, causal: causal, keyMask: keyMask))
        Ops.addInPlace(h, mlp(norm2(h)))
        return h
    }
}

extension PreNormEncoderLayer {
    /// The block's output at one row per sequence (x: [B*T, C], rows: B indices -> [B, C]), equal to those rows
    /// of the full output: attention reads every row's keys and values, the rest is per row.
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, keyMask: [UInt8]?, rows: [Int]) -> Tensor {
        let c = x.shape[1]
        let picked = Tensor(uninitialized: [batch, c])
        for b in 0 ..< batch { (picked.pointer + b * c).update(from: x.pointer + (b * length + rows[b]) * c, count: c) }
        let h = Ops.add(picked, attention(norm1(x), batch: batch, length: length, keyMask: keyMask, rows: rows))
        Ops.addInPlace(h, mlp(norm2(h)))
        return h
    }
}

/// A stack of pre-norm blocks at `<scope>.layers.{i}`.
public final class PreNormEncoder: @unchecked Sendable {
    public let layers: [PreNormEncoderLayer]

    public init(_ scope: WeightScope, count: Int, dim: Int, heads: Int, intermediate: Int, activation: Activation, eps: Float) throws {
        layers = try (0 ..< count).map {
            try PreNormEncoderLayer(scope.scope("layers.\($0)"), dim: dim, heads: heads, intermediate: intermediate,
                                    activation: activation, eps: eps)
        }
    }

    /// The last layer's output at one row per sequence (x: [B*T, C], rows: B indices -> [B, C]): all layers but
    /// the last run on every row, the last only where it is read (a pooler reading one position).
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, keyMask: [UInt8]?, rows: [Int]) -> Tensor {
        guard let last = layers.last else {
            let c = x.shape[1], out = Tensor(uninitialized: [batch, c])
            for b in 0 ..< batch { (out.pointer + b * c).update(from: x.pointer + (b * length + rows[b]) * c, count: c) }
            return out
        }
        let h = self(x, batch: batch, length: length, causal: false, keyMask: keyMask, layerCount: layers.count - 1)
        return last(h, batch: batch, length: length, keyMask: keyMask, rows: rows)
    }

    /// x: [B*T, C] -> [B*T, C], through the first `layerCount` layers (all by default).
    public func callAsFunction(_ x: Tensor, batch: Int, length: Int, causal: Bool, keyMask: [UInt8]? = nil,
                               layerCount: Int? = nil) -> Tensor {
        var h = x
        for layer in layers.prefix(layerCount ?? layers.count) {
            h = layer(h, batch: batch, length: length, causal: causal, keyMask: keyMask)
        }
        return h
    }
}

/// Stacks tensors along the first axis (all other axes equal).
func concatenateRows(_ parts: [Tensor]) -> Tensor {
    guard let first = parts.first else { return Tensor(zeros: [0]) }
    var shape = first.shape
    shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
    let out = Tensor(uninitialized: shape)
    var offset = 0
    for p in parts {
        (out.pointer + offset).update(from: p.pointer, count: p.count)
        offset += p.count
    }
    return out
}
