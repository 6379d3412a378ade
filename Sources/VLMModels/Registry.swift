import Foundation
import VLMLayers
import VLMTensor

// MARK: - Families

/// What a served or loaded model does.
public enum ModelKind: String, Sendable, Codable {
    /// A dual encoder: embeddings, zero-shot classification, similarity, search.
    case embedding
    /// A generative model: captions, answers, chat.
    case chat
}

/// A loaded model, by its protocol.
public enum LoadedModel: Sendable {
    case dualEncoder(any DualEncoder)
    case generative(any GenerativeModel)

    public var kind: ModelKind {
        switch self {
        case .dualEncoder: return .embedding
        case .generative: return .chat
        }
    }
}

/// One model family: the config.json values that name it and how its model loads. Its config type, weight-key
/// layouts and input processing are the family's own business (its file); the registry only routes to it.
public struct ModelFamily: Sendable {
    /// Human-readable name ("CLIP", "SigLIP", "LLaVA", ...).
    public let name: String
    /// config.json `model_type` values this family loads.
    public let modelTypes: [String]
    /// config.json `architectures` values, used when a config has no model_type.
    public let architectures: [String]
    public let kind: ModelKind
    /// Loads the model from a checkpoint directory (config.json + safetensors), unchanged.
    public let load: @Sendable (URL) throws -> LoadedModel
    /// Loads with the weights in a given storage (families that take `--precision`: the language model of
    /// generative checkpoints, both towers of dual encoders); nil: the family runs fp32 only.
    public let loadStored: (@Sendable (URL, WeightStorage) throws -> LoadedModel)?

    public init(name: String, modelTypes: [String], architectures: [String], kind: ModelKind,
                loadStored: (@Sendable (URL, WeightStorage) throws -> LoadedModel)? = nil,
                load: @escaping @Sendable (URL) throws -> LoadedModel) {
        self.name = name
        self.modelTypes = modelTypes
        self.architectures = architectures
        self.kind = kind
        self.loadStored = loadStored
        self.load = load
    }

    /// The precisions this family can run (Precision's doc says what each applies to).
    public var precisions: [Precision] { loadStored == nil ? [.fp32] : Precision.allCases }

    /// Loads with `precision` (nil: the family's default, e.g. a checkpoint's bf16 kept as stored). A precision
    /// the family cannot run is an error naming the family and what it supports.
    public func load(_ directory: URL, precision: Precision?) throws -> LoadedModel {
        try check(precision: precision)
        guard let precision, let loadStored else { return try load(directory) }
        return try loadStored(directory, precision.weightStorage)
    }

    /// Throws if this family cannot run `precision` (nil: its default, always fine).
    public func check(precision: Precision?) throws {
        guard let precision, !precisions.contains(precision) else { return }
        throw ModelError.unsupported("\(name) models run \(precisions.map(\.rawValue).joined(separator: ", ")) only (other precisions: \(ModelRegistry.families.filter { $0.loadStored != nil }.map(\.name).joined(separator: ", ")))")
    }
}

// MARK: - Registry

/// The one table from config.json to a model family. Adding a family is its file plus one line here; nothing
/// else in the project switches on model types.
public enum ModelRegistry {
    public static let families: [ModelFamily] = [
        CLIPModel.family,
        SigLIPModel.family,
        SigLIPModel.siglip2Family,
        LlavaModel.family,
        Idefics3Model.family,
        Florence2Model.family,
        LlamaModel.family,
    ]

    /// Every model_type some family loads, sorted.
    public static var supportedModelTypes: [String] { families.flatMap(\.modelTypes).sorted() }

    /// The family of the checkpoint in `directory`: by model_type, else by architectures. An unsupported or
    /// missing type names the supported ones.
    public static func family(directory: URL) throws -> ModelFamily {
        let path = ConfigFile.url(in: directory).path
        let (type, architectures) = try ConfigFile.identity(in: directory)
        if let type {
            if let family = families.first(where: { $0.modelTypes.contains(type) }) { return family }
            throw ModelError.unsupportedModelType(path: path, modelType: type, supported: supportedModelTypes)
        }
        if let family = families.first(where: { f in architectures.contains(where: f.architectures.contains) }) { return family }
        let named = architectures.isEmpty ? "(none)" : "(none; architectures \(architectures.joined(separator: ", ")))"
        throw ModelError.unsupportedModelType(path: path, modelType: named, supported: supportedModelTypes)
    }

    /// The kind of the checkpoint in `directory` without loading its weights.
    public static func kind(directory: URL) throws -> ModelKind { try family(directory: directory).kind }

    /// Loads the checkpoint in `directory` through its family (`precision`: see ModelFamily.load(_:precision:)).
    public static func load(directory: URL, precision: Precision? = nil) throws -> LoadedModel {
        try family(directory: directory).load(directory, precision: precision)
    }

    /// Loads a dual encoder (`precision`: see ModelFamily.load(_:precision:)); a generative checkpoint is refused
    /// with a message naming it.
    public static func loadDualEncoder(directory: URL, precision: Precision? = nil) throws -> any DualEncoder {
        let family = try family(directory: directory)
        guard case .dualEncoder(let model) = try family.load(directory, precision: precision) else {
            throw ModelError.wrongKind(path: directory.path, family: family.name, expected: .embedding)
        }
        return model
    }
}
