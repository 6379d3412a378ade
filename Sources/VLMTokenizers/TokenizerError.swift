import Foundation

/// The one error type of VLMTokenizers. Payloads name the file, the JSON key path and the culprit so a bad
/// checkpoint can be fixed without a debugger.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// Neither tokenizer.json nor vocab.json + merges.txt exists in `directory`.
    case missingFiles(directory: String, expected: [String])
    /// The file exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// The file is not valid JSON, or a key is missing or of the wrong type.
    case malformedJSON(file: String, key: String, reason: String)
    /// A stage `type` (normalizer, pre_tokenizer, model, decoder, post_processor) this module does not implement.
    case unsupportedType(file: String, key: String, type: String)
    /// A value that decodes but cannot be used (bad regex, merge of tokens absent from the vocab, ...).
    case invalidValue(file: String, key: String, reason: String)
    /// A line of merges.txt that is not two space-separated symbols.
    case malformedMerges(file: String, line: Int, content: String)
    /// tokenizer_config.json names a tokenizer class that has no recipe for the files present (vocab.json +
    /// merges.txt: CLIP; spiece.model: SigLIP).
    case unsupportedTokenizerClass(file: String, className: String)
    /// The BPE model needs its unknown token but the vocabulary lacks it (tokenizers' UnkTokenOutOfVocabulary).
    case unknownTokenNotInVocabulary(token: String)
    /// Padding was requested but the tokenizer has no pad token.
    case missingPadToken
    /// A sentencepiece model file (spiece.model) that is truncated, corrupt or inconsistent; `reason` says what
    /// and where (byte offset, piece index).
    case malformedModel(file: String, reason: String)

    public var description: String {
        switch self {
        case let .missingFiles(directory, expected):
            return "no tokenizer files in \(directory): expected \(expected.joined(separator: " or "))"
        case let .unreadableFile(path, reason):
            return "cannot read \(path): \(reason)"
        case let .malformedJSON(file, key, reason):
            return "\(file): malformed JSON at '\(key)': \(reason)"
        case let .unsupportedType(file, key, type):
            return "\(file): unsupported type '\(type)' at '\(key)'"
        case let .invalidValue(file, key, reason):
            return "\(file): invalid value at '\(key)': \(reason)"
        case let .malformedMerges(file, line, content):
            return "\(file):\(line): expected two space-separated symbols, got '\(content)'"
        case let .unsupportedTokenizerClass(file, className):
            return "\(file): tokenizer_class '\(className)' has no recipe here: vocab.json + merges.txt supports "
                + "\(TokenizerLoader.clipClasses.joined(separator: ", ")), spiece.model supports "
                + "\(TokenizerLoader.sentencePieceClasses.joined(separator: ", ")) (or ship a tokenizer.json)"
        case let .unknownTokenNotInVocabulary(token):
            return "unknown token '\(token)' is not in the vocabulary"
        case .missingPadToken:
            return "padding requested but the tokenizer has no pad token"
        case let .malformedModel(file, reason):
            return "\(file): malformed sentencepiece model: \(reason)"
        }
    }
}

extension CodingUserInfoKey {
    /// Name of the file being decoded, so errors thrown deep inside `init(from:)` can name it.
    static let tokenizerFileName = CodingUserInfoKey(rawValue: "VLMTokenizers.fileName")!  // literal: cannot fail
}

extension Decoder {
    var fileName: String { userInfo[.tokenizerFileName] as? String ?? "tokenizer.json" }
    var keyPath: String { codingPath.jsonKeyPath }
}

extension Array where Element == CodingKey {
    /// "pre_tokenizer.pretokenizers[0].pattern", the way a person would look it up in the file.
    var jsonKeyPath: String {
        var out = ""
        for key in self {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += out.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return out.isEmpty ? "<root>" : out
    }
}

/// Decodes `data` as `T`, turning Foundation's DecodingError into a TokenizerError naming `fileName` and the key.
func decodeJSON<T: Decodable>(
    _ type: T.Type, from data: Data, fileName: String, userInfo: [CodingUserInfoKey: Any] = [:]
) throws -> T {
    let decoder = JSONDecoder()
    decoder.userInfo = userInfo
    decoder.userInfo[.tokenizerFileName] = fileName
    do {
        return try decoder.decode(T.self, from: data)
    } catch let error as TokenizerError {
        throw error
    } catch let error as DecodingError {
        throw TokenizerError(error, fileName: fileName)
    } catch {
        throw TokenizerError.malformedJSON(file: fileName, key: "<root>", reason: "\(error)")
    }
}

extension TokenizerError {
    init(_ error: DecodingError, fileName: String) {
        switch error {
        case let .keyNotFound(key, context):
            self = .malformedJSON(
                file: fileName, key: (context.codingPath + [key]).jsonKeyPath, reason: "missing key '\(key.stringValue)'")
        case let .typeMismatch(type, context):
            self = .malformedJSON(
                file: fileName, key: context.codingPath.jsonKeyPath, reason: "expected \(type): \(context.debugDescription)")
        case let .valueNotFound(type, context):
            self = .malformedJSON(file: fileName, key: context.codingPath.jsonKeyPath, reason: "expected \(type), found null")
        case let .dataCorrupted(context):
            let underlying = context.underlyingError.map { " (\($0))" } ?? ""
            self = .malformedJSON(
                file: fileName, key: context.codingPath.jsonKeyPath, reason: context.debugDescription + underlying)
        @unknown default:
            self = .malformedJSON(file: fileName, key: "<root>", reason: "\(error)")
        }
    }
}

/// Reads a file, mapping Foundation's errors to TokenizerError.
func readFile(_ url: URL) throws -> Data {
    do {
        return try Data(contentsOf: url)
    } catch {
        throw TokenizerError.unreadableFile(path: url.path, reason: "\(error)")
    }
}
