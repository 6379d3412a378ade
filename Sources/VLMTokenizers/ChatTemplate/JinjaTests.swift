import Foundation

// jinja2's builtin tests (jinja2/tests.py), used with `is` and by select/reject.

enum JinjaTestNames {
    static let names: Set<String> = [
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
        "boolean", "true", "false", "callable", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
        "greaterthan", ">", "ge", ">=", "in", "odd", "even", "divisibleby", "sameas", "lower", "upper", "escaped", "filter",
        "test",
    ]
}

extension JinjaInterpreter {
    func applyTest(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, at p: JinjaPosition) throws -> Bool {
        let other = args.value(0, "other") ?? .undefined(hint: "test '\(name)' needs an argument")
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": if case .string = value { return true } else { return false }
        case "mapping": if case .object = value { return true } else { return false }
        case "iterable", "sequence":
            // Python: str, list, dict and jinja2's Undefined all support iter() and len().
            switch value {
            case .string, .array, .tuple, .object, .undefined: return true
            default: return false
            }
        case "number": return value.numericValue != nil
        case "integer": if case .int = value { return true } else { return false }
        case "float": if case .double = value { return true } else { return false }
        case "boolean": if case .bool = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "false": if case .bool(false) = value { return true } else { return false }
        case "callable": if case .callable = value { return true } else { return false }
        case "eq", "equalto", "==": return value == other
        case "ne", "!=": return value != other
        case "lt", "lessthan", "<": return try compare("<", value, other, at: p)
        case "le", "<=": return try compare("<=", value, other, at: p)
        case "gt", "greaterthan", ">": return try compare(">", value, other, at: p)
        case "ge", ">=": return try compare(">=", value, other, at: p)
        case "in": return try contains(args.value(0, "seq") ?? .undefined, value, at: p)
        case "odd", "even":
            guard let i = try defined(value, at: p).integerValue else {
                throw runtimeError("test '\(name)' needs an integer, got \(value.typeName)", at: p)
            }
            return (abs(i) % 2 == 1) == (name == "odd")
        case "divisibleby":
            guard let i = try defined(value, at: p).integerValue, let n = args.value(0, "num")?.integerValue, n != 0 else {
                throw runtimeError("test 'divisibleby' needs integers and a nonzero divisor", at: p)
            }
            return i % n == 0
        case "sameas":
            // Python `is`: identity; for the immutable scalars templates compare this is equality.
            switch (value, other) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.bool, _), (_, .bool): return false
            case (.int, .int), (.string, .string): return value == other
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.callable(let a), .callable(let b)): return a === b
            default: return false
            }
        case "lower":
            guard case .string(let s) = value else { return false }
            return s.contains { $0.isCased } && !s.contains { $0.isUppercase }
        case "upper":
            guard case .string(let s) = value else { return false }
            return s.contains { $0.isCased } && !s.contains { $0.isLowercase }
        case "escaped": return false
        case "filter": return JinjaFilters.names.contains(JinjaPython.str(value))
        case "test": return JinjaTestNames.names.contains(JinjaPython.str(value))
        default: throw runtimeError("No test named '\(name)' found.", at: p)
        }
    }
}
