/// String operations on Unicode scalars, as Rust's `str` does them. Swift's own `replacingOccurrences`,
/// `hasPrefix` and `Character` iteration work on grapheme clusters under canonical equivalence, so "</w>"
/// followed by a combining mark would not match, and "e\u{301}" would equal "é".
extension String {
    func replacingScalars(_ target: String, with replacement: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty else { return self }
        let s = Array(unicodeScalars)
        var out = String.UnicodeScalarView()
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
        return String(out)
    }

    func hasScalarPrefix(_ prefix: String) -> Bool { unicodeScalars.starts(with: prefix.unicodeScalars) }

    func droppingScalarPrefix(_ count: Int) -> String { String(String.UnicodeScalarView(unicodeScalars.dropFirst(count))) }
}
