import Foundation

extension JinjaValue {
    /// Parses JSON keeping object key order (Foundation's parsers do not), with Python's
    /// int/float split: `1` is an int, `1.0` and `1e3` are floats.
    public init(json text: String) throws {
        var parser = JinjaJSONParser(Array(text.unicodeScalars))
        parser.skipSpace()
        self = try parser.parseValue(depth: 0)
        parser.skipSpace()
        if parser.pos != parser.chars.count { throw parser.error("trailing characters") }
    }

    public init(jsonData data: Data) throws {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChatTemplateError.runtime("JSON is not valid UTF-8")
        }
        try self.init(json: text)
    }
}

struct JinjaJSONParser {
    let chars: [Unicode.Scalar]
    var pos = 0

    init(_ chars: [Unicode.Scalar]) { self.chars = chars }

    func error(_ message: String) -> ChatTemplateError {
        .runtime("invalid JSON at offset \(pos): \(message)")
    }

    mutating func skipSpace() {
        while pos < chars.count, [" ", "\n", "\r", "\t"].contains(chars[pos]) { pos += 1 }
    }

    mutating func expect(_ literal: String) throws {
        for scalar in literal.unicodeScalars {
            guard pos < chars.count, chars[pos] == scalar else { throw error("expected \(literal)") }
            pos += 1
        }
    }

    mutating func parseValue(depth: Int) throws -> JinjaValue {
        guard depth < 512 else { throw error("nesting too deep") }
        guard pos < chars.count else { throw error("unexpected end") }
        switch chars[pos] {
        case "{":
            pos += 1
            var object = JinjaObject()
            skipSpace()
            if pos < chars.count, chars[pos] == "}" { pos += 1; return .object(object) }
            while true {
                skipSpace()
                let key = try parseString()
                skipSpace()
                try expect(":")
                skipSpace()
                object[key] = try parseValue(depth: depth + 1)
                skipSpace()
                guard pos < chars.count else { throw error("unterminated object") }
                if chars[pos] == "," { pos += 1; continue }
                if chars[pos] == "}" { pos += 1; return .object(object) }
                throw error("expected , or }")
            }
        case "[":
            pos += 1
            var items: [JinjaValue] = []
            skipSpace()
            if pos < chars.count, chars[pos] == "]" { pos += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try parseValue(depth: depth + 1))
                skipSpace()
                guard pos < chars.count else { throw error("unterminated array") }
                if chars[pos] == "," { pos += 1; continue }
                if chars[pos] == "]" { pos += 1; return .array(items) }
                throw error("expected , or ]")
            }
        case "\"": return .string(try parseString())
        case "t": try expect("true"); return .bool(true)
        case "f": try expect("false"); return .bool(false)
        case "n": try expect("null"); return .none
        default: return try parseNumber()
        }
    }

    mutating func parseNumber() throws -> JinjaValue {
        let start = pos
        var isFloat = false
        while pos < chars.count {
            let c = chars[pos]
            if ("0"..."9").contains(c) || c == "-" || c == "+" {
                pos += 1
            } else if c == "." || c == "e" || c == "E" {
                isFloat = true
                pos += 1
            } else {
                break
            }
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: chars[start..<pos])
        if !isFloat, let i = Int(text) { return .int(i) }
        guard !text.isEmpty, let d = Double(text) else { throw error("bad number \(text)") }
        return .double(d)
    }

    mutating func parseString() throws -> String {
        try expect("\"")
        var out = String.UnicodeScalarView()
        while pos < chars.count {
            let c = chars[pos]
            pos += 1
            if c == "\"" { return String(out) }
            if c != "\\" { out.append(c); continue }
            guard pos < chars.count else { break }
            let e = chars[pos]
            pos += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "u":
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), pos + 1 < chars.count, chars[pos] == "\\", chars[pos + 1] == "u" {
                    pos += 2
                    let low = try hex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default: out.append(e)
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= chars.count else { throw error("bad \\u escape") }
        var text = ""
        text.unicodeScalars.append(contentsOf: chars[pos..<pos + 4])
        guard let v = UInt32(text, radix: 16) else { throw error("bad \\u escape") }
        pos += 4
        return v
    }
}
