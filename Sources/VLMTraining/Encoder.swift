import Foundation
import VLMTensor

/// Sizes of one tower's pre-norm transformer blocks.
public struct EncoderSpec: Sendable {
    public var dim: Int
    public var heads: Int
    public var intermediate: Int
    public var activation: Activation
    public var eps: Float

    public init(dim: Int, heads: Int, intermediate: Int, activation: Activation, eps: Float) {
        self.dim = dim
        self.heads = heads
        self.intermediate = intermediate
        self.activation = activation
        self.eps = eps
    }
}

/// Everything one CLIPEncoderLayer's backward needs.
public struct EncoderLayerCache {
    let ln1: LayerNormCache
    let qkvWeight: Tensor
    let qkv: LinearCache
    let attention: AttentionCache
    let outProj: LinearCache
    let ln2: LayerNormCache
    let fc1: LinearCache
    let fc2: LinearCache
}

/// CLIPEncoderLayer (modeling_clip.py), pre-norm: h = x + out_proj(attn(ln1(x))); y = h + fc2(act(fc1(ln2(h)))).
/// Parameters are read by Hugging Face name under `prefix` ("text_model.encoder.layers.3"); the q/k/v
/// projections are fused into one [3C, C] GEMM as the inference SelfAttention does.
public enum EncoderLayerOp {
    /// x: [B*T, C] -> [B*T, C]
    public static func forward(_ x: Tensor, params: ParameterSet, prefix p: String, spec: EncoderSpec,
                               batch: Int, length: Int, causal: Bool, keyMask: [UInt8]? = nil) -> (Tensor, EncoderLayerCache) {
        let a = "\(p).self_attn"
        let (n1, ln1) = LayerNormOp.forward(x, weight: params["\(p).layer_norm1.weight"], bias: params["\(p).layer_norm1.bias"], eps: spec.eps)
        let qkvW = stackRows([params["\(a).q_proj.weight"], params["\(a).k_proj.weight"], params["\(a).v_proj.weight"]])
        let qkvB = stackRows([params["\(a).q_proj.bias"], params["\(a).k_proj.bias"], params["\(a).v_proj.bias"]])
        let (qkv, qkvCache) = LinearOp.forward(n1, weight: qkvW, bias: qkvB)
        let (att, attCache) = AttentionOp.forward(qkv: qkv, batch: batch, length: length, heads: spec.heads, causal: causal, keyMask: keyMask)
        let (o, outCache) = LinearOp.forward(att, weight: params["\(a).out_proj.weight"], bias: params["\(a).out_proj.bias"])
        let h = Ops.add(x.reshaped(o.shape), o)
        let (n2, ln2) = LayerNormOp.forward(h, weight: params["\(p).layer_norm2.weight"], bias: params["\(p).layer_norm2.bias"], eps: spec.eps)
        let (f, fc1) = LinearOp.forward(n2, weight: params["\(p).mlp.fc1.weight"], bias: params["\(p).mlp.fc1.bias"], activation: spec.activation)
        let (g, fc2) = LinearOp.forward(f, weight: params["\(p).mlp.fc2.weight"], bias: params["\(p).mlp.fc2.bias"])
        Ops.addInPlace(h, g)
        return (h, EncoderLayerCache(ln1: ln1, qkvWeight: qkvW, qkv: qkvCache, attention: attCache, outProj: outCache,
                                     ln2: ln2, fc1: fc1, fc2: fc2))
    }

    /// dy: [B*T, C] -> dx: [B*T, C]; parameter gradients go to `grads` under their Hugging Face names.
    public static func backward(_ dy: Tensor, cache: EncoderLayerCache, params: ParameterSet, prefix p: String,
                                grads: Gradients) -> Tensor {
        let a = "\(p).self_attn"
        let c = dy.shape[1]
        // MLP branch: y = h + fc2(act(fc1(ln2(h))))
        let fc2 = LinearOp.backward(dy, cache: cache.fc2, weight: params["\(p).mlp.fc2.weight"], hasBias: true)
        grads.add("\(p).mlp.fc2.weight", fc2.dw)
        if let db = fc2.db { grads.add("\(p).mlp.fc2.bias", db) }
        let fc1 = LinearOp.backward(fc2.dx ?? dy, cache: cache.fc1, weight: params["\(p).mlp.fc1.weight"], hasBias: true)
        grads.add("\(p).mlp.fc1.weight", fc1.dw)
        if let db = fc1.db { grads.add("\(p).mlp.fc1.bias", db) }
        let ln2 = LayerNormOp.backward(fc1.dx ?? dy, cache: cache.ln2, weight: params["\(p).layer_norm2.weight"])
        grads.add("\(p).layer_norm2.weight", ln2.dw)
        grads.add("\(p).layer_norm2.bias", ln2.db)
        let dh = Ops.add(dy, ln2.dx.reshaped(dy.shape))
        // Attention branch: h = x + out_proj(attn(qkv(ln1(x))))
        let out = LinearOp.backward(dh, cache: cache.outProj, weight: params["\(a).out_proj.weight"], hasBias: true)
        grads.add("\(a).out_proj.weight", out.dw)
        if let db = out.db { grads.add("\(a).out_proj.bias", db) }
        let dqkv = AttentionOp.backward(out.dx ?? dh, cache: cache.attention)
        let qkv = LinearOp.backward(dqkv, cache: cache.qkv, weight: cache.qkvWeight, hasBias: true)
        for (i, name) in ["q_proj", "k_proj", "v_proj"].enumerated() {
            grads.add("\(a).\(name).weight", qkv.dw.rows(i * c ..< (i + 1) * c))
            guard let db = qkv.db else { continue }
            // The key bias adds q·b_k to every score of a query row, and softmax is invariant to such shifts: its
            // gradient is exactly 0 (each row of dS sums to 0). Computed, it is rounding noise (~1e-8) that Adam's
            // g / (|g| + eps) would amplify into a random walk of the parameter, so it is stored as exact zeros.
            grads.add("\(a).\(name).bias", name == "k_proj" ? Tensor(zeros: [c]) : db.rows(i * c ..< (i + 1) * c))
        }
        let ln1 = LayerNormOp.backward(qkv.dx ?? dh, cache: cache.ln1, weight: params["\(p).layer_norm1.weight"])
        grads.add("\(p).layer_norm1.weight", ln1.dw)
        grads.add("\(p).layer_norm1.bias", ln1.db)
        Ops.addInPlace(dh, ln1.dx)
        return dh
    }
}

/// Stacks tensors along the first axis: [n_i, ...] -> [Σ n_i, ...] (the fused QKV weight, as VLMLayers does at load).
func stackRows(_ parts: [Tensor]) -> Tensor {
    guard let first = parts.first else { return Tensor(zeros: [0]) }
    var shape = first.shape
    shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
    let out = Tensor(uninitialized: shape)
    var offset = 0
    for part in parts {
        (out.pointer + offset).update(from: part.pointer, count: part.count)
        offset += part.count
    }
    return out
}

/// Sets rows r of x: [B*T, C] to zero wherever `keep(b, t)` is false.
func zeroRows(_ x: Tensor, batch: Int, length: Int, keep: (Int, Int) -> Bool) {
    let c = x.count / max(batch * length, 1)
    for b in 0 ..< batch {
        for t in 0 ..< length where !keep(b, t) {
            (x.pointer + (b * length + t) * c).update(repeating: 0, count: c)
        }
    }
}
