import Foundation
import VLMIndex

/// `vlm index bench-milvus`: the vectors of `Benchmarks/index_bench.py gen` (base_<n>.npy, queries.npy, gt_<n>.npy)
/// into a Milvus collection and into our HNSW, in the same run: insert rate, time until Milvus has indexed them,
/// single-client search QPS and recall@10 against the exact neighbours.
public enum MilvusBenchmark {
    public struct Options: Sendable {
        public var directory: String
        public var uri: MilvusURI
        public var n: Int
        public var milvus = MilvusOptions()
        /// Queries timed (the first `queries` of queries.npy).
        public var queries = 1000
        public var insertBatch = 2000
        public var localThreads = 2
        /// Milvus only (e.g. a debug build, where our HNSW's figures would mean nothing: compare with `vlm index bench`).
        public var skipLocal = false
        public init(directory: String, uri: MilvusURI, n: Int) { (self.directory, self.uri, self.n) = (directory, uri, n) }
    }

    public static func run(_ o: Options, log: (String) -> Void) throws {
        let k = 10
        let q = try NpyArray.read(o.directory + "/queries.npy")
        let base = try NpyArray.read(o.directory + "/base_\(o.n).npy")
        let gt = try NpyArray.read(o.directory + "/gt_\(o.n).npy")
        guard q.shape.count == 2, base.shape == [o.n, q.shape[1]], gt.shape.count == 2, gt.shape[0] == q.shape[0], gt.shape[1] >= k else {
            throw IndexError.invalidArgument("base_\(o.n).npy \(base.shape), queries \(q.shape), gt \(gt.shape) do not match")
        }
        let dim = q.shape[1], nq = min(o.queries, q.shape[0])
        let truth = (0 ..< nq).map { Set(gt.ints[($0 * gt.shape[1]) ..< ($0 * gt.shape[1] + k)]) }
        let query = { (i: Int) in Array(q.floats[(i * dim) ..< ((i + 1) * dim)]) }
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        // Milvus
        try MilvusIndex.drop(uri: o.uri, options: o.milvus)
        let index = try MilvusIndex.open(uri: o.uri, model: ModelIdentity(fingerprint: "bench/\(o.n)x\(dim)", dim: dim), options: o.milvus)
        var label: [Int64: Int64] = [:]
        let insert = try clock.measure {
            for start in stride(from: 0, to: o.n, by: o.insertBatch) {
                let records = (start ..< min(start + o.insertBatch, o.n)).map { i in
                    FileRecord(stat: FileStat(path: "/bench/\(i)", size: 0, mtime: 0), contentHash: "", vector: Array(base.floats[(i * dim) ..< ((i + 1) * dim)]))
                }
                for r in try index.add(records).inserted { label[r.id] = Int64(r.path.dropFirst(7)) ?? -1 }
            }
        }
        log(String(format: "milvus n=%d: upsert %.0f vectors/s (%.1f s)", o.n, Double(o.n) / seconds(insert), seconds(insert)))
        let indexed = try clock.measure {
            try index.checkpoint()
            try index.waitUntilIndexed(rows: o.n)
        }
        log(String(format: "milvus n=%d: flush + HNSW index build %.1f s", o.n, seconds(indexed)))
        var hits = 0
        let search = try clock.measure {
            for i in 0 ..< nq {
                let found = try index.searchFiles(query(i), k: k, minScore: -.infinity)
                hits += found.filter { truth[i].contains(label[$0.file.fileID] ?? -1) }.count
            }
        }
        log(String(format: "milvus n=%d: search %.1f QPS (1 client, ef=%d), recall@10 %.4f", o.n, Double(nq) / seconds(search), o.milvus.efSearch,
                   Double(hits) / Double(nq * k)))

        try MilvusIndex.drop(uri: o.uri, options: o.milvus)
        guard !o.skipLocal else { return }
        // Our HNSW, same M/efConstruction/ef.
        let params = HNSWParameters(M: o.milvus.hnswM, efConstruction: o.milvus.efConstruction, efSearch: o.milvus.efSearch)
        let graph = try HNSWIndex(dim: dim, parameters: params, capacity: o.n)
        let build = try clock.measure {
            try base.floats.withUnsafeBufferPointer { try graph.insert(labels: (0 ..< o.n).map(Int64.init), vectors: $0, threads: o.localThreads) }
        }
        log(String(format: "local HNSW n=%d: insert %.0f vectors/s (%.1f s, %d threads)", o.n, Double(o.n) / seconds(build), seconds(build), o.localThreads))
        hits = 0
        let local = try clock.measure {
            for i in 0 ..< nq { hits += try graph.search(query: query(i), k: k).filter { truth[i].contains($0.id) }.count }
        }
        log(String(format: "local HNSW n=%d: search %.1f QPS (1 thread, ef=%d), recall@10 %.4f", o.n, Double(nq) / seconds(local), o.milvus.efSearch,
                   Double(hits) / Double(nq * k)))
    }
}

extension MilvusIndex {
    /// Waits until Milvus reports the vector index built over at least `rows` rows (after a flush).
    public func waitUntilIndexed(rows: Int, timeout: Duration = .seconds(3600)) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let d = try run { try await $0.describeIndex(field: Schema.vector) }
            if let first = d.first, first.indexedRows >= Int64(rows) || (first.totalRows > 0 && first.indexedRows >= first.totalRows && first.totalRows >= Int64(rows)) { return }
            Thread.sleep(forTimeInterval: 1)
        }
        throw MilvusError.server(operation: "DescribeIndex", code: 0, reason: "index not built within \(timeout)")
    }
}
