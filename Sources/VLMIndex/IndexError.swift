/// The one error type of the index module. Every payload names the culprit (path, fingerprint, dims)
/// so a CLI can print it as is.
public enum IndexError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The index at `path` was built by another model; mixing embeddings of two models is meaningless.
    case modelMismatch(path: String, stored: String, requested: String)
    /// A vector's length differs from the index's embedding dimension.
    case dimensionMismatch(context: String, expected: Int, actual: Int)
    /// A vector holds NaN/inf or is all zeros where a direction is needed.
    case invalidVector(context: String, reason: String)
    /// SQLite refused an operation (the message is SQLite's).
    case database(path: String, message: String)
    /// A file could not be read or written.
    case io(path: String, message: String)
    /// A persisted HNSW graph (or another binary file) is unusable; callers rebuild instead of trusting it.
    case corruptFile(path: String, reason: String)
    /// A caller-supplied argument is out of range (k < 1, M < 2, empty query list, ...).
    case invalidArgument(String)
    /// An id that the store or an in-memory index does not hold.
    case unknownID(Int64)

    public var description: String {
        switch self {
        case let .modelMismatch(path, stored, requested):
            return "index \(path) was built with model '\(stored)', not '\(requested)' (rebuild the index to switch models)"
        case let .dimensionMismatch(context, expected, actual):
            return "\(context): embedding has \(actual) dimensions, the index expects \(expected)"
        case let .invalidVector(context, reason):
            return "\(context): invalid vector (\(reason))"
        case let .database(path, message):
            return "index database \(path): \(message)"
        case let .io(path, message):
            return "\(path): \(message)"
        case let .corruptFile(path, reason):
            return "\(path): corrupt or stale file (\(reason))"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case let .unknownID(id):
            return "no embedding with id \(id) in the index"
        }
    }
}
