import Foundation
import VLMIndex

/// Writes and incremental planning of `MilvusIndex`.
extension MilvusIndex {
    /// Like `VectorStore.plan`: same (size, mtime) as stored is unchanged; otherwise the content hash decides.
    /// Only the rows of the given files are fetched (by primary key), so planning a worker's share of a large
    /// catalogue never reads the whole collection. Touched-but-same rows get their size/mtime refreshed.
    public func plan(_ files: [FileStat], contentHash: (String) throws -> String) throws -> IncrementalPlan {
        var known: [String: Row] = [:]
        for row in try rows(paths: files.map(\.path)) { known[row.path] = row }
        var plan = IncrementalPlan()
        var touched: [FileStat] = []
        for file in files {
            guard let stored = known[file.path] else { plan.new.append(file); continue }
            if stored.size == file.size && stored.mtime == file.mtime && stored.model == identity.fingerprint {
                plan.unchanged.append(file)
                continue
            }
            let hash = try contentHash(file.path)
            if hash == stored.hash && stored.model == identity.fingerprint {
                plan.unchanged.append(file)
                touched.append(file)
            } else {
                plan.changed.append(file)
                plan.hashes[file.path] = hash
            }
        }
        if !touched.isEmpty {
            let stats = Dictionary(touched.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            let refreshed = try rows(paths: touched.map(\.path), vectors: true).compactMap { row -> Row? in
                guard let s = stats[row.path], row.vector != nil else { return nil }
                var r = row
                (r.size, r.mtime) = (s.size, s.mtime)
                return r
            }
            try write(refreshed)
        }
        return plan
    }

    /// Upserts in batches of `upsertBatch` rows. Each batch is atomic in Milvus; the whole call is not, but
    /// every row is keyed by its path, so re-running an interrupted call converges to the same rows.
    @discardableResult
    public func add(_ records: [FileRecord]) throws -> UpsertResult {
        try blockingWait { [self] in try await addAsync(records) }
    }

    func addAsync(_ records: [FileRecord]) async throws -> UpsertResult {
        for record in records {
            guard record.vector.count == identity.dim else {
                throw IndexError.dimensionMismatch(context: record.stat.path, expected: identity.dim, actual: record.vector.count)
            }
            guard record.vector.allSatisfy({ $0.isFinite }) else { throw IndexError.invalidVector(context: record.stat.path, reason: "non-finite component") }
            guard record.stat.path.utf8.count <= Schema.maxPath else { throw IndexError.invalidArgument("path longer than \(Schema.maxPath) bytes: \(record.stat.path.prefix(80))...") }
            guard (record.metadata?.utf8.count ?? 0) <= Schema.maxMetadata else { throw IndexError.invalidArgument("\(record.stat.path): metadata longer than \(Schema.maxMetadata) bytes") }
        }
        // The same path twice in one call: the last one wins, as in the SQLite store.
        var latest: [String: Int] = [:]
        for (i, r) in records.enumerated() { latest[r.stat.path] = i }
        let now = Date().timeIntervalSince1970
        let rows = records.indices.filter { latest[records[$0].stat.path] == $0 }.map { i -> Row in
            let r = records[i]
            return Row(id: Schema.key(path: r.stat.path), path: r.stat.path, size: r.stat.size, mtime: r.stat.mtime, hash: r.contentHash,
                       model: identity.fingerprint, addedAt: now, metadata: r.metadata ?? "", vector: r.vector)
        }
        try await writeAsync(rows)
        var result = UpsertResult()
        result.inserted = rows.map { ($0.id, $0.path) }
        return result
    }

    func write(_ rows: [Row]) throws {
        try blockingWait { [self] in try await writeAsync(rows) }
    }

    func writeAsync(_ rows: [Row]) async throws {
        let dim = identity.dim, batch = max(1, client.options.upsertBatch)
        for start in stride(from: 0, to: rows.count, by: batch) {
            let part = Array(rows[start ..< min(start + batch, rows.count)])
            let columns = Columns.encode(part, dim: dim)
            try await client.upsert(columns: columns, rows: part.count)
        }
    }

    @discardableResult
    public func remove(paths: [String]) throws -> [Int64] {
        try blockingWait { [self] in try await removeAsync(paths: paths) }
    }

    func removeAsync(paths: [String]) async throws -> [Int64] {
        let wanted = Set(paths)
        let ids = try await rowsAsync(paths: paths).filter { wanted.contains($0.path) }.map(\.id)
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let part = ids[start ..< min(start + 1000, ids.count)].map(String.init).joined(separator: ",")
            try await client.delete(expr: "\(Schema.id) in [\(part)]")
        }
        return ids
    }

    @discardableResult
    public func removeMissing(present: Set<String>, under root: String?) throws -> [String] {
        let prefix = root.map { $0.hasSuffix("/") ? $0 : $0 + "/" }
        var missing: [String] = []
        try scan { rows in
            missing += rows.map(\.path).filter { p in (prefix.map { p.hasPrefix($0) } ?? true) && !present.contains(p) }
        }
        try remove(paths: missing)
        return missing.sorted()
    }

    /// Nothing is deferred on the client: every upsert is in Milvus' log once acknowledged.
    public func persist() throws {}

    /// Seals the growing segments (Flush) so they are indexed and persisted to object storage.
    public func checkpoint() throws {
        try run { try await $0.flush() }
    }

    /// Streams every row with its vector to `body` (for `vlm index copy`).
    public func forEachRecord(_ body: ([FileRecord]) throws -> Void) throws {
        try scan(vectors: true) { rows in
            try body(rows.compactMap { r in
                r.vector.map { FileRecord(stat: FileStat(path: r.path, size: r.size, mtime: r.mtime), contentHash: r.hash,
                                          metadata: r.metadata.isEmpty ? nil : r.metadata, vector: $0) }
            })
        }
    }
}
