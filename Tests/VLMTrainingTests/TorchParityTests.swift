import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

/// transformers + torch reference for one tiny CLIP (Scripts/fixtures/training_fixtures.py).
struct TrainingReference: Decodable {
    let input_ids: [[Int]]
    let loss: Float
    let loss_step2: Float
    let grad_norm_step2: Float
    let logits_per_image: [[Float]]
    let lr: Float
    let beta1: Float
    let beta2: Float
    let eps: Float
    let weight_decay: Float
    let clip_norm: Float
    let no_decay: [String]

    static func load() throws -> TrainingReference { try Fixtures.json("training/reference.json") }
}

func fixtureTensors(_ name: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(path: Fixtures.url("training/\(name)").path)
}

/// max |a - b| and max |b| over a tensor pair.
func diff(_ a: Tensor, _ b: Tensor) -> (abs: Float, scale: Float) {
    var d: Float = 0, s: Float = 0
    for i in 0 ..< min(a.count, b.count) {
        d = max(d, abs(a[i] - b[i]))
        s = max(s, abs(b[i]))
    }
    return (d, s)
}

@Suite("Training parity with PyTorch autograd")
struct TorchParityTests {
    @Test("loss, every gradient and two AdamW steps match torch")
    func fullStep() throws {
        let ref = try TrainingReference.load()
        let model = try TrainableCLIP.load(directory: Fixtures.url("training/tiny"))
        let pixels = try fixtureTensors("batch.safetensors").tensor("pixel_values")

        let pass = try model.forward(pixels: pixels, ids: ref.input_ids)
        #expect(abs(pass.loss - ref.loss) <= 1e-5 * abs(ref.loss), "loss \(pass.loss) vs torch \(ref.loss)")
        for i in 0 ..< ref.logits_per_image.count {
            for j in 0 ..< ref.logits_per_image.count {
                #expect(abs(pass.logitsPerImage[i * ref.logits_per_image.count + j] - ref.logits_per_image[i][j]) < 1e-4)
            }
        }

        let grads = model.backward(pass)
        let torchGrads = try fixtureTensors("grads.safetensors")
        var worstAbs: Float = 0, worstRel: Float = 0
        for name in model.parameters.names {
            let expected = try torchGrads.tensor(name)
            guard let got = grads[name] else {
                Issue.record("no gradient for \(name)")
                continue
            }
            #expect(got.count == expected.count, "\(name)")
            let (d, s) = diff(got, expected)
            worstAbs = max(worstAbs, d)
            if s > 1e-6 { worstRel = max(worstRel, d / s) }
            #expect(d <= 1e-4 || d <= 1e-4 * s, "\(name): max diff \(d), max |g| \(s)")
        }
        print("parity: loss \(pass.loss) vs \(ref.loss); max grad abs diff \(worstAbs), max diff / tensor max \(worstRel) (tensors with max |g| > 1e-6)")

        // Step 1: AdamW with open_clip's decay groups.
        let adam = AdamW(learningRate: ref.lr, beta1: ref.beta1, beta2: ref.beta2, eps: ref.eps, weightDecay: ref.weight_decay)
        let excluded = model.parameters.names.filter { isExcludedFromWeightDecay(name: $0, shape: model.parameters[$0].shape) }
        #expect(excluded.sorted() == ref.no_decay)
        adam.step(model.parameters, grads)
        model.parameters["logit_scale"][0] = min(max(model.parameters["logit_scale"][0], 0), TrainableCLIP.maxLogitScale)
        // Every parameter within 1e-5, except the attention key biases: their true gradient is 0 (softmax shift
        // invariance), torch's is rounding noise of ~1e-8, and Adam turns any |g| << eps into an update of up to
        // lr·|g|/eps per step, so torch moves them by noise (< 2e-5 per step here) while SwiftVLM keeps them.
        // They cannot change any output, so they are held to lr·steps·0.05 instead.
        func tolerance(_ name: String, steps: Int) -> Float {
            name.hasSuffix("k_proj.bias") ? ref.lr * Float(steps) * 0.05 : 1e-5
        }
        var worstParam: Float = 0
        let step1 = try fixtureTensors("step1.safetensors")
        for name in model.parameters.names {
            let (d, _) = diff(model.parameters[name], try step1.tensor(name))
            if !name.hasSuffix("k_proj.bias") { worstParam = max(worstParam, d) }
            #expect(d <= tolerance(name, steps: 1), "step 1 \(name): max diff \(d)")
        }
        // Step 2: same batch, gradients clipped to a global norm, then the logit_scale clamp.
        let result = try model.trainStep(pixels: pixels, ids: ref.input_ids, optimizer: adam, learningRate: ref.lr, maxGradNorm: ref.clip_norm)
        #expect(abs(result.loss - ref.loss_step2) <= 1e-5 * abs(ref.loss_step2), "loss step 2 \(result.loss) vs \(ref.loss_step2)")
        #expect(abs(result.gradientNorm - ref.grad_norm_step2) <= 1e-4 * ref.grad_norm_step2)
        let step2 = try fixtureTensors("step2.safetensors")
        for name in model.parameters.names {
            let (d, _) = diff(model.parameters[name], try step2.tensor(name))
            if !name.hasSuffix("k_proj.bias") { worstParam = max(worstParam, d) }
            #expect(d <= tolerance(name, steps: 2), "step 2 \(name): max diff \(d)")
        }
        print("parity: max param diff after 2 AdamW steps \(worstParam); grad norm \(result.gradientNorm) vs \(ref.grad_norm_step2)")
    }
}
