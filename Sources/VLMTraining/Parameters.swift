import Foundation
import VLMLayers
import VLMModels
import VLMTensor

/// Named float32 tensors in a fixed order (Hugging Face keys), so a checkpoint is written without renaming.
/// Tensors share storage: the optimizer updates them in place and every holder sees the new values.
public final class ParameterSet: @unchecked Sendable {
    public private(set) var names: [String] = []
    private var table: [String: Tensor] = [:]

    public init() {}

    public func set(_ name: String, _ tensor: Tensor) {
        if table[name] == nil { names.append(name) }
        table[name] = tensor
    }

    public func tensor(_ name: String) -> Tensor? { table[name] }

    /// The parameter `name`, which the architecture guarantees exists (its key list built this set).
    public subscript(_ name: String) -> Tensor {
        guard let t = table[name] else { preconditionFailure("no parameter '\(name)'") }  // safe: names from the architecture
        return t
    }

    public var count: Int { names.count }
    public var scalarCount: Int { names.reduce(0) { $0 + self[$1].count } }

    /// A deep copy (fresh storage for every tensor).
    public func copy() -> ParameterSet {
        let out = ParameterSet()
        for n in names { out.set(n, self[n].copy()) }
        return out
    }
}

/// Gradients by parameter name. Parameters used several times (position embeddings, shared rows) accumulate.
public final class Gradients: @unchecked Sendable {
    public private(set) var names: [String] = []
    private var table: [String: Tensor] = [:]

    public init() {}

    /// Adds `g` to the gradient of `name` (same element count); the first contribution is stored as is.
    public func add(_ name: String, _ g: Tensor, shape: [Int]? = nil) {
        let g = shape.map { g.reshaped($0) } ?? g
        if let existing = table[name] { accumulate(existing, g) } else {
            names.append(name)
            table[name] = g
        }
    }

    public subscript(_ name: String) -> Tensor? { table[name] }

    /// sqrt(Σ g²) over all gradients (torch.nn.utils.clip_grad_norm_ with norm_type 2), in Double.
    public var globalNorm: Double {
        var sq = 0.0
        for n in names {  // in name order, so the sum (and a resumed run) is reproducible
            guard let t = table[n] else { continue }
            let p = t.pointer
            for i in 0 ..< t.count { sq += Double(p[i]) * Double(p[i]) }
        }
        return sq.squareRoot()
    }

    /// Multiplies every gradient by `factor`.
    public func scale(by factor: Float) {
        for n in names {
            guard let t = table[n] else { continue }
            for i in 0 ..< t.count { t[i] *= factor }
        }
    }
}

// MARK: - CLIP's parameter layout

/// Every tensor of a Hugging Face CLIPModel checkpoint, with its shape, in state_dict order
/// (modeling_clip.py: text_model, vision_model, visual_projection, text_projection, logit_scale).
public func clipParameterShapes(_ config: CLIPConfig) -> [(name: String, shape: [Int])] {
    var out: [(String, [Int])] = []
    func encoder(_ prefix: String, layers: Int, dim c: Int, intermediate i: Int) {
        for l in 0 ..< layers {
            let p = "\(prefix).encoder.layers.\(l)"
            for proj in ["k_proj", "v_proj", "q_proj", "out_proj"] {
                out.append(("\(p).self_attn.\(proj).weight", [c, c]))
                out.append(("\(p).self_attn.\(proj).bias", [c]))
            }
            out.append(("\(p).layer_norm1.weight", [c]))
            out.append(("\(p).layer_norm1.bias", [c]))
            out.append(("\(p).mlp.fc1.weight", [i, c]))
            out.append(("\(p).mlp.fc1.bias", [i]))
            out.append(("\(p).mlp.fc2.weight", [c, i]))
            out.append(("\(p).mlp.fc2.bias", [c]))
            out.append(("\(p).layer_norm2.weight", [c]))
            out.append(("\(p).layer_norm2.bias", [c]))
        }
    }
    let t = config.textConfig, v = config.visionConfig
    out.append(("text_model.embeddings.token_embedding.weight", [t.vocabSize, t.hiddenSize]))
    out.append(("text_model.embeddings.position_embedding.weight", [t.maxPositionEmbeddings, t.hiddenSize]))
    encoder("text_model", layers: t.numHiddenLayers, dim: t.hiddenSize, intermediate: t.intermediateSize)
    out.append(("text_model.final_layer_norm.weight", [t.hiddenSize]))
    out.append(("text_model.final_layer_norm.bias", [t.hiddenSize]))
    out.append(("vision_model.embeddings.class_embedding", [v.hiddenSize]))
    out.append(("vision_model.embeddings.patch_embedding.weight", [v.hiddenSize, v.numChannels, v.patchSize, v.patchSize]))
    out.append(("vision_model.embeddings.position_embedding.weight", [v.numPositions, v.hiddenSize]))
    out.append(("vision_model.pre_layrnorm.weight", [v.hiddenSize]))
    out.append(("vision_model.pre_layrnorm.bias", [v.hiddenSize]))
    encoder("vision_model", layers: v.numHiddenLayers, dim: v.hiddenSize, intermediate: v.intermediateSize)
    out.append(("vision_model.post_layernorm.weight", [v.hiddenSize]))
    out.append(("vision_model.post_layernorm.bias", [v.hiddenSize]))
    out.append(("visual_projection.weight", [config.projectionDim, v.hiddenSize]))
    out.append(("text_projection.weight", [config.projectionDim, t.hiddenSize]))
    out.append(("logit_scale", []))
    return out
}

extension ParameterSet {
    /// Reads every CLIP tensor from a checkpoint directory (model.safetensors or a sharded index), strictly:
    /// each key must exist with its shape, and keys the architecture does not use are an error (except the
    /// non-persistent `position_ids` buffers older exports carry, which transformers ignores as well).
    public static func loadCLIP(directory: URL, config: CLIPConfig) throws -> ParameterSet {
        let store: WeightStore
        do { store = try WeightStore(directory: directory) } catch { throw TrainingError.checkpoint("\(error)") }
        let set = ParameterSet()
        var claimed = Set<String>()
        for (name, shape) in clipParameterShapes(config) {
            guard let entry = store.entry(name) else { throw TrainingError.checkpoint("\(directory.path) lacks tensor '\(name)'") }
            guard entry.shape == shape else {
                throw TrainingError.checkpoint("tensor '\(name)' has shape \(entry.shape) but the config implies \(shape)")
            }
            do { set.set(name, try store.tensor(name).copy()) } catch { throw TrainingError.checkpoint("\(name): \(error)") }
            claimed.insert(name)
        }
        let extra = store.keys.subtracting(claimed).filter { !$0.hasSuffix("position_ids") }.sorted()
        guard extra.isEmpty else {
            throw TrainingError.checkpoint("\(directory.path) has tensors CLIP does not use: \(extra.prefix(5).joined(separator: ", "))")
        }
        return set
    }

    /// CLIP's initialisation, as transformers' CLIPPreTrainedModel._init_weights (modeling_clip.py) with
    /// initializer_factor 1 and initializer_range 0.02: Linear N(0, 0.02) then per-module overrides —
    /// token/position embeddings N(0, 0.02); class embedding N(0, C^-0.5); patch/position (vision) N(0, 0.02);
    /// q/k/v N(0, C^-0.5 (2L)^-0.5), out_proj N(0, C^-0.5); fc1 N(0, (2C)^-0.5), fc2 N(0, C^-0.5 (2L)^-0.5);
    /// projections N(0, C^-0.5); biases 0; LayerNorm weight 1, bias 0; logit_scale = logit_scale_init_value.
    /// Seeded SplitMix64 + Box-Muller, drawn in key order, so the same seed gives the same model everywhere.
    public static func randomCLIP(config: CLIPConfig, seed: UInt64) -> ParameterSet {
        var rng = SplitMix64(seed: seed)
        let set = ParameterSet()
        let t = config.textConfig, v = config.visionConfig
        for (name, shape) in clipParameterShapes(config) {
            let tower = name.hasPrefix("vision_model") ? (c: v.hiddenSize, layers: v.numHiddenLayers) : (c: t.hiddenSize, layers: t.numHiddenLayers)
            let c = Float(tower.c), l2 = Float(2 * max(tower.layers, 1))
            let tensor = Tensor(zeros: shape)
            var std: Float? = nil
            if name == "logit_scale" {
                tensor[0] = config.logitScaleInitValue
            } else if name.hasSuffix(".bias") {
                std = nil
            } else if name.contains("layer_norm") || name.contains("layrnorm") || name.contains("layernorm") {
                for i in 0 ..< tensor.count { tensor[i] = 1 }
            } else if name.hasSuffix("class_embedding") {
                std = 1 / c.squareRoot()
            } else if name.hasSuffix("q_proj.weight") || name.hasSuffix("k_proj.weight") || name.hasSuffix("v_proj.weight") {
                std = 1 / c.squareRoot() / l2.squareRoot()
            } else if name.hasSuffix("out_proj.weight") {
                std = 1 / c.squareRoot()
            } else if name.hasSuffix("fc1.weight") {
                std = 1 / (2 * c).squareRoot()
            } else if name.hasSuffix("fc2.weight") {
                std = 1 / c.squareRoot() / l2.squareRoot()
            } else if name == "visual_projection.weight" {
                std = 1 / Float(v.hiddenSize).squareRoot()
            } else if name == "text_projection.weight" {
                std = 1 / Float(t.hiddenSize).squareRoot()
            } else {
                std = 0.02  // embeddings (token, position, patch)
            }
            if let std { for i in 0 ..< tensor.count { tensor[i] = rng.nextGaussian() * std } }
            set.set(name, tensor)
        }
        return set
    }
}
