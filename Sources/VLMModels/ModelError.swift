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
    /// Images were given to a text-only checkpoint (named).
    case imagesNotSupported(model: String)
    /// The checkpoint's tokenizer has no token for the model's image token id.
    case imageTokenMissing(id: Int, model: String)
    /// The rendered prompt's image tokens do not match the images given.
    case imageCountMismatch(placeholders: Int, images: Int, token: String)
    /// The prompt (image tokens included) leaves no room in the model's context.
    case promptTooLong(tokens: Int, imageTokens: Int, context: Int)
    /// The chat message list cannot be rendered (empty, unknown role, or the chat template refused it).
    case invalidConversation(String)
    /// A generation state of another family was passed to a model (names both).
    case wrongState(model: String, state: String)

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
        case .imagesNotSupported(let model): return "the model \(model) is text-only; it does not take images"
        case .imageTokenMissing(let id, let model):
            return "the tokenizer of \(model) has no token for image_token_index \(id); this checkpoint cannot take images"
        case .imageCountMismatch(let placeholders, let images, let token):
            return "the prompt has \(placeholders) image token(s) \(token) but \(images) image(s) were given"
        case .promptTooLong(let tokens, let imageTokens, let context):
            let detail = imageTokens > 0 ? " (\(imageTokens) of them image tokens)" : ""
            return "the prompt has \(tokens) tokens\(detail); the model's context is \(context) tokens and at least one must be left to generate"
        case .invalidConversation(let message): return "invalid chat: \(message)"
        case .wrongState(let model, let state): return "a \(state) generation state was given to the \(model) model"
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

extension KeyedDecodingContainer {
    /// A size transformers accepts as an int or an [h, w] pair (image_size, patch_size); models whose patch
    /// convolution and position table are square take a pair only when it is square.
    func squareSize(_ key: Key, model: String) throws -> Int? {
        if let pair = try? decodeIfPresent([Int].self, forKey: key) {
            guard pair.count == 2, pair[0] == pair[1] else {
                throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "non-square \(pair) is not supported by \(model)")
            }
            return pair[0]
        }
        return try decodeIfPresent(Int.self, forKey: key)
    }
}
