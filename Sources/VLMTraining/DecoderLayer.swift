import Foundation
import VLMTensor

/// Sizes of a Llama decoder's blocks.
public struct DecoderSpec: Sendable {
    public var dim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediate: Int
    public var activation: Activation
    public var eps: Float

    public init(dim: Int, heads: Int, kvHeads: Int, headDim: Int, intermediate: Int, activation: Activation, eps: Float) {
        self.dim = dim
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.intermediate = intermediate
        self.activation = activation
        self.eps = eps
    }
}

/// Everything one LlamaDecoderLayer's backward needs.
public struct DecoderLayerCache {
    let inputNorm: RMSNormCache
    let q: LinearCache, k: LinearCache, v: LinearCache
    let attention: AttentionCache
    let out: LinearCache
    let postNorm: RMSNormCache
    let gate: LinearCache, up: LinearCache, down: LinearCache
    /// gate pre-activation, up, act(gate): [M, I]
    let gateValues: Tensor, upValues: Tensor, activated: Tensor
}

/// LlamaDecoderLayer (modeling_llama.py), pre-norm:
///   h = x + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))), n = input_layernorm(x)
///   y = h + down_proj(act(gate_proj(m)) ⊙ up_proj(m)),                  m = post_attention_layernorm(h)
/// Grouped-query attention: query head h reads key/value head h / (heads / kvHeads) (repeat_kv). The keys and
/// values are expanded to every query head and run through the fused-QKV AttentionOp; their gradients are summed
/// back over each group. Parameters are read by Hugging Face name under `prefix` ("language_model.model.layers.0").
public enum DecoderLayerOp {
    /// x: [B*T, C] -> [B*T, C]. keyMask: [B*T], 0 = padded key.
    public static func forward(_ x: Tensor, params: ParameterSet, prefix p: String, spec: DecoderSpec, batch: Int, length: Int,
                               angles: RotaryAngles, keyMask: [UInt8]?) -> (Tensor, DecoderLayerCache) {
        let a = "\(p).self_attn", m = "\(p).mlp"
        let (n1, inNorm) = RMSNormOp.forward(x, weight: params["\(p).input_layernorm.weight"], eps: spec.eps)
        let (q, qc) = LinearOp.forward(n1, weight: params["\(a).q_proj.weight"], bias: nil)
        let (k, kc) = LinearOp.forward(n1, weight: params["\(a).k_proj.weight"], bias: nil)
        let (v, vc) = LinearOp.forward(n1, weight: params["\(a).v_proj.weight"], bias: nil)
        RotaryOp.apply(q, heads: spec.heads, headDim: spec.headDim, length: length, angles: angles)
        RotaryOp.apply(k, heads: spec.kvHeads, headDim: spec.headDim, length: length, angles: angles)
        let qkv = expandQKV(q: q, k: k, v: v, spec: spec)
        let (att, attCache) = AttentionOp.forward(qkv: qkv, batch: batch, length: length, heads: spec.heads, causal: true, keyMask: keyMask)
        let (o, oc) = LinearOp.forward(att, weight: params["\(a).o_proj.weight"], bias: nil)
        let h = Ops.add(x.reshaped(o.shape), o)
        let (n2, postNorm) = RMSNormOp.forward(h, weight: params["\(p).post_attention_layernorm.weight"], eps: spec.eps)
        let (gate, gc) = LinearOp.forward(n2, weight: params["\(m).gate_proj.weight"], bias: nil)
        let (up, uc) = LinearOp.forward(n2, weight: params["\(m).up_proj.weight"], bias: nil)
        let (hidden, activated) = SwiGLUOp.forward(gate: gate, up: up, activation: spec.activation)
        let (down, dc) = LinearOp.forward(hidden, weight: params["\(m).down_proj.weight"], bias: nil)
        Ops.addInPlace(h, down)
        return (h, DecoderLayerCache(inputNorm: inNorm, q: qc, k: kc, v: vc, attention: attCache, out: oc, postNorm: postNorm,
                                     gate: gc, up: uc, down: dc, gateValues: gate, upValues: up, activated: activated))
    }

    /// dy: [B*T, C] -> dx: [B*T, C]; parameter gradients go to `grads` under their Hugging Face names.
    public static func backward(_ dy: Tensor, cache: DecoderLayerCache, params: ParameterSet, prefix p: String, spec: DecoderSpec,
                                length: Int, angles: RotaryAngles, grads: Gradients) -> Tensor {
        let a = "\(p).self_attn", m = "\(p).mlp"
        // MLP branch.
        let down = LinearOp.backward(dy, cache: cache.down, weight: params["\(m).down_proj.weight"], hasBias: false)
        grads.add("\(m).down_proj.weight", down.dw)
        let (dGate, dUp) = SwiGLUOp.backward(down.dx ?? dy, gate: cache.gateValues, up: cache.upValues,
                                             activated: cache.activated, activation: spec.activation)
        let gate = LinearOp.backward(dGate, cache: cache.gate, weight: params["\(m).gate_proj.weight"], hasBias: false)
        let up = LinearOp.backward(dUp, cache: cache.up, weight: params["\(m).up_proj.weight"], hasBias: false)
        grads.add("\(m).gate_proj.weight", gate.dw)
        grads.add("\(m).up_proj.weight", up.dw)
        let dn2 = gate.dx ?? dGate
        if let d = up.dx { Ops.addInPlace(dn2, d) }
        let post = RMSNormOp.backward(dn2, cache: cache.postNorm, weight: params["\(p).post_attention_layernorm.weight"])
        grads.add("\(p).post_attention_layernorm.weight", post.dw)
        let dh = Ops.add(dy, post.dx.reshaped(dy.shape))
        // Attention branch.
        let out = LinearOp.backward(dh, cache: cache.out, weight: params["\(a).o_proj.weight"], hasBias: false)
        grads.add("\(a).o_proj.weight", out.dw)
        let dqkv = AttentionOp.backward(out.dx ?? dh, cache: cache.attention)
        let (dq, dk, dv) = reduceQKV(dqkv, spec: spec)
        RotaryOp.apply(dq, heads: spec.heads, headDim: spec.headDim, length: length, angles: angles, inverse: true)
        RotaryOp.apply(dk, heads: spec.kvHeads, headDim: spec.headDim, length: length, angles: angles, inverse: true)
        var dn1: Tensor?
        for (name, d, c) in [("q_proj", dq, cache.q), ("k_proj", dk, cache.k), ("v_proj", dv, cache.v)] {
            let g = LinearOp.backward(d, cache: c, weight: params["\(a).\(name).weight"], hasBias: false)
            grads.add("\(a).\(name).weight", g.dw)
            if let dx = g.dx { if let acc = dn1 { Ops.addInPlace(acc, dx) } else { dn1 = dx } }
        }
        let inNorm = RMSNormOp.backward(dn1 ?? Tensor(zeros: dh.shape), cache: cache.inputNorm, weight: params["\(p).input_layernorm.weight"])
        grads.add("\(p).input_layernorm.weight", inNorm.dw)
        Ops.addInPlace(dh, inNorm.dx)
        return dh
    }

    /// q: [M, H·D], k, v: [M, KV·D] -> [M, 3·H·D] in AttentionOp's layout, each key/value head copied to the
    /// query heads of its group.
    static func expandQKV(q: Tensor, k: Tensor, v: Tensor, spec: DecoderSpec) -> Tensor {
        let rows = q.shape[0], d = spec.headDim, c = spec.heads * d, kvc = spec.kvHeads * d, group = spec.heads / spec.kvHeads
        let out = Tensor(uninitialized: [rows, 3 * c])
        for r in 0 ..< rows {
            let dst = out.pointer + r * 3 * c
            dst.update(from: q.pointer + r * c, count: c)
            for h in 0 ..< spec.heads {
                let src = (h / group) * d
                (dst + c + h * d).update(from: k.pointer + r * kvc + src, count: d)
                (dst + 2 * c + h * d).update(from: v.pointer + r * kvc + src, count: d)
            }
        }
        return out
    }

    /// dqkv: [M, 3·H·D] -> (dq: [M, H·D], dk, dv: [M, KV·D]), each group's key/value gradients summed.
    static func reduceQKV(_ dqkv: Tensor, spec: DecoderSpec) -> (Tensor, Tensor, Tensor) {
        let rows = dqkv.shape[0], d = spec.headDim, c = spec.heads * d, kvc = spec.kvHeads * d, group = spec.heads / spec.kvHeads
        let dq = Tensor(uninitialized: [rows, c]), dk = Tensor(zeros: [rows, kvc]), dv = Tensor(zeros: [rows, kvc])
        for r in 0 ..< rows {
            let src = dqkv.pointer + r * 3 * c
            (dq.pointer + r * c).update(from: src, count: c)
            for h in 0 ..< spec.heads {
                let kr = dk.pointer + r * kvc + (h / group) * d, vr = dv.pointer + r * kvc + (h / group) * d
                let ks = src + c + h * d, vs = src + 2 * c + h * d
                for j in 0 ..< d {
                    kr[j] += ks[j]
                    vr[j] += vs[j]
                }
            }
        }
        return (dq, dk, dv)
    }
}
