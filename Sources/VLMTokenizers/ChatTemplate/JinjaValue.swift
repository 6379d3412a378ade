import Foundation

/// A dictionary that keeps insertion order, like a Python 3.7+ dict: chat templates iterate
/// `tool.items()` and `tojson` a tool schema, and the output must list keys in the order given.
public struct JinjaObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    private var storage: [String: JinjaValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                // Python keeps the original position when an existing key is reassigned.
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0] ?? JinjaValue.none) } }
    public var values: [JinjaValue] { keys.map { storage[$0] ?? JinjaValue.none } }

    public static func == (lhs: JinjaObject, rhs: JinjaObject) -> Bool {
        // Python dict equality ignores order.
        lhs.storage == rhs.storage
    }
}

/// jinja2's `namespace()`: the one mutable object a template can write to from inside a loop
/// (`{% set ns.x = ... %}`), so it is a reference type shared by every scope that sees it.
public final class JinjaNamespace: @unchecked Sendable {
    // Only touched by the single render that created it (a render is single-threaded).
    var attributes: JinjaObject
    init(_ attributes: JinjaObject) { self.attributes = attributes }
}

/// Arguments of a call as jinja2 passes them: positional then keyword, in source order.
public struct JinjaArguments: Sendable {
    public var positional: [JinjaValue]
    public var keyword: [(String, JinjaValue)]

    public init(_ positional: [JinjaValue] = [], keyword: [(String, JinjaValue)] = []) {
        self.positional = positional
        self.keyword = keyword
    }

    /// Python-style parameter binding: the i-th positional argument, else the keyword `name`.
    public func value(_ index: Int, _ name: String) -> JinjaValue? {
        if index < positional.count { return positional[index] }
        return keyword.first { $0.0 == name }?.1
    }
}

/// A function value: a template global (`range`, `namespace`, `raise_exception`...), a macro,
/// or a bound method (`'a,b'.split`).
public final class JinjaCallable: @unchecked Sendable {
    public let name: String
    let body: (JinjaArguments) throws -> JinjaValue

    public init(name: String, _ body: @escaping (JinjaArguments) throws -> JinjaValue) {
        self.name = name
        self.body = body
    }

    public func call(_ arguments: JinjaArguments) throws -> JinjaValue { try body(arguments) }
}

/// A value seen by a template, modelled on the Python objects transformers hands jinja2.
public enum JinjaValue: Sendable {
    /// jinja2's default `Undefined`: prints as "", is falsy, iterates as empty, and fails with
    /// `hint` as soon as it is used for anything else (attribute access, arithmetic...).
    case undefined(hint: String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// A Python tuple: a list that prints as `(a, b)` and never equals a list.
    case tuple([JinjaValue])
    case object(JinjaObject)
    case namespace(JinjaNamespace)
    case callable(JinjaCallable)

    public static let undefined: JinjaValue = .undefined(hint: "value is undefined")

    public var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    public var isNone: Bool { if case .none = self { return true } else { return false } }

    /// Python truthiness (`bool(x)`); Undefined is falsy.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        case .namespace, .callable: return true
        }
    }

    /// The Python type name, as used in Python's and jinja2's error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .object: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        }
    }

    /// A number as Double, counting bools as 0/1 like Python (bool subclasses int).
    var numericValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// An integer, counting bools as 0/1 like Python.
    var integerValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The items of a list or tuple.
    var sequenceItems: [JinjaValue]? {
        switch self {
        case .array(let a), .tuple(let a): return a
        default: return nil
        }
    }

    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(JinjaObject(elements)) }
    public init(nilLiteral: ()) { self = .none }
}

extension JinjaValue: Equatable {
    /// Python `==`: numbers compare by value across int/float/bool, containers deeply; two
    /// Undefined values are equal (jinja2's `Undefined.__eq__` compares types).
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)): return a == b
        case (.object(let a), .object(let b)): return a == b
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.callable(let a), .callable(let b)): return a === b
        default:
            if let a = lhs.integerValue, let b = rhs.integerValue { return a == b }
            if let a = lhs.numericValue, let b = rhs.numericValue { return a == b }
            return false
        }
    }
}

extension JinjaValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .none
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int.self) {
            self = .int(i)
        } else if let d = try? container.decode(Double.self) {
            self = .double(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JinjaValue].self) {
            self = .array(a)
        } else {
            // Decodable cannot see key order; use JinjaValue(json:) where order matters.
            let d = try container.decode([String: JinjaValue].self)
            self = .object(JinjaObject(d.keys.sorted().map { ($0, d[$0] ?? JinjaValue.none) }))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .undefined, .none, .namespace, .callable: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .int(let i): try container.encode(i)
        case .double(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a), .tuple(let a): try container.encode(a)
        case .object(let o):
            var d: [String: JinjaValue] = [:]
            for (k, v) in o.pairs { d[k] = v }
            try container.encode(d)
        }
    }
}
