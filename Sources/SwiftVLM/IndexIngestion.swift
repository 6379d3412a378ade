import Foundation
import VLMImage
import VLMIndex
import VLMModels

/// A file found by `IndexIngestion.collect`: its absolute path, and its path relative to the directory it
/// was found under (an explicitly named file: its absolute path), which `--shard` hashes.
public struct CollectedFile: Sendable, Hashable {
    public let path: String
    public let relative: String
}

/// Planning and embedding for `vlm index add|sync`, on any `VectorIndex` backend.
public enum IndexIngestion {
    public static let imageExtensions = ImageFormat.fileExtensions

    /// The counts of one ingest run.
    public struct Outcome: Sendable, Equatable {
        public var added = 0, updated = 0, unchanged = 0, failed = 0
        /// Files per format and skips by reason (those of this run; `collect`'s are merged in by the caller).
        public var summary = IngestSummary()
    }

    /// Callbacks of a run: warnings, progress (files done, of total) and a commit hook (images written so far).
    public struct Observer {
        public var warn: (String) -> Void
        public var progress: (_ done: Int, _ total: Int) -> Void
        public var committed: (_ total: Int) -> Void
        public init(warn: @escaping (String) -> Void = { _ in }, progress: @escaping (Int, Int) -> Void = { _, _ in },
                    committed: @escaping (Int) -> Void = { _ in }) {
            (self.warn, self.progress, self.committed) = (warn, progress, committed)
        }
    }

    /// Image files under the given paths (recursive, symlinks followed), absolute and standardised, sorted, and
    /// what was left out (see `LibraryWalk`: hidden entries and other non-images are counted in one line per
    /// directory; symlink loops, unlistable folders, names that are not UTF-8 ... get one warning line each).
    /// `shard` keeps only that shard's files. Returns the files, the directories given (sync's roots) and the skips.
    public static func collect(_ inputs: [String], shard: IndexShard? = nil, warn: @escaping (String) -> Void = { _ in })
        throws -> (files: [CollectedFile], roots: [String], summary: IngestSummary) {
        var files = Set<CollectedFile>(), roots: [String] = [], summary = IngestSummary()
        let fm = FileManager.default
        for input in inputs {
            let path = URL(fileURLWithPath: (input as NSString).expandingTildeInPath).standardizedFileURL.path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw IndexError.io(path: path, message: "no such file or directory") }
            if isDir.boolValue {
                roots.append(path)
                var walk = LibraryWalk(root: path, imageExtensions: imageExtensions, warn: warn)
                walk.run()
                files.formUnion(walk.files)
                summary.merge(walk.summary)
            } else if imageExtensions.contains((path as NSString).pathExtension.lowercased()) {
                files.insert(CollectedFile(path: path, relative: path))
            } else {
                warn("\(path): not an image (by its extension), skipped")
                summary.skip(.nonImage)
            }
        }
        var kept = Array(files)
        if let shard { kept = kept.filter { shard.contains(relativePath: $0.relative) } }
        // One path found under two roots: keep one entry (the lexically first relative form).
        var seen = Set<String>()
        kept = kept.sorted { ($0.path, $0.relative) < ($1.path, $1.relative) }.filter { seen.insert($0.path).inserted }
        return (kept, roots, summary)
    }

    /// `sync`'s removal step: drops stored files under each root that are not in `present`. With a shard,
    /// only stored files of that shard are considered (other workers own the rest). Returns removed paths.
    public static func removeMissing(_ present: [CollectedFile], roots: [String], shard: IndexShard?, index: any VectorIndex) throws -> [String] {
        let paths = Set(present.map(\.path))
        var removed: [String] = []
        for root in roots {
            let prefix = root.hasSuffix("/") ? root : root + "/"
            if let shard {
                // Stored files of other shards count as present, so this worker never removes them.
                let others = try index.allPaths().filter { $0.hasPrefix(prefix) && !shard.contains(relativePath: String($0.dropFirst(prefix.count))) }
                removed += try index.removeMissing(present: paths.union(others), under: root)
            } else {
                removed += try index.removeMissing(present: paths, under: root)
            }
        }
        return removed
    }

    /// Plans, embeds in batches (each batch one write: an interruption keeps every batch written so far and
    /// the next run resumes), then persists. Nothing about one file stops the run: a file that vanished, cannot be
    /// read, does not decode or changed while it was being embedded is skipped with one warning line (and the next
    /// run takes it up); a file whose content is another format than its extension says is indexed with a warning.
    public static func ingest(_ files: [String], index: any VectorIndex, pipeline: EmbeddingPipeline, batch: Int,
                              observer: Observer = Observer()) throws -> Outcome {
        guard batch >= 1 else { throw IndexError.invalidArgument("batch size must be at least 1, got \(batch)") }
        var outcome = Outcome()
        let skip = { (reason: SkipReason, message: String) in
            observer.warn("\(message), skipped")
            outcome.summary.skip(reason)
            outcome.failed += 1
        }
        var stats: [FileStat] = []
        for f in files {
            do { stats.append(try FileStat.of(path: f)) } catch { let (r, m) = IngestFileCheck.gone(f); skip(r, m) }
        }
        var unreadable: [String: (SkipReason, String)] = [:]
        let plan = try index.plan(stats) { path in
            do { return try SHA256Hasher.hex(fileAt: path) } catch {
                unreadable[path] = IngestFileCheck.gone(path)
                return IngestFileCheck.unreadableHash  // never a stored digest: the file is planned as changed
            }
        }
        for file in plan.unchanged {
            if let name = ImageFormat.displayName(fileExtension: (file.path as NSString).pathExtension) { outcome.summary.count(format: name) }
        }
        var todo: [(stat: FileStat, format: String?)] = []
        for file in plan.new + plan.changed {
            if let problem = unreadable[file.path] { skip(problem.0, problem.1); continue }
            switch IngestFileCheck.header(file.path) {
            case .failure(let problem): skip(problem.reason, problem.message)
            case .success(let found):
                if let warning = found.warning { observer.warn(warning) }
                todo.append((file, found.format))
            }
        }
        let newPaths = Set(plan.new.map(\.path))
        outcome.unchanged = plan.unchanged.count
        var written = 0, done = 0
        for start in stride(from: 0, to: todo.count, by: batch) {
            let part = Array(todo[start ..< min(start + batch, todo.count)])
            var good: [(FileStat, String?, [Float])] = []
            do {
                let vectors = try pipeline.embed(imageFiles: part.map { URL(fileURLWithPath: $0.stat.path) })
                good = zip(part, vectors).map { ($0.stat, $0.format, $1) }
            } catch {
                // One bad file must not sink the batch: retry one by one to name and skip it.
                for file in part {
                    do {
                        if let v = try pipeline.embed(imageFiles: [URL(fileURLWithPath: file.stat.path)]).first { good.append((file.stat, file.format, v)) }
                    } catch {
                        let (reason, message) = IngestFileCheck.failed(file.stat.path, error)
                        skip(reason, message)
                    }
                }
            }
            var records: [FileRecord] = []
            for (file, format, vector) in good {
                let hash = plan.hashes[file.path].flatMap { $0 == IngestFileCheck.unreadableHash ? nil : $0 }
                    ?? (try? SHA256Hasher.hex(fileAt: file.path))
                // Read twice (decoder, hash): a file rewritten meanwhile may be half old, half new. Skip it; the next
                // run sees its new size or mtime and embeds it then.
                guard let hash, let now = try? FileStat.of(path: file.path), now == file else {
                    skip(.changed, "\(file.path): changed while it was being indexed (the next run takes it)")
                    continue
                }
                records.append(FileRecord(stat: file, contentHash: hash, metadata: nil, vector: vector))
                if let format { outcome.summary.count(format: format) }
            }
            try index.add(records)  // committed: an interruption after this line keeps the batch
            written += records.count
            observer.committed(written)
            outcome.added += records.filter { newPaths.contains($0.stat.path) }.count
            done += part.count
            observer.progress(done, todo.count)
        }
        outcome.updated = written - outcome.added
        try index.persist()
        if !todo.isEmpty { try index.checkpoint() }
        return outcome
    }
}
