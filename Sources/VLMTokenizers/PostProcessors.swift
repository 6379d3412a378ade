import Foundation

/// tokenizer.json's `post_processor` stage for a single sequence: wraps the model ids in special tokens.
public protocol PostProcessor: Sendable {
    func process(_ ids: [Int]) -> [Int]
    /// How many ids `process` adds (tokenizers' `added_tokens(is_pair: false)`), which truncation reserves.
    var addedTokenCount: Int { get }
}

public enum PostProcessorType: String, Sendable, CaseIterable {
    case roberta = "RobertaProcessing"
    case bert = "BertProcessing"
    case template = "TemplateProcessing"
    case byteLevel = "ByteLevel"
    case sequence = "Sequence"
}

struct AnyPostProcessor: Decodable {
    let value: any PostProcessor

    private enum CodingKeys: String, CodingKey { case type }

    init(from decoder: Decoder) throws {
        let typeName = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        guard let type = PostProcessorType(rawValue: typeName) else {
            throw TokenizerError.unsupportedType(file: decoder.fileName, key: decoder.keyPath + ".type", type: typeName)
        }
        switch type {
        case .roberta, .bert: value = try ClsSepProcessor(from: decoder)
        case .template: value = try TemplateProcessor(from: decoder)
        case .byteLevel: value = IdentityProcessor()
        case .sequence: value = try SequenceProcessor(from: decoder)
        }
    }
}

/// `["<s>", 0]` as tokenizer.json writes cls/sep.
struct TokenAndID: Decodable, Sendable {
    let token: String
    let id: Int

    init(token: String, id: Int) {
        self.token = token
        self.id = id
    }

    init(from decoder: Decoder) throws {
        var container = try decoder.unkeyedContainer()
        token = try container.decode(String.self)
        id = try container.decode(Int.self)
    }
}

/// RobertaProcessing and BertProcessing agree for one sequence: `cls ids sep` (they differ on pairs only).
public struct ClsSepProcessor: PostProcessor, Decodable {
    public let cls: (token: String, id: Int)
    public let sep: (token: String, id: Int)

    private enum CodingKeys: String, CodingKey { case cls, sep }

    public init(cls: (String, Int), sep: (String, Int)) {
        self.cls = (cls.0, cls.1)
        self.sep = (sep.0, sep.1)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let c = try container.decode(TokenAndID.self, forKey: .cls)
        let s = try container.decode(TokenAndID.self, forKey: .sep)
        cls = (c.token, c.id)
        sep = (s.token, s.id)
    }

    public func process(_ ids: [Int]) -> [Int] { [cls.id] + ids + [sep.id] }
    public var addedTokenCount: Int { 2 }
}

/// TemplateProcessing's `single` template: `{"SpecialToken": {"id": "<s>"}}` pieces expand to their ids,
/// `{"Sequence": {"id": "A"}}` to the model ids.
public struct TemplateProcessor: PostProcessor, Decodable {
    enum Piece: Sendable {
        case special([Int])
        case sequence
    }

    let single: [Piece]

    init(single: [Piece]) { self.single = single }

    private enum CodingKeys: String, CodingKey { case single, specialTokens = "special_tokens" }
    private enum PieceKeys: String, CodingKey { case specialToken = "SpecialToken", sequence = "Sequence" }
    private enum IDKeys: String, CodingKey { case id }
    private struct SpecialEntry: Decodable { let ids: [Int] }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let specials = try container.decodeIfPresent([String: SpecialEntry].self, forKey: .specialTokens) ?? [:]
        var pieces: [Piece] = []
        var list = try container.nestedUnkeyedContainer(forKey: .single)
        while !list.isAtEnd {
            let index = list.currentIndex
            let item = try list.nestedContainer(keyedBy: PieceKeys.self)
            if item.contains(.sequence) {
                pieces.append(.sequence)
            } else if item.contains(.specialToken) {
                let name = try item.nestedContainer(keyedBy: IDKeys.self, forKey: .specialToken).decode(String.self, forKey: .id)
                guard let entry = specials[name] else {
                    throw TokenizerError.invalidValue(
                        file: decoder.fileName, key: decoder.keyPath + ".single[\(index)]",
                        reason: "special token '\(name)' missing from special_tokens")
                }
                pieces.append(.special(entry.ids))
            } else {
                throw TokenizerError.malformedJSON(
                    file: decoder.fileName, key: decoder.keyPath + ".single[\(index)]",
                    reason: "expected 'SpecialToken' or 'Sequence'")
            }
        }
        single = pieces
    }

    public func process(_ ids: [Int]) -> [Int] {
        single.flatMap { piece -> [Int] in
            switch piece {
            case let .special(special): return special
            case .sequence: return ids
            }
        }
    }

    public var addedTokenCount: Int {
        single.reduce(0) { count, piece in
            if case let .special(ids) = piece { return count + ids.count }
            return count
        }
    }
}

/// ByteLevel post-processing only trims offsets; ids pass through.
public struct IdentityProcessor: PostProcessor {
    public func process(_ ids: [Int]) -> [Int] { ids }
    public var addedTokenCount: Int { 0 }
}

public struct SequenceProcessor: PostProcessor, Decodable {
    public let processors: [any PostProcessor]

    private enum CodingKeys: String, CodingKey { case processors }

    public init(from decoder: Decoder) throws {
        processors = try decoder.container(keyedBy: CodingKeys.self)
            .decode([AnyPostProcessor].self, forKey: .processors).map(\.value)
    }

    public func process(_ ids: [Int]) -> [Int] { processors.reduce(ids) { $1.process($0) } }
    public var addedTokenCount: Int { processors.reduce(0) { $0 + $1.addedTokenCount } }
}
