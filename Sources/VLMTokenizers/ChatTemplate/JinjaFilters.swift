import Foundation

// jinja2's builtin filters (jinja2/filters.py) as transformers' environment has them, with
// `tojson` replaced by transformers' json.dumps(ensure_ascii=False) version.

enum JinjaFilters {
    static let names: Set<String> = [
        "trim", "length", "count", "upper", "lower", "capitalize", "title", "tojson", "join", "first", "last", "default", "d",
        "items", "list", "replace", "string", "int", "float", "abs", "round", "map", "select", "reject", "selectattr",
        "rejectattr", "unique", "sort", "dictsort", "indent", "safe", "escape", "e", "forceescape", "sum", "min", "max",
        "reverse", "wordcount", "center", "format", "batch", "attr", "pprint", "striptags", "truncate",
    ]

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        if count < 0 {
            if old.isEmpty {
                // Python inserts `new` between every character and at both ends.
                return new + s.unicodeScalars.map { String($0) + new }.joined()
            }
            return s.components(separatedBy: old).joined(separator: new)
        }
        var out = ""
        var rest = Substring(s)
        var done = 0
        while done < count, !old.isEmpty, let r = rest.range(of: old) {
            out += rest[..<r.lowerBound] + new
            rest = rest[r.upperBound...]
            done += 1
        }
        return out + rest
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// jinja2's `title` filter: capitalise each word, words starting after whitespace, `-`, or an
    /// opening bracket (`_word_beginning_split_re = ([-\s({\[<]+)`).
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for c in s {
            if c.isWhitespace || "-({[<".contains(c) {
                out.append(c)
                atWordStart = true
            } else {
                out += atWordStart ? c.uppercased() : c.lowercased()
                atWordStart = false
            }
        }
        return out
    }

    /// jinja2's `indent(width=4, first=False, blank=False)`.
    static func indent(_ s: String, _ width: JinjaValue, first: Bool, blank: Bool) -> String {
        let indentation: String
        if case .string(let w) = width { indentation = w } else { indentation = String(repeating: " ", count: max(0, width.integerValue ?? 4)) }
        // jinja2 appends a newline before splitlines, so a trailing newline yields no extra line.
        var lines = (s + "\n").components(separatedBy: "\n")
        lines.removeLast()
        var rv: String
        if blank {
            rv = lines.joined(separator: "\n" + indentation)
        } else {
            rv = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty { rv += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n") }
        }
        return first ? indentation + rv : rv
    }

    /// Python `round(x, n)` on a float: correctly rounded, ties to even (as printf rounds).
    static func round(_ x: Double, _ digits: Int) -> Double {
        if digits == 0 { return x.rounded(.toNearestOrEven) }
        if digits > 0 && digits < 300 {
            return Double(String(format: "%.\(digits)f", x)) ?? x
        }
        let scale = pow(10, Double(-digits))
        return (x / scale).rounded(.toNearestOrEven) * scale
    }
}

extension JinjaInterpreter {
    /// `value[attr]` with jinja2's attrgetter: dotted paths and integer parts index lists.
    func attributePath(_ value: JinjaValue, _ path: JinjaValue) throws -> JinjaValue {
        var current = value
        let parts: [JinjaValue]
        if case .string(let s) = path { parts = s.split(separator: ".").map { Int($0).map(JinjaValue.int) ?? .string(String($0)) } } else { parts = [path] }
        for part in parts {
            if current.isUndefined { return current }
            current = try getItem(current, part)
        }
        return current
    }

    private func sortKey(_ v: JinjaValue, caseSensitive: Bool) -> JinjaValue {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    private func itemKey(_ item: JinjaValue, _ attribute: JinjaValue?, _ caseSensitive: Bool) throws -> JinjaValue {
        guard let attribute else { return sortKey(item, caseSensitive: caseSensitive) }
        return sortKey(try attributePath(item, attribute), caseSensitive: caseSensitive)
    }

    private func sorted(_ items: [JinjaValue], key: (JinjaValue) throws -> JinjaValue, reverse: Bool) throws -> [JinjaValue] {
        let keyed = try items.map { (try key($0), $0) }
        var failure: Error? = nil
        // Python's sort is stable; so is this merge of (key, index).
        let order = keyed.indices.sorted { i, j in
            do {
                guard let o = try JinjaCompare.order(keyed[i].0, keyed[j].0) else {
                    failure = ChatTemplateError.runtime("'<' not supported between instances of '\(keyed[i].0.typeName)' and '\(keyed[j].0.typeName)'")
                    return i < j
                }
                if o == 0 { return i < j }
                return reverse ? o > 0 : o < 0
            } catch {
                failure = error
                return i < j
            }
        }
        if let failure { throw failure }
        return order.map { keyed[$0].1 }
    }

    private func selectOrReject(_ items: [JinjaValue], _ args: JinjaArguments, attribute: Bool, select: Bool, at p: JinjaPosition) throws -> JinjaValue {
        var positional = args.positional
        var attr: JinjaValue? = nil
        if attribute {
            guard !positional.isEmpty else { throw runtimeError("missing attribute name", at: p) }
            attr = positional.removeFirst()
        }
        let testName: String? = positional.isEmpty ? nil : JinjaPython.str(positional.removeFirst())
        let testArgs = JinjaArguments(positional, keyword: args.keyword)
        var out: [JinjaValue] = []
        for item in items {
            let subject = try attr.map { try attributePath(item, $0) } ?? item
            let passed = try testName.map { try applyTest($0, subject, testArgs, at: p) } ?? subject.isTruthy
            if passed == select { out.append(item) }
        }
        return .array(out)
    }

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments, _ scope: JinjaScope, at p: JinjaPosition) throws -> JinjaValue {
        func arg(_ i: Int, _ key: String) -> JinjaValue? { args.value(i, key) }
        func text() -> String { JinjaPython.str(value) }
        func list() throws -> [JinjaValue] { try iterate(value, at: p) }
        switch name {
        case "trim": return .string(JinjaMethods.strip(text(), try JinjaMethods.argString(args, 0, "chars"), leading: true, trailing: true))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a), .tuple(let a): return .int(a.count)
            case .object(let o): return .int(o.count)
            default: throw runtimeError("object of type '\(value.typeName)' has no len()", at: p)
            }
        case "upper": return .string(text().uppercased())
        case "lower": return .string(text().lowercased())
        case "capitalize": return .string(JinjaMethods.capitalize(text()))
        case "title": return .string(JinjaFilters.jinjaTitle(text()))
        case "string": return .string(text())
        case "safe": return value
        case "escape", "e", "forceescape": return .string(JinjaFilters.htmlEscape(text()))
        case "pprint": return .string(JinjaPython.repr(value))
        case "striptags":
            let stripped = text().replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
            return .string(try JinjaMethods.split(stripped, nil, -1).joined(separator: " "))
        case "replace":
            let count = arg(2, "count").flatMap { $0.isNone ? nil : $0.integerValue } ?? -1
            return .string(JinjaFilters.replace(text(), JinjaPython.str(arg(0, "old") ?? ""), JinjaPython.str(arg(1, "new") ?? ""), count: count))
        case "default", "d":
            let useDefault = (arg(1, "boolean")?.isTruthy ?? false) ? !value.isTruthy : value.isUndefined
            return useDefault ? (arg(0, "default_value") ?? .string("")) : value
        case "tojson":
            var options = JinjaPython.JSONOptions()
            options.ensureASCII = arg(0, "ensure_ascii")?.isTruthy ?? false
            switch arg(1, "indent") ?? JinjaValue.none {
            case .none: break
            case .string(let s): options.indent = s
            case let v: options.indent = String(repeating: " ", count: max(0, v.integerValue ?? 0))
            }
            if let seps = arg(2, "separators")?.sequenceItems, seps.count == 2 {
                options.itemSeparator = JinjaPython.str(seps[0])
                options.keySeparator = JinjaPython.str(seps[1])
            }
            options.sortKeys = arg(3, "sort_keys")?.isTruthy ?? false
            do {
                return .string(try JinjaPython.json(value, options))
            } catch ChatTemplateError.runtime(let message) {
                throw runtimeError(message, at: p)
            }
        case "join":
            var items = try list()
            if let attr = arg(1, "attribute") { items = try items.map { try attributePath($0, attr) } }
            return .string(items.map(JinjaPython.str).joined(separator: JinjaPython.str(arg(0, "d") ?? "")))
        case "first":
            return try list().first ?? .undefined(hint: "No first item, sequence was empty.")
        case "last":
            return try list().last ?? .undefined(hint: "No last item, sequence was empty.")
        case "items":
            switch value {
            case .undefined: return .array([])
            case .object(let o): return .array(o.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw runtimeError("Can only get item pairs from a mapping.", at: p)
            }
        case "list": return .array(try list())
        case "reverse":
            if case .string(let s) = value { return .string(String(s.unicodeScalars.reversed().map(Character.init))) }
            return .array(try list().reversed())
        case "int":
            _ = try defined(value, at: p)
            let fallback = arg(0, "default") ?? .int(0)
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return d.isFinite ? .int(Int(d)) : fallback
            case .string(let s):
                let t = JinjaMethods.strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                let base = arg(1, "base")?.integerValue ?? 10
                if let i = Int(t, radix: base) { return .int(i) }
                if let d = Double(t), d.isFinite { return .int(Int(d)) }
                return fallback
            default: return fallback
            }
        case "float":
            _ = try defined(value, at: p)
            let fallback = arg(0, "default") ?? .double(0)
            switch value {
            case .double: return value
            case .int, .bool: return .double(value.numericValue ?? 0)
            case .string(let s): return Double(JinjaMethods.strip(s, nil, leading: true, trailing: true)).map(JinjaValue.double) ?? fallback
            default: return fallback
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            default: throw runtimeError("bad operand type for abs(): '\(value.typeName)'", at: p)
            }
        case "round":
            let precision = arg(0, "precision")?.integerValue ?? 0
            let method = JinjaPython.str(arg(1, "method") ?? "common")
            guard let x = value.numericValue else { throw runtimeError("type \(value.typeName) doesn't define __round__ method", at: p) }
            switch method {
            case "common":
                if value.integerValue != nil { return .int(value.integerValue ?? 0) }
                return .double(JinjaFilters.round(x, precision))
            case "ceil", "floor":
                let scale = pow(10, Double(precision))
                let y = x * scale
                return .double((method == "ceil" ? y.rounded(.up) : y.rounded(.down)) / scale)
            default: throw runtimeError("method must be common, ceil or floor", at: p)
            }
        case "map":
            let items = try list()
            if let attr = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.keyword.first { $0.0 == "default" }?.1
                return .array(try items.map { item in
                    let v = try attributePath(item, attr)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard let filterName = args.positional.first else { return .array(items) }
            let rest = JinjaArguments(Array(args.positional.dropFirst()), keyword: args.keyword)
            return .array(try items.map { try applyFilter(JinjaPython.str(filterName), $0, rest, scope, at: p) })
        case "select", "reject":
            return try selectOrReject(try list(), args, attribute: false, select: name == "select", at: p)
        case "selectattr", "rejectattr":
            return try selectOrReject(try list(), args, attribute: true, select: name == "selectattr", at: p)
        case "unique":
            let caseSensitive = arg(0, "case_sensitive")?.isTruthy ?? false
            let attr = arg(1, "attribute")
            var seen: [JinjaValue] = []
            var out: [JinjaValue] = []
            for item in try list() {
                let key = sortKey(try attr.map { try attributePath(item, $0) } ?? item, caseSensitive: caseSensitive)
                if !seen.contains(key) {
                    seen.append(key)
                    out.append(item)
                }
            }
            return .array(out)
        case "sort":
            let reverse = arg(0, "reverse")?.isTruthy ?? false
            let caseSensitive = arg(1, "case_sensitive")?.isTruthy ?? false
            let attr = arg(2, "attribute")
            return .array(try sorted(try list(), key: { try self.itemKey($0, attr, caseSensitive) }, reverse: reverse))
        case "dictsort":
            guard case .object(let o) = value else { throw runtimeError("dictsort requires a mapping", at: p) }
            let caseSensitive = arg(0, "case_sensitive")?.isTruthy ?? false
            let byValue = JinjaPython.str(arg(1, "by") ?? "key") == "value"
            let reverse = arg(2, "reverse")?.isTruthy ?? false
            let pairs = o.pairs.map { JinjaValue.tuple([.string($0.0), $0.1]) }
            return .array(try sorted(pairs, key: { pair in
                guard let kv = pair.sequenceItems else { return pair }
                return self.sortKey(kv[byValue ? 1 : 0], caseSensitive: caseSensitive)
            }, reverse: reverse))
        case "indent":
            _ = try defined(value, at: p)
            return .string(JinjaFilters.indent(text(), arg(0, "width") ?? .int(4), first: arg(1, "first")?.isTruthy ?? false,
                blank: arg(2, "blank")?.isTruthy ?? false))
        case "sum":
            var total = arg(1, "start") ?? .int(0)
            for item in try list() {
                let v = try arg(0, "attribute").map { try attributePath(item, $0) } ?? item
                total = try arithmetic("+", total, v, at: p)
            }
            return total
        case "min", "max":
            let caseSensitive = arg(0, "case_sensitive")?.isTruthy ?? false
            let attr = arg(1, "attribute")
            let items = try sorted(try list(), key: { try self.itemKey($0, attr, caseSensitive) }, reverse: false)
            return (name == "min" ? items.first : items.last) ?? .undefined(hint: "No aggregated item, sequence was empty.")
        case "wordcount": return .int(try JinjaMethods.split(text(), nil, -1).count)
        case "center":
            return try JinjaMethods.call(.string(text()), "center", JinjaArguments([arg(0, "width") ?? .int(80)])) ?? value
        case "format":
            let values: JinjaValue = args.positional.count == 1 ? args.positional[0] : .tuple(args.positional)
            return .string(try JinjaFormat.percent(text(), values))
        case "batch":
            guard let size = arg(0, "linecount")?.integerValue, size > 0 else { throw runtimeError("batch size must be positive", at: p) }
            let items = try list()
            var out: [JinjaValue] = []
            var i = 0
            while i < items.count {
                var chunk = Array(items[i..<min(i + size, items.count)])
                if chunk.count < size, let fill = arg(1, "fill_with") { chunk += Array(repeating: fill, count: size - chunk.count) }
                out.append(.array(chunk))
                i += size
            }
            return .array(out)
        case "attr": return getAttribute(value, JinjaPython.str(arg(0, "name") ?? ""))
        case "truncate":
            let length = arg(0, "length")?.integerValue ?? 255
            let end = JinjaPython.str(arg(2, "end") ?? "...")
            let s = text()
            guard s.count > length + (arg(4, "leeway")?.integerValue ?? 5) else { return .string(s) }
            if arg(1, "killwords")?.isTruthy ?? false { return .string(String(s.prefix(length - end.count)) + end) }
            var result = String(s.prefix(length - end.count))
            if let space = result.lastIndex(of: " ") { result = String(result[..<space]) }
            return .string(result + end)
        default:
            throw runtimeError("No filter named '\(name)' found.", at: p)
        }
    }
}
