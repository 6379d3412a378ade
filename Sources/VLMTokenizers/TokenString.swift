import Foundation

/// A vocabulary key compared and hashed by its exact UTF-8 bytes.
///
/// Swift's `String` equality is canonical equivalence, so as `[String: Int]` keys "é" (U+00E9) and "e\u{301}",
/// or "Å" (U+00C5) and the Angstrom sign U+212B, would be one entry; tokenizers (Rust `String` keys) keeps
/// them apart. Byte-level vocabularies (CLIP, GPT-2, Qwen2) cannot contain such pairs, but SentencePiece ones
/// (Llama, Mistral, Gemma) hold raw Unicode tokens, so every vocabulary lookup goes through this type.
public struct TokenString: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) { self.value = value }

    public static func == (a: TokenString, b: TokenString) -> Bool {
        var x = a.value, y = b.value  // withUTF8 is mutating; native strings are not copied
        return x.withUTF8 { px in
            y.withUTF8 { py in
                guard px.count == py.count else { return false }
                guard let p = px.baseAddress, let q = py.baseAddress else { return true }  // both empty
                return memcmp(p, q, px.count) == 0
            }
        }
    }

    public func hash(into hasher: inout Hasher) {
        var copy = value  // withUTF8 is mutating; a native string is not copied
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { value }
}
