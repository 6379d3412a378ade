import Foundation
@_exported import VLMImage
@_exported import VLMModels
@_exported import VLMTensor
@_exported import VLMTokenizers
@_exported import VLMScenes

/// Errors of the pipelines' own arguments; lower modules' errors pass through unchanged (each names its own
/// culprit; prompt errors are VLMModels' `ModelError`, raised by the input processors).
public enum PipelineError: Error, CustomStringConvertible {
    case invalidArgument(String)
    case input(String, underlying: Error)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .input(let what, let underlying): return "\(what): \(underlying)"
        }
    }
}

