import Foundation

/// sentencepiece's precompiled_charsmap (normalizer.cc DecodePrecompiledCharsMap): a little-endian u32 trie size,
/// a Darts-clone double array of that many bytes (u32 units), then NUL-separated replacement strings the trie's
/// values point into. The same blob is tokenizers' `Precompiled` normalizer (base64 in tokenizer.json); the two
/// libraries walk it differently, so both walks are here: `sentencePieceNormalizePrefix` (longest rule, the C++
/// NormalizePrefix) and `tokenizersNormalize` (per grapheme, first rule: spm_precompiled's `normalize_string`).
public struct PrecompiledCharsmap: Sendable {
    let units: [UInt32]
    let normalized: [UInt8]

    // MARK: Parsing

    /// - Parameters: `file`/`key` name the source in errors.
    public init(blob: [UInt8], file: String, key: String) throws {
        func fail(_ reason: String) -> TokenizerError { .invalidValue(file: file, key: key, reason: reason) }
        guard blob.count > 4 else { throw fail("precompiled charsmap of \(blob.count) bytes is too short") }
        let trieSize = Int(UInt32(blob[0]) | UInt32(blob[1]) << 8 | UInt32(blob[2]) << 16 | UInt32(blob[3]) << 24)
        // normalizer.cc: the trie must leave room for the strings and be a whole number of 256-unit blocks.
        guard trieSize < blob.count - 4 else { throw fail("trie size \(trieSize) exceeds the blob (\(blob.count) bytes)") }
        guard trieSize >= 1024 && trieSize % 1024 == 0 else { throw fail("trie size \(trieSize) is not a multiple of 1024") }
        var units = [UInt32](repeating: 0, count: trieSize / 4)
        for i in 0 ..< units.count {
            let o = 4 + 4 * i
            units[i] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        self.units = units
        normalized = Array(blob[(4 + trieSize)...])
    }

    // MARK: Darts-clone double array (darts.h DoubleArrayImpl::commonPrefixSearch)

    @inline(__always) private static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }
    @inline(__always) private static func value(_ u: UInt32) -> Int { Int(u & 0x7FFF_FFFF) }
    @inline(__always) private static func label(_ u: UInt32) -> UInt32 { u & 0x8000_00FF }
    @inline(__always) private static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }

    /// Every key that is a prefix of `key`, shortest first, as (length in bytes, value). Indices are checked:
    /// a corrupt array ends the search instead of reading out of bounds.
    func commonPrefixSearch<C: Collection>(_ key: C) -> [(length: Int, value: Int)] where C.Element == UInt8 {
        var results: [(length: Int, value: Int)] = []
        guard let root = units.first else { return results }
        var node = Self.offset(root)
        var length = 0
        for c in key {
            node ^= Int(c)
            guard node >= 0 && node < units.count else { return results }
            let unit = units[node]
            if Self.label(unit) != UInt32(c) { return results }
            node ^= Self.offset(unit)
            length += 1
            if Self.hasLeaf(unit) {
                guard node < units.count else { return results }
                results.append((length, Self.value(units[node])))
            }
        }
        return results
    }

    /// The replacement string starting at `value` (up to its NUL), nil if `value` is outside the strings.
    func replacement(at value: Int) -> ArraySlice<UInt8>? {
        guard value >= 0 && value < normalized.count else { return nil }
        var end = value
        while end < normalized.count && normalized[end] != 0 { end += 1 }
        return normalized[value ..< end]
    }

    // MARK: sentencepiece (normalizer.cc NormalizePrefix)

    /// The longest rule matching a prefix of `input[start...]`: (replacement, bytes consumed); nil when none.
    func longestRule(_ input: [UInt8], from start: Int) -> (replacement: ArraySlice<UInt8>, consumed: Int)? {
        var longest: (length: Int, value: Int)? = nil
        // The C++ keeps at most kMaxTrieResultsSize (32) results; real charsmaps have far fewer per prefix.
        for match in commonPrefixSearch(input[start...]).prefix(32) where match.length > (longest?.length ?? 0) {
            longest = match
        }
        guard let longest, longest.length <= input.count - start, let rep = replacement(at: longest.value) else { return nil }
        return (rep, longest.length)
    }

    // MARK: tokenizers (spm_precompiled normalize_string)

    /// The first (shortest) rule for a prefix of `chunk`, tokenizers' `Precompiled::transform`.
    private func transform(_ chunk: [UInt8]) -> ArraySlice<UInt8>? {
        guard let first = commonPrefixSearch(chunk).first else { return nil }
        return replacement(at: first.value)
    }

    /// tokenizers' Precompiled normalizer: each extended grapheme cluster shorter than 6 UTF-8 bytes is looked up
    /// whole (and replaced whole by its first rule's string); otherwise each char is looked up alone.
    public func tokenizersNormalize(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for grapheme in text {
            let bytes = Array(String(grapheme).utf8)
            if bytes.count < 6, let rep = transform(bytes) {
                out += rep
                continue
            }
            for scalar in grapheme.unicodeScalars {
                let part = Array(String(scalar).utf8)
                if let rep = transform(part) { out += rep } else { out += part }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// tokenizer.json's `{"type": "Precompiled", "precompiled_charsmap": "<base64>"}`. An empty or missing charsmap is
/// the identity, as in tokenizers.
public struct PrecompiledNormalizer: Normalizer, Decodable {
    public let charsmap: PrecompiledCharsmap?

    private enum CodingKeys: String, CodingKey { case precompiledCharsmap = "precompiled_charsmap" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let key = decoder.keyPath + ".precompiled_charsmap"
        guard let encoded = try c.decodeIfPresent(String.self, forKey: .precompiledCharsmap), !encoded.isEmpty else {
            charsmap = nil
            return
        }
        guard let data = Data(base64Encoded: encoded) else {
            throw TokenizerError.invalidValue(file: decoder.fileName, key: key, reason: "not valid base64")
        }
        let blob = [UInt8](data)
        // spm_precompiled requires the strings to be UTF-8 (String::from_utf8).
        let map = try PrecompiledCharsmap(blob: blob, file: decoder.fileName, key: key)
        guard isValidUTF8(map.normalized) else {
            throw TokenizerError.invalidValue(file: decoder.fileName, key: key, reason: "replacement strings are not UTF-8")
        }
        charsmap = map
    }

    public func normalize(_ text: String) -> String { charsmap?.tokenizersNormalize(text) ?? text }
}
