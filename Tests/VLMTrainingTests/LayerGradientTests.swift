import Foundation
import Testing
import VLMTensor
@testable import VLMTraining

/// Finite-difference checks of each backward on tiny odd shapes. Central differences with h = 1e-2 on a
/// float32 forward and a Double-summed loss; pass when |fd - analytic| <= 1e-3 + 1e-2·|analytic|.
@Suite("Layer gradients (finite differences)")
struct LayerGradientTests {
    @Test("linear with each activation", arguments: [Activation.none, .gelu, .geluTanh, .quickGelu, .silu])
    func linear(_ act: Activation) {
        var rng = TestRandom(11)
        let x = rng.tensor([5, 7]), w = rng.tensor([3, 7], scale: 0.5), b = rng.tensor([3], scale: 0.5), r = rng.tensor([5, 3])
        let (_, cache) = LinearOp.forward(x, weight: w, bias: b, activation: act)
        let g = LinearOp.backward(r, cache: cache, weight: w, hasBias: true)
        let loss = { dot(LinearOp.forward(x, weight: w, bias: b, activation: act).0, r) }
        checkGradient("dx", value: x, analytic: g.dx ?? Tensor(zeros: [0]), loss: loss)
        checkGradient("dW", value: w, analytic: g.dw, loss: loss)
        checkGradient("db", value: b, analytic: g.db ?? Tensor(zeros: [0]), loss: loss)
    }

    @Test("activation derivatives against central differences in Double")
    func activationDerivatives() {
        for act in [Activation.gelu, .geluTanh, .quickGelu, .silu] {
            for z: Float in [-3.1, -1, -0.3, 0, 0.2, 0.9, 2.7] {
                let h: Float = 1e-2
                let y = Ops.activate(Tensor(shape: [2], values: [z + h, z - h]), act)
                let fd = (Double(y[0]) - Double(y[1])) / Double(2 * h)
                #expect(abs(fd - Double(ActivationGrad.derivative(z, act))) < 1e-3, "\(act) at \(z)")
            }
        }
    }

    @Test("layernorm")
    func layerNorm() {
        var rng = TestRandom(12)
        let x = rng.tensor([4, 9], scale: 2), w = rng.tensor([9]), b = rng.tensor([9]), r = rng.tensor([4, 9])
        let (y, cache) = LayerNormOp.forward(x, weight: w, bias: b, eps: 1e-5)
        // The forward agrees with the inference kernel.
        let reference = Ops.layerNorm(x, weight: w, bias: b, eps: 1e-5)
        for i in 0 ..< y.count { #expect(abs(y[i] - reference[i]) < 1e-5) }
        let g = LayerNormOp.backward(r, cache: cache, weight: w)
        let loss = { dot(LayerNormOp.forward(x, weight: w, bias: b, eps: 1e-5).0, r) }
        checkGradient("dx", value: x, analytic: g.dx, loss: loss)
        checkGradient("dgamma", value: w, analytic: g.dw, loss: loss)
        checkGradient("dbeta", value: b, analytic: g.db, loss: loss)
    }

    @Test("attention (fused QKV)", arguments: [(false, false), (true, false), (false, true), (true, true)])
    func attention(_ causal: Bool, _ padded: Bool) {
        var rng = TestRandom(13)
        let batch = 2, t = 5, heads = 2, c = 6
        let qkv = rng.tensor([batch * t, 3 * c]), r = rng.tensor([batch * t, c])
        // Second sequence: last two keys are padding.
        let mask: [UInt8]? = padded ? [1, 1, 1, 1, 1, 1, 1, 1, 0, 0] : nil
        let (out, cache) = AttentionOp.forward(qkv: qkv, batch: batch, length: t, heads: heads, causal: causal, keyMask: mask)
        // Same result as the inference kernel.
        let reference = Ops.attention(q: qkv, ldq: 3 * c, k: qkv, kOffset: c, ldk: 3 * c, v: qkv, vOffset: 2 * c, ldv: 3 * c,
                                      batch: batch, heads: heads, queryLength: t, keyLength: t, headDim: c / heads,
                                      scale: 1 / Float(c / heads).squareRoot(), causal: causal, keyMask: mask)
        for i in 0 ..< out.count { #expect(abs(out[i] - reference[i]) < 1e-5) }
        let dqkv = AttentionOp.backward(r, cache: cache)
        checkGradient("dqkv", value: qkv, analytic: dqkv) {
            dot(AttentionOp.forward(qkv: qkv, batch: batch, length: t, heads: heads, causal: causal, keyMask: mask).0, r)
        }
        if padded {
            // Padded keys (and their values) receive no gradient.
            for row in [8, 9] { for j in c ..< 3 * c { #expect(dqkv[row * 3 * c + j] == 0) } }
        }
    }

    @Test("L2 normalisation")
    func l2() {
        var rng = TestRandom(14)
        let x = rng.tensor([3, 5]), r = rng.tensor([3, 5])
        let (y, norms) = L2NormalizeOp.forward(x)
        let dx = L2NormalizeOp.backward(r, output: y, norms: norms)
        checkGradient("dx", value: x, analytic: dx) { dot(L2NormalizeOp.forward(x).0, r) }
    }

    @Test("symmetric InfoNCE loss")
    func contrastive() {
        var rng = TestRandom(15)
        let img = rng.tensor([4, 6]), txt = rng.tensor([4, 6])
        let scale = Tensor(shape: [1], values: [1.3])
        let result = ContrastiveLoss.forward(imageEmbeds: img, textEmbeds: txt, logitScale: scale[0])
        let (dImg, dTxt, dScale) = ContrastiveLoss.backward(result, imageEmbeds: img, textEmbeds: txt)
        let loss = { ContrastiveLoss.forward(imageEmbeds: img, textEmbeds: txt, logitScale: scale[0]).exactLoss }
        checkGradient("dImage", value: img, analytic: dImg, h: 1e-3, atol: 1e-4, loss: loss)
        checkGradient("dText", value: txt, analytic: dTxt, h: 1e-3, atol: 1e-4, loss: loss)
        checkGradient("dLogitScale", value: scale, analytic: Tensor(shape: [1], values: [dScale]), h: 1e-3, atol: 1e-4, loss: loss)
        // Perfectly matched, well-separated pairs with a large scale give a loss near 0.
        let eye = Tensor(shape: [3, 3], values: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        #expect(ContrastiveLoss.forward(imageEmbeds: eye, textEmbeds: eye, logitScale: 4.6).loss < 1e-3)
    }

    @Test("pre-norm encoder layer (non-causal and causal)", arguments: [false, true])
    func encoderLayer(_ causal: Bool) {
        var rng = TestRandom(16)
        let spec = EncoderSpec(dim: 6, heads: 2, intermediate: 7, activation: .quickGelu, eps: 1e-5)
        let params = ParameterSet(), p = "layer"
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            params.set("\(p).self_attn.\(proj).weight", rng.tensor([6, 6], scale: 0.5))
            params.set("\(p).self_attn.\(proj).bias", rng.tensor([6], scale: 0.2))
        }
        for ln in ["layer_norm1", "layer_norm2"] {
            params.set("\(p).\(ln).weight", rng.tensor([6], scale: 0.3).map { 1 + $0 })
            params.set("\(p).\(ln).bias", rng.tensor([6], scale: 0.2))
        }
        params.set("\(p).mlp.fc1.weight", rng.tensor([7, 6], scale: 0.5))
        params.set("\(p).mlp.fc1.bias", rng.tensor([7], scale: 0.2))
        params.set("\(p).mlp.fc2.weight", rng.tensor([6, 7], scale: 0.5))
        params.set("\(p).mlp.fc2.bias", rng.tensor([6], scale: 0.2))
        let x = rng.tensor([2 * 3, 6]), r = rng.tensor([2 * 3, 6])
        let run = { EncoderLayerOp.forward(x, params: params, prefix: p, spec: spec, batch: 2, length: 3, causal: causal) }
        let (_, cache) = run()
        let grads = Gradients()
        let dx = EncoderLayerOp.backward(r, cache: cache, params: params, prefix: p, grads: grads)
        let loss = { dot(run().0, r) }
        checkGradient("dx", value: x, analytic: dx, loss: loss)
        for name in params.names where !name.hasSuffix("k_proj.bias") {
            checkGradient(name, value: params[name], analytic: grads[name] ?? Tensor(zeros: [0]), samples: 6, loss: loss)
        }
        // k_proj.bias: exactly zero by softmax shift invariance, and the loss indeed does not move.
        checkGradient("k_proj.bias", value: params["\(p).self_attn.k_proj.bias"],
                      analytic: grads["\(p).self_attn.k_proj.bias"] ?? Tensor(zeros: [0]), loss: loss)
    }
}

extension Tensor {
    func map(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        for i in 0 ..< count { out[i] = f(self[i]) }
        return out
    }
}
