/// String operations on Unicode scalars, as Rust's `str` does them. Swift's own `replacingOccurrences`,
/// `hasPrefix` and `Character` iteration work on grapheme clusters under canonical equivalence, so "</w>"
/// followed by a combining mark would not match, and "e\u{301}" would equal "é".
extension String {
    func replacingScalars(_ target: String, with replacement: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty else { return self }
        let s = Array(unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < s.count {
            if s[i] == t[0], i + t.count <= s.count, s[i ..< i + t.count].elementsEqual(t) {
                out.append(contentsOf: replacement.unicodeScalars)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return makeString(out)
    }

    func hasScalarPrefix(_ prefix: String) -> Bool { unicodeScalars.starts(with: prefix.unicodeScalars) }

    func droppingScalarPrefix(_ count: Int) -> String { makeString(unicodeScalars.dropFirst(count)) }
}

/// A String from scalars via one UTF-8 buffer. Appending to `String.UnicodeScalarView` piecewise copies the
/// whole string on each append (measured quadratic on long inputs), so builders collect scalars and call this.
func makeString<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(scalars.underestimatedCount)
    for s in scalars {
        let v = s.value
        if v < 0x80 {
            bytes.append(UInt8(v))
        } else if v < 0x800 {
            bytes.append(UInt8(0xC0 | (v >> 6)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            bytes.append(UInt8(0xE0 | (v >> 12)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            bytes.append(UInt8(0xF0 | (v >> 18)))
            bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            bytes.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
