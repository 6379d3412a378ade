import Foundation

// Request and response bodies of the index endpoints (/v1/search, /v1/index).

/// `POST /v1/search`:
/// `{"model"?: "...", "query": "text" | {"text"?: "...", "image"?: "<base64 or data URL>"}, "top_k"?: 10,
///   "min_score"?: 0.2, "plus"?: ["red"], "minus"?: ["blurry"]}`.
/// Query arithmetic as `vlm index search`: every term is unit-normalised, text/image/plus count +1, minus -1,
/// and the sum is renormalised.
struct SearchRequest: Decodable, Sendable {
    let model: String?
    let query: SearchQuery
    let topK: Int?
    let minScore: Float?
    let plus: [String]?
    let minus: [String]?

    enum CodingKeys: String, CodingKey {
        case model, query, plus, minus
        case topK = "top_k"
        case minScore = "min_score"
    }
}

/// A bare string (text), or an object with `text` and/or `image` (`image_url` also accepted, as a string or
/// `{"url": ...}`).
struct SearchQuery: Decodable, Sendable {
    let text: String?
    let image: String?

    private enum Keys: String, CodingKey { case text, image, imageURL = "image_url" }

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let text = try? single.decode(String.self) {
            self.text = text
            image = nil
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        image = try decodeImageReference(c, image: .image, imageURL: .imageURL)
    }
}

/// One index entry as clients see it (search hit, added entry).
struct IndexHit: Encodable, Sendable {
    /// The file's row id: stable while the entry exists (re-embedding keeps it).
    let id: Int64
    /// Cosine similarity with the query (search only).
    let score: Float?
    /// Relative to the root holding the file (uploads: the stored file name); just the file name when the
    /// file is under no root.
    let path: String
    /// The name given at upload, if any.
    let name: String?
    /// `/v1/index/{id}/image` when the image can be served (under a root); absent otherwise.
    let url: String?
    /// `/v1/index/{id}/thumbnail` (a small JPEG of any indexed format) when the image can be served.
    var thumbnail: String? = nil
    /// POST /v1/index only: "added", "updated" (re-embedded) or "unchanged".
    var status: String?
}

struct SearchResponse: Encodable, Sendable {
    let object = "list"
    let model: String
    let data: [IndexHit]
    let indexSize: Int
    let strategy: String

    enum CodingKeys: String, CodingKey {
        case object, model, data, strategy
        case indexSize = "index_size"
    }
}

/// `POST /v1/index`: `{"images"?: ["<base64 or data URL>" | {"image": "...", "name"?: "cat.jpg"}],
///   "paths"?: ["file or directory, absolute or relative to a --root"]}`.
/// Uploads are stored under the uploads directory, named by content hash (the same image twice is one entry);
/// paths must resolve (symlinks followed) to JPEG/PNG files inside a --root; directories are walked
/// recursively for *.jpg/*.jpeg/*.png. All or nothing: any bad item fails the request and nothing is written.
struct IndexAddRequest: Decodable, Sendable {
    let model: String?
    let images: [UploadItem]?
    let paths: [String]?
}

struct UploadItem: Decodable, Sendable {
    let image: String
    let name: String?

    private enum Keys: String, CodingKey { case image, name }

    init(from decoder: Decoder) throws {
        if let single = try? decoder.singleValueContainer(), let value = try? single.decode(String.self) {
            image = value
            name = nil
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        image = try c.decode(String.self, forKey: .image)
        name = try c.decodeIfPresent(String.self, forKey: .name)
    }
}

struct IndexAddResponse: Encodable, Sendable {
    let object = "list"
    /// In request order: images first, then the files of each path.
    let data: [IndexHit]
    let indexSize: Int

    enum CodingKeys: String, CodingKey {
        case object, data
        case indexSize = "index_size"
    }
}

struct IndexDeleteResponse: Encodable, Sendable {
    let id: Int64
    let object = "index.entry"
    let deleted = true
    let indexSize: Int

    enum CodingKeys: String, CodingKey {
        case id, object, deleted
        case indexSize = "index_size"
    }
}
