import Foundation
import VLMLayers
import VLMTensor

/// Errors of the model layer: configs, checkpoints and inputs that do not fit a model.
public enum ModelError: Error, CustomStringConvertible {
    case missingFile(path: String)
    case invalidConfig(path: String, reason: String)
    case unsupportedModelType(path: String, modelType: String, supported: [String])
    case unsupported(String)
    case weights(WeightError)
    case invalidInput(String)
    /// The checkpoint is of another kind than the command needs (a chat model given to `vlm embed`, ...).
    case wrongKind(path: String, family: String, expected: ModelKind)

    public var description: String {
        switch self {
        case .missingFile(let path): return "missing file: \(path)"
        case .invalidConfig(let path, let reason): return "\(path): \(reason)"
        case .unsupportedModelType(let path, let type, let supported):
            return "\(path): model_type '\(type)' is not supported here (supported: \(supported.joined(separator: ", ")))"
        case .unsupported(let message): return message
        case .weights(let e): return e.description
        case .invalidInput(let message): return message
        case .wrongKind(let path, let family, let expected):
            let need = expected == .embedding ? "an embedding model (CLIP, SigLIP, SigLIP2)" : "a generative model"
            return "\(path): a \(family) checkpoint; this needs \(need)"
        }
    }
}

/// Reading config.json: presence, JSON validity, the model_type, and Decodable errors turned into one line that
/// names the key path.
public enum ConfigFile {
    public static func url(in directory: URL) -> URL { directory.appendingPathComponent("config.json") }

    public static func data(in directory: URL) throws -> Data {
        let url = url(in: directory)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.missingFile(path: directory.path + " (model directory)")
        }
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.missingFile(path: url.path) }
        do { return try Data(contentsOf: url) } catch {
            throw ModelError.invalidConfig(path: url.path, reason: "unreadable: \(error.localizedDescription)")
        }
    }

    /// `model_type` (nil if absent) and `architectures` (empty if absent): what names a checkpoint's family.
    public static func identity(in directory: URL) throws -> (modelType: String?, architectures: [String]) {
        let data = try data(in: directory)
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw ModelError.invalidConfig(path: url(in: directory).path, reason: "not a JSON object")
        }
        return (dict["model_type"] as? String, dict["architectures"] as? [String] ?? [])
    }

    /// The `model_type` field, or nil if absent.
    public static func modelType(in directory: URL) throws -> String? {
        let data = try data(in: directory)
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw ModelError.invalidConfig(path: url(in: directory).path, reason: "not a JSON object")
        }
        return dict["model_type"] as? String
    }

    public static func decode<T: Decodable>(_ type: T.Type, in directory: URL) throws -> T {
        let data = try data(in: directory)
        let path = url(in: directory).path
        do { return try JSONDecoder().decode(T.self, from: data) } catch let error as DecodingError {
            throw ModelError.invalidConfig(path: path, reason: describe(error))
        } catch {
            throw ModelError.invalidConfig(path: path, reason: "\(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "missing key \(path(c.codingPath + [key]))"
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)) should be \(type)"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)) is null, expected \(type)"
        @unknown default: return "\(error)"
        }
    }
}

/// Runs a weight-loading closure, mapping the layer module's errors into this module's.
func loadingWeights<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as WeightError { throw ModelError.weights(e) } catch let e as TensorError {
        throw ModelError.weights(.storage(e))
    }
}
