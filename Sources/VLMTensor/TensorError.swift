/// The one error type of VLMTensor: checkpoint files (safetensors), .npy files, kernel arguments and resources.
/// Every payload names the culprit (file, key, dtype) so a user can tell what is wrong from one line.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case truncated(path: String, reason: String)
    case malformedHeader(path: String, reason: String)
    case unsupportedDType(path: String, key: String, dtype: String)
    case badOffsets(path: String, key: String, reason: String)
    case missingTensor(key: String, file: String)
    case unsupportedFormat(path: String, reason: String)
    /// `name` has the wrong rank.
    case rankMismatch(name: String, expected: Int, got: [Int])
    /// `name` has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    /// Memory for `name` could not be allocated.
    case allocationFailed(name: String, bytes: Int)
    /// Any other invalid argument (e.g. an unknown activation name).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "file not found: \(path)"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .truncated(let path, let reason): return "\(path) is truncated: \(reason)"
        case .malformedHeader(let path, let reason): return "\(path): malformed header: \(reason)"
        case .unsupportedDType(let path, let key, let dtype):
            return "\(path): tensor '\(key)' has dtype \(dtype), which is not supported (F32, F16, BF16, F64 are)"
        case .badOffsets(let path, let key, let reason): return "\(path): tensor '\(key)': \(reason)"
        case .missingTensor(let key, let file): return "tensor '\(key)' not found in \(file)"
        case .unsupportedFormat(let path, let reason): return "\(path): \(reason)"
        case let .rankMismatch(name, expected, got): return "\(name): expected rank \(expected), got shape \(got)"
        case let .shapeMismatch(name, expected, got): return "\(name): expected shape \(expected), got \(got)"
        case let .allocationFailed(name, bytes): return "\(name): failed to allocate \(bytes) bytes"
        case .invalidArgument(let message): return message
        }
    }
}
