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

    /// Image files under the given paths (recursive), absolute and standardised, sorted; hidden files and
    /// directories are skipped, other non-images skipped with a warning (one line per directory or file).
    /// `shard` keeps only that shard's files. Returns the files and the directories given (sync's roots).
    public static func collect(_ inputs: [String], shard: IndexShard? = nil, warn: (String) -> Void = { _ in })
        throws -> (files: [CollectedFile], roots: [String]) {
        var files = Set<CollectedFile>(), roots: [String] = []
        let fm = FileManager.default
        for input in inputs {
            let path = URL(fileURLWithPath: (input as NSString).expandingTildeInPath).standardizedFileURL.path
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw IndexError.io(path: path, message: "no such file or directory") }
            if isDir.boolValue {
                roots.append(path)
                var skipped = 0
                guard let walker = fm.enumerator(atPath: path) else { throw IndexError.io(path: path, message: "cannot list") }
                while let relative = walker.nextObject() as? String {
                    let full = path + "/" + relative
                    var sub: ObjCBool = false
                    guard fm.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue else { continue }
                    if relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }  // hidden files and dirs
                    if imageExtensions.contains((relative as NSString).pathExtension.lowercased()) {
                        files.insert(CollectedFile(path: full, relative: relative))
                    } else {
                        skipped += 1
                    }
                }
                if skipped > 0 { warn("\(path): skipped \(skipped) non-image file(s)") }
            } else if imageExtensions.contains((path as NSString).pathExtension.lowercased()) {
                files.insert(CollectedFile(path: path, relative: path))
            } else {
                warn("\(path): not an image (jpg/jpeg/png), skipped")
            }
        }
        var kept = Array(files)
        if let shard { kept = kept.filter { shard.contains(relativePath: $0.relative) } }
        // One path found under two roots: keep one entry (the lexically first relative form).
        var seen = Set<String>()
        kept = kept.sorted { ($0.path, $0.relative) < ($1.path, $1.relative) }.filter { seen.insert($0.path).inserted }
        return (kept, roots)
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
    /// the next run resumes), then persists. A file that cannot be decoded is skipped with a warning.
    public static func ingest(_ files: [String], index: any VectorIndex, pipeline: EmbeddingPipeline, batch: Int,
                              observer: Observer = Observer()) throws -> Outcome {
        guard batch >= 1 else { throw IndexError.invalidArgument("batch size must be at least 1, got \(batch)") }
        var stats: [FileStat] = []
        for f in files {
            do { stats.append(try FileStat.of(path: f)) } catch { observer.warn("\(error)") }
        }
        let plan = try index.plan(stats) { try SHA256Hasher.hex(fileAt: $0) }
        let todo = plan.new + plan.changed
        let newPaths = Set(plan.new.map(\.path))
        var outcome = Outcome(unchanged: plan.unchanged.count)
        var written = 0, done = 0
        for start in stride(from: 0, to: todo.count, by: batch) {
            let part = Array(todo[start ..< min(start + batch, todo.count)])
            var good: [(FileStat, [Float])] = []
            do {
                let vectors = try pipeline.embed(imageFiles: part.map { URL(fileURLWithPath: $0.path) })
                good = Array(zip(part, vectors))
            } catch {
                // One bad file must not sink the batch: retry one by one to name and skip it.
                for file in part {
                    do {
                        if let v = try pipeline.embed(imageFiles: [URL(fileURLWithPath: file.path)]).first { good.append((file, v)) }
                    } catch {
                        let message = "\(error)"  // decoder errors usually name the file already
                        observer.warn(message.contains(file.path) ? "\(message), skipped" : "\(file.path): \(message), skipped")
                        outcome.failed += 1
                    }
                }
            }
            let records = try good.map { file, vector in
                FileRecord(stat: file, contentHash: try plan.hashes[file.path] ?? SHA256Hasher.hex(fileAt: file.path), metadata: nil, vector: vector)
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
