import Foundation
import VLMIndex

/// A `VectorIndex` in a Milvus collection: the catalogue (path, size, mtime, content hash, model fingerprint,
/// metadata) and the embedding of each file in one row, keyed by a hash of the path. Many `vlm index add`
/// workers and `vlm serve` replicas can share the collection: writes are idempotent upserts, reads use the
/// configured consistency (catalogue reads strong by default, so a worker's plan sees every row written before
/// it; searches bounded, pinned to this process's own last write).
///
/// The collection's description records the model fingerprint and dimension; opening it for another model is
/// refused (or, with `.rebuild`, the collection is dropped and recreated). Search runs in Milvus (HNSW, inner
/// product on unit vectors = cosine).
public final class MilvusIndex: VectorIndex, @unchecked Sendable {
    public let uri: MilvusURI
    public let identity: ModelIdentity
    let client: MilvusClient
    public private(set) var collectionID: Int64 = 0

    public var location: String { uri.description }
    public var searchStrategy: String { "milvus-hnsw" }

    private init(uri: MilvusURI, identity: ModelIdentity, client: MilvusClient) {
        (self.uri, self.identity, self.client) = (uri, identity, client)
    }

    /// Opens the collection at `uri` for `model`, creating it (schema, HNSW index, loaded) if missing.
    /// `model` nil opens an existing collection with the identity recorded in it.
    public static func open(uri: MilvusURI, model: ModelIdentity?, options: MilvusOptions = MilvusOptions(),
                            onMismatch: ModelMismatchPolicy = .refuse) throws -> MilvusIndex {
        if let model {
            guard model.dim > 0 else { throw IndexError.invalidArgument("embedding dimension must be positive, got \(model.dim)") }
            guard !model.fingerprint.isEmpty else { throw IndexError.invalidArgument("empty model fingerprint") }
        }
        let client = try MilvusClient(uri: uri, options: options)
        let (identity, id) = try blockingWait { try await prepare(client: client, model: model, onMismatch: onMismatch) }
        let index = MilvusIndex(uri: uri, identity: identity, client: client)
        index.collectionID = id
        return index
    }

    /// Drops the collection (tests, `copy --replace`). Missing is fine.
    public static func drop(uri: MilvusURI, options: MilvusOptions = MilvusOptions()) throws {
        let client = try MilvusClient(uri: uri, options: options)
        try blockingWait {
            if try await client.hasCollection(window: options.connectWindow) { try await client.dropCollection() }
        }
    }

    private static func prepare(client: MilvusClient, model: ModelIdentity?, onMismatch: ModelMismatchPolicy) async throws -> (ModelIdentity, Int64) {
        let uri = client.uri
        if try await client.hasCollection(window: client.options.connectWindow) {
            let described = try await client.describeCollection()
            guard let stored = Schema.Description.parse(described.schema.description_p) else {
                throw MilvusError.foreignCollection(name: uri.collection, reason: "its description carries no SwiftVLM model record")
            }
            let names = Set(described.schema.fields.map(\.name))
            let missing = (Schema.scalars + [Schema.vector]).filter { !names.contains($0) }
            guard missing.isEmpty else { throw MilvusError.foreignCollection(name: uri.collection, reason: "no field(s) \(missing.joined(separator: ", "))") }
            let storedIdentity = ModelIdentity(fingerprint: stored.fingerprint, dim: stored.dim)
            if let model, model != storedIdentity {
                guard case .rebuild = onMismatch else {
                    throw IndexError.modelMismatch(path: uri.description, stored: "\(stored.fingerprint) (dim \(stored.dim))",
                                                   requested: "\(model.fingerprint) (dim \(model.dim))")
                }
                try await client.dropCollection()
                return try await create(client: client, model: model)
            }
            try await ensureIndex(client: client)
            try await client.load()
            return (storedIdentity, described.collectionID)
        }
        guard let model else { throw MilvusError.noCollection(uri.collection) }
        return try await create(client: client, model: model)
    }

    private static func create(client: MilvusClient, model: ModelIdentity) async throws -> (ModelIdentity, Int64) {
        do {
            try await client.createCollection(schema: Schema.collection(name: client.uri.collection, identity: model), consistency: client.consistencyLevel)
        } catch let error as MilvusError {
            // Another worker may have created it meanwhile: accept it if it is ours for the same model.
            guard try await client.hasCollection() else { throw error }
            return try await prepare(client: client, model: model, onMismatch: .refuse)
        }
        try await ensureIndex(client: client)
        try await client.load()
        return (model, try await client.describeCollection().collectionID)
    }

    private static func ensureIndex(client: MilvusClient) async throws {
        guard try await client.describeIndex(field: Schema.vector).isEmpty else { return }
        let o = client.options
        do {
            try await client.createIndex(field: Schema.vector, params: [
                "index_type": "HNSW", "metric_type": "IP", "params": "{\"M\": \(o.hnswM), \"efConstruction\": \(o.efConstruction)}",
            ])
        } catch {
            if try await client.describeIndex(field: Schema.vector).isEmpty { throw error }  // else: made concurrently
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (MilvusClient) async throws -> T) throws -> T {
        let client = client
        return try blockingWait { try await body(client) }
    }

    // MARK: Reads

    public func entryCount() throws -> Int {
        try blockingWait { [self] in try await countAsync() }
    }

    func countAsync() async throws -> Int {
        let columns = try await client.query(expr: "\(Schema.id) >= 0", outputFields: ["count(*)"])
        guard let n = columns.first(where: { $0.fieldName == "count(*)" })?.scalars.longData.data.first else {
            throw MilvusError.malformedReply(operation: "Query count(*)", reason: "no count column")
        }
        return Int(n)
    }

    /// Every row (with vectors if asked), page by page over disjoint primary-key ranges.
    func scan(vectors: Bool = false, _ body: ([Row]) throws -> Void) throws {
        let count = try entryCount()
        let page = max(1, client.options.scanPage / 2)
        let buckets = UInt64(max(1, (count + page - 1) / page))
        let width = UInt64(Int64.max) / buckets + 1
        let fields = Schema.scalars + (vectors ? [Schema.vector] : [])
        for b in 0 ..< buckets {
            let lo = b * width, hi = lo + width
            let expr = b == buckets - 1 ? "\(Schema.id) >= \(lo)" : "\(Schema.id) >= \(lo) && \(Schema.id) < \(hi)"
            let columns = try run { try await $0.query(expr: expr, outputFields: fields) }
            try body(try Columns.decode(columns, operation: "Query"))
        }
    }

    /// `fast`: with the search consistency (point lookups on the server's hot path).
    func rows(expr: String, vectors: Bool = false, fast: Bool = false) throws -> [Row] {
        try blockingWait { [self] in try await rowsAsync(expr: expr, vectors: vectors, fast: fast) }
    }

    func rowsAsync(expr: String, vectors: Bool = false, fast: Bool = false) async throws -> [Row] {
        let fields = Schema.scalars + (vectors ? [Schema.vector] : [])
        return try Columns.decode(try await client.query(expr: expr, outputFields: fields, fast: fast), operation: "Query")
    }

    /// Rows for the given paths, fetched in chunks by primary key.
    func rows(paths: [String], vectors: Bool = false, fast: Bool = false) throws -> [Row] {
        try blockingWait { [self] in try await rowsAsync(paths: paths, vectors: vectors, fast: fast) }
    }

    func rowsAsync(paths: [String], vectors: Bool = false, fast: Bool = false) async throws -> [Row] {
        var out: [Row] = []
        for start in stride(from: 0, to: paths.count, by: 256) {
            let keys = paths[start ..< min(start + 256, paths.count)].map(Schema.key(path:))
            out += try await rowsAsync(expr: "\(Schema.id) in [\(keys.map(String.init).joined(separator: ","))]", vectors: vectors, fast: fast)
        }
        return out
    }

    public func allPaths() throws -> [String] {
        var paths: [String] = []
        try scan { paths += $0.map(\.path) }
        return paths.sorted()
    }

    public func file(id: Int64) throws -> StoredFile? { try rows(expr: "\(Schema.id) == \(id)", fast: true).first?.file }
    public func file(path: String) throws -> StoredFile? { try rows(paths: [path], fast: true).first { $0.path == path }?.file }

    public func searchFiles(_ query: [Float], k: Int, minScore: Float) throws -> [(file: StoredFile, score: Float)] {
        try blockingWait { [self] in try await searchAsync(query, k: k, minScore: minScore) }
    }

    func searchAsync(_ query: [Float], k: Int, minScore: Float) async throws -> [(file: StoredFile, score: Float)] {
        try await searchBatchAsync([(query, k, minScore)])[0]
    }

    /// Several queries in one Search RPC (nq > 1): Milvus's per-request work (proxy, scheduling, the output-field
    /// fetch) is paid once. queries: n unit vectors -> n hit lists, best first, each cut to its `k` and `minScore`.
    func searchBatchAsync(_ queries: [(vector: [Float], k: Int, minScore: Float)]) async throws -> [[(file: StoredFile, score: Float)]] {
        guard !queries.isEmpty else { return [] }
        for q in queries {
            guard q.k >= 1 else { throw IndexError.invalidArgument("k must be at least 1, got \(q.k)") }
            guard q.vector.count == identity.dim else { throw IndexError.dimensionMismatch(context: "search query", expected: identity.dim, actual: q.vector.count) }
        }
        let k = queries.map(\.k).max() ?? 1
        let result = try await client.search(vectors: queries.map(\.vector), field: Schema.vector, k: k, ef: client.options.efSearch,
                                              filter: "", outputFields: Schema.scalars)
        let ids = result.ids.intID.data
        guard result.scores.count == ids.count else { throw MilvusError.malformedReply(operation: "Search", reason: "\(ids.count) ids, \(result.scores.count) scores") }
        // One query: Milvus may leave topks empty; otherwise one count per query, summing to the rows.
        let counts = result.topks.isEmpty && queries.count == 1 ? [Int64(ids.count)] : result.topks
        guard counts.count == queries.count, counts.allSatisfy({ $0 >= 0 }), counts.reduce(0, +) == Int64(ids.count) else {
            throw MilvusError.malformedReply(operation: "Search", reason: "per-query counts \(counts) for \(queries.count) queries and \(ids.count) rows")
        }
        let rows = try Columns.decode(result.fieldsData, ids: ids, operation: "Search")
        var out: [[(file: StoredFile, score: Float)]] = []
        var start = 0
        for (q, count) in zip(queries, counts) {
            let end = start + Int(count)
            out.append(zip(rows[start ..< end], result.scores[start ..< end]).prefix(q.k).filter { $0.1 >= q.minScore }.map { ($0.0.file, $0.1) })
            start = end
        }
        return out
    }

    public func duplicateFiles(threshold: Float, limit: Int) throws -> [(a: StoredFile, b: StoredFile, score: Float)] {
        let exact = try ExactSearch(dim: identity.dim)
        var files: [Int64: StoredFile] = [:]
        try scan(vectors: true) { rows in
            for row in rows {
                guard let v = row.vector else { continue }
                try exact.add(id: row.id, vector: v)
                files[row.id] = row.file
            }
        }
        return try DuplicateFinder.pairs(in: exact, threshold: threshold, limit: limit).compactMap { p in
            guard let a = files[p.a], let b = files[p.b] else { return nil }
            return (a, b, p.score)
        }
    }

    public func stats() throws -> StoreStats {
        var files = 0, bytes: Int64 = 0
        try scan { rows in
            files += rows.count
            bytes += rows.reduce(0) { $0 + $1.size }
        }
        return StoreStats(fingerprint: identity.fingerprint, dim: identity.dim, files: files, embeddings: files,
                          totalFileBytes: bytes, databaseBytes: 0, storeID: "\(collectionID)")
    }

    /// Rows written by another model, or whose key is not the hash of their path, and a count that disagrees
    /// with a full scan.
    public func check() throws -> [String] {
        var scanned = 0, foreign = 0, misplaced = 0
        try scan { rows in
            scanned += rows.count
            foreign += rows.filter { $0.model != identity.fingerprint }.count
            misplaced += rows.filter { $0.id != Schema.key(path: $0.path) }.count
        }
        var problems: [String] = []
        if foreign > 0 { problems.append("\(foreign) rows written by another model") }
        if misplaced > 0 { problems.append("\(misplaced) rows whose id is not the hash of their path") }
        let counted = try entryCount()
        if counted != scanned { problems.append("count(*) says \(counted) rows, a scan found \(scanned)") }
        return problems
    }

    public func details() -> [(key: String, value: String)] {
        let o = client.options
        return [("collection", "\(uri.description) (id \(collectionID))"),
                ("milvus", "HNSW M=\(o.hnswM) efConstruction=\(o.efConstruction) ef=\(o.efSearch), IP metric, \(o.consistency.rawValue) catalogue reads, \(o.searchConsistency.rawValue) searches")]
    }
}
