import Foundation

/// Python string formatting as far as templates use it: `'%s' % x`, `'|format'`, `'{}'.format(x)`.
enum JinjaFormat {
    /// printf-style `format % values` with %s %r %d %i %f %% (flags and width are honoured for numbers).
    static func percent(_ format: String, _ values: JinjaValue) throws -> String {
        var args: [JinjaValue]
        if case .tuple(let a) = values { args = a } else { args = [values] }
        var out = ""
        var chars = Array(format)[...]
        while let c = chars.first {
            chars.removeFirst()
            guard c == "%" else { out.append(c); continue }
            var spec = ""
            while let d = chars.first, "-+ 0#.123456789".contains(d) {
                spec.append(d)
                chars.removeFirst()
            }
            guard let conversion = chars.first else { throw ChatTemplateError.runtime("incomplete format") }
            chars.removeFirst()
            if conversion == "%" { out += "%"; continue }
            guard !args.isEmpty else { throw ChatTemplateError.runtime("not enough arguments for format string") }
            let arg = args.removeFirst()
            switch conversion {
            case "s": out += pad(JinjaPython.str(arg), spec)
            case "r": out += pad(JinjaPython.repr(arg), spec)
            case "d", "i":
                guard let n = arg.numericValue else { throw ChatTemplateError.runtime("%d format: a real number is required, not \(arg.typeName)") }
                out += String(format: "%" + spec + "ld", Int(n))
            case "f", "e", "g", "F", "E", "G", "x", "X", "o":
                guard let n = arg.numericValue else { throw ChatTemplateError.runtime("must be real number, not \(arg.typeName)") }
                if "xXo".contains(conversion) {
                    out += String(format: "%" + spec + "l" + String(conversion), Int(n))
                } else {
                    out += String(format: "%" + spec + String(conversion), n)
                }
            default:
                throw ChatTemplateError.runtime("unsupported format character '\(conversion)'")
            }
        }
        if !args.isEmpty, case .tuple = values { throw ChatTemplateError.runtime("not all arguments converted during string formatting") }
        return out
    }

    private static func pad(_ s: String, _ spec: String) -> String {
        let leftAlign = spec.hasPrefix("-")
        guard let width = Int(spec.filter { $0.isNumber }), width > s.count else { return s }
        let padding = String(repeating: " ", count: width - s.count)
        return leftAlign ? s + padding : padding + s
    }

    /// `str.format` with `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs beyond plain fields).
    static func braces(_ format: String, _ args: JinjaArguments) throws -> String {
        var out = ""
        var chars = Array(format)[...]
        var auto = 0
        while let c = chars.first {
            chars.removeFirst()
            if c == "{" {
                if chars.first == "{" { chars.removeFirst(); out += "{"; continue }
                var field = ""
                while let d = chars.first, d != "}" {
                    field.append(d)
                    chars.removeFirst()
                }
                guard chars.first == "}" else { throw ChatTemplateError.runtime("Single '{' encountered in format string") }
                chars.removeFirst()
                let name = field.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
                let value: JinjaValue?
                if name.isEmpty {
                    value = auto < args.positional.count ? args.positional[auto] : nil
                    auto += 1
                } else if let i = Int(name) {
                    value = i < args.positional.count ? args.positional[i] : nil
                } else {
                    value = args.keyword.first { $0.0 == name }?.1
                }
                guard let value else { throw ChatTemplateError.runtime("Replacement index \(name) out of range for positional args tuple") }
                out += JinjaPython.str(value)
            } else if c == "}" {
                if chars.first == "}" { chars.removeFirst() }
                out += "}"
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// Python's `datetime.strftime` in the C locale, for transformers' `strftime_now(format)`.
enum JinjaStrftime {
    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December"]
    static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    static func format(_ date: Date, _ format: String, timeZone: TimeZone = .current) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0
        let weekday = (c.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var out = ""
        var chars = Array(format)[...]
        while let ch = chars.first {
            chars.removeFirst()
            guard ch == "%", let code = chars.first else { out.append(ch); continue }
            chars.removeFirst()
            switch code {
            case "d": out += two(day)
            case "-": // glibc's %-d / %-m: no padding.
                if let next = chars.first {
                    chars.removeFirst()
                    switch next {
                    case "d": out += "\(day)"
                    case "m": out += "\(month)"
                    case "H": out += "\(hour)"
                    case "I": out += "\(hour % 12 == 0 ? 12 : hour % 12)"
                    case "M": out += "\(minute)"
                    case "S": out += "\(second)"
                    default: out += "%-" + String(next)
                    }
                }
            case "m": out += two(month)
            case "Y": out += "\(year)"
            case "y": out += two(year % 100)
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "B": out += months[month - 1]
            case "a": out += String(weekdays[weekday].prefix(3))
            case "A": out += weekdays[weekday]
            case "w": out += "\(weekday)"
            case "j": out += String(repeating: "0", count: 3 - String(dayOfYear).count) + "\(dayOfYear)"
            case "H": out += two(hour)
            case "I": out += two(hour % 12 == 0 ? 12 : hour % 12)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "M": out += two(minute)
            case "S": out += two(second)
            case "f": out += String(format: "%06d", (c.nanosecond ?? 0) / 1000)
            case "Z": out += timeZone.abbreviation(for: date) ?? ""
            case "z":
                let offset = timeZone.secondsFromGMT(for: date) / 60
                out += (offset < 0 ? "-" : "+") + two(abs(offset) / 60) + two(abs(offset) % 60)
            case "%": out += "%"
            default: out += "%" + String(code)
            }
        }
        return out
    }
}
