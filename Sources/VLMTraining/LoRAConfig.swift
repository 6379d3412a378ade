import Foundation

/// PEFT's `target_modules`: a regular expression matched against the whole module path (re.fullmatch), or a list
/// of names each matching a module path equal to it or ending in ".name" (peft's check_target_module_exists).
public enum LoRATargets: Codable, Sendable, Equatable {
    case pattern(String)
    case names([String])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .pattern(s) } else { self = .names(try c.decode([String].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .pattern(let s): try c.encode(s)
        case .names(let n): try c.encode(n)
        }
    }

    /// Whether the module at `path` (transformers' module path, e.g. "model.language_model.layers.0.self_attn.q_proj")
    /// is targeted.
    public func matches(_ path: String) throws -> Bool {
        switch self {
        case .names(let names): return names.contains { path == $0 || path.hasSuffix("." + $0) }
        case .pattern(let p):
            let regex: NSRegularExpression
            do { regex = try NSRegularExpression(pattern: "^(?:\(p))$") } catch {
                throw TrainingError.invalidConfig("adapter target_modules '\(p)' is not a valid regular expression")
            }
            return regex.firstMatch(in: path, range: NSRange(path.startIndex..., in: path)) != nil
        }
    }

    /// The decoder's linear layers `names` (q_proj, v_proj, ...) restricted to the language model, as the regex
    /// peft matches (a plain list would also hit the vision tower's q_proj/v_proj).
    public static func languageModel(_ names: [String]) -> LoRATargets {
        .pattern(".*language_model.*\\.(\(names.joined(separator: "|")))")
    }
}

/// adapter_config.json as peft writes it (LoraConfig): the fields SwiftVLM reads, and writes with peft's names.
/// Settings SwiftVLM does not implement (DoRA, fan_in_fan_out, LoRA biases, per-module rank/alpha patterns,
/// layer selection) are refused by `validate()` with their name rather than applied wrongly.
public struct LoRAConfig: Codable, Sendable, Equatable {
    public var peftType = "LORA"
    public var r: Int
    public var loraAlpha: Float
    public var loraDropout: Float = 0
    public var targetModules: LoRATargets
    /// Modules trained in full and saved whole (peft's modules_to_save), e.g. ["multi_modal_projector"].
    public var modulesToSave: [String]?
    public var baseModelNameOrPath: String?
    public var taskType: String?
    public var bias = "none"
    public var fanInFanOut = false
    public var useRslora = false
    public var useDora = false
    public var rankPattern: [String: Int] = [:]
    public var alphaPattern: [String: Float] = [:]
    public var layersToTransform: [Int]?
    public var inferenceMode = true
    public var initLoraWeights = true

    enum CodingKeys: String, CodingKey {
        case peftType = "peft_type", r, loraAlpha = "lora_alpha", loraDropout = "lora_dropout", targetModules = "target_modules"
        case modulesToSave = "modules_to_save", baseModelNameOrPath = "base_model_name_or_path", taskType = "task_type", bias
        case fanInFanOut = "fan_in_fan_out", useRslora = "use_rslora", useDora = "use_dora", rankPattern = "rank_pattern"
        case alphaPattern = "alpha_pattern", layersToTransform = "layers_to_transform", inferenceMode = "inference_mode"
        case initLoraWeights = "init_lora_weights"
    }

    public init(r: Int, alpha: Float, targets: LoRATargets, modulesToSave: [String]? = nil, base: String? = nil) {
        self.r = r
        loraAlpha = alpha
        targetModules = targets
        self.modulesToSave = modulesToSave
        baseModelNameOrPath = base
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        peftType = try c.decodeIfPresent(String.self, forKey: .peftType) ?? "LORA"
        r = try c.decodeIfPresent(Int.self, forKey: .r) ?? 8
        loraAlpha = try c.decodeIfPresent(Float.self, forKey: .loraAlpha) ?? 8
        loraDropout = try c.decodeIfPresent(Float.self, forKey: .loraDropout) ?? 0
        targetModules = try c.decodeIfPresent(LoRATargets.self, forKey: .targetModules) ?? .names([])
        modulesToSave = try c.decodeIfPresent([String].self, forKey: .modulesToSave)
        baseModelNameOrPath = try c.decodeIfPresent(String.self, forKey: .baseModelNameOrPath)
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType)
        bias = try c.decodeIfPresent(String.self, forKey: .bias) ?? "none"
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        useRslora = try c.decodeIfPresent(Bool.self, forKey: .useRslora) ?? false
        useDora = try c.decodeIfPresent(Bool.self, forKey: .useDora) ?? false
        rankPattern = try c.decodeIfPresent([String: Int].self, forKey: .rankPattern) ?? [:]
        alphaPattern = try c.decodeIfPresent([String: Float].self, forKey: .alphaPattern) ?? [:]
        // peft writes an int or a list (or null).
        if let one = try? c.decodeIfPresent(Int.self, forKey: .layersToTransform) { layersToTransform = [one] } else {
            layersToTransform = try? c.decodeIfPresent([Int].self, forKey: .layersToTransform)
        }
        inferenceMode = try c.decodeIfPresent(Bool.self, forKey: .inferenceMode) ?? true
        initLoraWeights = (try? c.decodeIfPresent(Bool.self, forKey: .initLoraWeights)) ?? true
    }

    /// The update's factor: lora_alpha / r (lora_alpha / sqrt(r) with use_rslora), as peft's LoraLayer.update_layer.
    public var scaling: Float { useRslora ? loraAlpha / Float(r).squareRoot() : loraAlpha / Float(r) }

    public func validate() throws {
        guard peftType.uppercased() == "LORA" else { throw TrainingError.invalidConfig("adapter peft_type is '\(peftType)'; only LORA adapters are supported") }
        guard r >= 1, r <= 4096 else { throw TrainingError.invalidConfig("adapter rank r = \(r); expected 1 ... 4096") }
        guard loraAlpha.isFinite, loraAlpha > 0 else { throw TrainingError.invalidConfig("adapter lora_alpha = \(loraAlpha); expected a positive number") }
        var unsupported: [String] = []
        if useDora { unsupported.append("use_dora") }
        if fanInFanOut { unsupported.append("fan_in_fan_out") }
        if bias != "none" { unsupported.append("bias '\(bias)'") }
        if !rankPattern.isEmpty { unsupported.append("rank_pattern") }
        if !alphaPattern.isEmpty { unsupported.append("alpha_pattern") }
        if layersToTransform != nil { unsupported.append("layers_to_transform") }
        guard unsupported.isEmpty else { throw TrainingError.invalidConfig("adapter uses \(unsupported.joined(separator: ", ")), which SwiftVLM does not implement") }
    }

    public static let fileName = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    public static func load(directory: URL) throws -> LoRAConfig {
        let url = directory.appendingPathComponent(fileName)
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw TrainingError.checkpoint("\(url.path): cannot read (\(error.localizedDescription)); a PEFT adapter directory holds adapter_config.json") }
        let config: LoRAConfig
        do { config = try JSONDecoder().decode(LoRAConfig.self, from: data) } catch { throw TrainingError.checkpoint("\(url.path): \(error)") }
        try config.validate()
        return config
    }

    public func data() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }
}

/// Parameter names across the three spellings of a LLaVA checkpoint: the llava-hf files SwiftVLM trains
/// ("language_model.model.layers.0..."), transformers 5 module paths ("model.language_model.layers.0...") and
/// peft's adapter keys ("base_model.model." + module path + ".lora_A.weight").
public enum AdapterKeys {
    public static let peftPrefix = "base_model.model."

    /// transformers 5 module path of a llava-hf parameter name (".weight"/".bias" kept).
    public static func modulePath(llavaName n: String) -> String {
        if n.hasPrefix("language_model.model.") { return "model.language_model." + n.dropFirst("language_model.model.".count) }
        if n.hasPrefix("language_model.lm_head.") { return String(n.dropFirst("language_model.".count)) }
        if n.hasPrefix("vision_tower.vision_model.") { return "model.vision_tower." + n.dropFirst("vision_tower.vision_model.".count) }
        if n.hasPrefix("vision_tower.") || n.hasPrefix("multi_modal_projector.") { return "model." + n }
        return n
    }

    /// Names a stored checkpoint may use for the tensor at module path `path`: as is (transformers 5 and Idefics3
    /// files), then the llava-hf spelling.
    public static func storedCandidates(modulePath path: String) -> [String] {
        var out = [path]
        if path.hasPrefix("model.language_model.") { out.append("language_model.model." + path.dropFirst("model.language_model.".count)) }
        if path.hasPrefix("lm_head.") { out.append("language_model." + path) }
        if path.hasPrefix("model.vision_tower.") {
            let rest = path.dropFirst("model.vision_tower.".count)
            out.append("vision_tower.vision_model." + rest)
            out.append("vision_tower." + rest)
        }
        if path.hasPrefix("model.multi_modal_projector.") { out.append(String(path.dropFirst("model.".count))) }
        return out
    }

    public static func loraA(_ module: String) -> String { "\(peftPrefix)\(module).lora_A.weight" }
    public static func loraB(_ module: String) -> String { "\(peftPrefix)\(module).lora_B.weight" }
}
