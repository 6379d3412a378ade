import Foundation

// spiece.model / tokenizer.model: sentencepiece's ModelProto (sentencepiece_model.proto, proto2), read with a
// hand-written wire-format parser. Field numbers (checked against sentencepiece 0.2.3's .proto):
//   ModelProto      pieces=1 (repeated SentencePiece), trainer_spec=2, normalizer_spec=3, denormalizer_spec=5
//   SentencePiece   piece=1 (string), score=2 (float), type=3 (NORMAL=1 UNKNOWN=2 CONTROL=3 USER_DEFINED=4
//                   UNUSED=5 BYTE=6; default NORMAL)
//   TrainerSpec     model_type=3 (UNIGRAM=1 BPE=2 WORD=3 CHAR=4; default UNIGRAM), treat_whitespace_as_suffix=24,
//                   byte_fallback=35, unk_id=40 bos_id=41 eos_id=42 pad_id=43 (defaults 0 1 2 -1), unk_surface=44
//   NormalizerSpec  name=1, precompiled_charsmap=2 (bytes), add_dummy_prefix=3, remove_extra_whitespaces=4,
//                   escape_whitespaces=5 (all three default true), normalization_rule_tsv=6
// The file is hostile input: every length is checked against what is left, nesting is two levels deep, and the
// checks sentencepiece's ModelInterface::InitializePieces makes (model_interface.cc) are made here, as errors.

/// A parsed sentencepiece model.
public struct SentencePieceModelFile: Sendable {
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public enum Algorithm: Int, Sendable {
        case unigram = 1, bpe = 2, word = 3, char = 4
    }

    public struct Piece: Sendable {
        /// The piece's UTF-8 bytes (sentencepiece works on bytes; a hostile file may hold invalid UTF-8).
        public var bytes: [UInt8]
        public var score: Float = 0
        public var type: PieceType = .normal
        public var string: String { String(decoding: bytes, as: UTF8.self) }
    }

    public struct NormalizerSpec: Sendable {
        public var name = ""
        public var precompiledCharsmap: [UInt8] = []
        public var addDummyPrefix = true
        public var removeExtraWhitespaces = true
        public var escapeWhitespaces = true
        public var ruleTSV = ""
    }

    public var pieces: [Piece] = []
    public var algorithm: Algorithm = .unigram
    public var treatWhitespaceAsSuffix = false
    public var byteFallback = false
    public var unkID = 0, bosID = 1, eosID = 2, padID = -1
    /// What an `<unk>` decodes to (trainer_spec.unk_surface, default " ⁇ ").
    public var unkSurface: [UInt8] = Array(" \u{2047} ".utf8)
    public var normalizer = NormalizerSpec()
    /// True when the file has a denormalizer_spec with rules (decoding through it is not implemented).
    public var hasDenormalizer = false

    // MARK: Reading

    /// Parses `data` (the bytes of `fileName`, which errors name).
    public init(data: Data, fileName: String) throws {
        let bytes = [UInt8](data)
        guard !bytes.isEmpty else { throw TokenizerError.malformedModel(file: fileName, reason: "the file is empty") }
        var reader = ProtoReader(bytes: bytes[...], file: fileName, context: "ModelProto")
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case let (1, .bytes(body)):
                pieces.append(try Self.piece(body, index: pieces.count, file: fileName))
            case let (2, .bytes(body)):
                try readTrainerSpec(body, file: fileName)
            case let (3, .bytes(body)):
                normalizer = try Self.normalizerSpec(body, file: fileName, context: "normalizer_spec")
            case let (5, .bytes(body)):
                let spec = try Self.normalizerSpec(body, file: fileName, context: "denormalizer_spec")
                hasDenormalizer = !spec.precompiledCharsmap.isEmpty || !spec.ruleTSV.isEmpty
            case (1, _), (2, _), (3, _), (5, _):
                throw reader.error("field \(field.number) has the wrong wire type")
            default:
                continue  // unknown fields are skipped, as protobuf does
            }
        }
        try validate(fileName)
    }

    private static func piece(_ body: ArraySlice<UInt8>, index: Int, file: String) throws -> Piece {
        var reader = ProtoReader(bytes: body, file: file, context: "pieces[\(index)]")
        var piece = Piece(bytes: [])
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case let (1, .bytes(b)): piece.bytes = Array(b)
            case let (2, .fixed32(bits)): piece.score = Float(bitPattern: bits)
            case let (3, .varint(v)):
                guard let type = PieceType(rawValue: Int(truncatingIfNeeded: v)) else {
                    throw reader.error("unknown piece type \(Int64(bitPattern: v))")
                }
                piece.type = type
            case (1, _), (2, _), (3, _): throw reader.error("field \(field.number) has the wrong wire type")
            default: continue
            }
        }
        return piece
    }

    private mutating func readTrainerSpec(_ body: ArraySlice<UInt8>, file: String) throws {
        var reader = ProtoReader(bytes: body, file: file, context: "trainer_spec")
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case let (3, .varint(v)):
                guard let type = Algorithm(rawValue: Int(truncatingIfNeeded: v)) else {
                    throw reader.error("unknown model_type \(Int64(bitPattern: v))")
                }
                algorithm = type
            case let (24, .varint(v)): treatWhitespaceAsSuffix = v != 0
            case let (35, .varint(v)): byteFallback = v != 0
            // int32 fields: negative values are 10-byte varints of the sign-extended 64-bit value.
            case let (40, .varint(v)): unkID = Int(Int32(truncatingIfNeeded: v))
            case let (41, .varint(v)): bosID = Int(Int32(truncatingIfNeeded: v))
            case let (42, .varint(v)): eosID = Int(Int32(truncatingIfNeeded: v))
            case let (43, .varint(v)): padID = Int(Int32(truncatingIfNeeded: v))
            case let (44, .bytes(b)): unkSurface = Array(b)
            case (3, _), (24, _), (35, _), (40 ... 44, _): throw reader.error("field \(field.number) has the wrong wire type")
            default: continue
            }
        }
    }

    private static func normalizerSpec(_ body: ArraySlice<UInt8>, file: String, context: String) throws -> NormalizerSpec {
        var reader = ProtoReader(bytes: body, file: file, context: context)
        var spec = NormalizerSpec()
        while let field = try reader.next() {
            switch (field.number, field.value) {
            case let (1, .bytes(b)): spec.name = String(decoding: b, as: UTF8.self)
            case let (2, .bytes(b)): spec.precompiledCharsmap = Array(b)
            case let (3, .varint(v)): spec.addDummyPrefix = v != 0
            case let (4, .varint(v)): spec.removeExtraWhitespaces = v != 0
            case let (5, .varint(v)): spec.escapeWhitespaces = v != 0
            case let (6, .bytes(b)): spec.ruleTSV = String(decoding: b, as: UTF8.self)
            case (1 ... 6, _): throw reader.error("field \(field.number) has the wrong wire type")
            default: continue
            }
        }
        return spec
    }

    // MARK: Validation (model_interface.cc InitializePieces, unigram_model.cc Model::Model)

    private func validate(_ file: String) throws {
        func fail(_ reason: String) -> TokenizerError { .malformedModel(file: file, reason: reason) }
        guard !pieces.isEmpty else { throw fail("no pieces") }
        guard algorithm == .unigram || algorithm == .bpe else {
            throw fail("model_type \(algorithm) is not supported (only UNIGRAM and BPE)")
        }
        var seen: [[UInt8]: Int] = [:]
        var unk: Int? = nil
        var bytesFound = [Bool](repeating: false, count: 256)
        for (i, p) in pieces.enumerated() {
            guard !p.bytes.isEmpty else { throw fail("pieces[\(i)] is empty") }
            guard p.bytes.count < 8000 else { throw fail("pieces[\(i)] is too long (\(p.bytes.count) bytes)") }
            guard !p.bytes.contains(0) else { throw fail("pieces[\(i)] contains a NUL byte") }
            guard p.score.isFinite else { throw fail("pieces[\(i)] '\(p.string)' has score \(p.score)") }
            if let previous = seen[p.bytes] {
                throw fail("pieces[\(i)] '\(p.string)' is already defined at \(previous)")
            }
            seen[p.bytes] = i
            if p.type == .unknown {
                if let unk { throw fail("a second unknown piece at \(i) (the first is \(unk))") }
                unk = i
            }
            if p.type == .byte {
                guard byteFallback else { throw fail("byte piece '\(p.string)' found although byte_fallback is false") }
                guard let b = SentencePieceModelFile.byteValue(p.bytes) else { throw fail("byte piece '\(p.string)' is invalid") }
                bytesFound[Int(b)] = true
            }
        }
        if unk == nil && !byteFallback { throw fail("no unknown piece (type UNKNOWN)") }
        if byteFallback && bytesFound.contains(false) {
            throw fail("byte_fallback is true but the 256 byte pieces <0x00>...<0xFF> are not all there")
        }
    }

    /// "<0x41>" -> 0x41 (sentencepiece's PieceToByte: exactly the 256 strings ByteToPiece makes, upper-case hex).
    static func byteValue(_ piece: [UInt8]) -> UInt8? {
        guard piece.count == 6, piece[0] == UInt8(ascii: "<"), piece[1] == UInt8(ascii: "0"),
              piece[2] == UInt8(ascii: "x"), piece[5] == UInt8(ascii: ">") else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0") ... UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "A") ... UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        guard let hi = hex(piece[3]), let lo = hex(piece[4]) else { return nil }
        return hi << 4 | lo
    }

    /// 0x41 -> "<0x41>" (ByteToPiece, `<0x%02X>`).
    static func bytePiece(_ b: UInt8) -> [UInt8] { Array(BPEModel.byteTokens[Int(b)].utf8) }
}

// MARK: - Protobuf wire format

/// Reads the fields of one message. Groups (wire types 3/4) are rejected; ModelProto has none.
struct ProtoReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int
    let file: String
    let context: String

    init(bytes: ArraySlice<UInt8>, file: String, context: String) {
        self.bytes = bytes
        position = bytes.startIndex
        self.file = file
        self.context = context
    }

    func error(_ reason: String) -> TokenizerError {
        .malformedModel(file: file, reason: "\(context) at byte \(position): \(reason)")
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> (number: Int, value: Value)? {
        guard position < bytes.endIndex else { return nil }
        let tag = try varint("a field tag")
        let number = tag >> 3
        guard number > 0 && number < (1 << 29) else { throw error("invalid field number \(number)") }
        switch tag & 7 {
        case 0: return (Int(number), .varint(try varint("field \(number)")))
        case 1: return (Int(number), .fixed64(try fixed(8, number: Int(number))))
        case 2:
            let length = try varint("the length of field \(number)")
            guard length <= UInt64(bytes.endIndex - position) else {
                throw error("field \(number) claims \(length) bytes but only \(bytes.endIndex - position) are left (truncated file?)")
            }
            let start = position
            position += Int(length)
            return (Int(number), .bytes(bytes[start ..< position]))
        case 5: return (Int(number), .fixed32(UInt32(truncatingIfNeeded: try fixed(4, number: Int(number)))))
        default: throw error("unsupported wire type \(tag & 7) for field \(number) (corrupt file?)")
        }
    }

    private mutating func varint(_ what: String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex else { throw error("truncated varint (\(what))") }
            let b = bytes[position]
            position += 1
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            guard shift < 64 else { throw error("varint longer than 10 bytes (\(what))") }
        }
    }

    private mutating func fixed(_ count: Int, number: Int) throws -> UInt64 {
        guard bytes.endIndex - position >= count else { throw error("truncated \(count)-byte value of field \(number)") }
        var v: UInt64 = 0
        for i in 0 ..< count { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }  // little-endian
        position += count
        return v
    }
}
