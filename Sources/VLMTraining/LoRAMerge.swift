import Foundation
import VLMTensor

/// Merging a peft LoRA adapter into a checkpoint directory, as peft's merge_and_unload: every targeted linear
/// weight becomes W + s·B·A and every saved module (modules_to_save) replaces the base's tensor. Works on any
/// checkpoint whose tensors are named by transformers module paths or the llava-hf spelling (LLaVA, SmolVLM/Idefics3,
/// Llama), so the result loads through the registry and in transformers like the base.
public enum LoRAMerge {
    /// A training run's bookkeeping files, never copied into a merged checkpoint.
    public static let runFiles: Set<String> = ["train_args.json", "trainer_state.json", "training_log.json", "loss_curve.svg", "optimizer.safetensors"]

    public struct Summary: Sendable {
        /// Linear layers that received a low-rank update.
        public let merged: Int
        /// Tensors replaced whole (modules_to_save).
        public let replaced: Int
    }

    /// The adapter's tensors grouped: low-rank pairs by module path, and whole tensors by module path + ".weight"/".bias".
    struct Parsed {
        var pairs: [String: (a: Tensor, b: Tensor)] = [:]
        var whole: [String: Tensor] = [:]
    }

    static func parse(adapter directory: URL, config: LoRAConfig) throws -> Parsed {
        let url = directory.appendingPathComponent(LoRAConfig.weightsFile)
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: url.path) } catch { throw TrainingError.checkpoint("\(url.path): \(error)") }
        var parsed = Parsed(), halves: [String: (a: Tensor?, b: Tensor?)] = [:]
        for key in file.keys.sorted() {
            guard key.hasPrefix(AdapterKeys.peftPrefix) else { throw TrainingError.checkpoint("\(url.path): key '\(key)' does not start with '\(AdapterKeys.peftPrefix)' (not a peft adapter)") }
            let path = String(key.dropFirst(AdapterKeys.peftPrefix.count))
            let t: Tensor
            do { t = try file.tensor(key) } catch { throw TrainingError.checkpoint("\(key): \(error)") }
            if path.hasSuffix(".lora_A.weight") {
                halves[String(path.dropLast(".lora_A.weight".count)), default: (nil, nil)].a = t
            } else if path.hasSuffix(".lora_B.weight") {
                halves[String(path.dropLast(".lora_B.weight".count)), default: (nil, nil)].b = t
            } else if path.contains("lora_") {
                throw TrainingError.checkpoint("adapter tensor '\(key)' is a LoRA kind SwiftVLM does not merge (embedding or bias LoRA)")
            } else {
                parsed.whole[path] = t
            }
        }
        for (module, h) in halves {
            guard let a = h.a, let b = h.b else { throw TrainingError.checkpoint("adapter has only one of lora_A / lora_B for '\(module)'") }
            guard a.rank == 2, b.rank == 2, a.shape[0] == config.r, b.shape[1] == config.r else {
                throw TrainingError.checkpoint("adapter tensors of '\(module)' have shapes A \(a.shape), B \(b.shape); expected [r, in] and [out, r] with r = \(config.r)")
            }
            parsed.pairs[module] = (a, b)
        }
        guard !parsed.pairs.isEmpty || !parsed.whole.isEmpty else { throw TrainingError.checkpoint("\(url.path) holds no adapter tensor") }
        return parsed
    }

    /// Writes `out`: the base directory's files (config, tokenizer, processor, template, generation config) and a
    /// model.safetensors (float32) holding every base tensor with the adapter merged in. `out` is replaced atomically.
    @discardableResult
    public static func merge(base: URL, adapter: URL, into out: URL) throws -> Summary {
        let config = try LoRAConfig.load(directory: adapter)
        let parsed = try parse(adapter: adapter, config: config)
        let store: WeightStore
        do { store = try WeightStore(directory: base) } catch { throw TrainingError.checkpoint("\(error)") }
        func stored(_ path: String) throws -> String {
            guard let name = AdapterKeys.storedCandidates(modulePath: path).first(where: { store.entry($0) != nil }) else {
                throw TrainingError.checkpoint("the adapter modifies '\(path)', which \(base.path) does not have (an adapter for another model?)")
            }
            return name
        }
        var replacement: [String: Tensor] = [:]
        for (module, pair) in parsed.pairs {
            let name = try stored(module + ".weight")
            let w = try tensor(store, name).copy()
            guard w.rank == 2, w.shape[0] == pair.b.shape[0], w.shape[1] == pair.a.shape[1] else {
                throw TrainingError.checkpoint("'\(name)' has shape \(w.shape) but the adapter's update is [\(pair.b.shape[0]), \(pair.a.shape[1])]")
            }
            let delta = Ops.matmul(pair.b, pair.a), s = config.scaling
            for i in 0 ..< w.count { w[i] += s * delta[i] }
            replacement[name] = w
        }
        for (path, t) in parsed.whole {
            let name = try stored(path)
            guard store.entry(name)?.shape == t.shape else { throw TrainingError.checkpoint("adapter tensor for '\(name)' has shape \(t.shape), the base \(store.entry(name)?.shape ?? [])") }
            replacement[name] = t
        }
        try writeCheckpointDirectory(out) { partial in
            let fm = FileManager.default
            for name in try fm.contentsOfDirectory(atPath: base.path).sorted() where !name.hasSuffix(".safetensors") && name != "model.safetensors.index.json" && !runFiles.contains(name) {
                var isDir: ObjCBool = false
                let src = base.appendingPathComponent(name)
                guard fm.fileExists(atPath: src.path, isDirectory: &isDir), !isDir.boolValue, !name.hasPrefix(".") else { continue }
                try fm.copyItem(at: src, to: partial.appendingPathComponent(name))
            }
            var items: [SafeTensorsWriter.Item] = []
            for name in store.keys.sorted() { items.append(.init(name, try replacement[name] ?? tensor(store, name))) }
            try SafeTensorsWriter.write(items, to: partial.appendingPathComponent("model.safetensors"), metadata: ["format": "pt"])
        }
        return Summary(merged: parsed.pairs.count, replaced: parsed.whole.count)
    }

    /// A merged copy of `base` + `adapter` in a fresh temporary directory (the caller removes it), for loading a
    /// base model with an adapter applied.
    public static func temporaryMerge(base: URL, adapter: URL) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-adapter-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try merge(base: base, adapter: adapter, into: dir)
        return dir
    }

    static func tensor(_ store: WeightStore, _ name: String) throws -> Tensor {
        do { return try store.tensor(name) } catch { throw TrainingError.checkpoint("\(name): \(error)") }
    }
}
