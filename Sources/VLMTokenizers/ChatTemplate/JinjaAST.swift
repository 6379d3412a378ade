import Foundation

/// Expressions, after jinja2's grammar (jinja2/parser.py).
indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String, JinjaPosition)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String, JinjaPosition)
    case item(JinjaExpr, JinjaExpr, JinjaPosition)
    case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?, JinjaPosition)
    case call(JinjaExpr, JinjaCallArgs, JinjaPosition)
    case filter(JinjaExpr, String, JinjaCallArgs, JinjaPosition)
    case test(JinjaExpr, String, JinjaCallArgs, negated: Bool, JinjaPosition)
    case unary(String, JinjaExpr, JinjaPosition)
    /// Arithmetic, `~`, `and`, `or`.
    case binary(String, JinjaExpr, JinjaExpr, JinjaPosition)
    /// A comparison chain `a < b <= c` (Python semantics: each pair, short-circuit).
    case compare(JinjaExpr, [(String, JinjaExpr)], JinjaPosition)
    /// `a if cond else b`; without `else` the value is Undefined when cond is false.
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?, JinjaPosition)
}

struct JinjaCallArgs: Sendable {
    var positional: [JinjaExpr] = []
    var keyword: [(String, JinjaExpr)] = []
}

/// Assignment targets of `set` and `for`.
enum JinjaTarget: Sendable {
    case name(String)
    /// `{% set ns.attr = ... %}`: only valid on a namespace.
    case attribute(String, String)
    case tuple([JinjaTarget])
}

struct JinjaFilterCall: Sendable {
    var name: String
    var args: JinjaCallArgs
    var position: JinjaPosition
}

struct JinjaMacroDefinition: Sendable {
    var name: String
    var parameters: [(String, JinjaExpr?)]
    var body: [JinjaNode]
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case ifChain([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case forLoop(target: JinjaTarget, iterable: JinjaExpr, condition: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], JinjaPosition)
    case set(JinjaTarget, JinjaExpr, JinjaPosition)
    case setBlock(JinjaTarget, filters: [JinjaFilterCall], body: [JinjaNode], JinjaPosition)
    case macro(JinjaMacroDefinition)
    case callBlock(call: JinjaExpr, callerParameters: [(String, JinjaExpr?)], body: [JinjaNode], JinjaPosition)
    case filterBlock([JinjaFilterCall], body: [JinjaNode])
    case with([(JinjaTarget, JinjaExpr)], body: [JinjaNode], JinjaPosition)
    case breakLoop(JinjaPosition)
    case continueLoop(JinjaPosition)
    /// transformers' `{% generation %}` extension: marks assistant text, renders its body unchanged.
    case generation([JinjaNode])
}
