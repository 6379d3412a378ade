import ArgumentParser
import Foundation
import SwiftVLM
import VLMIndex

/// `vlm index ...`: visual search over a folder of images (SQLite store + exact/HNSW search).
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Visual search index: add/sync images, search by text or image, near-duplicates.",
        subcommands: [Add.self, Sync.self, Search.self, Dupes.self, Stats.self, Remove.self, IndexBenchCommand.self])
}

/// Where the index lives (and its HNSW graph next to it).
struct IndexLocation: ParsableArguments {
    @Option(name: .customLong("index"), help: "Index database (default: $VLM_INDEX or ~/.vlm/index.sqlite).")
    var path: String?

    var resolved: String {
        let p = path ?? ProcessInfo.processInfo.environment["VLM_INDEX"] ?? "~/.vlm/index.sqlite"
        return (p as NSString).expandingTildeInPath
    }

    /// Opens an existing index with the identity it was built with (commands that embed nothing).
    func openExisting() throws -> SearchIndex {
        guard let identity = try VectorStore.storedIdentity(path: resolved) else {
            throw IndexError.io(path: resolved, message: "no index here (create one with `vlm index add`)")
        }
        return try SearchIndex(path: resolved, model: identity)
    }
}

enum IndexCLI {
    static let imageExtensions = ImageFormat.fileExtensions

    /// The model identity (shared with `vlm serve --index`).
    static func identity(_ pipeline: EmbeddingPipeline) throws -> ModelIdentity { pipeline.indexIdentity() }

    static func warn(_ message: String) { FileHandle.standardError.write(Data("warning: \(message)\n".utf8)) }

    /// Image files under the given paths (recursive), absolute and standardised; everything else is
    /// skipped with a warning (one summary line per directory, one line per explicit file).
    static func collect(_ inputs: [String]) throws -> (files: [String], roots: [String]) {
        var files: [String] = [], roots: [String] = []
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
                    if imageExtensions.contains((relative as NSString).pathExtension.lowercased()) { files.append(full) } else { skipped += 1 }
                }
                if skipped > 0 { warn("\(path): skipped \(skipped) non-image file(s)") }
            } else if imageExtensions.contains((path as NSString).pathExtension.lowercased()) {
                files.append(path)
            } else {
                warn("\(path): not an image (jpg/jpeg/png), skipped")
            }
        }
        return (Array(Set(files)).sorted(), roots)
    }

    /// Plans, embeds in batches (each batch one transaction), persists the graph. Returns counts.
    static func ingest(_ files: [String], index: SearchIndex, pipeline: EmbeddingPipeline, batch: Int, quiet: Bool) throws -> (added: Int, updated: Int, unchanged: Int, failed: Int) {
        var stats: [FileStat] = []
        for f in files {
            do { stats.append(try FileStat.of(path: f)) } catch { warn("\(error)") }
        }
        let plan = try index.store.plan(stats) { try SHA256Hasher.hex(fileAt: $0) }
        let todo = plan.new + plan.changed
        let progress = Progress(total: todo.count, quiet: quiet)
        var failed = 0, written = 0
        let newPaths = Set(plan.new.map(\.path))
        var newWritten = 0
        var start = 0
        while start < todo.count {
            let part = Array(todo[start..<min(start + batch, todo.count)])
            start += part.count
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
                        warn(message.contains(file.path) ? "\(message), skipped" : "\(file.path): \(message), skipped")
                        failed += 1
                    }
                }
            }
            var records: [FileRecord] = []
            for (file, vector) in good {
                let hash = try plan.hashes[file.path] ?? SHA256Hasher.hex(fileAt: file.path)
                records.append(FileRecord(stat: file, contentHash: hash, metadata: nil, vector: vector))
            }
            try index.add(records)  // committed: an interruption after this line keeps the batch
            written += records.count
            CommitHook.shared?.committed(total: written)
            newWritten += records.filter { newPaths.contains($0.stat.path) }.count
            progress.advance(by: part.count)
        }
        progress.finish()
        try index.persist()
        if !todo.isEmpty { try index.store.checkpoint() }
        return (newWritten, written - newWritten, plan.unchanged.count, failed)
    }
}

/// Test hook for crash-safety tests: with VLM_TEST_COMMIT_PAUSE_MS set, `index add`/`sync` print
/// "vlm-test: committed N" to stderr after each committed batch (N = images written so far in this run) and
/// pause that many milliseconds, so a test can kill the process at a known point. Unset: no effect.
struct CommitHook {
    let pause: UInt32

    static let shared: CommitHook? = ProcessInfo.processInfo.environment["VLM_TEST_COMMIT_PAUSE_MS"]
        .flatMap { UInt32($0) }.map { CommitHook(pause: $0) }

    func committed(total: Int) {
        FileHandle.standardError.write(Data("vlm-test: committed \(total)\n".utf8))
        if pause > 0 { usleep(pause * 1000) }
    }
}

/// A one-line progress bar on stderr: files, files/s, ETA.
final class Progress {
    let total: Int
    let quiet: Bool
    var done = 0
    let start = Date()
    var lastDraw = Date.distantPast

    init(total: Int, quiet: Bool) {
        self.total = total
        self.quiet = quiet || isatty(STDERR_FILENO) == 0
    }

    func advance(by n: Int) {
        done += n
        guard !quiet, Date().timeIntervalSince(lastDraw) > 0.2 || done == total else { return }
        lastDraw = Date()
        let elapsed = max(Date().timeIntervalSince(start), 1e-6)
        let rate = Double(done) / elapsed
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30
        let filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(format: "\r[%@] %d/%d files  %.1f files/s  ETA %@   ", bar, done, total, rate, Self.duration(eta))
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() { if !quiet && total > 0 { FileHandle.standardError.write(Data("\n".utf8)) } }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\((t % 3600) / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}

extension IndexCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Embed images (recursively) into the index; unchanged files are skipped, changed ones re-embedded.",
            discussion: "Each batch is committed on its own: an interrupted run keeps what it did and the next run resumes.")
        @OptionGroup var location: IndexLocation
        @OptionGroup var options: ModelOptions
        @Argument(help: "Image files or directories.") var paths: [String]
        @Option(help: "Images per encoder batch (and per committed transaction).") var batch = 32
        @Flag(help: "Rebuild the index if it was made with another model (otherwise refuse).") var rebuild = false
        @Flag(help: "No progress bar.") var quiet = false

        func run() throws {
            try guarded {
                guard batch >= 1 else { throw PipelineError.invalidArgument("--batch must be at least 1") }
                let pipeline = try options.pipeline()
                let index = try SearchIndex(path: location.resolved, model: IndexCLI.identity(pipeline), onMismatch: rebuild ? .rebuild : .refuse)
                let (files, _) = try IndexCLI.collect(paths)
                let r = try IndexCLI.ingest(files, index: index, pipeline: pipeline, batch: batch, quiet: quiet)
                print("added \(r.added), re-embedded \(r.updated), unchanged \(r.unchanged), failed \(r.failed); index holds \(index.count) images")
            }
        }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Like add, and also drop indexed files under the given directories that no longer exist.")
        @OptionGroup var location: IndexLocation
        @OptionGroup var options: ModelOptions
        @Argument(help: "Directories (or files) to mirror.") var paths: [String]
        @Option(help: "Images per encoder batch.") var batch = 32
        @Flag(help: "No progress bar.") var quiet = false

        func run() throws {
            try guarded {
                let pipeline = try options.pipeline()
                let index = try SearchIndex(path: location.resolved, model: IndexCLI.identity(pipeline))
                let (files, roots) = try IndexCLI.collect(paths)
                var removed: [String] = []
                for root in roots { removed += try index.removeMissing(present: Set(files), under: root) }
                let r = try IndexCLI.ingest(files, index: index, pipeline: pipeline, batch: batch, quiet: quiet)
                print("added \(r.added), re-embedded \(r.updated), unchanged \(r.unchanged), removed \(removed.count), failed \(r.failed); index holds \(index.count) images")
            }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search by text and/or image; --plus/--minus add query arithmetic terms (e.g. --image shoe.jpg --plus red).")
        @OptionGroup var location: IndexLocation
        @OptionGroup var options: ModelOptions
        @Argument(help: "Query text.") var text: String?
        @Option(help: "Query image.") var image: String?
        @Option(help: "Text added to the query; repeatable.") var plus: [String] = []
        @Option(help: "Text subtracted from the query; repeatable.") var minus: [String] = []
        @Option(help: "Results to show.") var top = 10
        @Option(name: .customLong("min-score"), help: "Hide results below this cosine similarity.") var minScore: Float?
        @Flag(help: "JSON output.") var json = false

        struct Hit: Encodable {
            let rank: Int
            let path: String
            let score: Float
        }

        func run() throws {
            try guarded {
                guard top >= 1 else { throw PipelineError.invalidArgument("--top must be at least 1") }
                guard text != nil || image != nil else { throw PipelineError.invalidArgument("give a query text or --image") }
                let pipeline = try options.pipeline()
                let index = try SearchIndex(path: location.resolved, model: IndexCLI.identity(pipeline))
                var terms: [(vector: [Float], weight: Float)] = []
                if let image { terms += try pipeline.embed(imageFiles: [URL(fileURLWithPath: image)]).map { ($0, 1) } }
                let texts = (text.map { [$0] } ?? []) + plus
                if !texts.isEmpty { terms += try pipeline.embed(texts: texts).map { ($0, 1) } }
                if !minus.isEmpty { terms += try pipeline.embed(texts: minus).map { ($0, -1) } }
                let query = try QueryMath.combine(terms)
                let hits = try index.searchFiles(query, k: top, minScore: minScore ?? -.infinity)
                let rows = hits.enumerated().map { Hit(rank: $0.offset + 1, path: $0.element.file.path, score: $0.element.score) }
                if json { try printJSON(rows) } else {
                    for r in rows { print("\(r.rank)\t\(String(format: "%.4f", r.score))\t\(r.path)") }
                    if rows.isEmpty { FileHandle.standardError.write(Data("no results\n".utf8)) }
                }
            }
        }
    }

    struct Dupes: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List near-duplicate image pairs (cosine similarity >= threshold).")
        @OptionGroup var location: IndexLocation
        @Option(help: "Cosine similarity threshold.") var threshold: Float = 0.95
        @Option(help: "At most this many pairs.") var limit = 10_000
        @Flag(help: "JSON output.") var json = false

        struct Pair: Encodable {
            let a: String
            let b: String
            let score: Float
        }

        func run() throws {
            try guarded {
                guard threshold > -1, threshold <= 1 else { throw PipelineError.invalidArgument("--threshold must be in (-1, 1]") }
                let index = try location.openExisting()
                let pairs = try index.duplicates(threshold: threshold, limit: limit)
                let files = try index.store.files(embeddingIDs: Array(Set(pairs.flatMap { [$0.a, $0.b] })))
                let rows = pairs.compactMap { p -> Pair? in
                    guard let a = files[p.a], let b = files[p.b] else { return nil }
                    return Pair(a: a.path, b: b.path, score: p.score)
                }
                if json { try printJSON(rows) } else { for r in rows { print("\(String(format: "%.4f", r.score))\t\(r.a)\t\(r.b)") } }
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Index size, model, storage and search strategy.")
        @OptionGroup var location: IndexLocation
        @Flag(help: "JSON output.") var json = false
        @Flag(help: "Also check the database (SQLite integrity, every file has its embedding); exit 1 on problems.") var check = false

        struct Output: Encodable {
            let path: String
            let model: String
            let dim: Int
            let files: Int
            let embeddings: Int
            let image_bytes: Int64
            let database_bytes: Int64
            let strategy: String
            let hnsw_nodes: Int?
            let hnsw_deleted: Int?
            /// With --check: the problems found (empty when sound).
            let problems: [String]?
        }

        func run() throws {
            try guarded {
                let index = try location.openExisting()
                let s = try index.store.stats()
                let out = Output(path: location.resolved, model: s.fingerprint, dim: s.dim, files: s.files, embeddings: s.embeddings,
                                 image_bytes: s.totalFileBytes, database_bytes: s.databaseBytes, strategy: index.strategy.rawValue,
                                 hnsw_nodes: index.hnsw?.count, hnsw_deleted: index.hnsw?.deletedCount,
                                 problems: check ? try index.store.check() : nil)
                try index.persist()
                if json { try printJSON(out) } else {
                    print("index     \(out.path)\nmodel     \(out.model) (dim \(out.dim))\nimages    \(out.files) (\(out.image_bytes) bytes on disk)")
                    print("database  \(out.database_bytes) bytes\nsearch    \(out.strategy)" + (out.hnsw_nodes.map { " (\($0) graph nodes, \(out.hnsw_deleted ?? 0) deleted)" } ?? ""))
                    if let problems = out.problems { print("check     " + (problems.isEmpty ? "ok" : problems.joined(separator: "; "))) }
                }
                if let problems = out.problems, !problems.isEmpty {
                    throw IndexError.corruptFile(path: location.resolved, reason: problems.joined(separator: "; "))
                }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove files (or everything under directories) from the index.")
        @OptionGroup var location: IndexLocation
        @Argument(help: "Indexed files or directories.") var paths: [String]

        func run() throws {
            try guarded {
                let index = try location.openExisting()
                let stored = try index.store.allPaths()
                var targets: [String] = []
                for p in paths {
                    let full = URL(fileURLWithPath: (p as NSString).expandingTildeInPath).standardizedFileURL.path
                    let prefix = full.hasSuffix("/") ? full : full + "/"
                    targets += stored.filter { $0 == full || $0.hasPrefix(prefix) }
                }
                let ids = try index.remove(paths: Array(Set(targets)))
                try index.persist()
                print("removed \(ids.count) image(s); index holds \(index.count)")
            }
        }
    }

    struct IndexBenchCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench",
            abstract: "Exact and HNSW search throughput/recall on the vectors of Benchmarks/index_bench.py gen (writes swift.json).")
        @Option(help: "Directory written by `index_bench.py gen`.") var data = "/tmp/vlm_index_bench"
        @Option(help: "Comma-separated thread counts.") var threads = "1,2"
        @Option(help: "Comma-separated sizes (default: all base_<n>.npy).") var sizes: String?
        @Option(help: "HNSW M.") var m = 16
        @Option(name: .customLong("ef-construction"), help: "HNSW efConstruction.") var efConstruction = 100
        @Option(name: .customLong("min-seconds"), help: "Minimum timing per measurement.") var minSeconds = 1.0
        @Option(name: .customLong("hnsw-max-n"), help: "Skip HNSW for sizes above this (builds of 1M take long).") var hnswMaxN = Int.max

        func run() throws {
            try guarded {
                var o = IndexBenchmark.Options(directory: data)
                o.threads = threads.split(separator: ",").compactMap { Int($0) }
                o.sizes = sizes.map { $0.split(separator: ",").compactMap { Int($0) } }
                o.hnsw.M = m
                o.hnsw.efConstruction = efConstruction
                o.minSeconds = minSeconds
                o.hnswMaxN = hnswMaxN
                _ = try IndexBenchmark.run(o) { line in
                    print(line)
                    fflush(stdout)
                }
            }
        }
    }
}
