import Foundation

/// Recursive-descent parser following jinja2/parser.py: the same statements, the same
/// operator precedence (or < and < not < comparisons < + - < ~ < * / // % < ** < unary <
/// postfix/filters/tests) and the same quirks (`is` takes one bare argument, `for ... if`
/// is a loop filter, not a conditional expression).
struct JinjaParser {
    let tokens: [JinjaToken]
    var index = 0
    /// Nesting of blocks and sub-expressions. Templates come from checkpoints, so a pathological
    /// one (thousands of nested parentheses) must fail to parse rather than overflow the stack
    /// of the parser, or later of the recursive evaluator.
    var depth = 0
    static let maxDepth = 128

    mutating func enter() throws {
        depth += 1
        if depth > Self.maxDepth { throw fail("template nested deeper than \(Self.maxDepth) levels") }
    }

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.parseBody(until: [])
        if let end { throw parser.fail("unexpected '\(end)' tag") }
        return nodes
    }

    // MARK: token helpers

    var current: JinjaToken { tokens[min(index, tokens.count - 1)] }
    var position: JinjaPosition { current.position }

    func fail(_ message: String, at p: JinjaPosition? = nil) -> ChatTemplateError {
        let at = p ?? position
        return .syntax(line: at.line, column: at.column, message: message)
    }

    func describe(_ kind: JinjaTokenKind) -> String {
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

    mutating func next() { if index < tokens.count - 1 { index += 1 } }

    func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    func isName(_ name: String) -> Bool { current.kind == .name(name) }

    func peekKind(_ offset: Int) -> JinjaTokenKind {
        tokens[min(index + offset, tokens.count - 1)].kind
    }

    mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw fail("expected '\(op)', got \(describe(current.kind))") }
        next()
    }

    mutating func expectName(_ name: String) throws {
        guard isName(name) else { throw fail("expected '\(name)', got \(describe(current.kind))") }
        next()
    }

    mutating func expectIdentifier() throws -> String {
        guard case .name(let n) = current.kind else { throw fail("expected a name, got \(describe(current.kind))") }
        next()
        return n
    }

    mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw fail("expected end of statement block, got \(describe(current.kind))") }
        next()
    }

    // MARK: statements

    /// Parses nodes until a block tag whose name is in `until`; returns that name with the
    /// stream positioned just after it (the rest of that tag is the caller's), or nil at eof.
    mutating func parseBody(until: Set<String>) throws -> ([JinjaNode], String?) {
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

    mutating func parseStatement(_ keyword: String, at p: JinjaPosition) throws -> JinjaNode {
        try enter()
        defer { depth -= 1 }
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

    mutating func parseIf() throws -> JinjaNode {
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

    mutating func parseFor(at p: JinjaPosition) throws -> JinjaNode {
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

    mutating func parseSet(at p: JinjaPosition) throws -> JinjaNode {
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

    mutating func parseMacro() throws -> JinjaNode {
        let name = try expectIdentifier()
        let parameters = try parseParameters()
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endmacro"])
        try expectBlockEnd()
        return .macro(JinjaMacroDefinition(name: name, parameters: parameters, body: body))
    }

    mutating func parseCallBlock(at p: JinjaPosition) throws -> JinjaNode {
        let callerParameters = isOp("(") ? try parseParameters() : []
        let call = try parseExpression()
        guard case .call = call else { throw fail("expected call", at: p) }
        try expectBlockEnd()
        let (body, _) = try parseBody(until: ["endcall"])
        try expectBlockEnd()
        return .callBlock(call: call, callerParameters: callerParameters, body: body, p)
    }

    mutating func parseParameters() throws -> [(String, JinjaExpr?)] {
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
    mutating func parseAssignTarget() throws -> JinjaTarget {
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
}
