import Foundation

// Expression evaluation with Python's operator semantics, as jinja2 compiles expressions to Python.

extension JinjaInterpreter {
    func evaluate(_ expr: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch expr {
        case .literal(let v):
            return v
        case .name(let name, _):
            return scope.lookup(name) ?? .undefined(hint: "'\(name)' is undefined")
        case .list(let items):
            return .array(try items.map { try evaluate($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try evaluate($0, scope) })
        case .dict(let pairs):
            var o = JinjaObject()
            for (k, v) in pairs { o[JinjaPython.str(try evaluate(k, scope))] = try evaluate(v, scope) }
            return .object(o)
        case .attribute(let target, let name, let p):
            return getAttribute(try defined(try evaluate(target, scope), at: p), name)
        case .item(let target, let key, let p):
            return try getItem(try defined(try evaluate(target, scope), at: p), try evaluate(key, scope))
        case .slice(let target, let start, let stop, let step, let p):
            let value = try defined(try evaluate(target, scope), at: p)
            func bound(_ e: JinjaExpr?) throws -> Int? {
                guard let e else { return nil }
                let v = try evaluate(e, scope)
                if v.isNone { return nil }
                guard let i = v.integerValue else { throw runtimeError("slice indices must be integers or None", at: p) }
                return i
            }
            return try slice(value, try bound(start), try bound(stop), try bound(step), at: p)
        case .call(let callee, let args, let p):
            let arguments = try evaluateArgs(args, scope)
            if case .attribute(let targetExpr, let name, let tp) = callee {
                // Method calls dispatch directly (`'a,b'.split(',')`, `tool.items()`).
                let target = try defined(try evaluate(targetExpr, scope), at: tp)
                if let result = try callMethod(target, name, arguments, at: p) { return result }
                return try callValue(getAttribute(target, name), arguments, at: p)
            }
            let function = try evaluate(callee, scope)
            return try callValue(function, arguments, at: p)
        case .filter(let target, let name, let args, let p):
            let value = try evaluate(target, scope)
            return try applyFilter(name, value, try evaluateArgs(args, scope), scope, at: p)
        case .test(let target, let name, let args, let negated, let p):
            let value = try evaluate(target, scope)
            let result = try applyTest(name, value, try evaluateArgs(args, scope), at: p)
            return .bool(negated ? !result : result)
        case .unary(let op, let operand, let p):
            let v = try evaluate(operand, scope)
            switch op {
            case "not": return .bool(!v.isTruthy)
            case "-":
                switch try defined(v, at: p) {
                case .int(let i): return .int(-i)
                case .double(let d): return .double(-d)
                case .bool(let b): return .int(b ? -1 : 0)
                default: throw runtimeError("bad operand type for unary -: '\(v.typeName)'", at: p)
                }
            default:
                guard try defined(v, at: p).numericValue != nil else {
                    throw runtimeError("bad operand type for unary +: '\(v.typeName)'", at: p)
                }
                if case .bool(let b) = v { return .int(b ? 1 : 0) }
                return v
            }
        case .binary(let op, let lhs, let rhs, let p):
            let left = try evaluate(lhs, scope)
            switch op {
            case "and": return left.isTruthy ? try evaluate(rhs, scope) : left
            case "or": return left.isTruthy ? left : try evaluate(rhs, scope)
            case "~": return .string(JinjaPython.str(left) + JinjaPython.str(try evaluate(rhs, scope)))
            default: return try arithmetic(op, left, try evaluate(rhs, scope), at: p)
            }
        case .compare(let first, let ops, let p):
            var left = try evaluate(first, scope)
            for (op, rhs) in ops {
                let right = try evaluate(rhs, scope)
                if !(try compare(op, left, right, at: p)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let value, let condition, let otherwise, _):
            if try evaluate(condition, scope).isTruthy { return try evaluate(value, scope) }
            guard let otherwise else { return .undefined(hint: "the inline if-expression evaluated to false and no else section was defined.") }
            return try evaluate(otherwise, scope)
        }
    }

    func evaluateArgs(_ args: JinjaCallArgs, _ scope: JinjaScope) throws -> JinjaArguments {
        JinjaArguments(
            try args.positional.map { try evaluate($0, scope) },
            keyword: try args.keyword.map { ($0.0, try evaluate($0.1, scope)) })
    }

    /// Using an Undefined for anything but printing, testing or iterating raises jinja2's
    /// UndefinedError with the reason it is undefined.
    func defined(_ value: JinjaValue, at p: JinjaPosition?) throws -> JinjaValue {
        if case .undefined(let hint) = value { throw runtimeError(hint, at: p) }
        return value
    }

    func callValue(_ function: JinjaValue, _ arguments: JinjaArguments, at p: JinjaPosition) throws -> JinjaValue {
        switch function {
        case .callable(let c):
            do {
                return try c.call(arguments)
            } catch ChatTemplateError.runtime(let message) where !message.contains("(line ") {
                throw runtimeError(message, at: p)
            }
        case .undefined(let hint):
            throw runtimeError(hint, at: p)
        default:
            throw runtimeError("'\(function.typeName)' object is not callable", at: p)
        }
    }

    /// jinja2's `environment.getattr`: a Python attribute (a method of str/dict/list) first,
    /// then the item of that name; else Undefined.
    func getAttribute(_ value: JinjaValue, _ name: String) -> JinjaValue {
        if JinjaMethods.has(value, name) {
            return .callable(JinjaCallable(name: name) { [value] args in
                guard let result = try JinjaMethods.call(value, name, args) else {
                    throw ChatTemplateError.runtime("'\(value.typeName)' object has no attribute '\(name)'")
                }
                return result
            })
        }
        switch value {
        case .object(let o):
            return o[name] ?? .undefined(hint: "'dict object' has no attribute '\(name)'")
        case .namespace(let ns):
            return ns.attributes[name] ?? .undefined(hint: "'jinja2.utils.Namespace object' has no attribute '\(name)'")
        default:
            return .undefined(hint: "'\(value.typeName) object' has no attribute '\(name)'")
        }
    }

    /// jinja2's `environment.getitem`: `obj[key]`, falling back to the attribute for string keys.
    func getItem(_ value: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch (value, key) {
        case (.object(let o), .string(let k)):
            if let v = o[k] { return v }
            return getAttribute(value, k)
        case (.array(let a), _) where key.integerValue != nil, (.tuple(let a), _) where key.integerValue != nil:
            let i = key.integerValue ?? 0
            let index = i < 0 ? a.count + i : i
            guard a.indices.contains(index) else { return .undefined(hint: "list object has no element \(i)") }
            return a[index]
        case (.string(let s), _) where key.integerValue != nil:
            let scalars = Array(s.unicodeScalars)
            let i = key.integerValue ?? 0
            let index = i < 0 ? scalars.count + i : i
            guard scalars.indices.contains(index) else { return .undefined(hint: "str object has no element \(i)") }
            return .string(String(scalars[index]))
        case (_, .string(let k)):
            return getAttribute(value, k)
        default:
            return .undefined(hint: "'\(value.typeName) object' has no attribute '\(JinjaPython.str(key))'")
        }
    }

    /// Python slicing `x[start:stop:step]` on lists and strings.
    func slice(_ value: JinjaValue, _ start: Int?, _ stop: Int?, _ step: Int?, at p: JinjaPosition) throws -> JinjaValue {
        let step = step ?? 1
        guard step != 0 else { throw runtimeError("slice step cannot be zero", at: p) }
        func indices(_ count: Int) -> [Int] {
            func clamp(_ v: Int?, _ defaultValue: Int, low: Int, high: Int) -> Int {
                guard var v else { return defaultValue }
                if v < 0 { v += count }
                return min(max(v, low), high)
            }
            if step > 0 {
                let a = clamp(start, 0, low: 0, high: count)
                let b = clamp(stop, count, low: 0, high: count)
                return a < b ? Array(stride(from: a, to: b, by: step)) : []
            }
            let a = clamp(start, count - 1, low: -1, high: count - 1)
            let b = clamp(stop, -1, low: -1, high: count - 1)
            return a > b ? Array(stride(from: a, to: b, by: step)) : []
        }
        switch value {
        case .array(let a): return .array(indices(a.count).map { a[$0] })
        case .tuple(let a): return .tuple(indices(a.count).map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in indices(scalars.count) { out.append(scalars[i]) }
            return .string(String(out))
        default: throw runtimeError("'\(value.typeName)' object is not subscriptable", at: p)
        }
    }

    func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue, at p: JinjaPosition) throws -> JinjaValue {
        let left = try defined(a, at: p)
        let right = try defined(b, at: p)
        func unsupported() -> ChatTemplateError {
            runtimeError("unsupported operand type(s) for \(op): '\(left.typeName)' and '\(right.typeName)'", at: p)
        }
        func overflow() -> ChatTemplateError { .limitExceeded("integer overflow in \(op)") }
        switch (op, left, right) {
        case ("+", .string(let x), .string(let y)):
            return .string(x + y)
        case ("+", .string, _):
            throw runtimeError("can only concatenate str (not \"\(right.typeName)\") to str", at: p)
        case ("+", .array(let x), .array(let y)):
            return .array(x + y)
        case ("+", .tuple(let x), .tuple(let y)):
            return .tuple(x + y)
        case ("+", .array, _):
            throw runtimeError("can only concatenate list (not \"\(right.typeName)\") to list", at: p)
        case ("*", .string(let s), _) where right.integerValue != nil, ("*", _, .string(let s)) where left.integerValue != nil:
            let n = max(0, (left.integerValue ?? right.integerValue) ?? 0)
            if s.utf8.count * n > limits.maxOutputBytes { throw ChatTemplateError.limitExceeded("string repetition too large") }
            return .string(String(repeating: s, count: n))
        case ("*", .array(let xs), _) where right.integerValue != nil, ("*", _, .array(let xs)) where left.integerValue != nil:
            let n = max(0, (left.integerValue ?? right.integerValue) ?? 0)
            if xs.count * n > limits.maxOutputBytes { throw ChatTemplateError.limitExceeded("list repetition too large") }
            return .array(Array(repeating: xs, count: n).flatMap { $0 })
        case ("%", .string(let format), _):
            return .string(try JinjaFormat.percent(format, right))
        default:
            break
        }
        if let x = left.integerValue, let y = right.integerValue {
            switch op {
            case "+": let r = x.addingReportingOverflow(y); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "-": let r = x.subtractingReportingOverflow(y); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "*": let r = x.multipliedReportingOverflow(by: y); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "/":
                guard y != 0 else { throw runtimeError("division by zero", at: p) }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw runtimeError("integer division or modulo by zero", at: p) }
                let q = x / y
                return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw runtimeError("integer division or modulo by zero", at: p) }
                let r = x % y
                return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
            case "**":
                if y < 0 { return .double(pow(Double(x), Double(y))) }
                var result = 1
                for _ in 0..<min(y, 64) {
                    let r = result.multipliedReportingOverflow(by: x)
                    if r.overflow { throw overflow() }
                    result = r.partialValue
                }
                if y > 64 && abs(x) > 1 { throw overflow() }
                return .int(result)
            default: throw unsupported()
            }
        }
        guard let x = left.numericValue, let y = right.numericValue else { throw unsupported() }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw runtimeError("float division by zero", at: p) }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw runtimeError("float floor division by zero", at: p) }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw runtimeError("float modulo", at: p) }
            let r = fmod(x, y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case "**": return .double(pow(x, y))
        default: throw unsupported()
        }
    }

    func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue, at p: JinjaPosition) throws -> Bool {
        switch op {
        case "==": return a == b
        case "!=": return a != b
        case "in": return try contains(b, a, at: p)
        case "not in": return !(try contains(b, a, at: p))
        default:
            let order = try JinjaCompare.order(try defined(a, at: p), try defined(b, at: p), op: op)
            guard let order else {
                throw runtimeError("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'", at: p)
            }
            switch op {
            case "<": return order < 0
            case "<=": return order <= 0
            case ">": return order > 0
            default: return order >= 0
            }
        }
    }

    /// Python's `needle in container`.
    func contains(_ container: JinjaValue, _ needle: JinjaValue, at p: JinjaPosition?) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let n) = needle else {
                throw runtimeError("'in <string>' requires string as left operand, not \(needle.typeName)", at: p)
            }
            return n.isEmpty || s.contains(n)
        case .array(let a), .tuple(let a): return a.contains(needle)
        case .object(let o):
            guard case .string(let k) = needle else { return false }
            return o[k] != nil
        case .undefined: return false
        default: throw runtimeError("argument of type '\(container.typeName)' is not iterable", at: p)
        }
    }
}

enum JinjaCompare {
    /// Python ordering: numbers by value, strings by code point, lists lexicographically;
    /// nil when Python would raise TypeError.
    static func order(_ a: JinjaValue, _ b: JinjaValue, op: String = "<") throws -> Int? {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            let xs = Array(x.unicodeScalars), ys = Array(y.unicodeScalars)
            for (p, q) in zip(xs, ys) where p != q { return p.value < q.value ? -1 : 1 }
            return xs.count == ys.count ? 0 : (xs.count < ys.count ? -1 : 1)
        case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) where p != q {
                guard let o = try order(p, q) else { return nil }
                return o
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        default:
            if let x = a.integerValue, let y = b.integerValue { return x == y ? 0 : (x < y ? -1 : 1) }
            if let x = a.numericValue, let y = b.numericValue { return x == y ? 0 : (x < y ? -1 : 1) }
            return nil
        }
    }
}
