import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

/// Finite-difference checks of the decoder's backward passes on odd shapes (central differences, h = 1e-2,
/// float32 forward, Double-summed loss; |fd - analytic| <= 1e-3 + 1e-2·|analytic| as in LayerGradientTests).
@Suite("Decoder gradients (finite differences)")
struct DecoderGradientTests {
    @Test("rmsnorm")
    func rmsNorm() {
        var rng = TestRandom(21)
        let x = rng.tensor([5, 7], scale: 2), w = rng.tensor([7]), r = rng.tensor([5, 7])
        let (y, cache) = RMSNormOp.forward(x, weight: w, eps: 1e-6)
        // Reference forward in Double.
        for row in 0 ..< 5 {
            var ms = 0.0
            for j in 0 ..< 7 { ms += Double(x[row * 7 + j]) * Double(x[row * 7 + j]) }
            let rs = 1 / (ms / 7 + 1e-6).squareRoot()
            for j in 0 ..< 7 { #expect(abs(Double(y[row * 7 + j]) - Double(w[j]) * Double(x[row * 7 + j]) * rs) < 1e-5) }
        }
        let g = RMSNormOp.backward(r, cache: cache, weight: w)
        let loss = { dot(RMSNormOp.forward(x, weight: w, eps: 1e-6).0, r) }
        checkGradient("dx", value: x, analytic: g.dx, loss: loss)
        checkGradient("dw", value: w, analytic: g.dw, loss: loss)
    }

    @Test("rotary: the inverse undoes the rotation; backward is the inverse")
    func rotary() {
        var rng = TestRandom(22)
        let angles = RotaryAngles(inverseFrequencies: [1, 0.3, 0.01], length: 9)
        let x = rng.tensor([2 * 5, 3 * 6]), r = rng.tensor([2 * 5, 3 * 6])
        let y = x.copy()
        RotaryOp.apply(y, heads: 3, headDim: 6, length: 5, angles: angles)
        let back = y.copy()
        RotaryOp.apply(back, heads: 3, headDim: 6, length: 5, angles: angles, inverse: true)
        for i in 0 ..< x.count { #expect(abs(back[i] - x[i]) < 1e-5) }
        let dx = r.copy()
        RotaryOp.apply(dx, heads: 3, headDim: 6, length: 5, angles: angles, inverse: true)
        checkGradient("dx", value: x, analytic: dx) {
            let z = x.copy()
            RotaryOp.apply(z, heads: 3, headDim: 6, length: 5, angles: angles)
            return dot(z, r)
        }
    }

    @Test("swiglu and masked cross-entropy")
    func swigluAndCrossEntropy() {
        var rng = TestRandom(23)
        let gate = rng.tensor([3, 5], scale: 2), up = rng.tensor([3, 5]), r = rng.tensor([3, 5])
        let (_, act) = SwiGLUOp.forward(gate: gate, up: up, activation: .silu)
        let (dg, du) = SwiGLUOp.backward(r, gate: gate, up: up, activated: act, activation: .silu)
        let swiglu = { dot(SwiGLUOp.forward(gate: gate, up: up, activation: .silu).0, r) }
        checkGradient("dgate", value: gate, analytic: dg, loss: swiglu)
        checkGradient("dup", value: up, analytic: du, loss: swiglu)

        let logits = rng.tensor([4, 11], scale: 3), targets = [0, 10, 3, 3]
        let (loss, cache) = CrossEntropyOp.forward(logits, targets: targets)
        // Reference: -log softmax by hand.
        var ref = 0.0
        for (row, target) in targets.enumerated() {
            let z = (0 ..< 11).map { Double(logits[row * 11 + $0]) }
            ref += log(z.reduce(0) { $0 + exp($1) }) - z[target]
        }
        #expect(abs(loss - ref / 4) < 1e-6)
        checkGradient("dlogits", value: logits, analytic: CrossEntropyOp.backward(cache: cache)) {
            CrossEntropyOp.forward(logits, targets: targets).0
        }
    }

    @Test("ordinal Gaussian targets: the distribution, the loss -Σ q log p and its gradient")
    func ordinalTargets() {
        // Bins are ids 3 ..< 12 of a 14-id vocabulary.
        let s = OrdinalTargetSmoothing(firstID: 3, count: 9, sigma: 1.5)
        let middle = s.distribution(of: 7)  // bin 4: reach ceil(4.5) = 5 covers every bin
        #expect(middle.map(\.id) == Array(3 ... 11))
        #expect(abs(middle.reduce(0) { $0 + Double($1.weight) } - 1) < 1e-6)
        for k in 1 ... 4 { #expect(abs(middle[4 - k].weight - middle[4 + k].weight) < 1e-7, "symmetric about the label") }
        #expect(middle[4].weight > middle[5].weight && middle[5].weight > middle[6].weight)
        // exp(-1/(2·1.5²)) between the label and its neighbour.
        #expect(abs(Double(middle[5].weight / middle[4].weight) - exp(-1 / 4.5)) < 1e-6)
        let edge = s.distribution(of: 3)  // bin 0: clipped to the range, renormalised
        #expect(edge.map(\.id) == Array(3 ... 8))
        #expect(abs(edge.reduce(0) { $0 + Double($1.weight) } - 1) < 1e-6)
        #expect(s.distribution(of: 2).map(\.id) == [2] && s.distribution(of: 12).map(\.id) == [12], "outside the bins: one-hot")
        #expect(OrdinalTargetSmoothing(firstID: 3, count: 9, sigma: 0).distribution(of: 7).map(\.weight) == [1])

        var rng = TestRandom(31)
        let logits = rng.tensor([3, 14], scale: 3), targets = [7, 1, 3]
        let (loss, cache) = CrossEntropyOp.forward(logits, targets: targets, smoothing: s)
        var ref = 0.0
        for (row, target) in targets.enumerated() {
            let z = (0 ..< 14).map { Double(logits[row * 14 + $0]) }
            let lse = log(z.reduce(0) { $0 + exp($1) })
            for (id, w) in s.distribution(of: target) { ref += Double(w) * (lse - z[id]) }
        }
        #expect(abs(loss - ref / 3) < 1e-6)
        // A label outside the range scores exactly as without smoothing.
        let row1 = Tensor(uninitialized: [1, 14])
        row1.pointer.update(from: logits.pointer + 14, count: 14)
        #expect(CrossEntropyOp.forward(row1, targets: [1], smoothing: s).0 == CrossEntropyOp.forward(row1, targets: [1]).0)
        checkGradient("dlogits (Gaussian targets)", value: logits, analytic: CrossEntropyOp.backward(cache: cache)) {
            CrossEntropyOp.forward(logits, targets: targets, smoothing: s).0
        }
    }

    @Test("decoder layer: grouped-query causal attention with padding", arguments: [(4, 2), (3, 3), (4, 1)])
    func decoderLayer(_ heads: Int, _ kvHeads: Int) {
        var rng = TestRandom(24 + UInt64(heads * 10 + kvHeads))
        let d = 4, c = 10, inter = 13, b = 2, t = 5
        let spec = DecoderSpec(dim: c, heads: heads, kvHeads: kvHeads, headDim: d, intermediate: inter, activation: .silu, eps: 1e-6)
        let p = "layer", params = ParameterSet()
        params.set("\(p).input_layernorm.weight", rng.tensor([c], scale: 0.3).mapped { 1 + $0 })
        params.set("\(p).post_attention_layernorm.weight", rng.tensor([c], scale: 0.3).mapped { 1 + $0 })
        params.set("\(p).self_attn.q_proj.weight", rng.tensor([heads * d, c], scale: 0.5))
        params.set("\(p).self_attn.k_proj.weight", rng.tensor([kvHeads * d, c], scale: 0.5))
        params.set("\(p).self_attn.v_proj.weight", rng.tensor([kvHeads * d, c], scale: 0.5))
        params.set("\(p).self_attn.o_proj.weight", rng.tensor([c, heads * d], scale: 0.5))
        params.set("\(p).mlp.gate_proj.weight", rng.tensor([inter, c], scale: 0.5))
        params.set("\(p).mlp.up_proj.weight", rng.tensor([inter, c], scale: 0.5))
        params.set("\(p).mlp.down_proj.weight", rng.tensor([c, inter], scale: 0.5))
        let angles = RotaryAngles(inverseFrequencies: [1, 0.1], length: 8)
        let mask: [UInt8] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]  // second sequence: last two rows padded
        let x = rng.tensor([b * t, c]), r = rng.tensor([b * t, c])
        for i in 8 * c ..< 10 * c { r[i] = 0 }  // padded rows are not scored
        let (_, cache) = DecoderLayerOp.forward(x, params: params, prefix: p, spec: spec, batch: b, length: t, angles: angles, keyMask: mask)
        let grads = Gradients()
        let dx = DecoderLayerOp.backward(r, cache: cache, params: params, prefix: p, spec: spec, length: t, angles: angles, grads: grads)
        let loss = {
            dot(DecoderLayerOp.forward(x, params: params, prefix: p, spec: spec, batch: b, length: t, angles: angles, keyMask: mask).0, r)
        }
        checkGradient("dx", value: x, analytic: dx, samples: 40, loss: loss)
        for name in params.names {
            guard let g = grads[name] else { Issue.record("no gradient for \(name)"); continue }
            checkGradient(name, value: params[name], analytic: g, samples: 20, loss: loss)
        }
    }

    @Test("whole LLaVA: finite differences on sampled entries of every tensor (tied, vision trained)")
    func wholeModel() throws {
        let ref: LlavaTrainingReference = try Fixtures.json("llava_training/tied/reference.json")
        let model = try TrainableLlava.load(directory: Fixtures.url("llava_training/tied/model"))
        let pixels = try SafeTensorsFile(path: Fixtures.url("llava_training/tied/batch.safetensors").path).tensor("pixel_values")
        let batch = LlavaTrainingBatch(pixels: pixels, ids: ref.input_ids, labels: ref.labels)
        let grads = model.backward(try model.forward(batch))
        for name in grads.names {
            guard let g = grads[name] else { continue }
            try checkGradient(name, value: model.parameters[name], analytic: g, samples: 3, h: 5e-3, atol: 2e-3, rtol: 2e-2) {
                try model.forward(batch).exactLoss
            }
        }
    }
}

extension Tensor {
    /// Elementwise f, a new tensor.
    func mapped(_ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        for i in 0 ..< count { out[i] = f(self[i]) }
        return out
    }
}
