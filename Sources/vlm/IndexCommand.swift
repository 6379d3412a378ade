import ArgumentParser
import Foundation
import SwiftVLM
import VLMIndex
import VLMMilvus

/// `vlm index ...`: visual search over a folder of images (SQLite store + exact/HNSW search, or a Milvus collection).
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Visual search index: add/sync images, search by text or image, near-duplicates.",
        subcommands: [Add.self, Sync.self, Search.self, Dupes.self, Stats.self, Remove.self, Copy.self, IndexBenchCommand.self, MilvusBenchCommand.self, BenchFill.self])
}

/// Where the index lives: a SQLite file (and its HNSW graph next to it) or a Milvus collection.
struct IndexLocation: ParsableArguments {
    @Option(name: .customLong("index"), help: """
        Index: a SQLite database path, or milvus://host:port[/database]/collection \
        (default: $VLM_INDEX or ~/.vlm/index.sqlite).
        """)
    var path: String?
    @Option(name: .customLong("milvus-token"), help: "Milvus token or user:password (default: $MILVUS_TOKEN).")
    var milvusToken: String?

    var resolved: String {
        let p = path ?? ProcessInfo.processInfo.environment["VLM_INDEX"] ?? "~/.vlm/index.sqlite"
        return IndexBackends.isMilvus(p) ? p : (p as NSString).expandingTildeInPath
    }

    /// Opens (or creates) the index for `model`.
    func open(model: ModelIdentity, onMismatch: ModelMismatchPolicy = .refuse) throws -> any VectorIndex {
        try IndexBackends.open(resolved, token: milvusToken, model: model, onMismatch: onMismatch)
    }

    /// Opens an existing index with the identity it was built with (commands that embed nothing).
    func openExisting() throws -> any VectorIndex {
        try IndexBackends.open(resolved, token: milvusToken, model: nil, onMismatch: .refuse)
    }
}

enum IndexCLI {
    /// The model identity (shared with `vlm serve --index`).
    static func identity(_ pipeline: EmbeddingPipeline) throws -> ModelIdentity { pipeline.indexIdentity() }

    static func warn(_ message: String) { FileHandle.standardError.write(Data("warning: \(message)\n".utf8)) }

    /// The run's files by format and skips by reason (the folder walk's and the ingest's), after the counts line.
    static func printSummary(_ walked: IngestSummary, _ outcome: IndexIngestion.Outcome) {
        var all = walked
        all.merge(outcome.summary)
        for line in all.lines { print(line) }
    }

    /// Runs the library's ingest with the CLI's progress bar and the test commit hook.
    static func ingest(_ files: [CollectedFile], index: any VectorIndex, pipeline: EmbeddingPipeline, batch: Int, quiet: Bool) throws -> IndexIngestion.Outcome {
        var progress: Progress?
        let observer = IndexIngestion.Observer(
            warn: warn,
            progress: { done, total in
                if progress == nil { progress = Progress(total: total, quiet: quiet) }
                progress?.advance(to: done)
            },
            committed: { CommitHook.shared?.committed(total: $0) })
        let outcome = try IndexIngestion.ingest(files.map(\.path), index: index, pipeline: pipeline, batch: batch, observer: observer)
        progress?.finish()
        return outcome
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

    func advance(to n: Int) {
        done = n
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
        @Option(help: "Take only shard K of N (K from 0), by a hash of each file's path under its directory: N workers with 0/N ... N-1/N split a tree.")
        var shard: String?
        @Flag(help: "Rebuild the index if it was made with another model (otherwise refuse).") var rebuild = false
        @Flag(help: "No progress bar.") var quiet = false

        func run() throws {
            try guarded {
                guard batch >= 1 else { throw PipelineError.invalidArgument("--batch must be at least 1") }
                let part = try shard.map { try IndexShard(parsing: $0) }
                let pipeline = try options.pipeline()
                let index = try location.open(model: IndexCLI.identity(pipeline), onMismatch: rebuild ? .rebuild : .refuse)
                let (files, _, walked) = try IndexIngestion.collect(paths, shard: part, warn: IndexCLI.warn)
                let r = try IndexCLI.ingest(files, index: index, pipeline: pipeline, batch: batch, quiet: quiet)
                print("added \(r.added), re-embedded \(r.updated), unchanged \(r.unchanged), failed \(r.failed); index holds \(try index.entryCount()) images")
                IndexCLI.printSummary(walked, r)
            }
        }
    }

    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Like add, and also drop indexed files under the given directories that no longer exist.")
        @OptionGroup var location: IndexLocation
        @OptionGroup var options: ModelOptions
        @Argument(help: "Directories (or files) to mirror.") var paths: [String]
        @Option(help: "Images per encoder batch.") var batch = 32
        @Option(help: "Take only shard K of N (see `add --shard`); removal then only touches that shard's files.") var shard: String?
        @Flag(help: "No progress bar.") var quiet = false

        func run() throws {
            try guarded {
                guard batch >= 1 else { throw PipelineError.invalidArgument("--batch must be at least 1") }
                let part = try shard.map { try IndexShard(parsing: $0) }
                let pipeline = try options.pipeline()
                let index = try location.open(model: IndexCLI.identity(pipeline))
                let (files, roots, walked) = try IndexIngestion.collect(paths, shard: part, warn: IndexCLI.warn)
                let removed = try IndexIngestion.removeMissing(files, roots: roots, shard: part, index: index)
                let r = try IndexCLI.ingest(files, index: index, pipeline: pipeline, batch: batch, quiet: quiet)
                print("added \(r.added), re-embedded \(r.updated), unchanged \(r.unchanged), removed \(removed.count), failed \(r.failed); index holds \(try index.entryCount()) images")
                IndexCLI.printSummary(walked, r)
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
                let index = try location.open(model: IndexCLI.identity(pipeline))
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
                let rows = try index.duplicateFiles(threshold: threshold, limit: limit).map { Pair(a: $0.a.path, b: $0.b.path, score: $0.score) }
                if json { try printJSON(rows) } else { for r in rows { print("\(String(format: "%.4f", r.score))\t\(r.a)\t\(r.b)") } }
            }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Index size, model, storage and search strategy.")
        @OptionGroup var location: IndexLocation
        @Flag(help: "JSON output.") var json = false
        @Flag(help: """
            Also check consistency: the database (SQLite integrity, every file has its embedding), the search \
            matrix and graph file against it, and the server's uploads directory against the entries (every \
            uploaded entry's file present and whole, no file without an entry); exit 1 on problems.
            """) var check = false
        @Option(help: "Uploads directory of `vlm serve` to check with --check (default: <index>.uploads, if it exists).")
        var uploads: String?

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
                let s = try index.stats()
                let details = Dictionary(index.details(), uniquingKeysWith: { a, _ in a })
                let out = Output(path: index.location, model: s.fingerprint, dim: s.dim, files: s.files, embeddings: s.embeddings,
                                 image_bytes: s.totalFileBytes, database_bytes: s.databaseBytes, strategy: index.searchStrategy,
                                 hnsw_nodes: details["hnsw_nodes"].flatMap { Int($0) }, hnsw_deleted: details["hnsw_deleted"].flatMap { Int($0) },
                                 problems: check ? try index.check() + uploadProblems(index) : nil)
                try index.persist()
                if json { try printJSON(out) } else {
                    print("index     \(out.path)\nmodel     \(out.model) (dim \(out.dim))\nimages    \(out.files) (\(out.image_bytes) bytes on disk)")
                    print("database  \(out.database_bytes) bytes\nsearch    \(out.strategy)" + (out.hnsw_nodes.map { " (\($0) graph nodes, \(out.hnsw_deleted ?? 0) deleted)" } ?? ""))
                    for (key, value) in index.details() where !key.hasPrefix("hnsw_") { print(key.padding(toLength: max(9, key.count), withPad: " ", startingAt: 0) + " \(value)") }
                    if let problems = out.problems { print("check     " + (problems.isEmpty ? "ok" : problems.joined(separator: "; "))) }
                }
                if let problems = out.problems, !problems.isEmpty {
                    throw IndexError.corruptFile(path: index.location, reason: problems.joined(separator: "; "))
                }
            }
        }

        /// The uploads directory (given, or the SQLite index's default if present) checked against the index.
        func uploadProblems(_ index: any VectorIndex) throws -> [String] {
            let given = uploads.map { ($0 as NSString).expandingTildeInPath }
            let directory = given ?? (index is SearchIndex ? index.location + ".uploads" : "")
            var isDirectory: ObjCBool = false
            guard !directory.isEmpty, FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                return given.map { ["--uploads \($0) is not a directory"] } ?? []
            }
            return try UploadStore(directory: directory).check(index: index)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove files (or everything under directories) from the index.")
        @OptionGroup var location: IndexLocation
        @Argument(help: "Indexed files or directories.") var paths: [String]

        func run() throws {
            try guarded {
                let index = try location.openExisting()
                let stored = try index.allPaths()
                var targets: [String] = []
                for p in paths {
                    let full = URL(fileURLWithPath: (p as NSString).expandingTildeInPath).standardizedFileURL.path
                    let prefix = full.hasSuffix("/") ? full : full + "/"
                    targets += stored.filter { $0 == full || $0.hasPrefix(prefix) }
                }
                let ids = try index.remove(paths: Array(Set(targets)))
                try index.persist()
                print("removed \(ids.count) image(s); index holds \(try index.entryCount())")
            }
        }
    }

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy every file and vector of one index into another (e.g. SQLite into Milvus), without re-embedding.",
            discussion: "Example: vlm index copy ~/.vlm/index.sqlite milvus://milvus.internal:19530/products")
        @Argument(help: "Source index (SQLite path or milvus:// URI).") var source: String
        @Argument(help: "Destination index (created for the source's model if missing; another model's is refused).") var destination: String
        @Option(name: .customLong("milvus-token"), help: "Milvus token or user:password (default: $MILVUS_TOKEN).") var milvusToken: String?

        func run() throws {
            try guarded {
                let expand = { (p: String) in IndexBackends.isMilvus(p) ? p : (p as NSString).expandingTildeInPath }
                let from = try IndexBackends.open(expand(source), token: milvusToken, model: nil, onMismatch: .refuse)
                let to = try IndexBackends.open(expand(destination), token: milvusToken, model: from.identity, onMismatch: .refuse)
                let n = try VectorIndexCopy.copy(from: from, to: to)
                print("copied \(n) image(s) from \(from.location) to \(to.location); it holds \(try to.entryCount())")
            }
        }
    }

    struct MilvusBenchCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-milvus",
            abstract: "Insert rate, search QPS and recall@10 through Milvus and through our HNSW on the vectors of index_bench.py gen.")
        @Option(help: "Directory written by `index_bench.py gen`.") var data = "/tmp/vlm_index_bench"
        @Option(help: "Size (base_<n>.npy).") var n: Int
        @Option(help: "Scratch collection (dropped before and after).") var index = "milvus://127.0.0.1:19530/vlm_bench"
        @Option(help: "Queries to time.") var queries = 1000
        @Option(name: .customLong("ef"), help: "efSearch for both.") var ef = 128
        @Flag(name: .customLong("skip-local"), help: "Milvus only (compare with `vlm index bench` from a release build).") var skipLocal = false

        func run() throws {
            try guarded {
                var o = MilvusBenchmark.Options(directory: data, uri: try MilvusURI(parsing: index), n: n)
                o.queries = queries
                o.milvus.efSearch = ef
                o.skipLocal = skipLocal
                try MilvusBenchmark.run(o) { line in
                    print(line)
                    fflush(stdout)
                }
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
