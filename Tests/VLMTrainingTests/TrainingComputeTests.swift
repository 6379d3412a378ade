import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

@Suite("bf16 products in training")
struct TrainingComputeTests {
    /// The tied fixture's full step (vision trained) with `LinearOp.compute = .bf16` against the fp32 step: rounding
    /// the operands of every product to bf16 (relative 2^-8 each) moves the loss by well under 1% and each gradient
    /// tensor by a few percent of its largest entry: gradients are sums over every token with much cancellation, so
    /// their error relative to the largest entry grows along the backward path (measured: decoder and projector
    /// 3.4%, the tower's first layer 7.0%; bounds 6% and 12%). A product that read the wrong operand would move
    /// them by their whole size.
    @Test("loss and every gradient stay within bf16 rounding of the fp32 step")
    func nearFp32() throws {
        let dir = "llava_training/tied"
        let model = try TrainableLlava.load(directory: Fixtures.url("\(dir)/model"))
        let ref: LlavaTrainingReference = try Fixtures.json("\(dir)/reference.json")
        let pixels = try SafeTensorsFile(path: Fixtures.url("\(dir)/batch.safetensors").path).tensor("pixel_values")
        let batch = LlavaTrainingBatch(pixels: pixels, ids: ref.input_ids, labels: ref.labels)
        let exact = try model.forward(batch)
        let exactGrads = model.backward(exact)
        let (pass, grads) = try LinearOp.$compute.withValue(.bf16) {
            let p = try model.forward(batch)
            return (p, model.backward(p))
        }
        #expect(abs(pass.loss - exact.loss) <= 5e-3 * abs(exact.loss), "loss \(pass.loss) vs fp32 \(exact.loss)")
        #expect(pass.loss != exact.loss, "bf16 products changed nothing: the mode is not reaching the kernels")
        var worst: Float = 0, worstTower: Float = 0
        for name in exactGrads.names {
            guard let g = grads[name], let e = exactGrads[name] else { Issue.record("\(name) missing"); continue }
            var d: Float = 0, s: Float = 0
            for i in 0 ..< e.count { d = max(d, abs(g[i] - e[i])); s = max(s, abs(e[i])) }
            if s < 1e-6 { continue }
            let tower = name.hasPrefix("vision_tower.")
            if tower { worstTower = max(worstTower, d / s) } else { worst = max(worst, d / s) }
            // The tower's gradients come through the whole decoder and projector, then its own layers: each product
            // on the way adds its operands' rounding, so they get the looser bound.
            #expect(d <= (tower ? 0.12 : 0.06) * s, "\(name): max diff \(d), max |g| \(s)")
        }
        print("bf16 training products: loss \(pass.loss) vs \(exact.loss); worst gradient diff / tensor max: decoder and projector \(worst), tower \(worstTower)")
    }
}
