import Foundation
import VLMIndex

/// The collection layout SwiftVLM writes: one row per file, keyed by a hash of its path (so an upsert of the
/// same file replaces its row and writing a batch twice leaves it once), with the catalogue as scalar fields.
enum Schema {
    static let id = "id", path = "path", size = "size", mtime = "mtime", hash = "content_hash"
    static let model = "model", addedAt = "added_at", metadata = "metadata", vector = "vector"
    static let scalars = [id, path, size, mtime, hash, model, addedAt, metadata]
    static let maxPath = 4096, maxMetadata = 8192

    /// The description marks the collection as SwiftVLM's and records the model (checked on every open).
    struct Description: Codable, Equatable {
        var format: String
        var fingerprint: String
        var dim: Int
        enum CodingKeys: String, CodingKey { case format = "swiftvlm_index", fingerprint, dim }
        static let currentFormat = "1"

        init(identity: ModelIdentity) {
            (format, fingerprint, dim) = (Self.currentFormat, identity.fingerprint, identity.dim)
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            format = try c.decodeIfPresent(String.self, forKey: .format) ?? ""
            fingerprint = try c.decodeIfPresent(String.self, forKey: .fingerprint) ?? ""
            dim = try c.decodeIfPresent(Int.self, forKey: .dim) ?? 0
        }

        var text: String {
            let data = (try? JSONEncoder().encode(self)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }

        static func parse(_ text: String) -> Description? {
            guard let d = try? JSONDecoder().decode(Description.self, from: Data(text.utf8)), d.format == currentFormat, d.dim > 0 else { return nil }
            return d
        }
    }

    static func collection(name: String, identity: ModelIdentity) -> Milvus_Proto_Schema_CollectionSchema {
        func field(_ name: String, _ type: Milvus_Proto_Schema_DataType, primary: Bool = false, params: [String: String] = [:]) -> Milvus_Proto_Schema_FieldSchema {
            var f = Milvus_Proto_Schema_FieldSchema()
            (f.name, f.dataType, f.isPrimaryKey, f.autoID) = (name, type, primary, false)
            f.typeParams = params.map { p in KeyValue.with { ($0.key, $0.value) = (p.key, p.value) } }
            return f
        }
        var s = Milvus_Proto_Schema_CollectionSchema()
        s.name = name
        s.description_p = Description(identity: identity).text
        s.fields = [
            field(id, .int64, primary: true), field(path, .varChar, params: ["max_length": "\(maxPath)"]),
            field(size, .int64), field(mtime, .double), field(hash, .varChar, params: ["max_length": "128"]),
            field(model, .varChar, params: ["max_length": "512"]), field(addedAt, .double),
            field(metadata, .varChar, params: ["max_length": "\(maxMetadata)"]), field(vector, .floatVector, params: ["dim": "\(identity.dim)"]),
        ]
        return s
    }

    /// The primary key of a path: the first 63 bits of SHA-256(path), the same on every worker.
    static func key(path: String) -> Int64 {
        let hex = SHA256Hasher.hex(Data(path.utf8))
        return Int64(bitPattern: (UInt64(hex.prefix(16), radix: 16) ?? 0) & 0x7FFF_FFFF_FFFF_FFFF)
    }

    /// A Milvus string literal (the expression parser unquotes like Go's strconv.Unquote).
    static func literal(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// One stored row, as read back.
struct Row: Sendable {
    var id: Int64
    var path: String
    var size: Int64
    var mtime: Double
    var hash: String
    var model: String
    var addedAt: Double
    var metadata: String
    var vector: [Float]?

    var file: StoredFile {
        StoredFile(fileID: id, embeddingID: id, path: path, size: size, mtime: mtime, contentHash: hash, addedAt: addedAt,
                   metadata: metadata.isEmpty ? nil : metadata)
    }
}

/// Column-wise encoding and decoding of rows (Milvus transfers data as one FieldData per column).
enum Columns {
    static func long(_ name: String, _ values: [Int64]) -> FieldData {
        FieldData.with { f in
            (f.fieldName, f.type) = (name, .int64)
            f.scalars = .with { $0.longData = .with { $0.data = values } }
        }
    }

    static func double(_ name: String, _ values: [Double]) -> FieldData {
        FieldData.with { f in
            (f.fieldName, f.type) = (name, .double)
            f.scalars = .with { $0.doubleData = .with { $0.data = values } }
        }
    }

    static func string(_ name: String, _ values: [String]) -> FieldData {
        FieldData.with { f in
            (f.fieldName, f.type) = (name, .varChar)
            f.scalars = .with { $0.stringData = .with { $0.data = values } }
        }
    }

    static func vectors(_ name: String, dim: Int, _ flat: [Float]) -> FieldData {
        FieldData.with { f in
            (f.fieldName, f.type) = (name, .floatVector)
            f.vectors = .with { v in
                v.dim = Int64(dim)
                v.floatVector = .with { $0.data = flat }
            }
        }
    }

    static func encode(_ rows: [Row], dim: Int) -> [FieldData] {
        [long(Schema.id, rows.map(\.id)), string(Schema.path, rows.map(\.path)), long(Schema.size, rows.map(\.size)),
         double(Schema.mtime, rows.map(\.mtime)), string(Schema.hash, rows.map(\.hash)), string(Schema.model, rows.map(\.model)),
         double(Schema.addedAt, rows.map(\.addedAt)), string(Schema.metadata, rows.map(\.metadata)),
         vectors(Schema.vector, dim: dim, rows.flatMap { $0.vector ?? [] })]
    }

    /// Rows from query or search output columns; absent columns read as empty/zero, `vector` only if present.
    static func decode(_ columns: [FieldData], ids: [Int64]? = nil, operation: String) throws -> [Row] {
        var byName: [String: FieldData] = [:]
        for c in columns { byName[c.fieldName] = c }
        let idColumn = ids ?? byName[Schema.id]?.scalars.longData.data ?? []
        let n = idColumn.count
        func check<T>(_ values: [T], _ name: String) throws -> [T]? {
            guard byName[name] != nil else { return nil }
            guard values.count == n else { throw MilvusError.malformedReply(operation: operation, reason: "column \(name) has \(values.count) values for \(n) rows") }
            return values
        }
        let paths = try check(byName[Schema.path]?.scalars.stringData.data ?? [], Schema.path)
        let sizes = try check(byName[Schema.size]?.scalars.longData.data ?? [], Schema.size)
        let mtimes = try check(byName[Schema.mtime]?.scalars.doubleData.data ?? [], Schema.mtime)
        let hashes = try check(byName[Schema.hash]?.scalars.stringData.data ?? [], Schema.hash)
        let models = try check(byName[Schema.model]?.scalars.stringData.data ?? [], Schema.model)
        let added = try check(byName[Schema.addedAt]?.scalars.doubleData.data ?? [], Schema.addedAt)
        let metadata = try check(byName[Schema.metadata]?.scalars.stringData.data ?? [], Schema.metadata)
        var vectors: [Float]?, dim = 0
        if let v = byName[Schema.vector] {
            dim = Int(v.vectors.dim)
            vectors = v.vectors.floatVector.data
            guard dim > 0, vectors?.count == dim * n else { throw MilvusError.malformedReply(operation: operation, reason: "vector column does not hold \(n) vectors of dim \(dim)") }
        }
        return (0 ..< n).map { i in
            Row(id: idColumn[i], path: paths?[i] ?? "", size: sizes?[i] ?? 0, mtime: mtimes?[i] ?? 0, hash: hashes?[i] ?? "",
                model: models?[i] ?? "", addedAt: added?[i] ?? 0, metadata: metadata?[i] ?? "",
                vector: vectors.map { Array($0[(i * dim) ..< ((i + 1) * dim)]) })
        }
    }
}
