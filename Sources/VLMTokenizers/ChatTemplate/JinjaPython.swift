import Foundation

// Python's text conversions, which decide what `{{ value }}` and `| tojson` print:
// str()/repr() of the builtin types and json.dumps as transformers calls it.

enum JinjaPython {
    /// `repr(float)`: the shortest round-tripping digits, in fixed notation when the decimal
    /// exponent is in [-4, 16) and as `d.ddde+XX` otherwise, always with a `.0` or an exponent.
    static func floatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is also the shortest round-trip form; only the layout differs.
        var text = "\(abs(d))"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var intPart = text
        var fracPart = ""
        if let dot = text.firstIndex(of: ".") {
            intPart = String(text[..<dot])
            fracPart = String(text[text.index(after: dot)...])
        }
        // digits * 10^(pointPos - digits.count): normalise to a digit string and decimal point position.
        var digits = intPart + fracPart
        var pointPos = intPart.count + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            pointPos -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let decimalExponent = pointPos - 1
        var out = d < 0 ? "-" : ""
        if decimalExponent >= -4 && decimalExponent < 16 {
            if pointPos <= 0 {
                out += "0." + String(repeating: "0", count: -pointPos) + digits
            } else if pointPos >= digits.count {
                out += digits + String(repeating: "0", count: pointPos - digits.count) + ".0"
            } else {
                let i = digits.index(digits.startIndex, offsetBy: pointPos)
                out += digits[..<i] + "." + digits[i...]
            }
        } else {
            let first = digits.prefix(1)
            let rest = digits.dropFirst()
            out += first + (rest.isEmpty ? "" : "." + rest)
            let sign = decimalExponent < 0 ? "-" : "+"
            let mag = abs(decimalExponent)
            out += "e" + sign + (mag < 10 ? "0" : "") + String(mag)
        }
        return out
    }

    /// `str(value)` as jinja2 prints it (Undefined prints as the empty string).
    static func str(_ value: JinjaValue) -> String {
        switch value {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr(value)
        }
    }

    /// `repr(value)`: lists and dicts print their items with repr, e.g. `['a', 1, None]`.
    static func repr(_ value: JinjaValue) -> String {
        switch value {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return floatRepr(d)
        case .string(let s): return stringRepr(s)
        case .array(let a): return "[" + a.map(repr).joined(separator: ", ") + "]"
        case .tuple(let a): return "(" + a.map(repr).joined(separator: ", ") + (a.count == 1 ? ",)" : ")")
        case .object(let o): return "{" + o.pairs.map { stringRepr($0.0) + ": " + repr($0.1) }.joined(separator: ", ") + "}"
        case .namespace(let n): return "<Namespace " + repr(.object(n.attributes)) + ">"
        case .callable(let c): return "<function \(c.name)>"
        }
    }

    /// `repr(str)`: single quotes unless the text has a single quote and no double quote;
    /// backslash escapes for the quote, backslash, \n \r \t and non-printable characters.
    static func stringRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote {
                    out += "\\" + String(quote)
                } else if isPrintable(scalar) {
                    out.unicodeScalars.append(scalar)
                } else if scalar.value < 0x100 {
                    out += "\\x" + hex(scalar.value, 2)
                } else if scalar.value < 0x10000 {
                    out += "\\u" + hex(scalar.value, 4)
                } else {
                    out += "\\U" + hex(scalar.value, 8)
                }
            }
        }
        out.append(quote)
        return out
    }

    /// Python's `str.isprintable` for one character: not in categories Cc, Cf, Cs, Co, Cn,
    /// Zl, Zp, and not a separator other than the ASCII space.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }

    static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// Python's whitespace test for `str.strip()` and friends.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x1F, 0x20, 0x85, 0xA0: return true
        default: return scalar.value > 0xFF && scalar.properties.isWhitespace
        }
    }

    // MARK: json.dumps

    struct JSONOptions {
        var indent: String? = nil
        var itemSeparator: String? = nil
        var keySeparator: String? = nil
        var sortKeys = false
        var ensureASCII = false
    }

    /// `json.dumps(value, ensure_ascii=False, ...)`, the `tojson` transformers registers.
    /// Default separators are (", ", ": ") without indent and (",", ": ") with one.
    static func json(_ value: JinjaValue, _ options: JSONOptions) throws -> String {
        var out = ""
        try writeJSON(value, options, level: 0, into: &out)
        return out
    }

    private static func writeJSON(_ value: JinjaValue, _ o: JSONOptions, level: Int, into out: inout String) throws {
        let itemSep = o.itemSeparator ?? (o.indent == nil ? ", " : ",")
        let keySep = o.keySeparator ?? ": "
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += floatRepr(d)
            }
        case .string(let s): out += jsonString(s, ensureASCII: o.ensureASCII)
        case .array(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSep }
                if let indent = o.indent { out += "\n" + String(repeating: indent, count: level + 1) }
                try writeJSON(item, o, level: level + 1, into: &out)
            }
            if let indent = o.indent { out += "\n" + String(repeating: indent, count: level) }
            out += "]"
        case .object(let obj):
            if obj.isEmpty { out += "{}"; return }
            out += "{"
            let pairs = o.sortKeys ? obj.pairs.sorted { $0.0 < $1.0 } : obj.pairs
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += itemSep }
                if let indent = o.indent { out += "\n" + String(repeating: indent, count: level + 1) }
                out += jsonString(k, ensureASCII: o.ensureASCII) + keySep
                try writeJSON(v, o, level: level + 1, into: &out)
            }
            if let indent = o.indent { out += "\n" + String(repeating: indent, count: level) }
            out += "}"
        case .namespace(let n):
            throw ChatTemplateError.runtime("Object of type Namespace is not JSON serializable (\(repr(.object(n.attributes))))")
        case .undefined, .callable:
            throw ChatTemplateError.runtime("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    static func jsonString(_ s: String, ensureASCII: Bool) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + hex(scalar.value, 4)
                } else if ensureASCII && scalar.value > 0x7E {
                    if scalar.value >= 0x10000 {
                        let v = scalar.value - 0x10000
                        out += "\\u" + hex(0xD800 + (v >> 10), 4) + "\\u" + hex(0xDC00 + (v & 0x3FF), 4)
                    } else {
                        out += "\\u" + hex(scalar.value, 4)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
