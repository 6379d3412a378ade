import Foundation

// Expression grammar of jinja2/parser.py, lowest precedence first: conditional (`a if c else b`),
// `or`, `and`, `not`, comparisons (incl. `in`, `not in`, chains), `+ -`, `~`, `* / // %`, `**`,
// unary `- +`, then primaries with postfix `.attr`, `[item]`, `[a:b:c]`, calls, `| filter`, `is test`.

extension JinjaParser {
    // MARK: expressions

    /// jinja2's parse_tuple: one expression, or a tuple when commas follow.
    mutating func parseTuple(withCondition: Bool = true, explicitParentheses: Bool = false) throws -> JinjaExpr {
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

    mutating func parseExpression(withCondition: Bool = true) throws -> JinjaExpr {
        try enter()
        defer { depth -= 1 }
        return withCondition ? try parseConditional() : try parseOr()
    }

    mutating func parseConditional() throws -> JinjaExpr {
        var expr = try parseOr()
        let saved = depth
        defer { depth = saved }
        while isName("if") {
            try enter()
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

    mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        let saved = depth
        defer { depth = saved }
        while isName("or") {
            try enter()
            let p = position
            next()
            left = .binary("or", left, try parseAnd(), p)
        }
        return left
    }

    mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        let saved = depth
        defer { depth = saved }
        while isName("and") {
            try enter()
            let p = position
            next()
            left = .binary("and", left, try parseNot(), p)
        }
        return left
    }

    mutating func parseNot() throws -> JinjaExpr {
        if isName("not") {
            let p = position
            next()
            try enter()
            defer { depth -= 1 }
            return .unary("not", try parseNot(), p)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> JinjaExpr {
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

    mutating func parseBinary(_ ops: Set<String>, _ operand: (inout JinjaParser) throws -> JinjaExpr) throws -> JinjaExpr {
        var left = try operand(&self)
        let saved = depth
        defer { depth = saved }
        while case .op(let op) = current.kind, ops.contains(op) {
            let p = position
            next()
            try enter()
            left = .binary(op, left, try operand(&self), p)
        }
        return left
    }

    mutating func parseMath1() throws -> JinjaExpr { try parseBinary(["+", "-"]) { try $0.parseConcat() } }
    mutating func parseConcat() throws -> JinjaExpr { try parseBinary(["~"]) { try $0.parseMath2() } }
    mutating func parseMath2() throws -> JinjaExpr { try parseBinary(["*", "/", "//", "%"]) { try $0.parsePow() } }
    mutating func parsePow() throws -> JinjaExpr { try parseBinary(["**"]) { try $0.parseUnary() } }

    mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        var node: JinjaExpr
        let p = position
        if isOp("-") || isOp("+") {
            let op = isOp("-") ? "-" : "+"
            next()
            try enter()
            defer { depth -= 1 }
            node = .unary(op, try parseUnary(withFilter: false), p)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    mutating func parsePrimary() throws -> JinjaExpr {
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

    mutating func parsePostfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        let saved = depth
        defer { depth = saved }
        while true {
            try enter()
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

    mutating func parseSubscript(_ target: JinjaExpr, at p: JinjaPosition) throws -> JinjaExpr {
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

    mutating func parseCallArguments() throws -> JinjaCallArgs {
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

    mutating func parseFilterExpression(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        let saved = depth
        defer { depth = saved }
        while true {
            try enter()
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
    mutating func parseFilterChain(first: Bool) throws -> [JinjaFilterCall] {
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

    mutating func parseTest(_ subject: JinjaExpr) throws -> JinjaExpr {
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
