import Foundation
import VLMTensor

/// Errors of the layer module: how a checkpoint's tensors fail to fit the architecture a config describes.
public enum WeightError: Error, CustomStringConvertible {
    case missing(key: String, directory: String)
    case shapeMismatch(key: String, expected: [Int], actual: [Int])
    case unexpected(keys: [String], directory: String)
    case storage(TensorError)
    case invalid(String)

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
        }
    }
}

/// Hands out a checkpoint's tensors by Hugging Face key, checking each shape against what the config implies,
/// and at the end refuses keys nobody claimed: a checkpoint loads completely or not at all.
public final class WeightLoader {
    public let store: WeightStore?
    private var claimed: Set<String> = []
    /// Keys a model may leave unclaimed (non-persistent buffers older checkpoints carry, e.g. position_ids).
    private let ignorable: (String) -> Bool
    private var random: SplitMix64?

    public init(store: WeightStore, ignorable: @escaping (String) -> Bool = { _ in false }) {
        self.store = store
        self.ignorable = ignorable
    }

    /// Random weights of whatever shape each layer asks for (benchmarks of a configuration with no checkpoint):
    /// N(0, 0.02) like transformers' initialiser, except 1-D `*.weight` of norms, which are 1.
    public init(randomSeed: UInt64) {
        store = nil
        ignorable = { _ in true }
        random = SplitMix64(seed: randomSeed)
    }

    public convenience init(directory: URL, ignorable: @escaping (String) -> Bool = { _ in false }) throws {
        do { self.init(store: try WeightStore(directory: directory), ignorable: ignorable) } catch let e as TensorError {
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

    /// Throws if the checkpoint holds tensors that no layer claimed.
    public func finish() throws {
        guard let store else { return }
        let extra = store.keys.subtracting(claimed).filter { !ignorable($0) }.sorted()
        if !extra.isEmpty { throw WeightError.unexpected(keys: extra, directory: store.directory.path) }
    }

    public func scope(_ prefix: String) -> WeightScope { WeightScope(loader: self, prefix: prefix) }

    private func randomTensor(_ key: String, shape: [Int]) -> Tensor {
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
    public init(loader: WeightLoader, prefix: String) {
        self.loader = loader
        self.prefix = prefix
    }

    public let loader: WeightLoader
    public let prefix: String

    public func key(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }
    public func scope(_ name: String) -> WeightScope { WeightScope(loader: loader, prefix: key(name)) }
    public func tensor(_ name: String, shape: [Int]) throws -> Tensor { try loader.tensor(key(name), shape: shape) }
    public func contains(_ name: String) -> Bool { loader.contains(key(name)) }
}
