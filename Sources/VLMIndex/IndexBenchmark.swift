import Foundation
import VLMTensor

/// A float32 or int64 2-D array read from a NumPy .npy file (format versions 1-3, C order,
/// little-endian): what `Benchmarks/index_bench.py gen` writes.
public struct NpyArray {
    public let shape: [Int]
    public let floats: [Float]
    public let ints: [Int64]

    public static func read(_ path: String) throws -> NpyArray {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw IndexError.io(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        func bad(_ why: String) -> IndexError { .corruptFile(path: path, reason: why) }
        guard data.count >= 10, data.prefix(6) == Data([0x93]) + Data("NUMPY".utf8) else { throw bad("not an .npy file") }
        let major = data[data.startIndex + 6]
        let headerLength: Int, headerStart: Int
        if major == 1 {
            headerLength = Int(data[data.startIndex + 8]) | Int(data[data.startIndex + 9]) << 8
            headerStart = 10
        } else {
            guard data.count >= 12 else { throw bad("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(data[data.startIndex + 8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard headerStart + headerLength <= data.count else { throw bad("truncated header") }
        let header = String(decoding: data[(data.startIndex + headerStart)..<(data.startIndex + headerStart + headerLength)], as: UTF8.self)
        guard !header.contains("'fortran_order': True") else { throw bad("Fortran order is not supported") }
        guard let open = header.range(of: "'shape': ("), let close = header[open.upperBound...].firstIndex(of: ")") else { throw bad("no shape") }
        let shape = header[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let count = shape.reduce(1, *)
        let payload = data[(data.startIndex + headerStart + headerLength)...]
        if header.contains("'descr': '<f4'") {
            guard payload.count >= count * 4 else { throw bad("payload shorter than shape \(shape)") }
            var floats = [Float](repeating: 0, count: count)
            floats.withUnsafeMutableBytes { dst in payload.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<(count * 4)])) } }
            return NpyArray(shape: shape, floats: floats, ints: [])
        }
        if header.contains("'descr': '<i8'") {
            guard payload.count >= count * 8 else { throw bad("payload shorter than shape \(shape)") }
            var ints = [Int64](repeating: 0, count: count)
            ints.withUnsafeMutableBytes { dst in payload.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<(count * 8)])) } }
            return NpyArray(shape: shape, floats: [], ints: ints)
        }
        throw bad("unsupported dtype in header \(header)")
    }
}

/// The Swift side of `Benchmarks/index_bench.py`: same files, same measurements, same JSON schema
/// (`swift.json` next to `faiss.json`), so `index_bench.py compare` can print them side by side.
public enum IndexBenchmark {
    public struct Options {
        public var directory: String
        public var threads: [Int] = [1, 2]
        public var hnsw = HNSWParameters(M: 16, efConstruction: 100, efSearch: 64, seed: 0x5EED)
        public var efSweep = [16, 32, 64, 128, 256, 512, 1024, 2048]
        public var minSeconds = 1.0
        public var singleQueries = 200
        /// Only these sizes (nil: every base_<n>.npy in the directory).
        public var sizes: [Int]?
        /// HNSW only for sizes up to this (a 1M x 512 build takes many minutes on 2 cores).
        public var hnswMaxN = Int.max
        public init(directory: String) { self.directory = directory }
    }

    public static func run(_ options: Options, log: (String) -> Void = { print($0) }) throws -> [String: Any] {
        let k = 10
        let queriesNpy = try NpyArray.read(options.directory + "/queries.npy")
        guard queriesNpy.shape.count == 2 else { throw IndexError.invalidArgument("queries.npy must be 2-D") }
        let (nq, dim) = (queriesNpy.shape[0], queriesNpy.shape[1])
        let queries = queriesNpy.floats
        let files = (try? FileManager.default.contentsOfDirectory(atPath: options.directory)) ?? []
        var sizes = files.compactMap { f -> Int? in
            guard f.hasPrefix("base_"), f.hasSuffix(".npy") else { return nil }
            return Int(f.dropFirst(5).dropLast(4))
        }.sorted()
        if let only = options.sizes { sizes = sizes.filter(only.contains) }
        var report: [String: Any] = ["side": "swift", "isa": Kernels.isa, "M": options.hnsw.M, "efConstruction": options.hnsw.efConstruction]
        var sizeReports: [String: Any] = [:]
        let savedThreads = Kernels.threads
        defer { Kernels.threads = savedThreads }
        for n in sizes {
            let base = try NpyArray.read(options.directory + "/base_\(n).npy")
            let gt = try NpyArray.read(options.directory + "/gt_\(n).npy")
            guard base.shape == [n, dim], gt.shape.count == 2, gt.shape[0] == nq, gt.shape[1] >= k else {
                throw IndexError.invalidArgument("base_\(n).npy \(base.shape) / gt \(gt.shape) do not match queries [\(nq), \(dim)]")
            }
            let truth = (0..<nq).map { Set(gt.ints[($0 * gt.shape[1])..<($0 * gt.shape[1] + k)]) }
            func recall(_ results: [[SearchHit]]) -> Double {
                var hits = 0
                for (r, t) in zip(results, truth) { hits += r.prefix(k).filter { t.contains($0.id) }.count }
                return Double(hits) / Double(nq * k)
            }
            var entry: [String: Any] = [:]
            let exact = try ExactSearch(dim: dim)
            try base.floats.withUnsafeBufferPointer { buf in
                for i in 0..<n { try exact.add(id: Int64(i), vector: UnsafeBufferPointer(rebasing: buf[(i * dim)..<((i + 1) * dim)])) }
            }
            var exactReport: [String: Any] = [:]
            for t in options.threads {
                Kernels.threads = t
                let (sec, results) = try timed(options.minSeconds) { try exact.search(queries: queries, k: k) }
                let single = min(options.singleQueries, nq)
                let (sec1, _) = try timed(options.minSeconds) {
                    for i in 0..<single { _ = try exact.search(queries: Array(queries[(i * dim)..<((i + 1) * dim)]), k: k) }
                }
                let r = recall(results)
                exactReport["\(t)"] = ["batch_qps": Double(nq) / sec, "single_qps": Double(single) / sec1, "recall": r]
                log(String(format: "swift n=%d t=%d exact: batch %.1f QPS, single %.1f QPS, recall %.4f", n, t, Double(nq) / sec, Double(single) / sec1, r))
            }
            entry["exact"] = exactReport
            guard n <= options.hnswMaxN else {
                sizeReports["\(n)"] = entry
                continue
            }
            let buildThreads = options.threads.max() ?? 1
            let start = Date()
            let graph = try HNSWIndex(dim: dim, parameters: options.hnsw, capacity: n)
            try base.floats.withUnsafeBufferPointer { buf in
                // In slices, to log progress on long builds.
                for s in stride(from: 0, to: n, by: 100_000) {
                    let e = min(n, s + 100_000)
                    try graph.insert(labels: (s..<e).map { Int64($0) }, vectors: UnsafeBufferPointer(rebasing: buf[(s * dim)..<(e * dim)]), threads: buildThreads)
                    if e < n { log("  HNSW build: \(e)/\(n) after \(Int(Date().timeIntervalSince(start))) s") }
                }
            }
            let build = Date().timeIntervalSince(start)
            entry["hnsw_build_seconds"] = build
            entry["hnsw_build_threads"] = buildThreads
            log(String(format: "swift n=%d HNSW build (M=%d, efC=%d, %d threads): %.1f s", n, options.hnsw.M, options.hnsw.efConstruction, buildThreads, build))
            var hnswReport: [String: Any] = [:]
            for t in options.threads {
                var rows: [[String: Any]] = []
                for ef in options.efSweep {
                    let (sec, results) = try timed(options.minSeconds) { try graph.search(queries: queries, k: k, efSearch: ef, threads: t) }
                    let r = recall(results)
                    rows.append(["efSearch": ef, "qps": Double(nq) / sec, "recall": r])
                    log(String(format: "swift n=%d t=%d HNSW ef=%d: %.1f QPS, recall@10 %.4f", n, t, ef, Double(nq) / sec, r))
                    if r >= 0.99 { break }
                }
                hnswReport["\(t)"] = rows
            }
            entry["hnsw"] = hnswReport
            sizeReports["\(n)"] = entry
        }
        report["sizes"] = sizeReports
        let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        let out = options.directory + "/swift.json"
        do { try json.write(to: URL(fileURLWithPath: out)) } catch { throw IndexError.io(path: out, message: "\(error)") }
        log("wrote \(out)")
        return report
    }

    /// Runs `body` once to warm up, then repeatedly for at least `minSeconds`; seconds per call.
    static func timed<T>(_ minSeconds: Double, _ body: () throws -> T) rethrows -> (Double, T) {
        var result = try body()
        var calls = 0
        let start = DispatchTime.now().uptimeNanoseconds
        while true {
            result = try body()
            calls += 1
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if elapsed >= minSeconds { return (elapsed / Double(calls), result) }
        }
    }
}

extension IndexBenchmark {
    /// Writes the first `n` rows of `base_<n>.npy` (what `index_bench.py gen` wrote in `directory`) into `index` as
    /// synthetic files `/bench/<i>.jpg`, in committed batches of `batch`: the index `vlm serve` searches in the
    /// serving benchmark (the same vectors in every backend, so the backends' latencies compare). The vectors must
    /// have the index's dimension (the serving model's embedding size). Returns the rows written.
    public static func fill(_ index: any VectorIndex, directory: String, n: Int, batch: Int = 2000,
                            progress: (Int) -> Void = { _ in }) throws -> Int {
        guard n >= 1, batch >= 1 else { throw IndexError.invalidArgument("n and batch must be at least 1") }
        let base = try NpyArray.read(directory + "/base_\(n).npy")
        guard base.shape.count == 2, base.shape[0] >= n, !base.floats.isEmpty else {
            throw IndexError.invalidArgument("base_\(n).npy has shape \(base.shape), expected [\(n), dim]")
        }
        let dim = base.shape[1]
        guard dim == index.identity.dim else {
            throw IndexError.invalidArgument("base_\(n).npy holds \(dim)-d vectors but the index's model embeds \(index.identity.dim)-d")
        }
        var written = 0
        while written < n {
            let end = min(n, written + batch)
            let records = (written ..< end).map { i in
                FileRecord(stat: FileStat(path: "/bench/\(i).jpg", size: 1, mtime: 0), contentHash: "bench-\(i)",
                           vector: Array(base.floats[(i * dim) ..< ((i + 1) * dim)]))
            }
            try index.add(records)
            written = end
            progress(written)
        }
        try index.persist()
        return written
    }
}
