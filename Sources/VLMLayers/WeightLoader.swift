import Foundation
import VLMTensor

/// Errors of the layer module: how a checkpoint's tensors fail to fit the architecture a config describes.
public enum WeightError: Error, CustomStringConvertible {
    case missing(key: String, directory: String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    case unexpected(keys: [String], directory: String)
    case storage(TensorError)
    case invalid(String)
    /// None of a component's accepted key prefixes holds its probe tensor.
    case layoutNotFound(probe: String, prefixes: [String], directory: String)

    public var description: String {
        switch self {
        case .missing(let key, let dir): return "checkpoint \(dir) lacks tensor '\(key)'"
        case .shapeMismatch(let key, let expected, let actual):
            return "tensor '\(key)' has shape \(actual) but the config implies \(expected)"
        case .unexpected(let keys, let dir):
            let shown = keys.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            return "checkpoint \(dir) has \(keys.count) tensor(s) this architecture does not use: \(shown)\(keys.count > 5 ? ", ..." : "") (is config.json from another model?)"
        case .storage(let e): return e.description
        case .invalid(let message): return message
        case .layoutNotFound(let probe, let prefixes, let dir):
            return "checkpoint \(dir) lacks tensor '\(prefixes.first.map { "\($0).\(probe)" } ?? probe)' (also looked for it under \(prefixes.dropFirst().map { "'\($0)'" }.joined(separator: ", ")): the key layouts of the Hub and of transformers 5.x)"
        }
    }
}

/// How linear-layer weights and embedding tables are kept in memory (norm weights and biases are float32).
public enum WeightStorage: String, Sendable, CaseIterable {
    /// Widened to float32 (4 bytes per parameter).
    case float32
    /// The checkpoint's own type when it is bf16 or fp16 (2 bytes per parameter, no rounding), else float32.
    case asStored = "as-stored"
    /// Forced 16-bit: float32 sources are rounded to nearest even (benchmarks with random weights).
    case bfloat16, float16
    /// Weight-only group-wise quantization at load (round to nearest, vlm_quantize_naive): symmetric int8 or
    /// int4 with a zero point, one float32 scale per 128 weights of a row along k. Activations stay float32.
    case int8, int4

    /// The packed format for a tensor stored as `dtype` in the checkpoint.
    public func packedStorage(for dtype: SafeTensorsDType) -> PackedLinearWeight.Storage {
        switch self {
        case .float32: return .float32
        case .bfloat16: return .bfloat16
        case .float16: return .float16
        case .int8: return .int8
        case .int4: return .int4
        case .asStored: return PackedLinearWeight.Storage(keeping: dtype)
        }
    }
}

/// Hands out a checkpoint's tensors by Hugging Face key, checking each shape against what the config implies,
/// and at the end refuses keys nobody claimed: a checkpoint loads completely or not at all.
public final class WeightLoader {
    public let store: WeightStore?
    var claimed: Set<String> = []
    /// Keys a model may leave unclaimed (non-persistent buffers older checkpoints carry, e.g. position_ids).
    private let ignorable: (String) -> Bool
    private var random: SplitMix64?
    /// Keys and shapes a random loader has handed out, in request order: a model's complete parameter list as
    /// its layers claim them (training builds its parameter set from it instead of a second list).
    public private(set) var requested: [(key: String, shape: [Int])] = []

    /// Storage of linear weights and embeddings for scopes that do not override it (WeightScope.storage).
    public let storage: WeightStorage
    /// The checkpoint's quantization (config.json's quantization_config): layers stored as qweight,
    /// weight_packed or int8 weights are read in this scheme (QuantizedWeights.swift).
    public var quantization: QuantizationScheme?
    /// Which int8 linear layers also run int8 compute (ReducedComputeLayers.swift); set before loading layers.
    public var int8Compute: Int8ComputeLayers = .standard
    /// Whether linear weights forced to bf16 (storage `.bfloat16`) also compute in bf16 (BF16Compute); set before
    /// loading layers.
    public var bf16Compute: Bool = BF16Compute.standard
    /// Whether int4 linear weights decode in W4A8 (W4A8Decode); set before loading layers.
    public var w4a8Decode: Bool = W4A8Decode.standard

    public init(store: WeightStore, storage: WeightStorage = .float32, ignorable: @escaping (String) -> Bool = { _ in false }) {
        self.store = store
        self.storage = storage
        self.ignorable = ignorable
    }

    /// Random weights of whatever shape each layer asks for (benchmarks of a configuration with no checkpoint):
    /// N(0, 0.02) like transformers' initialiser, except 1-D `*.weight` of norms, which are 1.
    public init(randomSeed: UInt64, storage: WeightStorage = .float32) {
        store = nil
        self.storage = storage
        ignorable = { _ in true }
        random = SplitMix64(seed: randomSeed)
    }

    public convenience init(directory: URL, storage: WeightStorage = .float32, ignorable: @escaping (String) -> Bool = { _ in false }) throws {
        do { self.init(store: try WeightStore(directory: directory), storage: storage, ignorable: ignorable) } catch let e as TensorError {
            throw WeightError.storage(e)
        }
    }

    public func contains(_ key: String) -> Bool { store.map { $0.entry(key) != nil } ?? true }

    /// The tensor `key` widened to float32, which must have exactly `shape`.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        guard let store else { return randomTensor(key, shape: shape) }
        guard let entry = store.entry(key) else { throw WeightError.missing(key: key, directory: store.directory.path) }
        guard entry.shape == shape else { throw WeightError.shapeMismatch(key: key, expected: shape, actual: entry.shape) }
        claimed.insert(key)
        do { return try store.tensor(key) } catch let e as TensorError { throw WeightError.storage(e) }
    }

    /// The row-concatenation of `keys` (each [rows_i, cols]) packed for the GEMM in `storage`, straight from the
    /// checkpoint's bytes: 16-bit tensors are never widened to a float32 copy.
    public func packedWeight(_ keys: [String], rows: [Int], cols: Int, storage: WeightStorage) throws -> PackedLinearWeight {
        guard keys.count == rows.count, !keys.isEmpty else { throw WeightError.invalid("packedWeight: \(keys.count) keys for \(rows.count) row counts") }
        let name = keys.joined(separator: "|")
        do {
            guard let store else {
                let parts = zip(keys, rows).map { randomTensor($0, shape: [$1, cols]) }
                let target = storage.packedStorage(for: .f32)
                return try PackedLinearWeight(rows: rows, inFeatures: cols, storage: target, name: name) { i, pack in
                    try withExtendedLifetime(parts[i]) {
                        try pack(.init(bytes: UnsafeRawBufferPointer(start: parts[i].pointer, count: parts[i].count * 4), dtype: .f32, rows: rows[i]))
                    }
                }
            }
            if keys.contains(where: { isQuantized($0) }) {
                guard let quantization else {
                    throw WeightError.invalid("checkpoint \(store.directory.path) stores '\(keys[0])' quantized but config.json has no quantization_config")
                }
                return try quantizedWeight(keys, rows: rows, cols: cols, storage: storage, scheme: quantization, store: store)
            }
            var dtypes: [SafeTensorsDType] = []
            for (key, r) in zip(keys, rows) {
                guard let entry = store.entry(key) else { throw WeightError.missing(key: key, directory: store.directory.path) }
                guard entry.shape == [r, cols] else { throw WeightError.shapeMismatch(key: key, expected: [r, cols], actual: entry.shape) }
                dtypes.append(entry.dtype)
            }
            // As stored: mixed 16-bit types would lose precision in either one, float32 is exact for all.
            let target = storage.packedStorage(for: Set(dtypes).count == 1 ? dtypes[0] : .f32)
            let packed = try PackedLinearWeight(rows: rows, inFeatures: cols, storage: target, name: name) { i, pack in
                if [.f32, .bf16, .f16].contains(dtypes[i]) {
                    try store.withRawBytes(keys[i]) { raw, entry in try pack(.init(bytes: raw, dtype: entry.dtype, rows: rows[i])) }
                } else {
                    // Other float types (F64) go through the widening reader.
                    let t = try store.tensor(keys[i])
                    try withExtendedLifetime(t) { try pack(.init(bytes: UnsafeRawBufferPointer(start: t.pointer, count: t.count * 4), dtype: .f32, rows: rows[i])) }
                }
            }
            keys.forEach { claimed.insert($0) }
            return packed
        } catch let e as TensorError {
            throw WeightError.storage(e)
        }
    }

    /// Throws if the checkpoint holds tensors that no layer claimed.
    public func finish() throws {
        guard let store else { return }
        let extra = store.keys.subtracting(claimed).filter { !ignorable($0) }.sorted()
        if !extra.isEmpty { throw WeightError.unexpected(keys: extra, directory: store.directory.path) }
    }

    public func scope(_ prefix: String) -> WeightScope { WeightScope(loader: self, prefix: prefix) }

    /// One component's scope among the key layouts a family accepts (the Hub's legacy prefixes and what
    /// transformers 5.x `save_pretrained` writes): the first prefix under which `probe` exists. With random
    /// weights, the first prefix. Without a match: an error naming every prefix tried, or, when not
    /// `required` (e.g. a tied LM head that may be absent), the first prefix.
    public func scope(oneOf prefixes: [String], probe: String, required: Bool = true) throws -> WeightScope {
        for prefix in prefixes where contains(prefix.isEmpty ? probe : "\(prefix).\(probe)") { return scope(prefix) }
        guard !required, let first = prefixes.first else {
            throw WeightError.layoutNotFound(probe: probe, prefixes: prefixes, directory: store?.directory.path ?? "(random)")
        }
        return scope(first)
    }

    private func randomTensor(_ key: String, shape: [Int]) -> Tensor {
        requested.append((key, shape))
        let t = Tensor(uninitialized: shape)
        let isNormScale = shape.count == 1 && key.hasSuffix(".weight") && key.contains("norm")
        for i in 0 ..< t.count {
            t.pointer[i] = isNormScale ? 1 : (random?.nextGaussian() ?? 0) * 0.02
        }
        if key == "logit_scale" { t.pointer[0] = 2.6592 }
        return t
    }
}

/// A key prefix ("text_model.encoder.layers.3") inside a loader.
public struct WeightScope {
    public init(loader: WeightLoader, prefix: String, storage: WeightStorage? = nil) {
        self.loader = loader
        self.prefix = prefix
        self.storageOverride = storage
    }

    public let loader: WeightLoader
    public let prefix: String
    private let storageOverride: WeightStorage?

    /// Storage of linear weights and embeddings loaded through this scope (and its sub-scopes).
    public var storage: WeightStorage { storageOverride ?? loader.storage }
    /// This scope with linear weights and embeddings kept in `storage` (e.g. a vision tower kept float32).
    public func storing(_ storage: WeightStorage) -> WeightScope { WeightScope(loader: loader, prefix: prefix, storage: storage) }
    /// Whether layers loaded here compute in bf16: weights forced to bf16 with bf16 compute on (see WeightLoader).
    public var computesInBF16: Bool { storage == .bfloat16 && loader.bf16Compute }
    /// Whether decoder attention loaded here runs in bf16 for prefill: its projections compute in bf16, or in int8
    /// (every projection int8: an error larger than bf16's rounding of q, k, v and the probabilities).
    public var attendsInBF16: Bool { computesInBF16 || (storage == .int8 && loader.int8Compute.covers(.all)) }
    /// Whether int4 layers loaded here decode in W4A8: int4 asked for (`--precision int4`) with W4A8 on. Quantized
    /// checkpoints loaded as stored keep the weight-only GEMV, the w4a16 arithmetic their reference computes.
    public var decodesInW4A8: Bool { storage == .int4 && loader.w4a8Decode }
    /// This scope as the vision tower of a generative model: float32 (it runs once per image, as transformers'
    /// float32 reference does, whatever the checkpoint's dtype), except when bf16 was asked for (`--precision
    /// bf16`): then the tower is stored and computes in bf16 too, where the image encode is most of the time to the
    /// first token. int8/int4 precisions quantize the decoder only.
    public func storingVisionTower() -> WeightScope { storing(loader.storage == .bfloat16 ? .bfloat16 : .float32) }

    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }
    public func scope(_ name: String) -> WeightScope { WeightScope(loader: loader, prefix: key(name), storage: storageOverride) }
    /// The row-concatenation of `names` packed in this scope's storage (see WeightLoader.packedWeight).
    public func packedWeight(_ names: [String], rows: [Int], cols: Int) throws -> PackedLinearWeight {
        try loader.packedWeight(names.map(key), rows: rows, cols: cols, storage: storage)
    }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try loader.tensor(key(name), shape: shape) }
    public func contains(_ name: String) -> Bool { loader.contains(key(name)) }
}
