import Foundation
import VLMLayers
import VLMTensor

/// The strict loading sequence every family shares: config.json's model_type checked against the family's,
/// the config decoded (errors name the key) and validated, then every tensor claimed by the model's layers
/// (missing, extra and mis-shaped tensors name the key).
enum Checkpoint {
    /// The config of `directory` and its model_type, after checking the type is one of `types`.
    static func config<C: Decodable>(_ type: C.Type, in directory: URL, types: [String],
                                     validate: (C, String) throws -> Void) throws -> (config: C, modelType: String) {
        let path = ConfigFile.url(in: directory).path
        let modelType = try ConfigFile.modelType(in: directory)
        guard let modelType, types.contains(modelType) else {
            throw ModelError.unsupportedModelType(path: path, modelType: modelType ?? "(none)", supported: types)
        }
        let config = try ConfigFile.decode(C.self, in: directory)
        try validate(config, path)
        return (config, modelType)
    }

    /// Non-persistent `embeddings.position_ids` buffers that older exports saved next to the weights
    /// (transformers ignores them too).
    static func isPositionIDsBuffer(_ key: String) -> Bool { key.hasSuffix("embeddings.position_ids") }

    /// A model of a validated config with seeded random weights (benchmarks; nothing meaningful comes out).
    /// `int8Compute`: the family's int8-compute layers (Int8ComputeLayers; decoders' default unless given).
    static func random<M>(seed: UInt64, storage: WeightStorage = .float32, int8Compute: Int8ComputeLayers = .standard,
                          build: (WeightLoader) throws -> M) throws -> M {
        try loadingWeights {
            let loader = WeightLoader(randomSeed: seed, storage: storage)
            loader.int8Compute = int8Compute
            return try build(loader)
        }
    }

    /// The model `build` makes from the weights of `directory`; tensors nobody claimed are an error.
    static func weights<M>(directory: URL, storage: WeightStorage = .float32, int8Compute: Int8ComputeLayers = .standard,
                           ignorable: @escaping (String) -> Bool, build: (WeightLoader) throws -> M) throws -> M {
        try loadingWeights {
            let loader = try WeightLoader(directory: directory, storage: storage, ignorable: ignorable)
            loader.int8Compute = int8Compute
            loader.quantization = try QuantizationScheme.load(directory: directory)
            let model = try build(loader)
            try loader.finish()
            return model
        }
    }
}
