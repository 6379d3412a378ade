import Foundation
import VLMModels
import VLMTensor

/// LoRA on a TrainableLlava, as peft's LoraLayer (dropout 0): a targeted linear y = x Wᵀ + s·(x Aᵀ) Bᵀ with A: [r, in],
/// B: [out, r], s = lora_alpha / r; W frozen.
///
/// The step runs the base model's own forward/backward on the effective weight W' = W + s·B·A (identical outputs
/// up to float rounding) and turns the gradient of W' into the adapter's by the chain rule:
///   dB = s · dW' · Aᵀ   ([out, in]·[in, r])      dA = s · Bᵀ · dW'   ([r, out]·[out, in])
/// so no layer needs a LoRA-specific backward. Adapter tensors are kept under peft's key names
/// (`base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight`), and modules in
/// `modulesToSave` (the projector) as `base_model.model.model.multi_modal_projector.linear_1.weight`, exactly the
/// keys `PeftModel.save_pretrained` writes, so `adapter` is saved as is.
public final class LoRALlava: @unchecked Sendable {
    public let base: TrainableLlava
    public let config: LoRAConfig
    /// The trainable tensors under peft's keys (the optimizer's parameter set).
    public let adapter: ParameterSet
    /// The model the forward/backward runs: the base's tensors, the merged weights of targeted layers, and the
    /// adapter's own copies of fully trained modules (shared storage, so optimizer updates are seen).
    let effective: TrainableLlava
    struct Target {
        let weight: String  // llava-hf name of W
        let a: String, b: String  // adapter keys
    }
    let targets: [Target]
    /// llava-hf parameter name -> adapter key, for modules trained in full.
    let saved: [(name: String, key: String)]

    /// Attaches a fresh adapter: A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform with a = sqrt(5), as peft) and
    /// B = 0, from `seed`; fully trained modules start as the base's values.
    public convenience init(base: TrainableLlava, config: LoRAConfig, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let set = ParameterSet()
        for (path, shape) in try Self.targetedModules(base: base, config: config) {
            let a = Tensor(zeros: [config.r, shape[1]]), bound = 1 / Float(shape[1]).squareRoot()
            for i in 0 ..< a.count { a[i] = (Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1) * bound }
            set.set(AdapterKeys.loraA(path), a)
            set.set(AdapterKeys.loraB(path), Tensor(zeros: [shape[0], config.r]))
        }
        for name in base.parameters.names where Self.isSaved(name, config) {
            set.set(AdapterKeys.peftPrefix + AdapterKeys.modulePath(llavaName: name), base.parameters[name].copy())
        }
        try self.init(base: base, config: config, adapter: set)
    }

    /// Attaches the adapter tensors `adapter` (peft keys), checking every targeted layer has A and B of the right
    /// shapes and that nothing else is present.
    public init(base: TrainableLlava, config: LoRAConfig, adapter: ParameterSet) throws {
        try config.validate()
        self.base = base
        self.config = config
        self.adapter = adapter
        var targets: [Target] = [], claimed = Set<String>()
        for (path, shape) in try Self.targetedModules(base: base, config: config) {
            let t = Target(weight: try Self.llavaName(path + ".weight", in: base), a: AdapterKeys.loraA(path), b: AdapterKeys.loraB(path))
            for (key, expected) in [(t.a, [config.r, shape[1]]), (t.b, [shape[0], config.r])] {
                guard let x = adapter.tensor(key) else { throw TrainingError.checkpoint("adapter lacks '\(key)'") }
                guard x.shape == expected else { throw TrainingError.checkpoint("adapter tensor '\(key)' has shape \(x.shape), expected \(expected) (r = \(config.r))") }
                claimed.insert(key)
            }
            targets.append(t)
        }
        guard !targets.isEmpty else { throw TrainingError.invalidConfig("the adapter's target_modules match no linear layer of the model") }
        var saved: [(name: String, key: String)] = []
        for name in base.parameters.names where Self.isSaved(name, config) {
            let key = AdapterKeys.peftPrefix + AdapterKeys.modulePath(llavaName: name)
            guard let x = adapter.tensor(key) else { throw TrainingError.checkpoint("adapter lacks '\(key)' (modules_to_save)") }
            guard x.shape == base.parameters[name].shape else { throw TrainingError.checkpoint("adapter tensor '\(key)' has shape \(x.shape), expected \(base.parameters[name].shape)") }
            saved.append((name: name, key: key))
            claimed.insert(key)
        }
        let extra = adapter.names.filter { !claimed.contains($0) }
        guard extra.isEmpty else { throw TrainingError.checkpoint("adapter has tensors the config does not explain: \(extra.prefix(3).joined(separator: ", "))") }
        self.targets = targets
        self.saved = saved
        let set = ParameterSet()
        let savedKey = Dictionary(uniqueKeysWithValues: saved.map { ($0.name, $0.key) })
        for name in base.parameters.names {
            if let key = savedKey[name] { set.set(name, adapter[key]) } else if targets.contains(where: { $0.weight == name }) {
                set.set(name, base.parameters[name].copy())
            } else { set.set(name, base.parameters[name]) }
        }
        effective = try TrainableLlava(config: base.config, parameters: set)
        effective.freezeVision = true
    }

    /// Module paths (transformers 5) of the linear layers `config` targets with their weight shapes [out, in].
    static func targetedModules(base: TrainableLlava, config: LoRAConfig) throws -> [(String, [Int])] {
        var out: [(String, [Int])] = []
        for name in base.parameters.names where name.hasSuffix(".weight") && base.parameters[name].rank == 2 && !name.hasSuffix("embed_tokens.weight") {
            let path = String(AdapterKeys.modulePath(llavaName: name).dropLast(".weight".count))
            if try config.targetModules.matches(path) { out.append((path, base.parameters[name].shape)) }
        }
        if let bad = out.first(where: { $0.0.contains("vision_tower") }) {
            throw TrainingError.invalidConfig("LoRA training covers the language model and projector; '\(bad.0)' is in the frozen vision tower")
        }
        return out
    }

    static func isSaved(_ name: String, _ config: LoRAConfig) -> Bool {
        let path = AdapterKeys.modulePath(llavaName: name)
        return (config.modulesToSave ?? []).contains { path.hasPrefix("model.\($0).") || path.hasPrefix("\($0).") || path.contains(".\($0).") }
    }

    static func llavaName(_ modulePathWeight: String, in base: TrainableLlava) throws -> String {
        guard let n = AdapterKeys.storedCandidates(modulePath: modulePathWeight).first(where: { base.parameters.tensor($0) != nil }) else {
            throw TrainingError.checkpoint("no parameter for '\(modulePathWeight)'")
        }
        return n
    }

    public var trainableParameters: Int { adapter.scalarCount }

    /// W' = W + s·B·A for every target, into the effective model.
    func refresh() {
        let s = config.scaling
        for t in targets {
            let delta = Ops.matmul(adapter[t.b], adapter[t.a])  // [out, r]·[r, in]
            let w = base.parameters[t.weight], dst = effective.parameters[t.weight]
            for i in 0 ..< w.count { dst[i] = w[i] + s * delta[i] }
        }
    }

    /// The batch's loss with the adapter applied.
    public func forward(_ batch: LlavaTrainingBatch) throws -> LlavaForwardPass {
        refresh()
        return try effective.forward(batch)
    }

    /// Gradients of the adapter's tensors (peft keys) for a pass of `forward`.
    public func backward(_ pass: LlavaForwardPass) -> Gradients {
        let full = effective.backward(pass)
        let grads = Gradients()
        let s = config.scaling
        for t in targets {
            guard let dw = full[t.weight] else { continue }
            let db = Ops.matmul(dw, adapter[t.a], transposeB: true)  // [out, in]·[in, r]
            let da = Ops.matmul(adapter[t.b], dw, transposeA: true)  // [r, out]·[out, in]
            for i in 0 ..< db.count { db[i] *= s }
            for i in 0 ..< da.count { da[i] *= s }
            grads.add(t.a, da)
            grads.add(t.b, db)
        }
        for (name, key) in saved { if let g = full[name] { grads.add(key, g) } }
        return grads
    }

    public func trainStep(_ batch: LlavaTrainingBatch, optimizer: AdamW, learningRate: Float, maxGradNorm: Float? = nil) throws -> StepResult {
        let pass = try forward(batch)
        return optimizer.clipAndStep(adapter, backward(pass), learningRate: learningRate, maxGradNorm: maxGradNorm, loss: pass.loss)
    }

    /// The base with the adapter merged in (W + s·B·A; saved modules replaced): a plain TrainableLlava to save.
    public func merged() throws -> TrainableLlava {
        refresh()
        let set = ParameterSet()
        for name in effective.parameters.names { set.set(name, effective.parameters[name].copy()) }
        let model = try TrainableLlava(config: base.config, parameters: set)
        model.configJSON = base.configJSON
        return model
    }

    // MARK: - PEFT files

    /// Writes adapter_config.json + adapter_model.safetensors (peft's keys, float32) and `extraFiles` into
    /// `directory`, atomically.
    public func save(to directory: URL, extraFiles: [String: Data] = [:]) throws {
        try writeCheckpointDirectory(directory) { partial in
            try config.data().write(to: partial.appendingPathComponent(LoRAConfig.fileName))
            let items = adapter.names.map { SafeTensorsWriter.Item($0, adapter[$0]) }
            try SafeTensorsWriter.write(items, to: partial.appendingPathComponent(LoRAConfig.weightsFile), metadata: ["format": "pt"])
            for (name, data) in extraFiles { try data.write(to: partial.appendingPathComponent(name)) }
        }
    }

    /// Reads a peft adapter directory (ours or peft's) onto `base`.
    public static func load(base: TrainableLlava, adapterDirectory: URL) throws -> LoRALlava {
        let config = try LoRAConfig.load(directory: adapterDirectory)
        let url = adapterDirectory.appendingPathComponent(LoRAConfig.weightsFile)
        let set = ParameterSet()
        do {
            let file = try SafeTensorsFile(path: url.path)
            for key in file.keys.sorted() { set.set(key, try file.tensor(key).copy()) }
        } catch let error as TrainingError { throw error } catch { throw TrainingError.checkpoint("\(url.path): \(error)") }
        return try LoRALlava(base: base, config: config, adapter: set)
    }
}
