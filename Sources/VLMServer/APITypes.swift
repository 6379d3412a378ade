import Foundation

// Request and response bodies. Requests decode leniently where OpenAI clients differ (optional `model`),
// strictly where a silent guess would be wrong (unknown part types, token-id arrays).

// MARK: Embeddings

/// `POST /v1/embeddings`.
///
/// `input` is one of:
/// - `"text"`: one text;
/// - `["t1", "t2", ...]`: several texts;
/// - `{"image": "<base64 or data URL>"}` or `{"text": "..."}`: one part;
/// - `[part, part, ...]`: a mix, where each part is a string (text) or an object:
///   `{"type": "text", "text": "..."}`, `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`
///   (`image_url` may also be the URL string itself), or `{"image": "<base64 or data URL>"}`.
///
/// Images are JPEG or PNG, as a data URL or bare base64; remote http(s) URLs are refused (the server never
/// fetches on a client's behalf). Output order follows input order; `index` is the position in `input`.
/// OpenAI's token-id arrays (`[1, 2, 3]`) are refused: CLIP's tokenizer is the server's business.
struct EmbeddingsRequest: Decodable, Sendable {
    let model: String?
    let input: EmbeddingInput
    /// "float" (default) or "base64" (little-endian float32, as OpenAI's Python client expects).
    let encodingFormat: String?
    /// Accepted only when equal to the model's width: CLIP embeddings are not Matryoshka-truncatable.
    let dimensions: Int?

    enum CodingKeys: String, CodingKey {
        case model, input, dimensions
        case encodingFormat = "encoding_format"
    }
}

/// One input item.
public enum InputPart: Sendable, Equatable {
    case text(String)
    /// Base64 or data URL, decoded later (so decoding errors get their own status).
    case image(String)
}

extension InputPart {
    /// A bare input string: an image when it is a base64 data URL of an image (`data:image/...;base64,...`,
    /// case-insensitive, leading whitespace allowed: what clients send for images), else text. Embedding such a
    /// string as text would silently give a meaningless vector (issue 15).
    init(string: String) {
        self = Self.isImageDataURL(string) ? .image(string) : .text(string)
    }

    static func isImageDataURL(_ string: String) -> Bool {
        let utf8 = string.utf8
        guard let start = utf8.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else { return false }
        // The header is short: look for the comma in the first 256 bytes only (payloads are megabytes).
        let head = utf8[start...].prefix(256)
        guard let comma = head.firstIndex(of: UInt8(ascii: ",")) else { return false }
        let header = String(decoding: head[..<comma], as: UTF8.self).lowercased()
        return header.hasPrefix("data:image/") && header.split(separator: ";").dropFirst().contains("base64")
    }
}

struct EmbeddingInput: Decodable, Sendable {
    let parts: [InputPart]

    init(parts: [InputPart]) { self.parts = parts }

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            parts = [InputPart(string: text)]
        } else if let array = try? container.decode([JSONAny].self) {
            if !array.isEmpty, (try? container.decode([Int].self)) != nil || (try? container.decode([[Int]].self)) != nil {
                throw DecodingError.dataCorruptedError(in: container, debugDescription:
                    "token-id arrays are not supported; send texts as strings")
            }
            // Not `try?`: a bad element's error names its index and field.
            parts = try container.decode([PartObject].self).map(\.part)
        } else {
            parts = [try container.decode(PartObject.self).part]
        }
    }
}

/// A part in JSON: a bare string (text) or an object naming its kind.
struct PartObject: Decodable, Sendable {
    let part: InputPart

    private enum Keys: String, CodingKey { case type, text, image, imageURL = "image_url" }

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            part = InputPart(string: text)
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        let type = try c.decodeIfPresent(String.self, forKey: .type)
        func imageURL() throws -> String {
            if let s = try? c.decode(String.self, forKey: .imageURL) { return s }
            return try c.decode(ImageURLObject.self, forKey: .imageURL).url
        }
        switch type {
        case "text"?: part = .text(try c.decode(String.self, forKey: .text))
        case "image_url"?: part = .image(try imageURL())
        case "image"?: part = .image(try c.decode(String.self, forKey: .image))
        case nil:
            if c.contains(.text) { part = .text(try c.decode(String.self, forKey: .text)) }
            else if c.contains(.image) { part = .image(try c.decode(String.self, forKey: .image)) }
            else if c.contains(.imageURL) { part = .image(try imageURL()) }
            else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "an input object needs 'text', 'image' or 'image_url'"))
            }
        case let other?:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [Keys.type], debugDescription:
                "unknown input type '\(other)' (expected text, image_url or image)"))
        }
    }
}

/// Any JSON value (used only to tell "an array of something" from "not an array").
struct JSONAny: Decodable {
    init(from decoder: Decoder) throws {}
}

struct EmbeddingsResponse: Encodable, Sendable {
    let object = "list"
    let data: [EmbeddingObject]
    let model: String
    let usage: Usage
}

struct EmbeddingObject: Encodable, Sendable {
    let object = "embedding"
    let index: Int
    let embedding: EmbeddingValue
}

enum EmbeddingValue: Encodable, Sendable {
    case floats([Float])
    case base64(String)

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .floats(let v): try c.encode(v)
        case .base64(let s): try c.encode(s)
        }
    }

    /// OpenAI's base64 format: the float32 values' little-endian bytes.
    static func base64(of vector: [Float]) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(vector.count * 4)
        for x in vector { withUnsafeBytes(of: x.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        return Data(bytes).base64EncodedString()
    }
}

/// Tokens are text tokens including BOS/EOS; images count 0 (they have no tokens in the OpenAI sense).
struct Usage: Codable, Sendable {
    let promptTokens: Int
    let totalTokens: Int

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case totalTokens = "total_tokens"
    }
}

// MARK: Classify

/// `POST /v1/classify`: zero-shot classification of one image against labels.
/// `{"model"?: "...", "image": "<base64 or data URL>", "labels": ["cat", "dog"], "template"?: "a photo of a {}.",
///   "top_k"?: N}`; `image_url` (string or `{"url": ...}`) is accepted in place of `image`.
struct ClassifyRequest: Decodable, Sendable {
    let model: String?
    let image: String
    let labels: [String]
    let template: String?
    let topK: Int?

    private enum Keys: String, CodingKey { case model, image, labels, template, topK = "top_k", imageURL = "image_url" }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        guard let image = try decodeImageReference(c, image: .image, imageURL: .imageURL) else {
            throw DecodingError.keyNotFound(Keys.image, .init(codingPath: c.codingPath, debugDescription: "no image"))
        }
        self.image = image
        labels = try c.decode([String].self, forKey: .labels)
        template = try c.decodeIfPresent(String.self, forKey: .template)
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
    }
}

struct ClassifyResponse: Encodable, Sendable {
    let object = "classification"
    let model: String
    /// "softmax" (probabilities over the labels sum to 1, CLIP) or "sigmoid" (each label on its own, SigLIP).
    let scoring: String
    /// Best first.
    let data: [Score]
    let usage: Usage

    struct Score: Encodable, Sendable {
        let label: String
        let probability: Float
        let logit: Float
    }
}

// MARK: Models, health

struct ModelObject: Encodable, Sendable {
    let id: String
    let object = "model"
    let created: Int
    let ownedBy = "swiftvlm"
    /// model_type: clip, siglip, siglip2.
    let type: String
    let kind = "embedding"
    /// "softmax" or "sigmoid" (what /v1/classify's probabilities are).
    let scoring: String
    let embeddingDimensions: Int
    let maxInputTokens: Int
    /// 0 when the input size depends on the image (NaFlex).
    let imageSize: Int
    /// Weight precision the model runs.
    let precision: String

    enum CodingKeys: String, CodingKey {
        case id, object, created, type, kind, scoring, precision
        case ownedBy = "owned_by"
        case embeddingDimensions = "embedding_dimensions"
        case maxInputTokens = "max_input_tokens"
        case imageSize = "image_size"
    }
}

/// One entry of /v1/models: an embedding or a chat model.
enum AnyModelObject: Encodable, Sendable {
    case embedding(ModelObject)
    case chat(ChatModelObject)

    func encode(to encoder: Encoder) throws {
        switch self {
        case .embedding(let m): try m.encode(to: encoder)
        case .chat(let m): try m.encode(to: encoder)
        }
    }
}

struct ModelList: Encodable, Sendable {
    let object = "list"
    let data: [AnyModelObject]
}

struct HealthResponse: Encodable, Sendable {
    let status: String
    /// The first model (the default of its kind's endpoints) and its kind.
    let model: String
    let kind: String
    /// The first embedding model's width; nil on a chat-only server.
    let dimensions: Int?
    /// Every served model, in --model order.
    let models: [Model]
    /// nil until the server has an index; the web page switches to search when it is set.
    let index: IndexInfo?
    let queue: [String: Int]
    /// Whether a chat model is generating; nil without chat models.
    let generating: Bool?

    struct Model: Encodable, Sendable {
        let id: String
        let kind: String
        /// The vision task tokens the model runs; nil (omitted) for models that run none.
        var tasks: [String]? = nil
    }

    struct IndexInfo: Encodable, Sendable {
        /// The database's file name.
        let path: String
        let size: Int
        /// The fingerprint of the model that made the index (checkpoint name / config hash / dim).
        let model: String
        /// "exact" or "hnsw".
        let strategy: String
    }
}

/// An image field of a request object: `image` (data URL or base64), or OpenAI's `image_url` as a string or as
/// `{"url": ...}`; nil when neither key is present. Shared by every request type that takes an image.
func decodeImageReference<K: CodingKey>(_ c: KeyedDecodingContainer<K>, image: K, imageURL: K) throws -> String? {
    if c.contains(image) { return try c.decode(String.self, forKey: image) }
    if let s = try? c.decode(String.self, forKey: imageURL) { return s }
    if c.contains(imageURL) { return try c.decode(ImageURLObject.self, forKey: imageURL).url }
    return nil
}

/// `{"url": ...}`, the object form of OpenAI's `image_url`.
struct ImageURLObject: Decodable { let url: String }
