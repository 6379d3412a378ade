import Foundation

/// Errors of the training module: bad batches, checkpoints that do not fit, optimizer state that does not match.
public enum TrainingError: Error, CustomStringConvertible {
    case invalidBatch(String)
    case invalidConfig(String)
    case checkpoint(String)
    case optimizerState(String)
    case io(path: String, reason: String)
    /// A data file (manifest, CSV) that cannot be used; `line` is 1-based, nil when the whole file is at fault.
    case data(file: String, line: Int?, reason: String)
    /// A dataset or an option that cannot produce training/eval data (empty, too small, unknown split...).
    case dataset(String)

    public var description: String {
        switch self {
        case .invalidBatch(let m): return "invalid training batch: \(m)"
        case .invalidConfig(let m): return "invalid training configuration: \(m)"
        case .checkpoint(let m): return "checkpoint: \(m)"
        case .optimizerState(let m): return "optimizer state: \(m)"
        case .io(let path, let reason): return "\(path): \(reason)"
        case .data(let file, let line, let reason): return line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)"
        case .dataset(let m): return "dataset: \(m)"
        }
    }
}
