import Foundation

/// Errors of parsing, rendering or locating a chat template.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The template does not parse; line and column are 1-based.
    case syntax(line: Int, column: Int, message: String)
    /// The template called `raise_exception(message)` (the message is the template's own).
    case raised(String)
    /// jinja2 would raise while rendering (type errors, undefined values used, ...).
    case runtime(String)
    /// A bound was hit: too many loop iterations, a range too big, too deep recursion, too much output.
    case limitExceeded(String)
    /// No template could be found or decoded in a checkpoint directory.
    case notFound(String)

    public var description: String {
        switch self {
        case .syntax(let line, let column, let message): return "template syntax error at \(line):\(column): \(message)"
        case .raised(let message): return message
        case .runtime(let message): return "template error: \(message)"
        case .limitExceeded(let message): return "template limit exceeded: \(message)"
        case .notFound(let message): return message
        }
    }
}
