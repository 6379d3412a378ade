import Foundation

/// Variables visible at one point of a render. jinja2 gives every `for` iteration and every
/// macro call its own scope (a `set` there does not outlive the iteration, which is why
/// templates use `namespace()`), while `if`/`elif`/`else` share their parent's.
final class JinjaScope {
    var variables: [String: JinjaValue] = [:]
    let parent: JinjaScope?

    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

/// Resource bounds of one render, so a hostile or broken template fails instead of hanging.
public struct ChatTemplateLimits: Sendable {
    /// Total loop iterations over the whole render.
    public var maxLoopIterations = 200_000
    /// Largest `range()`; jinja2's sandbox refuses ranges over MAX_RANGE = 100000.
    public var maxRange = 100_000
    /// Output size in UTF-8 bytes, including strings built by `*` and block `set`s.
    public var maxOutputBytes = 64 << 20
    /// Nested macro calls (recursive macros render nested JSON schemas a few levels deep).
    public var maxCallDepth = 100

    public init() {}
}

final class JinjaInterpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    let limits: ChatTemplateLimits
    let now: @Sendable () -> Date
    private var iterations = 0
    private var callDepth = 0
    let globals: JinjaScope

    init(limits: ChatTemplateLimits, now: @escaping @Sendable () -> Date) {
        self.limits = limits
        self.now = now
        globals = JinjaScope(parent: nil)
        installGlobals()
    }

    func render(_ nodes: [JinjaNode], context: [String: JinjaValue]) throws -> String {
        let root = JinjaScope(parent: globals)
        root.variables = context
        var out = ""
        _ = try execute(nodes, root, into: &out)
        return out
    }

    func append(_ text: String, to out: inout String) throws {
        out += text
        if out.utf8.count > limits.maxOutputBytes {
            throw ChatTemplateError.limitExceeded("output larger than \(limits.maxOutputBytes) bytes")
        }
    }

    // MARK: statements

    func execute(_ nodes: [JinjaNode], _ scope: JinjaScope, into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let t):
                try append(t, to: &out)
            case .output(let expr):
                try append(JinjaPython.str(try evaluate(expr, scope)), to: &out)
            case .ifChain(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches where try evaluate(condition, scope).isTruthy {
                    taken = true
                    let flow = try execute(body, scope, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise, scope, into: &out)
                    if flow != .normal { return flow }
                }
            case .forLoop(let target, let iterable, let condition, let body, let otherwise, let p):
                try executeFor(target, iterable, condition, body, otherwise, p, scope, into: &out)
            case .set(let target, let expr, let p):
                try assign(target, try evaluate(expr, scope), in: scope, at: p)
            case .setBlock(let target, let filters, let body, let p):
                var captured = ""
                _ = try execute(body, scope, into: &captured)
                var value = JinjaValue.string(captured)
                for f in filters { value = try applyFilter(f.name, value, try evaluateArgs(f.args, scope), scope, at: f.position) }
                try assign(target, value, in: scope, at: p)
            case .macro(let definition):
                scope.variables[definition.name] = .callable(makeMacro(definition, scope))
            case .callBlock(let call, let callerParameters, let body, _):
                // `{% call m(args) %}body{% endcall %}` calls m with `caller`, a macro rendering body.
                guard case .call(let callee, let args, let callPosition) = call else { break }
                let caller = makeMacro(JinjaMacroDefinition(name: "caller", parameters: callerParameters, body: body), scope)
                var arguments = try evaluateArgs(args, scope)
                arguments.keyword.append(("caller", .callable(caller)))
                let result = try callValue(try evaluate(callee, scope), arguments, at: callPosition)
                try append(JinjaPython.str(result), to: &out)
            case .filterBlock(let filters, let body):
                var captured = ""
                _ = try execute(body, scope, into: &captured)
                var value = JinjaValue.string(captured)
                for f in filters { value = try applyFilter(f.name, value, try evaluateArgs(f.args, scope), scope, at: f.position) }
                try append(JinjaPython.str(value), to: &out)
            case .with(let assignments, let body, let p):
                let inner = JinjaScope(parent: scope)
                for (target, expr) in assignments { try assign(target, try evaluate(expr, scope), in: inner, at: p) }
                let flow = try execute(body, inner, into: &out)
                if flow != .normal { return flow }
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            case .generation(let body):
                let flow = try execute(body, scope, into: &out)
                if flow != .normal { return flow }
            }
        }
        return .normal
    }

    private func executeFor(
        _ target: JinjaTarget, _ iterable: JinjaExpr, _ condition: JinjaExpr?, _ body: [JinjaNode],
        _ otherwise: [JinjaNode], _ p: JinjaPosition, _ scope: JinjaScope, into out: inout String
    ) throws {
        var items = try iterate(try evaluate(iterable, scope), at: p)
        if let condition {
            // jinja2 evaluates the loop filter with only the target bound (no `loop`).
            items = try items.filter { item in
                try countIteration()
                let probe = JinjaScope(parent: scope)
                try assign(target, item, in: probe, at: p)
                return try evaluate(condition, probe).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise, scope, into: &out)
            return
        }
        let length = items.count
        for (i, item) in items.enumerated() {
            try countIteration()
            let iterationScope = JinjaScope(parent: scope)
            try assign(target, item, in: iterationScope, at: p)
            iterationScope.variables["loop"] = loopObject(index: i, length: length, items: items)
            if try execute(body, iterationScope, into: &out) == .breakLoop { break }
        }
    }

    private func countIteration() throws {
        iterations += 1
        if iterations > limits.maxLoopIterations {
            throw ChatTemplateError.limitExceeded("more than \(limits.maxLoopIterations) loop iterations")
        }
    }

    /// jinja2's LoopContext as a dict, plus `loop.cycle(...)`.
    private func loopObject(index i: Int, length: Int, items: [JinjaValue]) -> JinjaValue {
        var loop = JinjaObject()
        loop["index"] = .int(i + 1)
        loop["index0"] = .int(i)
        loop["revindex"] = .int(length - i)
        loop["revindex0"] = .int(length - i - 1)
        loop["first"] = .bool(i == 0)
        loop["last"] = .bool(i == length - 1)
        loop["length"] = .int(length)
        loop["depth"] = .int(1)
        loop["depth0"] = .int(0)
        loop["previtem"] = i > 0 ? items[i - 1] : .undefined(hint: "there is no previous item")
        loop["nextitem"] = i + 1 < length ? items[i + 1] : .undefined(hint: "there is no next item")
        loop["cycle"] = .callable(JinjaCallable(name: "cycle") { args in
            guard !args.positional.isEmpty else { throw ChatTemplateError.runtime("no items for cycling given") }
            return args.positional[i % args.positional.count]
        })
        return .object(loop)
    }

    func assign(_ target: JinjaTarget, _ value: JinjaValue, in scope: JinjaScope, at p: JinjaPosition) throws {
        switch target {
        case .name(let name):
            scope.variables[name] = value
        case .attribute(let name, let attribute):
            guard case .namespace(let ns) = scope.lookup(name) ?? .undefined else {
                throw runtimeError("cannot assign attribute on non-namespace object", at: p)
            }
            ns.attributes[attribute] = value
        case .tuple(let targets):
            let items = try iterate(value, at: p)
            guard items.count == targets.count else {
                throw runtimeError(
                    items.count > targets.count
                        ? "too many values to unpack (expected \(targets.count))"
                        : "not enough values to unpack (expected \(targets.count), got \(items.count))", at: p)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, in: scope, at: p) }
        }
    }

    /// What `for` iterates: list items, dict keys, string characters; Undefined is empty.
    func iterate(_ value: JinjaValue, at p: JinjaPosition? = nil) throws -> [JinjaValue] {
        switch value {
        case .array(let a), .tuple(let a): return a
        case .object(let o): return o.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        default: throw runtimeError("'\(value.typeName)' object is not iterable", at: p)
        }
    }

    func runtimeError(_ message: String, at p: JinjaPosition?) -> ChatTemplateError {
        guard let p else { return .runtime(message) }
        return .runtime("\(message) (line \(p.line), column \(p.column))")
    }

    // MARK: macros

    private func makeMacro(_ definition: JinjaMacroDefinition, _ definitionScope: JinjaScope) -> JinjaCallable {
        JinjaCallable(name: definition.name) { [weak self, weak definitionScope] args in
            guard let self, let definitionScope else { throw ChatTemplateError.runtime("macro called outside its render") }
            self.callDepth += 1
            defer { self.callDepth -= 1 }
            if self.callDepth > self.limits.maxCallDepth {
                throw ChatTemplateError.limitExceeded("macro calls nested deeper than \(self.limits.maxCallDepth)")
            }
            let scope = JinjaScope(parent: definitionScope)
            var keyword = args.keyword
            for (i, (name, defaultValue)) in definition.parameters.enumerated() {
                if i < args.positional.count {
                    scope.variables[name] = args.positional[i]
                } else if let k = keyword.firstIndex(where: { $0.0 == name }) {
                    scope.variables[name] = keyword[k].1
                    keyword.remove(at: k)
                } else if let defaultValue {
                    scope.variables[name] = try self.evaluate(defaultValue, scope)
                } else {
                    scope.variables[name] = .undefined(hint: "parameter '\(name)' was not provided")
                }
            }
            scope.variables["varargs"] = .tuple(Array(args.positional.dropFirst(definition.parameters.count)))
            if let k = keyword.firstIndex(where: { $0.0 == "caller" }) {
                scope.variables["caller"] = keyword[k].1
                keyword.remove(at: k)
            }
            scope.variables["kwargs"] = .object(JinjaObject(keyword))
            var out = ""
            _ = try self.execute(definition.body, scope, into: &out)
            return .string(out)
        }
    }

    // MARK: globals

    private func installGlobals() {
        let limits = self.limits
        let now = self.now
        func add(_ name: String, _ body: @escaping (JinjaArguments) throws -> JinjaValue) {
            globals.variables[name] = .callable(JinjaCallable(name: name, body))
        }
        add("raise_exception") { args in
            throw ChatTemplateError.raised(JinjaPython.str(args.value(0, "message") ?? JinjaValue.none))
        }
        add("range") { args in
            let ints = try args.positional.map { v -> Int in
                guard let i = v.integerValue else { throw ChatTemplateError.runtime("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            var (start, stop, step) = (0, 0, 1)
            switch ints.count {
            case 1: stop = ints[0]
            case 2: (start, stop) = (ints[0], ints[1])
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw ChatTemplateError.runtime("range expected 1 to 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw ChatTemplateError.runtime("range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            if count > limits.maxRange {
                throw ChatTemplateError.limitExceeded("Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(limits.maxRange)).")
            }
            return .array((0..<count).map { .int(start + $0 * step) })
        }
        add("namespace") { args in
            var attributes = JinjaObject()
            for v in args.positional {
                guard case .object(let o) = v else { throw ChatTemplateError.runtime("namespace() takes a mapping") }
                for (k, v) in o.pairs { attributes[k] = v }
            }
            for (k, v) in args.keyword { attributes[k] = v }
            return .namespace(JinjaNamespace(attributes))
        }
        add("dict") { args in
            var o = JinjaObject()
            for v in args.positional {
                if case .object(let d) = v { for (k, v) in d.pairs { o[k] = v } }
            }
            for (k, v) in args.keyword { o[k] = v }
            return .object(o)
        }
        add("strftime_now") { args in
            guard case .string(let format)? = args.value(0, "format") else {
                throw ChatTemplateError.runtime("strftime_now() takes a format string")
            }
            return .string(JinjaStrftime.format(now(), format))
        }
        add("joiner") { args in
            let separator = JinjaPython.str(args.value(0, "sep") ?? .string(", "))
            var used = false
            return .callable(JinjaCallable(name: "joiner") { _ in
                defer { used = true }
                return .string(used ? separator : "")
            })
        }
    }
}
