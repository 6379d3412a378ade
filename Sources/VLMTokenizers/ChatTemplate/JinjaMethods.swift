import Foundation

/// Python methods of str, dict and list that chat templates call (`content.strip()`,
/// `tool.items()`, `messages.index(m)`). Mutating methods are refused, as jinja2's
/// ImmutableSandboxedEnvironment (the one transformers uses) refuses them.
enum JinjaMethods {
    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower", "title",
        "capitalize", "replace", "format", "join", "find", "rfind", "index", "count", "isdigit", "isalpha", "isalnum",
        "isspace", "isupper", "islower", "removeprefix", "removesuffix", "center", "ljust", "rjust", "zfill", "swapcase",
        "casefold", "partition", "rpartition", "isnumeric", "isdecimal",
    ]
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "copy"]
    static let listMethods: Set<String> = ["index", "count", "copy"]
    static let unsafeMethods: Set<String> = [
        "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "update", "setdefault", "popitem", "add",
        "discard",
    ]

    static func has(_ value: JinjaValue, _ name: String) -> Bool {
        switch value {
        case .string: return stringMethods.contains(name)
        case .object: return dictMethods.contains(name) || unsafeMethods.contains(name)
        case .array: return listMethods.contains(name) || unsafeMethods.contains(name)
        case .tuple: return name == "index" || name == "count"
        default: return false
        }
    }

    /// Calls `value.name(args)`; nil when `value` has no such method.
    static func call(_ value: JinjaValue, _ name: String, _ args: JinjaArguments) throws -> JinjaValue? {
        switch value {
        case .string(let s): return try stringMethod(s, name, args)
        case .object(let o):
            switch name {
            case "items": return .array(o.pairs.map { .tuple([.string($0.0), $0.1]) })
            case "keys": return .array(o.keys.map { .string($0) })
            case "values": return .array(o.values)
            case "get":
                guard case .string(let k)? = args.value(0, "key") else { return args.value(1, "default") ?? JinjaValue.none }
                return o[k] ?? args.value(1, "default") ?? JinjaValue.none
            case "copy": return value
            default: break
            }
        case .array(let a), .tuple(let a):
            switch name {
            case "index":
                let needle = args.value(0, "value") ?? JinjaValue.none
                guard let i = a.firstIndex(of: needle) else { throw ChatTemplateError.runtime("\(JinjaPython.repr(needle)) is not in list") }
                return .int(i)
            case "count": return .int(a.filter { $0 == (args.value(0, "value") ?? JinjaValue.none) }.count)
            case "copy": return value
            default: break
            }
        default:
            return nil
        }
        if unsafeMethods.contains(name) {
            throw ChatTemplateError.runtime("access to attribute '\(name)' of '\(value.typeName)' object is unsafe.")
        }
        return nil
    }

    static func argString(_ args: JinjaArguments, _ i: Int, _ name: String) throws -> String? {
        guard let v = args.value(i, name), !v.isNone else { return nil }
        guard case .string(let s) = v else {
            throw ChatTemplateError.runtime("must be str or None, not \(v.typeName)")
        }
        return s
    }

    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? JinjaPython.isSpace(c) }
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, strippable(f) { scalars.removeFirst() } }
        if trailing { while let l = scalars.last, strippable(l) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Python `str.split(sep=None, maxsplit=-1)`.
    static func split(_ s: String, _ sep: String?, _ maxSplit: Int) throws -> [String] {
        if let sep {
            guard !sep.isEmpty else { throw ChatTemplateError.runtime("empty separator") }
            var parts: [String] = []
            var rest = Substring(s)
            while maxSplit < 0 || parts.count < maxSplit, let r = rest.range(of: sep) {
                parts.append(String(rest[..<r.lowerBound]))
                rest = rest[r.upperBound...]
            }
            parts.append(String(rest))
            return parts
        }
        // Whitespace split: runs of whitespace separate, no empty strings.
        var parts: [String] = []
        var current = String.UnicodeScalarView()
        var scalars = Array(s.unicodeScalars)[...]
        while let c = scalars.first {
            if JinjaPython.isSpace(c) {
                if !current.isEmpty {
                    parts.append(String(current))
                    current = String.UnicodeScalarView()
                    if maxSplit >= 0 && parts.count == maxSplit {
                        while let d = scalars.first, JinjaPython.isSpace(d) { scalars.removeFirst() }
                        if !scalars.isEmpty { parts.append(String(String.UnicodeScalarView(scalars))) }
                        return parts
                    }
                }
            } else {
                current.append(c)
            }
            scalars.removeFirst()
        }
        if !current.isEmpty { parts.append(String(current)) }
        return parts
    }

    /// Python `str.title()`: a letter is uppercased when it follows a non-letter.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousIsLetter = false
        for c in s {
            out += previousIsLetter ? c.lowercased() : c.uppercased()
            previousIsLetter = c.isLetter
        }
        return out
    }

    static func capitalize(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst().lowercased()
    }

    private static func stringMethod(_ s: String, _ name: String, _ args: JinjaArguments) throws -> JinjaValue? {
        switch name {
        case "strip": return .string(strip(s, try argString(args, 0, "chars"), leading: true, trailing: true))
        case "lstrip": return .string(strip(s, try argString(args, 0, "chars"), leading: true, trailing: false))
        case "rstrip": return .string(strip(s, try argString(args, 0, "chars"), leading: false, trailing: true))
        case "split", "rsplit":
            let maxSplit = args.value(1, "maxsplit")?.integerValue ?? -1
            if name == "rsplit" && maxSplit >= 0 {
                // Split from the right: reverse, split on the reversed separator, reverse back.
                let sep = try argString(args, 0, "sep")
                let parts = try split(String(s.reversed()), sep.map { String($0.reversed()) }, maxSplit)
                return .array(parts.reversed().map { .string(String($0.reversed())) })
            }
            return .array(try split(s, try argString(args, 0, "sep"), maxSplit).map { .string($0) })
        case "splitlines":
            var lines = s.components(separatedBy: "\n")
            if lines.last == "" { lines.removeLast() }
            return .array(lines.map { .string($0) })
        case "startswith", "endswith":
            let candidates: [JinjaValue]
            switch args.value(0, "prefix") ?? JinjaValue.none {
            case .array(let a), .tuple(let a): candidates = a
            case let v: candidates = [v]
            }
            for c in candidates {
                guard case .string(let t) = c else {
                    throw ChatTemplateError.runtime("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                }
                if name == "startswith" ? s.unicodeScalars.starts(with: t.unicodeScalars)
                    : s.unicodeScalars.reversed().starts(with: t.unicodeScalars.reversed())
                {
                    return .bool(true)
                }
            }
            return .bool(false)
        case "upper": return .string(s.uppercased())
        case "lower", "casefold": return .string(s.lowercased())
        case "swapcase": return .string(String(s.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) }))
        case "title": return .string(pythonTitle(s))
        case "capitalize": return .string(capitalize(s))
        case "replace":
            guard let old = try argString(args, 0, "old"), let new = try argString(args, 1, "new") else {
                throw ChatTemplateError.runtime("replace() takes two strings")
            }
            return .string(JinjaFilters.replace(s, old, new, count: args.value(2, "count")?.integerValue ?? -1))
        case "format": return .string(try JinjaFormat.braces(s, args))
        case "join":
            let items = try args.value(0, "iterable").map { v -> [JinjaValue] in
                switch v {
                case .array(let a), .tuple(let a): return a
                case .string(let t): return t.unicodeScalars.map { .string(String($0)) }
                case .object(let o): return o.keys.map { .string($0) }
                default: throw ChatTemplateError.runtime("can only join an iterable")
                }
            } ?? []
            return .string(try items.map { v -> String in
                guard case .string(let t) = v else { throw ChatTemplateError.runtime("sequence item: expected str instance, \(v.typeName) found") }
                return t
            }.joined(separator: s))
        case "find", "rfind", "index":
            guard let needle = try argString(args, 0, "sub") else { throw ChatTemplateError.runtime("\(name)() takes a string") }
            let range = name == "rfind" ? s.range(of: needle, options: .backwards) : s.range(of: needle)
            guard let range else {
                if name == "index" { throw ChatTemplateError.runtime("substring not found") }
                return .int(-1)
            }
            return .int(s.unicodeScalars.distance(from: s.unicodeScalars.startIndex, to: range.lowerBound))
        case "count":
            guard let needle = try argString(args, 0, "sub"), !needle.isEmpty else { return .int(s.unicodeScalars.count + 1) }
            return .int(s.components(separatedBy: needle).count - 1)
        case "isdigit", "isnumeric", "isdecimal":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(JinjaPython.isSpace))
        case "isupper": return .bool(s.contains { $0.isCased } && !s.contains { $0.isLowercase })
        case "islower": return .bool(s.contains { $0.isCased } && !s.contains { $0.isUppercase })
        case "removeprefix":
            let p = try argString(args, 0, "prefix") ?? ""
            return .string(s.hasPrefix(p) ? String(s.dropFirst(p.count)) : s)
        case "removesuffix":
            let p = try argString(args, 0, "suffix") ?? ""
            return .string(s.hasSuffix(p) && !p.isEmpty ? String(s.dropLast(p.count)) : s)
        case "center", "ljust", "rjust", "zfill":
            let width = args.value(0, "width")?.integerValue ?? 0
            let fill = name == "zfill" ? "0" : (try argString(args, 1, "fillchar") ?? " ")
            let pad = max(0, width - s.unicodeScalars.count)
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: pad))
            case "rjust", "zfill": return .string(String(repeating: fill, count: pad) + s)
            default:
                // CPython centres with the extra space on the left when the string length is odd.
                let left = pad / 2 + (pad & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: pad - left))
            }
        case "partition", "rpartition":
            let sep = try argString(args, 0, "sep") ?? ""
            let range = name == "partition" ? s.range(of: sep) : s.range(of: sep, options: .backwards)
            guard let range, !sep.isEmpty else {
                return name == "partition" ? .tuple([.string(s), "", ""]) : .tuple(["", "", .string(s)])
            }
            return .tuple([.string(String(s[..<range.lowerBound])), .string(sep), .string(String(s[range.upperBound...]))])
        default: return nil
        }
    }
}

extension JinjaInterpreter {
    func callMethod(_ target: JinjaValue, _ name: String, _ args: JinjaArguments, at p: JinjaPosition) throws -> JinjaValue? {
        guard JinjaMethods.has(target, name) else { return nil }
        do {
            return try JinjaMethods.call(target, name, args)
        } catch ChatTemplateError.runtime(let message) {
            throw runtimeError(message, at: p)
        }
    }
}
