import Foundation
import VLMIndex

/// The one error type of VLMMilvus; every message is one line naming the server or collection.
public enum MilvusError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `--index milvus://...` is malformed.
    case invalidURI(String, reason: String)
    /// No connection (refused, DNS, timeout) after the retries.
    case unreachable(address: String, detail: String)
    /// Milvus answered with an error status.
    case server(operation: String, code: Int, reason: String)
    /// The collection exists but is not a SwiftVLM index (or its schema is not the one this version writes).
    case foreignCollection(name: String, reason: String)
    /// The collection does not exist (commands that need an existing index).
    case noCollection(String)
    /// A reply that does not have the shape asked for.
    case malformedReply(operation: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidURI(uri, reason):
            return "invalid Milvus URI '\(uri)': \(reason) (expected milvus://host:port[/database]/collection)"
        case let .unreachable(address, detail):
            return "cannot reach Milvus at \(address): \(detail)"
        case let .server(operation, code, reason):
            return "Milvus \(operation) failed (code \(code)): \(reason)"
        case let .foreignCollection(name, reason):
            return "Milvus collection '\(name)' is not a SwiftVLM index: \(reason)"
        case let .noCollection(name):
            return "no Milvus collection '\(name)' (create it with `vlm index add --index milvus://.../\(name)`)"
        case let .malformedReply(operation, reason):
            return "Milvus \(operation): unexpected reply (\(reason))"
        }
    }
}

/// `milvus://host:port[/database]/collection`, optionally with `user:password@` before the host.
public struct MilvusURI: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// nil: Milvus' "default" database.
    public var database: String?
    public var collection: String
    /// From `user:password@host`, if given (an explicit token wins).
    public var credentials: String?

    public init(host: String, port: Int = 19530, database: String? = nil, collection: String) {
        (self.host, self.port, self.database, self.collection) = (host, port, database, collection)
    }

    public init(parsing text: String) throws {
        let bad = { (reason: String) in MilvusError.invalidURI(text, reason: reason) }
        guard text.lowercased().hasPrefix("milvus://") else { throw bad("scheme must be milvus://") }
        var rest = Substring(text.dropFirst("milvus://".count))
        var credentials: String?
        if let at = rest.lastIndex(of: "@") {
            credentials = String(rest[..<at]).removingPercentEncoding
            rest = rest[rest.index(after: at)...]
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else { throw bad("give a collection, and optionally a database before it") }
        let hostPort = parts[0]
        var host = hostPort, port = 19530
        if let colon = hostPort.lastIndex(of: ":"), !hostPort.hasSuffix("]") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1 ... 65535).contains(p) else { throw bad("port must be 1...65535") }
            port = p
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw bad("missing host") }
        let database = parts.count == 3 ? parts[1] : nil
        let collection = parts[parts.count - 1]
        for (what, name) in [("collection", collection), ("database", database ?? "default")] {
            guard Self.isValidName(name) else { throw bad("\(what) '\(name)' must start with a letter or _ and hold only letters, digits and _ (at most 255)") }
        }
        self.init(host: host, port: port, database: database, collection: collection)
        self.credentials = credentials
    }

    /// Milvus' rule for collection and database names.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 255 else { return false }
        let letter = { (c: Unicode.Scalar) in (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
    }

    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Without credentials: safe for messages and logs.
    public var description: String { "milvus://\(address)/" + (database.map { "\($0)/" } ?? "") + collection }
}

/// How the Milvus backend talks to the server and builds the collection.
public struct MilvusOptions: Sendable {
    /// API token or "user:password" (sent as gRPC `authorization` metadata).
    public var token: String?
    /// Deadline of one RPC.
    public var timeout: Duration = .seconds(30)
    /// How long failed RPCs with UNAVAILABLE (server down or restarting) are retried, with exponential backoff.
    public var retryWindow: Duration = .seconds(90)
    /// How long opening waits for the first answer before "cannot reach Milvus".
    public var connectWindow: Duration = .seconds(10)
    /// Consistency of catalogue reads (planning, scans, counts): strong (default) makes every worker's
    /// committed writes visible to the next plan, so no two workers re-embed what one already stored.
    public var consistency: Consistency = .strong
    /// Consistency of searches and single-file lookups (the server's hot path). Bounded (default) answers without
    /// waiting for the next time tick (strong costs ~200 ms a search); after this process's own writes the reads
    /// are pinned to the last write's timestamp, so a client always sees what it wrote (session semantics).
    public var searchConsistency: Consistency = .bounded
    /// HNSW parameters of the collection's index and searches (IP metric on unit vectors = cosine).
    public var hnswM = 16
    public var efConstruction = 200
    public var efSearch = 128
    /// Rows per upsert RPC (a batch larger than this is split; each part is idempotent).
    public var upsertBatch = 512
    /// Rows per page when scanning the whole collection (paths, vectors, copy).
    public var scanPage = 8192
    public var shards = 1

    public enum Consistency: String, Sendable { case strong, session, bounded, eventually }

    public init() {}
}
