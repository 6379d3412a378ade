import Foundation

/// Recursive-descent parser following jinja2/parser.py: the same statements, the same
/// operator precedence (or < and < not < comparisons < + - < ~ < * / // % < ** < unary <
/// postfix/filters/tests) and the same quirks (`is` takes one bare argument, `for ... if`
/// is a loop filter, not a conditional expression).
struct JinjaParser {
    private let tokens: [JinjaToken]
    private var index = 0

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.parseBody(until: [])
        if let end { throw parser.fail("unexpected '\(end)' tag") }
        return nodes
    }

    // MARK: token helpers

    private var current: JinjaToken { tokens[min(index, tokens.count - 1)] }
    private var position: JinjaPosition { current.position }

    private func fail(_ message: String, at p: JinjaPosition? = nil) -> ChatTemplateError {
        let at = p ?? position
        return .syntax(line: at.line, column: at.column, message: message)
    }

    private func describe(_ kind: JinjaTokenKind) -> String {
        switch kind {
        case .text: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string '\(s)'"
        case .integer(let i): return "integer \(i)"
        case .float(let d): return "float \(d)"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private mutating func next() { if index < tokens.count - 1 { index += 1 } }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private func peekKind(_ offset: Int) -> JinjaTokenKind {
        tokens[min(index + offset, tokens.count - 1)].kind
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw fail("expected '\(op)', got \(describe(current.kind))") }
        next()
    }

    private mutating func expectName(_ name: String) throws {
        guard isName(name) else { throw fail("expected '\(name)', got \(describe(current.kind))") }
        next()
    }

    private mutating func expectIdentifier() throws -> String {
        guard case .name(let n) = current.kind else { throw fail("expected a name, got \(describe(current.kind))") }
        next()
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw fail("expected end of statement block, got \(describe(current.kind))") }
        next()
    }

    // MARK: statements

    /// Parses nodes until a block tag whose name is in `until`; returns that name with the
    /// stream positioned just after it (the rest of that tag is the caller's), or nil at eof.
    private mutating func parseBody(until: Set<String>) throws -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while true {
            switch current.kind {
            case .eof:
                if !until.isEmpty {
                    throw fail("unexpected end of template, expected one of \(until.sorted().joined(separator: ", "))")
                }
                return (nodes, nil)
            case .text(let t):
                nodes.append(.text(t))
                next()
            case .variableBegin:
                next()
                let expr = try parseTuple()
                guard current.kind == .variableEnd else { throw fail("expected end of print statement, got \(describe(current.kind))") }
                next()
                nodes.append(.output(expr))
            case .blockBegin:
                next()
                let p = position
                let keyword = try expectIdentifier()
                if until.contains(keyword) { return (nodes, keyword) }
                nodes.append(try parseStatement(keyword, at: p))
            default:
                throw fail("unexpected \(describe(current.kind))")
            }
        }
    }

    private mutating func parseStatement(_ keyword: String, at p: JinjaPosition) throws -> JinjaNode {
        switch keyword {
        case "if": return try parseIf()
        case "for": return try parseFor(at: p)
        case "set": return try parseSet(at: p)
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock(at: p)
        case "filter":
            let filters = try parseFilterChain(first: true)
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endfilter"])
            try expectBlockEnd()
            return .filterBlock(filters, body: body)
        case "with":
            var assignments: [(JinjaTarget, JinjaExpr)] = []
            while current.kind != .blockEnd {
                if !assignments.isEmpty { try expectOp(",") }
                let target = try parseAssignTarget()
                try expectOp("=")
                assignments.append((target, try parseExpression()))
            }
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endwith"])
            try expectBlockEnd()
            return .with(assignments, body: body, p)
        case "break":
            try expectBlockEnd()
            return .breakLoop(p)
        case "continue":
            try expectBlockEnd()
            return .continueLoop(p)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody(until: ["endgeneration"])
            try expectBlockEnd()
            return .generation(body)
        default:
            throw fail("unknown tag '\(keyword)'", at: p)
        }
    }

    private mutating func parseIf() throws -> JinjaNode {
        var branches: [(JinjaExpr, [JinjaNode])] = []
        var condition = try parseTuple()
        try expectBlockEnd()
        while true {
            let (body, end) = try parseBody(until: ["elif", "else", "endif"])
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple()
                try expectBlockEnd()
            case "else":
                try expectBlockEnd()
                let (otherwise, _) = try parseBody(until: ["endif"])
                try expectBlockEnd()
                return .ifChain(branches, otherwise: otherwise)
            default:
                try expectBlockEnd()
                return .ifChain(branches, otherwise: [])
            }
        }
    }

    private mutating func parseFor(at p: JinjaPosition) throws -> JinjaNode {
        let target = try parseAssignTarget()
        try expectName("in")
        // jinja2: parse_tuple(with_condexpr=False) so a trailing `if` filters the loop.
        let iterable = try parseTuple(withCondition: false)
        var condition: JinjaExpr? = nil
        if isName("if") {
            next()
            condition = try parseExpression()
        }
        if isName("recursive") { throw fail("recursive loops are not supported") }
        try expectBlockEnd()
        let (body, end) = try parseBody(until: ["endfor", "else"])
        var otherwise: [JinjaNode] = []
        if end == "else" {
            try expectBlockEnd()
            (otherwise, _) = try parseBody(until: ["endfor"])
        }
        try expectBlockEnd()
        return .forLoop(target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise, p)
    }

    private mutating func parseSet(at p: JinjaPosition) throws -> JinjaNode {
        let target = try parseAssignTarget()
        if isOp("=") {
            next()
            let value = try parseTuple()
            try expectBlockEnd()
            return .set(target, value, p)
        }
        let filters = isOp("|") ? try parseFilterChain(first: false) : []
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endset"])
        try expectBlockEnd()
        return .setBlock(target, filters: filters, body: body, p)
    }

    private mutating func parseMacro() throws -> JinjaNode {
        let name = try expectIdentifier()
        let parameters = try parseParameters()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        try expectBlockEnd()
        return .macro(JinjaMacroDefinition(name: name, parameters: parameters, body: body))
    }

    private mutating func parseCallBlock(at p: JinjaPosition) throws -> JinjaNode {
        let callerParameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call", at: p) }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: callerParameters, body: body, p)
    }

    private mutating func parseParameters() throws -> [(String, JinjaExpr?)] {
        try expectOp("(")
        var parameters: [(String, JinjaExpr?)] = []
        while !isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectIdentifier()
            var value: JinjaExpr? = nil
            if isOp("=") {
                next()
                value = try parseExpression()
            }
            parameters.append((name, value))
        }
        try expectOp(")")
        return parameters
    }

    /// `name`, `ns.attr`, or a comma list / parenthesised tuple of names.
    private mutating func parseAssignTarget() throws -> JinjaTarget {
        var targets: [JinjaTarget] = []
        repeat {
            if !targets.isEmpty {
                next()
                if isName("in") || isOp("=") { break }
            }
            if isOp("(") {
                next()
                targets.append(try parseAssignTarget())
                try expectOp(")")
                continue
            }
            let name = try expectIdentifier()
            if isOp(".") {
                next()
                targets.append(.attribute(name, try expectIdentifier()))
            } else {
                targets.append(.name(name))
            }
        } while isOp(",")
        return targets.count == 1 ? targets[0] : .tuple(targets)
    }

    // MARK: expressions

    /// jinja2's parse_tuple: one expression, or a tuple when commas follow.
    private mutating func parseTuple(withCondition: Bool = true, explicitParentheses: Bool = false) throws -> JinjaExpr {
        var items: [JinjaExpr] = []
        var sawComma = false
        while true {
            if !items.isEmpty {
                guard isOp(",") else { break }
                next()
                sawComma = true
            }
            if current.kind == .variableEnd || current.kind == .blockEnd || isOp(")") || isName("in") || isName("if") && !items.isEmpty
                || isOp("=")
            {
                if items.isEmpty && !explicitParentheses { throw fail("expected an expression, got \(describe(current.kind))") }
                break
            }
            items.append(try parseExpression(withCondition: withCondition))
        }
        if items.count == 1 && !sawComma { return items[0] }
        return .tuple(items)
    }

    private mutating func parseExpression(withCondition: Bool = true) throws -> JinjaExpr {
        withCondition ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws -> JinjaExpr {
        var expr = try parseOr()
        while isName("if") {
            let p = position
            next()
            let condition = try parseOr()
            var otherwise: JinjaExpr? = nil
            if isName("else") {
                next()
                otherwise = try parseConditional()
            }
            expr = .conditional(expr, condition: condition, otherwise: otherwise, p)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while isName("or") {
            let p = position
            next()
            left = .binary("or", left, try parseAnd(), p)
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while isName("and") {
            let p = position
            next()
            left = .binary("and", left, try parseNot(), p)
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            let p = position
            next()
            return .unary("not", try parseNot(), p)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let p = position
        let first = try parseMath1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            if case .op(let op) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(op) {
                next()
                ops.append((op, try parseMath1()))
            } else if isName("in") {
                next()
                ops.append(("in", try parseMath1()))
            } else if isName("not"), peekKind(1) == .name("in") {
                next()
                next()
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, p)
    }

    private mutating func parseBinary(_ ops: Set<String>, _ operand: (inout JinjaParser) throws -> JinjaExpr) throws -> JinjaExpr {
        var left = try operand(&self)
        while case .op(let op) = current.kind, ops.contains(op) {
            let p = position
            next()
            left = .binary(op, left, try operand(&self), p)
        }
        return left
    }

    private mutating func parseMath1() throws -> JinjaExpr { try parseBinary(["+", "-"]) { try $0.parseConcat() } }
    private mutating func parseConcat() throws -> JinjaExpr { try parseBinary(["~"]) { try $0.parseMath2() } }
    private mutating func parseMath2() throws -> JinjaExpr { try parseBinary(["*", "/", "//", "%"]) { try $0.parsePow() } }
    private mutating func parsePow() throws -> JinjaExpr { try parseBinary(["**"]) { try $0.parseUnary() } }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        var node: JinjaExpr
        let p = position
        if isOp("-") || isOp("+") {
            let op = isOp("-") ? "-" : "+"
            next()
            node = .unary(op, try parseUnary(withFilter: false), p)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let p = position
        switch current.kind {
        case .name(let n):
            next()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, p)
            }
        case .string(let s):
            // Adjacent string literals concatenate, as in Python.
            var text = s
            next()
            while case .string(let more) = current.kind {
                text += more
                next()
            }
            return .literal(.string(text))
        case .integer(let i):
            next()
            return .literal(.int(i))
        case .float(let d):
            next()
            return .literal(.double(d))
        case .op("("):
            next()
            let expr = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return expr
        case .op("["):
            next()
            var items: [JinjaExpr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            next()
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw fail("unexpected \(describe(current.kind))")
        }
    }

    private mutating func parsePostfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            let p = position
            if isOp(".") {
                next()
                switch current.kind {
                case .name(let n):
                    next()
                    node = .attribute(node, n, p)
                case .integer(let i):
                    next()
                    node = .item(node, .literal(.int(i)), p)
                default:
                    throw fail("expected an attribute name after '.'")
                }
            } else if isOp("[") {
                next()
                node = try parseSubscript(node, at: p)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), p)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ target: JinjaExpr, at p: JinjaPosition) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = []
        var isSlice = false
        var current: JinjaExpr? = nil
        while !isOp("]") {
            if isOp(":") {
                isSlice = true
                parts.append(current)
                current = nil
                next()
            } else {
                if current != nil { throw fail("expected ':' or ']'") }
                current = try parseExpression()
            }
        }
        next()
        if !isSlice {
            guard let key = current else { throw fail("expected a subscript", at: p) }
            return .item(target, key, p)
        }
        parts.append(current)
        guard parts.count <= 3 else { throw fail("too many ':' in slice", at: p) }
        while parts.count < 3 { parts.append(nil) }
        return .slice(target, start: parts[0], stop: parts[1], step: parts[2], p)
    }

    private mutating func parseCallArguments() throws -> JinjaCallArgs {
        try expectOp("(")
        var args = JinjaCallArgs()
        var first = true
        while !isOp(")") {
            if !first { try expectOp(",") }
            first = false
            if isOp(")") { break }
            if case .name(let n) = current.kind, peekKind(1) == .op("=") {
                next()
                next()
                args.keyword.append((n, try parseExpression()))
            } else {
                if !args.keyword.isEmpty { throw fail("positional argument after keyword argument") }
                args.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilterExpression(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if isOp("|") {
                for f in try parseFilterChain(first: false) { node = .filter(node, f.name, f.args, f.position) }
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                let p = position
                node = .call(node, try parseCallArguments(), p)
            } else {
                return node
            }
        }
    }

    /// `| name(args) | name2 ...`; with `first` the leading `|` is absent (`{% filter upper %}`).
    private mutating func parseFilterChain(first: Bool) throws -> [JinjaFilterCall] {
        var filters: [JinjaFilterCall] = []
        var needPipe = !first
        while true {
            if needPipe {
                guard isOp("|") else { break }
                next()
            }
            needPipe = true
            let p = position
            var name = try expectIdentifier()
            while isOp(".") {
                next()
                name += "." + (try expectIdentifier())
            }
            let args = isOp("(") ? try parseCallArguments() : JinjaCallArgs()
            filters.append(JinjaFilterCall(name: name, args: args, position: p))
        }
        return filters
    }

    private mutating func parseTest(_ subject: JinjaExpr) throws -> JinjaExpr {
        let p = position
        next()  // is
        var negated = false
        if isName("not") {
            next()
            negated = true
        }
        var name = try expectIdentifier()
        while isOp(".") {
            next()
            name += "." + (try expectIdentifier())
        }
        var args = JinjaCallArgs()
        if isOp("(") {
            args = try parseCallArguments()
        } else {
            // jinja2 takes one bare argument (`is divisibleby 3`, `is sameas none`) unless the
            // next token ends the test (`else`, `or`, `and`).
            var takesArgument = false
            switch current.kind {
            case .name(let n): takesArgument = !["else", "or", "and"].contains(n)
            case .string, .integer, .float, .op("["), .op("{"): takesArgument = true
            default: break
            }
            if takesArgument {
                if isName("is") { throw fail("You cannot chain multiple tests with is") }
                args.positional = [try parsePostfix(try parsePrimary())]
            }
        }
        return .test(subject, name, args, negated: negated, p)
    }
}
