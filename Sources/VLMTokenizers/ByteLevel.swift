/// GPT-2's reversible byte <-> printable-character table (`bytes_to_unicode` in OpenAI's encoder.py and
/// tokenizers' byte_level.rs): the 188 printable Latin-1 bytes map to themselves, the other 68 bytes to
/// U+0100 upward in byte order, so BPE never sees whitespace or control characters.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var printable = [Bool](repeating: false, count: 256)
        for b in 0x21 ... 0x7E { printable[b] = true }
        for b in 0xA1 ... 0xAC { printable[b] = true }
        for b in 0xAE ... 0xFF { printable[b] = true }
        var next: UInt32 = 256
        for b in 0 ..< 256 {
            if printable[b] {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " "  // U+0100...U+0143 are all valid scalars
                next += 1
            }
        }
        return table
    }()

    /// Inverse table indexed by scalar value (all values are below 0x144); -1 where no byte maps.
    static let scalarToByte: [Int16] = {
        var inverse = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in byteToScalar.enumerated() { inverse[Int(scalar.value)] = Int16(byte) }
        return inverse
    }()

    @inline(__always)
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < scalarToByte.count else { return nil }
        let b = scalarToByte[v]
        return b < 0 ? nil : UInt8(b)
    }

    /// The UTF-8 bytes of `scalars`, each mapped to its table character.
    static func encode(_ scalars: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(scalars.count)
        for s in scalars {
            // UTF-8 by hand (RFC 3629 bit layout): the hot loop of every byte-level tokenizer.
            let v = s.value
            if v < 0x80 {
                out.append(byteToScalar[Int(v)])
            } else if v < 0x800 {
                out.append(byteToScalar[Int(0xC0 | (v >> 6))])
                out.append(byteToScalar[Int(0x80 | (v & 0x3F))])
            } else if v < 0x10000 {
                out.append(byteToScalar[Int(0xE0 | (v >> 12))])
                out.append(byteToScalar[Int(0x80 | ((v >> 6) & 0x3F))])
                out.append(byteToScalar[Int(0x80 | (v & 0x3F))])
            } else {
                out.append(byteToScalar[Int(0xF0 | (v >> 18))])
                out.append(byteToScalar[Int(0x80 | ((v >> 12) & 0x3F))])
                out.append(byteToScalar[Int(0x80 | ((v >> 6) & 0x3F))])
                out.append(byteToScalar[Int(0x80 | (v & 0x3F))])
            }
        }
        return out
    }
}
