import Foundation

struct JinjaPosition: Sendable, Equatable {
    var line: Int
    var column: Int
}

enum JinjaTokenKind: Equatable {
    case text(String)
    case variableBegin, variableEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case integer(Int)
    case float(Double)
    case op(String)
    case eof
}

struct JinjaToken: Equatable {
    var kind: JinjaTokenKind
    var position: JinjaPosition
}

/// Splits a template into text and tag tokens, applying jinja2's whitespace rules with the
/// options transformers compiles chat templates with (`trim_blocks=True, lstrip_blocks=True`,
/// `keep_trailing_newline=False`).
struct JinjaLexer {
    private let chars: [Unicode.Scalar]
    private var pos = 0
    private var line = 1
    private var column = 1
    private var tokens: [JinjaToken] = []
    /// jinja2's `line_starting`: the previous match ended with a newline (or nothing came before),
    /// which lets lstrip_blocks strip the indentation of a tag on the first line after a tag.
    private var lineStarting = true

    init(_ source: String) {
        // jinja2 normalises \r\n and \r to \n and, without keep_trailing_newline, drops one
        // trailing newline (lexer.tokeniter).
        var text = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if text.hasSuffix("\n") { text.removeLast() }
        chars = Array(text.unicodeScalars)
    }

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private var here: JinjaPosition { JinjaPosition(line: line, column: column) }

    private func fail(_ message: String, at p: JinjaPosition? = nil) -> ChatTemplateError {
        let at = p ?? here
        return .syntax(line: at.line, column: at.column, message: message)
    }

    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        pos + offset < chars.count ? chars[pos + offset] : nil
    }

    private func matches(_ s: String, at offset: Int = 0) -> Bool {
        var i = pos + offset
        for scalar in s.unicodeScalars {
            guard i < chars.count, chars[i] == scalar else { return false }
            i += 1
        }
        return true
    }

    private mutating func advance(_ n: Int = 1) {
        for _ in 0..<n where pos < chars.count {
            if chars[pos] == "\n" { line += 1; column = 1 } else { column += 1 }
            pos += 1
        }
    }

    private mutating func run() throws {
        while pos < chars.count {
            // Text up to the next tag opener.
            let textStart = pos
            let textPosition = here
            var tagKind: Character? = nil
            while pos < chars.count {
                if chars[pos] == "{", let next = peek(1), next == "{" || next == "%" || next == "#" {
                    tagKind = Character(next)
                    break
                }
                advance()
            }
            var text = String(String.UnicodeScalarView(chars[textStart..<pos]))
            guard let kind = tagKind else {
                if !text.isEmpty { tokens.append(JinjaToken(kind: .text(text), position: textPosition)) }
                break
            }
            let sign = peek(2)
            if sign == "-" {
                // `{%-`, `{{-`, `{#-`: strip all whitespace before the tag (rstrip).
                while let last = text.unicodeScalars.last, JinjaPython.isSpace(last) {
                    text.unicodeScalars.removeLast()
                }
            } else if sign != "+" && kind != "{" {
                // lstrip_blocks: a block or comment tag preceded only by spaces on its line loses them.
                let scalars = Array(text.unicodeScalars)
                let lastNewline = scalars.lastIndex(of: "\n").map { $0 + 1 } ?? 0
                if lastNewline > 0 || lineStarting {
                    if scalars[lastNewline...].allSatisfy({ JinjaPython.isSpace($0) }) {
                        text = String(String.UnicodeScalarView(scalars[..<lastNewline]))
                    }
                }
            }
            if !text.isEmpty { tokens.append(JinjaToken(kind: .text(text), position: textPosition)) }
            lineStarting = false
            let tagPosition = here
            advance(2)
            if sign == "-" || sign == "+" { advance() }
            switch kind {
            case "#": try lexComment(start: tagPosition)
            case "{":
                tokens.append(JinjaToken(kind: .variableBegin, position: tagPosition))
                try lexInside(block: false)
            default:
                tokens.append(JinjaToken(kind: .blockBegin, position: tagPosition))
                try lexInside(block: true)
                try lexRawIfNeeded()
            }
        }
        tokens.append(JinjaToken(kind: .eof, position: here))
    }

    /// After a tag close, consume what the close's whitespace control says: `-` strips all
    /// following whitespace; a plain block/comment close eats one newline (trim_blocks);
    /// `+%}` keeps everything.
    private mutating func afterClose(strip: Bool, trimNewline: Bool) {
        if strip {
            while let c = peek(), JinjaPython.isSpace(c) { advance() }
            lineStarting = pos > 0 && chars[pos - 1] == "\n"
        } else if trimNewline, peek() == "\n" {
            advance()
            lineStarting = true
        } else {
            lineStarting = false
        }
    }

    private mutating func lexComment(start: JinjaPosition) throws {
        while pos < chars.count {
            if matches("-#}") { advance(3); afterClose(strip: true, trimNewline: false); return }
            if matches("+#}") { advance(3); afterClose(strip: false, trimNewline: false); return }
            if matches("#}") { advance(2); afterClose(strip: false, trimNewline: true); return }
            advance()
        }
        throw fail("missing end of comment tag", at: start)
    }

    /// `{% raw %}...{% endraw %}`: the body is text, not parsed.
    private mutating func lexRawIfNeeded() throws {
        let n = tokens.count
        guard n >= 3, tokens[n - 1].kind == .blockEnd, tokens[n - 2].kind == .name("raw"),
            tokens[n - 3].kind == .blockBegin
        else { return }
        tokens.removeLast(3)
        let start = pos
        let startPosition = here
        while pos < chars.count {
            if matches("{%") {
                var j = 2
                if matches("-", at: 2) || matches("+", at: 2) { j += 1 }
                while let c = peek(j), JinjaPython.isSpace(c) { j += 1 }
                if matches("endraw", at: j) {
                    var text = String(String.UnicodeScalarView(chars[start..<pos]))
                    if matches("-", at: 2) {
                        while let last = text.unicodeScalars.last, JinjaPython.isSpace(last) { text.unicodeScalars.removeLast() }
                    } else if !matches("+", at: 2) {
                        // lstrip_blocks applies to the endraw tag like to any block tag.
                        let scalars = Array(text.unicodeScalars)
                        if let newline = scalars.lastIndex(of: "\n"), scalars[(newline + 1)...].allSatisfy({ JinjaPython.isSpace($0) }) {
                            text = String(String.UnicodeScalarView(scalars[...newline]))
                        }
                    }
                    if !text.isEmpty { tokens.append(JinjaToken(kind: .text(text), position: startPosition)) }
                    advance(j + 6)
                    while let c = peek(), JinjaPython.isSpace(c) { advance() }
                    if matches("-%}") { advance(3); afterClose(strip: true, trimNewline: false); return }
                    if matches("+%}") { advance(3); afterClose(strip: false, trimNewline: false); return }
                    if matches("%}") { advance(2); afterClose(strip: false, trimNewline: true); return }
                    throw fail("expected end of endraw tag")
                }
            }
            advance()
        }
        throw fail("missing endraw tag", at: startPosition)
    }

    private static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "(", ")", "[", "]",
        "{", "}", ",", ".", ":", "|", "=", "<", ">", ";"]

    /// Tokens inside `{{ }}` or `{% %}` up to the close; like jinja2, a close only counts
    /// when brackets are balanced (so `{{ {'a': {'b': 1}} }}` works).
    private mutating func lexInside(block: Bool) throws {
        let start = here
        var depth = 0
        while true {
            while let c = peek(), JinjaPython.isSpace(c) { advance() }
            guard let c = peek() else { throw fail(block ? "missing end of block tag (%})" : "missing end of print tag (}})", at: start) }
            let p = here
            if depth == 0 {
                let close = block ? "%}" : "}}"
                if matches("-" + close) {
                    advance(3)
                    tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, position: p))
                    afterClose(strip: true, trimNewline: false)
                    return
                }
                if block && matches("+%}") {
                    advance(3)
                    tokens.append(JinjaToken(kind: .blockEnd, position: p))
                    afterClose(strip: false, trimNewline: false)
                    return
                }
                if matches(close) {
                    // jinja2's raw_begin rule has no trim_blocks suffix: `{% raw %}\n` keeps its newline.
                    let n = tokens.count
                    let opensRaw = block && n >= 2 && tokens[n - 1].kind == .name("raw") && tokens[n - 2].kind == .blockBegin
                    advance(2)
                    tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, position: p))
                    afterClose(strip: false, trimNewline: block && !opensRaw)
                    return
                }
            }
            if c == "_" || c.properties.isAlphabetic {
                var name = String.UnicodeScalarView()
                while let d = peek(), d == "_" || d.properties.isAlphabetic || ("0"..."9").contains(d) {
                    name.append(d)
                    advance()
                }
                tokens.append(JinjaToken(kind: .name(String(name)), position: p))
            } else if ("0"..."9").contains(c) {
                tokens.append(JinjaToken(kind: try lexNumber(), position: p))
            } else if c == "'" || c == "\"" {
                tokens.append(JinjaToken(kind: .string(try lexString(quote: c)), position: p))
            } else if let op = Self.operators.first(where: { matches($0) }) {
                if op == "(" || op == "[" || op == "{" { depth += 1 }
                if op == ")" || op == "]" || op == "}" { depth -= 1 }
                if depth < 0 { throw fail("unexpected '\(op)'", at: p) }
                advance(op.unicodeScalars.count)
                tokens.append(JinjaToken(kind: .op(op), position: p))
            } else {
                throw fail("unexpected character '\(c)'", at: p)
            }
        }
    }

    private mutating func lexNumber() throws -> JinjaTokenKind {
        let p = here
        var text = ""
        func digits(_ lexer: inout JinjaLexer) {
            while let d = lexer.peek(), ("0"..."9").contains(d) || (d == "_" && lexer.peek(1).map { ("0"..."9").contains($0) } == true) {
                if d != "_" { text.unicodeScalars.append(d) }
                lexer.advance()
            }
        }
        digits(&self)
        var isFloat = false
        if peek() == ".", let d = peek(1), ("0"..."9").contains(d) {
            isFloat = true
            text += "."
            advance()
            digits(&self)
        }
        if let e = peek(), e == "e" || e == "E" {
            var j = 1
            if peek(1) == "+" || peek(1) == "-" { j = 2 }
            if let d = peek(j), ("0"..."9").contains(d) {
                isFloat = true
                for _ in 0..<j { text.unicodeScalars.append(chars[pos]); advance() }
                digits(&self)
            }
        }
        if isFloat {
            guard let d = Double(text) else { throw fail("bad number \(text)", at: p) }
            return .float(d)
        }
        guard let i = Int(text) else { throw fail("integer out of range: \(text)", at: p) }
        return .integer(i)
    }

    /// A string literal with Python's `unicode-escape` rules, which jinja2 applies to literals:
    /// \n \t \r \\ \' \" \a \b \f \v \0-\777 \xHH \uHHHH \UHHHHHHHH; unknown escapes stay as written.
    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let p = here
        advance()
        var out = String.UnicodeScalarView()
        while let c = peek() {
            advance()
            if c == quote { return String(out) }
            guard c == "\\", let e = peek() else { out.append(c); continue }
            advance()
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n": break
            case "x", "u", "U":
                let width = e == "x" ? 2 : (e == "u" ? 4 : 8)
                var hexText = ""
                for _ in 0..<width {
                    guard let h = peek(), h.properties.isASCIIHexDigit else {
                        throw fail("truncated \\\(e) escape in string", at: p)
                    }
                    hexText.unicodeScalars.append(h)
                    advance()
                }
                guard let v = UInt32(hexText, radix: 16), let scalar = Unicode.Scalar(v) else {
                    throw fail("bad \\\(e) escape in string", at: p)
                }
                out.append(scalar)
            case "0"..."7":
                var v = e.value - 48
                var count = 1
                while count < 3, let d = peek(), ("0"..."7").contains(d) {
                    v = v * 8 + (d.value - 48)
                    advance()
                    count += 1
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw fail("unterminated string", at: p)
    }
}
