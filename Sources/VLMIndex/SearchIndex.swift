import Foundation
import VLMTensor

/// How the search facade chooses and maintains its structures.
public struct SearchConfiguration: Sendable {
    /// At or above this many vectors, searches go through HNSW; below, exact search is both
    /// fast enough (one GEMM pass) and exact.
    public var hnswThreshold: Int
    public var hnsw: HNSWParameters
    /// Rebuild the graph when tombstones exceed this fraction of its nodes.
    public var maxTombstoneFraction: Double
    /// Where the graph is persisted; nil keeps it in memory only.
    public var hnswPath: String?

    public init(hnswThreshold: Int = 20_000, hnsw: HNSWParameters = HNSWParameters(M: 16, efConstruction: 100, efSearch: 96),
                maxTombstoneFraction: Double = 0.2, hnswPath: String? = nil) {
        self.hnswThreshold = hnswThreshold
        self.hnsw = hnsw
        self.maxTombstoneFraction = maxTombstoneFraction
        self.hnswPath = hnswPath
    }

    /// The conventional graph location: next to the database.
    public static func defaultHNSWPath(forDatabase path: String) -> String { path + ".hnsw" }
}

/// What happened to the persisted graph when it was (re)attached.
public enum HNSWLoadOutcome: Sendable, Equatable {
    case notNeeded
    case loaded
    /// The file matched this store but lagged behind it; brought up to date by id difference.
    case reconciled(inserted: Int, deleted: Int)
    /// The file was missing, corrupt, of another store/model/parameters, or too stale.
    case rebuilt(reason: String)
}

/// The index facade: the store (truth on disk), an exact in-memory matrix (always; it also serves
/// near-duplicate search), and an HNSW graph above the size threshold. Every write goes to SQLite
/// first (one transaction), then to the in-memory structures; the graph file is refreshed by
/// `persist()`. If the process dies between the two, the next open reconciles the graph with the
/// store by embedding-id sets, so the store is the only thing that must be durable.
public final class SearchIndex: @unchecked Sendable {
    public let store: VectorStore
    public let exact: ExactSearch
    public private(set) var hnsw: HNSWIndex?
    public let configuration: SearchConfiguration
    public private(set) var hnswOutcome: HNSWLoadOutcome = .notNeeded
    private var hnswDirty = false

    public enum Strategy: String, Sendable { case exact, hnsw }

    public init(store: VectorStore, configuration: SearchConfiguration = SearchConfiguration()) throws {
        self.store = store
        self.configuration = configuration
        exact = try ExactSearch.load(from: store)
        try attachHNSWIfNeeded()
    }

    /// Opens (or creates) the store at `path` and the graph next to it.
    public convenience init(path: String, model: ModelIdentity, onMismatch: ModelMismatchPolicy = .refuse,
                            configuration: SearchConfiguration? = nil) throws {
        let store = try VectorStore(path: path, model: model, onMismatch: onMismatch)
        var config = configuration ?? SearchConfiguration()
        if config.hnswPath == nil { config.hnswPath = SearchConfiguration.defaultHNSWPath(forDatabase: path) }
        try self.init(store: store, configuration: config)
    }

    public var count: Int { exact.count }
    public var strategy: Strategy { hnsw != nil && exact.count >= configuration.hnswThreshold ? .hnsw : .exact }

    // MARK: Writes

    /// Stores records (one transaction) and updates the in-memory structures.
    @discardableResult
    public func add(_ records: [FileRecord]) throws -> UpsertResult {
        let result = try store.upsert(records)
        forget(result.replaced)
        var vectors: [String: [Float]] = [:]
        for record in records { vectors[record.stat.path] = record.vector }  // last one wins, as in the store
        for inserted in result.inserted {
            guard let vector = vectors[inserted.path] else { continue }
            try exact.add(id: inserted.id, vector: vector)
            if let hnsw {
                try hnsw.insert(label: inserted.id, vector: vector)
                hnswDirty = true
            }
        }
        try attachHNSWIfNeeded()
        return result
    }

    @discardableResult
    public func remove(paths: [String]) throws -> [Int64] {
        let ids = try store.remove(paths: paths)
        forget(ids)
        try compactIfNeeded()
        return ids
    }

    /// `sync`: drops stored files under `root` that are not in `present`.
    @discardableResult
    public func removeMissing(present: Set<String>, under root: String? = nil) throws -> [String] {
        let (paths, ids) = try store.removeMissing(present: present, under: root)
        forget(ids)
        try compactIfNeeded()
        return paths
    }

    private func forget(_ ids: [Int64]) {
        guard !ids.isEmpty else { return }
        exact.remove(ids)
        if let hnsw {
            for id in ids where hnsw.markDeleted(label: id) { hnswDirty = true }
        }
    }

    // MARK: Search

    /// Top-k for one query vector (unit-norm expected), via the current strategy.
    public func search(_ query: [Float], k: Int, minScore: Float = -.infinity, efSearch: Int? = nil) throws -> [SearchHit] {
        guard query.count == store.identity.dim else {
            throw IndexError.dimensionMismatch(context: "search query", expected: store.identity.dim, actual: query.count)
        }
        if strategy == .hnsw, let hnsw { return try hnsw.search(query: query, k: k, efSearch: efSearch, minScore: minScore) }
        return try exact.search(query: query, k: k, minScore: minScore)
    }

    /// Search results joined with their files (hits whose file vanished meanwhile are dropped).
    public func searchFiles(_ query: [Float], k: Int, minScore: Float = -.infinity) throws -> [(file: StoredFile, score: Float)] {
        let hits = try search(query, k: k, minScore: minScore)
        let files = try store.files(embeddingIDs: hits.map(\.id))
        return hits.compactMap { hit in files[hit.id].map { ($0, hit.score) } }
    }

    /// Near-duplicate pairs among all stored vectors (exact; see `DuplicateFinder`).
    public func duplicates(threshold: Float, limit: Int = 100_000) throws -> [DuplicatePair] {
        try DuplicateFinder.pairs(in: exact, threshold: threshold, limit: limit)
    }

    // MARK: HNSW lifecycle

    /// Builds or loads the graph once the collection reaches the threshold.
    private func attachHNSWIfNeeded() throws {
        guard hnsw == nil, exact.count >= configuration.hnswThreshold else { return }
        let (graph, outcome) = try loadOrBuildHNSW()
        hnsw = graph
        hnswOutcome = outcome
        hnswDirty = outcome != .loaded
        try compactIfNeeded()
    }

    private func loadOrBuildHNSW() throws -> (HNSWIndex, HNSWLoadOutcome) {
        guard let path = configuration.hnswPath else { return (try buildHNSW(), .rebuilt(reason: "not persisted")) }
        guard FileManager.default.fileExists(atPath: path) else { return (try buildHNSW(), .rebuilt(reason: "no graph file")) }
        let loaded: (index: HNSWIndex, info: HNSWIndex.FileInfo)
        do { loaded = try HNSWIndex.load(from: path) } catch {
            return (try buildHNSW(), .rebuilt(reason: "\(error)"))
        }
        let g = loaded.index
        let p = configuration.hnsw
        guard loaded.info.storeID == store.storeID, loaded.info.fingerprint == store.identity.fingerprint, g.dim == store.identity.dim else {
            return (try buildHNSW(), .rebuilt(reason: "graph belongs to another store or model"))
        }
        guard g.parameters.M == p.M, g.parameters.efConstruction == p.efConstruction, g.parameters.seed == p.seed else {
            return (try buildHNSW(), .rebuilt(reason: "graph built with other parameters"))
        }
        // Reconcile by id sets: ids are never reused, so an id present in both is the same vector.
        let live = Set(g.liveLabels)
        let wanted = Set(exact.ids)
        let extra = live.subtracting(wanted)
        let missing = wanted.subtracting(live)
        if extra.isEmpty && missing.isEmpty { return (g, .loaded) }
        if missing.count > max(1000, wanted.count / 2) {
            return (try buildHNSW(), .rebuilt(reason: "graph too stale (\(missing.count) vectors missing)"))
        }
        for id in extra { g.markDeleted(label: id) }
        for id in missing.sorted() {
            guard let v = exact.vector(id) else { continue }
            try g.insert(label: id, vector: v)
        }
        return (g, .reconciled(inserted: missing.count, deleted: extra.count))
    }

    /// Inserts every vector in ascending id order, linking on the kernel threads (`insert(labels:vectors:threads:)`).
    private func buildHNSW() throws -> HNSWIndex {
        let g = try HNSWIndex(dim: store.identity.dim, parameters: configuration.hnsw, capacity: max(exact.count, 16))
        let ids = exact.ids.sorted()
        var flat = [Float]()
        flat.reserveCapacity(ids.count * store.identity.dim)
        for id in ids { flat += exact.vector(id) ?? [] }
        try flat.withUnsafeBufferPointer { try g.insert(labels: ids, vectors: $0, threads: max(1, Kernels.threads)) }
        return g
    }

    private func compactIfNeeded() throws {
        guard let g = hnsw, g.count > 0, Double(g.deletedCount) > configuration.maxTombstoneFraction * Double(g.count) else { return }
        if exact.count < configuration.hnswThreshold {
            hnsw = nil  // back to exact search; the stale file is replaced when the graph is needed again
            return
        }
        hnsw = try g.compacted()
        hnswDirty = true
    }

    /// What is wrong with the persisted graph file, if there is one: it must load (checksum and structure; a
    /// half-written file would fail here) and belong to this store. A graph that lags behind the store is
    /// normal (it is reconciled on open); a missing one is rebuilt when needed. Also reports the in-memory
    /// matrix disagreeing with the store.
    func graphFileProblems() throws -> [String] {
        var problems: [String] = []
        let embeddings = try store.stats().embeddings
        if exact.count != embeddings { problems.append("the search matrix holds \(exact.count) vectors, the database \(embeddings)") }
        guard let path = configuration.hnswPath, FileManager.default.fileExists(atPath: path) else { return problems }
        do {
            let info = try HNSWIndex.load(from: path).info
            if info.storeID != store.storeID { problems.append("graph file \(path) belongs to another store") }
        } catch {
            problems.append("graph file \(path) is unusable: \(error)")
        }
        return problems
    }

    /// Writes the graph file if it changed (atomic replace). Call after a batch of writes.
    public func persist() throws {
        guard let g = hnsw, hnswDirty, let path = configuration.hnswPath else { return }
        try g.save(to: path, info: .init(storeID: store.storeID, fingerprint: store.identity.fingerprint))
        hnswDirty = false
    }
}
