import Foundation

/// Errors of the training module: bad batches, checkpoints that do not fit, optimizer state that does not match.
public enum TrainingError: Error, CustomStringConvertible {
    case invalidBatch(String)
    case invalidConfig(String)
    case checkpoint(String)
    case optimizerState(String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidBatch(let m): return "invalid training batch: \(m)"
        case .invalidConfig(let m): return "invalid training configuration: \(m)"
        case .checkpoint(let m): return "checkpoint: \(m)"
        case .optimizerState(let m): return "optimizer state: \(m)"
        case .io(let path, let reason): return "\(path): \(reason)"
        }
    }
}
