import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport
@testable import VLMTraining

/// peft + torch reference for LoRA on the tiny LLaVA (Scripts/fixtures/lora_fixtures.py): r 4, alpha 8, every
/// decoder linear layer targeted, the projector trained whole (modules_to_save), non-zero A and B.
struct LoRAReference: Decodable {
    let loss: Float
    let lr: Float
    let beta1: Float
    let beta2: Float
    let eps: Float
    let weight_decay: Float
}

@Suite("LoRA parity with peft")
struct LoRAParityTests {
    func fixture() throws -> (LoRALlava, LlavaTrainingBatch) {
        let base = try TrainableLlava.load(directory: Fixtures.url("llava_training/untied/model"))
        base.freezeVision = true
        let lora = try LoRALlava.load(base: base, adapterDirectory: Fixtures.url("lora/adapter"))
        let ref: LlavaTrainingReference = try Fixtures.json("llava_training/untied/reference.json")
        let pixels = try SafeTensorsFile(path: Fixtures.url("llava_training/untied/batch.safetensors").path).tensor("pixel_values")
        return (lora, LlavaTrainingBatch(pixels: pixels, ids: ref.input_ids, labels: ref.labels))
    }

    /// Largest |a - b| and largest |b|.
    func diff(_ a: Tensor, _ b: Tensor) -> (Float, Float) {
        var d: Float = 0, s: Float = 0
        for i in 0 ..< min(a.count, b.count) {
            d = max(d, abs(a[i] - b[i]))
            s = max(s, abs(b[i]))
        }
        return (d, s)
    }

    @Test("a peft-written adapter loads; loss, every LoRA/projector gradient and one AdamW step match peft")
    func fullStep() throws {
        let (lora, batch) = try fixture()
        let ref: LoRAReference = try Fixtures.json("lora/reference.json")
        #expect(lora.config.r == 4 && lora.config.scaling == 2)
        #expect(lora.targets.count == 14, "7 linear layers x 2 decoder layers")
        // Tolerances: loss 1e-5 relative; every gradient and every tensor after AdamW within 1e-4 of its tensor's
        // largest entry.
        let pass = try lora.forward(batch)
        #expect(abs(pass.loss - ref.loss) <= 1e-5 * abs(ref.loss), "loss \(pass.loss) vs peft \(ref.loss)")
        let grads = lora.backward(pass)
        let torchGrads = try SafeTensorsFile(path: Fixtures.url("lora/grads.safetensors").path)
        #expect(Set(grads.names) == Set(torchGrads.keys), "gradient sets differ: \(Set(grads.names).symmetricDifference(torchGrads.keys).sorted())")
        var worst: Float = 0
        for name in torchGrads.keys.sorted() {
            guard let got = grads[name] else { continue }
            let expected = try torchGrads.tensor(name)
            #expect(got.shape == expected.shape, "\(name)")
            let (d, s) = diff(got, expected)
            worst = max(worst, d / max(s, 1e-12))
            #expect(d <= 1e-4 * s, "\(name): max diff \(d), max |g| \(s)")
        }
        print("lora parity: loss \(pass.loss) vs \(ref.loss); worst gradient diff / tensor max \(worst)")

        let adam = AdamW(learningRate: ref.lr, beta1: ref.beta1, beta2: ref.beta2, eps: ref.eps, weightDecay: ref.weight_decay)
        adam.excludeFromDecay = { _, shape in shape.count < 2 }
        adam.step(lora.adapter, grads)
        let step1 = try SafeTensorsFile(path: Fixtures.url("lora/step1.safetensors").path)
        #expect(Set(lora.adapter.names) == Set(step1.keys))
        var worstParam: Float = 0
        for name in lora.adapter.names {
            let (d, s) = diff(lora.adapter[name], try step1.tensor(name))
            worstParam = max(worstParam, d / max(s, 1e-12))
            #expect(d <= 1e-4 * s, "step 1 \(name): max diff \(d), max |p| \(s)")
        }
        print("lora parity: worst adapter diff / tensor max after AdamW \(worstParam)")
        // The base stays frozen.
        let untouched = try TrainableLlava.load(directory: Fixtures.url("llava_training/untied/model"))
        for name in untouched.parameters.names { #expect(diff(lora.base.parameters[name], untouched.parameters[name]).0 == 0, "\(name) moved") }
    }

    @Test("the peft adapter merged into the checkpoint loads in LlavaModel with peft's logits")
    func mergedLogits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-merge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let summary = try LoRAMerge.merge(base: Fixtures.url("llava_training/untied/model"), adapter: Fixtures.url("lora/adapter"), into: dir)
        #expect(summary.merged == 14 && summary.replaced == 4)
        let model = try LlavaModel.load(directory: dir, storage: .float32)
        let ref: LlavaTrainingReference = try Fixtures.json("llava_training/untied/reference.json")
        let pixels = try SafeTensorsFile(path: Fixtures.url("llava_training/untied/batch.safetensors").path).tensor("pixel_values")
        let expected = try SafeTensorsFile(path: Fixtures.url("lora/logits.safetensors").path).tensor("logits")  // [B, T, V]
        let t = expected.shape[1], v = expected.shape[2]
        // Tolerance: 1e-4 of the largest logit (fp32, merged weights vs peft's separate low-rank path).
        for (b, ids) in ref.input_ids.enumerated() {
            let logits = try model.forward(ids: ids, pixelValues: pixels.rows(b ..< b + 1), cache: model.language.makeCache(), allLogits: true)
            var d: Float = 0, s: Float = 0
            for p in 0 ..< ids.count {
                for j in 0 ..< v {
                    let e = expected[(b * t + p) * v + j]
                    d = max(d, abs(logits[p * v + j] - e))
                    s = max(s, abs(e))
                }
            }
            #expect(d <= 1e-4 * s, "sequence \(b): max logit diff \(d), max |logit| \(s)")
        }
    }

    @Test("an adapter we save has peft's layout and loads back identically")
    func saveLoad() throws {
        let (lora, _) = try fixture()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lora-save-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try lora.save(to: dir)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as? [String: Any]
        #expect(json?["peft_type"] as? String == "LORA" && json?["r"] as? Int == 4 && json?["lora_alpha"] as? Int == 8)
        #expect(json?["target_modules"] as? String == ".*language_model.*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("adapter_model.safetensors").path)
        let peft = try SafeTensorsFile(path: Fixtures.url("lora/adapter/adapter_model.safetensors").path)
        #expect(Set(file.keys) == Set(peft.keys), "keys differ from peft's: \(Set(file.keys).symmetricDifference(peft.keys).sorted().prefix(4))")
        #expect(file.keys.contains("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight"))
        let again = try LoRALlava.load(base: lora.base, adapterDirectory: dir)
        for name in lora.adapter.names { #expect(diff(again.adapter[name], lora.adapter[name]).0 == 0, "\(name)") }
    }

    @Test("a fresh adapter starts as the base (B = 0) and unsupported peft settings are refused by name")
    func freshAndRefused() throws {
        let (peft, batch) = try fixture()
        let config = LoRAConfig(r: 2, alpha: 4, targets: .languageModel(["q_proj", "v_proj"]))
        let fresh = try LoRALlava(base: peft.base, config: config, seed: 1)
        #expect(fresh.targets.count == 4)
        let plain = try TrainableLlava.load(directory: Fixtures.url("llava_training/untied/model"))
        plain.freezeVision = true
        #expect(try fresh.forward(batch).loss == plain.forward(batch).loss)
        var dora = config
        dora.useDora = true
        #expect { try LoRALlava(base: peft.base, config: dora, seed: 1) } throws: { "\($0)".contains("use_dora") }
        let vision = LoRAConfig(r: 2, alpha: 4, targets: .names(["q_proj"]))
        #expect { try LoRALlava(base: peft.base, config: vision, seed: 1) } throws: { "\($0)".contains("vision tower") }
        let none = LoRAConfig(r: 2, alpha: 4, targets: .names(["nothing"]))
        #expect { try LoRALlava(base: peft.base, config: none, seed: 1) } throws: { "\($0)".contains("match no linear layer") }
    }
}
