import Foundation

/// What every index backend offers the CLI, the server and the ingest: a catalogue of files (path, size,
/// mtime, content hash, metadata) with one embedding each, incremental planning, upserts, removal and
/// search. `SearchIndex` (SQLite + exact matrix + HNSW, one machine) is one implementation; the Milvus
/// backend (target VLMMilvus, a shared collection for many workers and servers) is the other.
///
/// Ids: `StoredFile.fileID` names a file stably for clients (the server's /v1/index/{id}); `embeddingID`
/// names the vector that search hits return. Writes are upserts keyed by path: writing the same record twice
/// leaves one entry. Implementations are thread-safe for concurrent reads; callers serialise writes.
public protocol VectorIndex: AnyObject, Sendable {
    /// Where the index lives, for messages (a path, or a URI without credentials).
    var location: String { get }
    /// The model whose embeddings the index holds (checked when opened).
    var identity: ModelIdentity { get }
    /// How searches run, for stats and /healthz ("exact", "hnsw", "milvus-hnsw").
    var searchStrategy: String { get }

    /// Number of stored embeddings.
    func entryCount() throws -> Int
    /// Classifies files for incremental work (see `VectorStore.plan`).
    func plan(_ files: [FileStat], contentHash: (String) throws -> String) throws -> IncrementalPlan
    /// Stores records (replacing any entry with the same path); all or nothing per call where the backend can.
    @discardableResult func add(_ records: [FileRecord]) throws -> UpsertResult
    /// Removes files by path; returns the embedding ids removed.
    @discardableResult func remove(paths: [String]) throws -> [Int64]
    /// `sync`: removes every stored file under `root` (all if nil) that is not in `present`; returns their paths.
    @discardableResult func removeMissing(present: Set<String>, under root: String?) throws -> [String]
    /// Every stored path, sorted.
    func allPaths() throws -> [String]
    /// Top-k files for a unit query vector, best first, scores below `minScore` dropped.
    func searchFiles(_ query: [Float], k: Int, minScore: Float) throws -> [(file: StoredFile, score: Float)]
    /// Near-duplicate pairs (cosine >= threshold) with their files, best first.
    func duplicateFiles(threshold: Float, limit: Int) throws -> [(a: StoredFile, b: StoredFile, score: Float)]
    func file(id: Int64) throws -> StoredFile?
    func file(path: String) throws -> StoredFile?
    func stats() throws -> StoreStats
    /// Backend-specific consistency checks; the problems found (empty: sound).
    func check() throws -> [String]
    /// Saves derived state whose saving is deferred (the HNSW graph file); cheap when nothing changed.
    func persist() throws
    /// After a large write: folds the SQLite WAL into the database / seals Milvus segments (flush).
    func checkpoint() throws
    /// Extra key-value lines for `vlm index stats` (graph size, collection id, ...).
    func details() -> [(key: String, value: String)]
    /// Streams every stored file with its vector, a page at a time (for copying between backends).
    func forEachRecord(_ body: ([FileRecord]) throws -> Void) throws
    /// The async face of this index for servers (see `AsyncVectorIndex`); call once and keep it (it may own
    /// threads). Default: `OffloadedVectorIndex` (the calls run on dedicated threads).
    func makeAsync() -> any AsyncVectorIndex
}

extension VectorIndex {
    public func makeAsync() -> any AsyncVectorIndex { OffloadedVectorIndex(self) }
}

/// `vlm index copy`: every file and vector of one index into another (e.g. a SQLite index into Milvus) without
/// re-embedding. The destination must be for the same model; records are upserts, so a copy interrupted and
/// run again converges to one entry per file.
public enum VectorIndexCopy {
    @discardableResult
    public static func copy(from source: any VectorIndex, to destination: any VectorIndex, progress: (Int) -> Void = { _ in }) throws -> Int {
        guard source.identity == destination.identity else {
            throw IndexError.modelMismatch(path: destination.location, stored: "\(destination.identity.fingerprint) (dim \(destination.identity.dim))",
                                           requested: "\(source.identity.fingerprint) (dim \(source.identity.dim))")
        }
        var copied = 0
        try source.forEachRecord { records in
            try destination.add(records)
            copied += records.count
            progress(copied)
        }
        try destination.persist()
        try destination.checkpoint()
        return copied
    }
}

extension SearchIndex: VectorIndex {
    public var location: String { store.path }
    public var identity: ModelIdentity { store.identity }
    public var searchStrategy: String { strategy.rawValue }
    public func entryCount() throws -> Int { count }

    public func plan(_ files: [FileStat], contentHash: (String) throws -> String) throws -> IncrementalPlan {
        try store.plan(files, contentHash: contentHash)
    }

    public func allPaths() throws -> [String] { try store.allPaths() }
    public func file(id: Int64) throws -> StoredFile? { try store.file(id: id) }
    public func file(path: String) throws -> StoredFile? { try store.file(path: path) }
    public func stats() throws -> StoreStats { try store.stats() }
    public func check() throws -> [String] { try store.check() + graphFileProblems() }
    public func checkpoint() throws { try store.checkpoint() }

    public func duplicateFiles(threshold: Float, limit: Int) throws -> [(a: StoredFile, b: StoredFile, score: Float)] {
        let pairs = try duplicates(threshold: threshold, limit: limit)
        let files = try store.files(embeddingIDs: Array(Set(pairs.flatMap { [$0.a, $0.b] })))
        return pairs.compactMap { p in
            guard let a = files[p.a], let b = files[p.b] else { return nil }
            return (a, b, p.score)
        }
    }

    public func forEachRecord(_ body: ([FileRecord]) throws -> Void) throws {
        let ids = try store.embeddingIDs()
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let page = Array(ids[start ..< min(start + 1000, ids.count)])
            let files = try store.files(embeddingIDs: page)
            var records: [FileRecord] = []
            try store.forEachEmbedding(ids: page) { id, vector in
                guard let f = files[id] else { return }
                records.append(FileRecord(stat: FileStat(path: f.path, size: f.size, mtime: f.mtime), contentHash: f.contentHash,
                                          metadata: f.metadata, vector: Array(vector)))
            }
            try body(records)
        }
    }

    public func details() -> [(key: String, value: String)] {
        guard let hnsw else { return [] }
        return [("hnsw_nodes", "\(hnsw.count)"), ("hnsw_deleted", "\(hnsw.deletedCount)")]
    }
}

/// `--shard K/N`: which files one of N ingest workers takes. A file belongs to shard
/// `fnv1a64(relative path) mod N`, so workers that see the same tree (under any mount point) split it the
/// same way without talking to each other, and together cover every file exactly once.
public struct IndexShard: Sendable, Equatable, CustomStringConvertible {
    /// 0-based shard number, < count.
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, (0 ..< count).contains(index) else {
            throw IndexError.invalidArgument("shard \(index)/\(count): need 0 <= K < N")
        }
        self.index = index
        self.count = count
    }

    /// Parses "K/N" (K from 0).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            throw IndexError.invalidArgument("--shard '\(text)': expected K/N, e.g. 0/4")
        }
        try self.init(index: k, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    public func contains(relativePath: String) -> Bool {
        Int(Self.fnv1a64(relativePath) % UInt64(count)) == index
    }

    /// FNV-1a, 64 bits, over the UTF-8 bytes: stable across processes and platforms (unlike `hashValue`).
    public static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }
}
