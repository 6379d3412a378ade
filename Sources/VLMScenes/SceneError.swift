import Foundation

/// The one error type of VLMScenes.
public enum SceneError: Error, CustomStringConvertible, Equatable {
    /// A `SceneConfig` value outside its documented range.
    case invalidConfig(field: String, reason: String)
    /// A bad argument to a generator or export call (negative count, unknown name, ...).
    case invalidArgument(String)
    /// The sampler could not satisfy the constraints of a scene (should not happen with a valid config;
    /// the payload names the scene so it can be reproduced).
    case samplingFailed(seed: UInt64, split: String, index: Int, reason: String)
    /// The export directory already exists and is not empty (pass `overwrite` to replace it).
    case outputExists(path: String)
    /// Writing files failed.
    case writeFailed(path: String, reason: String)
    /// Encoding an image failed.
    case encodeFailed(index: Int, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(field, reason):
            return "invalid scene config '\(field)': \(reason)"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case let .samplingFailed(seed, split, index, reason):
            return "could not sample scene \(index) of split \(split) with seed \(seed): \(reason)"
        case let .outputExists(path):
            return "\(path) exists and is not empty (choose another directory or overwrite)"
        case let .writeFailed(path, reason):
            return "cannot write \(path): \(reason)"
        case let .encodeFailed(index, reason):
            return "cannot encode image of scene \(index): \(reason)"
        }
    }
}
