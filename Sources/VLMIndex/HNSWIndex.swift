import Foundation

/// HNSW construction and search parameters (names as in Malkov & Yashunin, "Efficient and robust
/// approximate nearest neighbor search using Hierarchical Navigable Small World graphs", 2016/2018).
public struct HNSWParameters: Sendable, Equatable, Codable {
    /// Links per node made at insertion (Algorithm 1's M). Upper layers keep at most M (Mmax),
    /// layer 0 at most 2M (Mmax0 = 2M, the paper's recommendation in section 4.1).
    public var M: Int
    /// Dynamic candidate list size during insertion (Algorithm 1's efConstruction).
    public var efConstruction: Int
    /// Dynamic candidate list size during search (Algorithm 5's ef); raised to k when smaller.
    public var efSearch: Int
    /// Seed of the level generator: same seed and insertion order give the same graph.
    public var seed: UInt64

    public init(M: Int = 16, efConstruction: Int = 100, efSearch: Int = 64, seed: UInt64 = 0x5EED) {
        self.M = M
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
    }
}

/// Hierarchical navigable small world graph over inner product (vectors are expected unit-norm,
/// so the score is the cosine similarity; "closer" below means "higher inner product").
///
/// Storage is flat for speed: vectors in one 64-byte-aligned array (node-major), layer-0 links in
/// one array of fixed (1 + Mmax0) Int32 slots per node ([count, ids...]), upper-layer links in a
/// bump-allocated pool addressed per node. Node numbers are internal; callers see `labels`
/// (the store's embedding ids).
///
/// Deletion is by tombstone (as hnswlib's markDelete): a deleted node still routes searches but is
/// never returned. `compacted()` rebuilds without tombstones when they pile up.
///
/// Thread safety: any number of concurrent `search` calls; mutations must be exclusive.
public final class HNSWIndex: @unchecked Sendable {
    public let dim: Int
    public let parameters: HNSWParameters
    let maxM: Int
    let maxM0: Int
    /// Level normalisation mL = 1/ln(M) (section 4.1: the choice that minimises overlap of neighbours across layers).
    let mL: Double
    static let maxLevelCap = 16

    var capacity = 0
    public internal(set) var count = 0
    var vectors: UnsafeMutablePointer<Float>
    var links0: UnsafeMutablePointer<Int32>
    var upperPool: UnsafeMutablePointer<Int32>
    var upperPoolCount = 0
    var upperPoolCapacity = 0
    var upperOffset: [Int] = []
    var levels: [Int32] = []
    var labels: [Int64] = []
    var nodeOf: [Int64: Int32] = [:]
    var deleted: [Bool] = []
    public internal(set) var deletedCount = 0
    var entryPoint: Int32 = -1
    var maxLevel = -1
    var rng: SplitMix64
    private let scratchLock = NSLock()
    /// Set only while a parallel batch insert runs; nil means single-writer mode (no locking).
    var concurrentLocks: NodeLocks?
    private var scratchPool: [SearchScratch] = []

    public init(dim: Int, parameters: HNSWParameters = HNSWParameters(), capacity: Int = 1024) throws {
        guard dim > 0 else { throw IndexError.invalidArgument("HNSW dimension must be positive, got \(dim)") }
        guard parameters.M >= 2, parameters.M <= 4096 else { throw IndexError.invalidArgument("HNSW M must be in 2...4096, got \(parameters.M)") }
        guard parameters.efConstruction >= 1, parameters.efSearch >= 1 else {
            throw IndexError.invalidArgument("HNSW ef values must be positive (efConstruction \(parameters.efConstruction), efSearch \(parameters.efSearch))")
        }
        self.dim = dim
        self.parameters = parameters
        maxM = parameters.M
        maxM0 = 2 * parameters.M
        mL = 1.0 / log(Double(parameters.M))
        rng = SplitMix64(state: parameters.seed)
        vectors = Self.allocate(Float.self, 0)
        links0 = Self.allocate(Int32.self, 0)
        upperPool = Self.allocate(Int32.self, 0)
        reserve(max(capacity, 16))
    }

    deinit {
        UnsafeMutableRawPointer(vectors).deallocate()
        UnsafeMutableRawPointer(links0).deallocate()
        UnsafeMutableRawPointer(upperPool).deallocate()
    }

    /// Live (not deleted) vectors.
    public var liveCount: Int { count - deletedCount }
    public func contains(label: Int64) -> Bool { nodeOf[label].map { !deleted[Int($0)] } ?? false }
    /// Labels of live nodes, in insertion order.
    public var liveLabels: [Int64] { (0..<count).compactMap { deleted[$0] ? nil : labels[$0] } }

    static func allocate<T>(_: T.Type, _ n: Int) -> UnsafeMutablePointer<T> {
        UnsafeMutableRawPointer.allocate(byteCount: max(n, 1) * MemoryLayout<T>.stride, alignment: 64).bindMemory(to: T.self, capacity: max(n, 1))
    }

    static func grow<T>(_ p: UnsafeMutablePointer<T>, from old: Int, to new: Int) -> UnsafeMutablePointer<T> {
        let q = allocate(T.self, new)
        q.update(from: p, count: old)
        // Zero the new tail: unused link slots are written to disk, and must not leak garbage
        // (the same graph must give the same file).
        if new > old { UnsafeMutableRawPointer(q + old).initializeMemory(as: UInt8.self, repeating: 0, count: (new - old) * MemoryLayout<T>.stride) }
        UnsafeMutableRawPointer(p).deallocate()
        return q
    }

    func reserve(_ newCapacity: Int) {
        guard newCapacity > capacity else { return }
        vectors = Self.grow(vectors, from: capacity * dim, to: newCapacity * dim)
        links0 = Self.grow(links0, from: capacity * (maxM0 + 1), to: newCapacity * (maxM0 + 1))
        capacity = newCapacity
    }

    @inline(__always) func vector(_ node: Int32) -> UnsafeMutablePointer<Float> { vectors + Int(node) &* dim }

    /// Link list of `node` on `level`: slot 0 is the count, then the neighbour node numbers.
    @inline(__always) func links(_ node: Int32, _ level: Int) -> UnsafeMutablePointer<Int32> {
        if level == 0 { return links0 + Int(node) &* (maxM0 + 1) }
        return upperPool + upperOffset[Int(node)] + (level - 1) * (maxM + 1)
    }

    /// Level draw l = floor(-ln(U) * mL), U uniform in (0, 1] (Algorithm 1, line 4).
    func randomLevel() -> Int {
        min(Int(-log(rng.nextUnitOpenZero()) * mL), Self.maxLevelCap)
    }

    // MARK: Insertion (Algorithm 1)

    /// Inserts `vector` under `label` (a new label; re-adding a live label throws).
    public func insert(label: Int64, vector v: UnsafeBufferPointer<Float>) throws {
        let node = try allocate(label: label, vector: v)
        link(node)
    }

    /// Inserts many vectors (n rows of dim floats) with `threads` workers linking concurrently, as
    /// hnswlib does: nodes are allocated serially (levels drawn in label order, so the level
    /// sequence is deterministic), then linked in parallel under per-node striped locks. The graph
    /// is as good as a serial build but its exact links depend on timing; threads == 1 is serial.
    public func insert(labels newLabels: [Int64], vectors: UnsafeBufferPointer<Float>, threads: Int) throws {
        guard vectors.count == newLabels.count * dim, let base = vectors.baseAddress else {
            throw IndexError.dimensionMismatch(context: "HNSW batch insert of \(newLabels.count) labels", expected: newLabels.count * dim, actual: vectors.count)
        }
        guard Set(newLabels).count == newLabels.count else { throw IndexError.invalidArgument("HNSW batch insert has duplicate labels") }
        reserve(count + newLabels.count)
        var nodes: [Int32] = []
        nodes.reserveCapacity(newLabels.count)
        for (i, label) in newLabels.enumerated() {
            nodes.append(try allocate(label: label, vector: UnsafeBufferPointer(start: base + i * dim, count: dim)))
        }
        let workers = max(1, min(threads, nodes.count / 64))
        if workers == 1 {
            for node in nodes { link(node) }
            return
        }
        // The first node of an empty graph becomes the entry point; link it before going parallel.
        var rest = nodes[...]
        if let first = rest.first, entryPoint == first {
            rest = rest.dropFirst()
        }
        let locks = NodeLocks()
        concurrentLocks = locks
        defer { concurrentLocks = nil }
        let todo = Array(rest)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for i in stride(from: w, to: todo.count, by: workers) { link(todo[i]) }
        }
    }

    /// Appends a node with no links yet (vector, label, level); the first node becomes the entry point.
    private func allocate(label: Int64, vector v: UnsafeBufferPointer<Float>) throws -> Int32 {
        guard v.count == dim, let src = v.baseAddress else { throw IndexError.dimensionMismatch(context: "HNSW insert label \(label)", expected: dim, actual: v.count) }
        if let existing = nodeOf[label] {
            guard deleted[Int(existing)] else { throw IndexError.invalidArgument("HNSW label \(label) is already present") }
            // A tombstoned node keeps its slot as a router; the label moves to the new node.
        }
        if count == capacity { reserve(max(capacity * 2, 16)) }
        let node = Int32(count)
        let level = randomLevel()
        vector(node).update(from: src, count: dim)
        links0[Int(node) * (maxM0 + 1)] = 0
        upperOffset.append(upperPoolCount)
        if level > 0 {
            let need = level * (maxM + 1)
            if upperPoolCount + need > upperPoolCapacity {
                let newCap = max(upperPoolCapacity * 2, upperPoolCount + need, 1024)
                upperPool = Self.grow(upperPool, from: upperPoolCount, to: newCap)
                upperPoolCapacity = newCap
            }
            for l in 0..<level { upperPool[upperPoolCount + l * (maxM + 1)] = 0 }
            upperPoolCount += need
        }
        levels.append(Int32(level))
        labels.append(label)
        deleted.append(false)
        nodeOf[label] = node
        count += 1
        if entryPoint < 0 {
            entryPoint = node
            maxLevel = level
        }
        return node
    }

    /// Algorithm 1 after the level draw: descend, then link on each layer from min(L, l) down to 0.
    private func link(_ node: Int32) {
        let locks = concurrentLocks
        let level = Int(levels[Int(node)])
        // Entry point and top level are shared state; a node that raises the top level keeps the
        // global lock for its whole insertion (as hnswlib does), so L never changes under it.
        locks?.lockGlobal()
        var ep = entryPoint
        let top = maxLevel
        let holdsGlobal = level > top
        if !holdsGlobal { locks?.unlockGlobal() }
        defer { if holdsGlobal { locks?.unlockGlobal() } }
        guard ep >= 0, ep != node else { return }
        let scratch = takeScratch()
        defer { returnScratch(scratch) }
        let q = UnsafePointer(vector(node))
        var epScore = SIMDKernels.dot(q, vector(ep), dim)
        // Lines 5-7: greedy descent (ef = 1) through the layers above the new node's level.
        if top > level {
            for lc in stride(from: top, to: level, by: -1) { greedy(q, &ep, &epScore, lc, scratch) }
        }
        // Lines 8-17: on each layer from min(L, l) down to 0, find efConstruction candidates,
        // link to M of them chosen by the heuristic (Algorithm 4), and shrink overfull neighbours.
        var entries = [(score: epScore, node: ep)]
        for lc in stride(from: min(level, top), through: 0, by: -1) {
            let found = searchLayer(q, entries: entries, ef: parameters.efConstruction, level: lc, skipDeleted: false, scratch: scratch)
                .filter { $0.node != node }
            // The new node takes as many links as the layer holds (2M on layer 0, M above), as faiss does
            // (hnswlib takes M everywhere): a denser layer 0 gives more recall per efSearch on large sets.
            let selected = selectNeighbors(base: q, candidates: found, m: lc == 0 ? maxM0 : maxM)
            locks?.lock(node)
            let own = links(node, lc)
            own[0] = Int32(selected.count)
            for (i, c) in selected.enumerated() { own[1 + i] = c.node }
            locks?.unlock(node)
            let cap = lc == 0 ? maxM0 : maxM
            for c in selected { connect(c.node, to: node, score: c.score, level: lc, cap: cap) }
            entries = found  // line 17: ep <- W
        }
        if level > top {
            entryPoint = node
            maxLevel = level
        }
    }

    public func insert(label: Int64, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try insert(label: label, vector: $0) }
    }

    /// Adds `newNode` to `node`'s links on `level`; if that overflows `cap`, re-selects the links
    /// with the heuristic (Algorithm 1, lines 13-16: eConn <- SELECT-NEIGHBORS(e, eConn, Mmax, lc)).
    private func connect(_ node: Int32, to newNode: Int32, score: Float, level: Int, cap: Int) {
        concurrentLocks?.lock(node)
        defer { concurrentLocks?.unlock(node) }
        let l = links(node, level)
        let n = Int(l[0])
        if n < cap {
            l[1 + n] = newNode
            l[0] = Int32(n + 1)
            return
        }
        let base = UnsafePointer(vector(node))
        var candidates = [(score: Float, node: Int32)]()
        candidates.reserveCapacity(n + 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { scores in
            guard let s = scores.baseAddress else { return }
            SIMDKernels.gather(base, vectors, l + 1, n, dim, s)
            for i in 0..<n { candidates.append((s[i], l[1 + i])) }
        }
        candidates.append((score, newNode))
        candidates.sort { $0.score > $1.score }
        let kept = selectNeighbors(base: base, sortedCandidates: candidates, m: cap)
        l[0] = Int32(kept.count)
        for (i, c) in kept.enumerated() { l[1 + i] = c.node }
    }

    /// Algorithm 4 (SELECT-NEIGHBORS-HEURISTIC) without the optional candidate extension and without
    /// keeping pruned connections (as in the paper's experiments and hnswlib): take candidates best
    /// first, keep one only if it is closer to the base than to every neighbour already kept. This
    /// spreads links over directions and keeps the graph navigable on clustered data.
    func selectNeighbors(base: UnsafePointer<Float>, candidates: [(score: Float, node: Int32)], m: Int) -> [(score: Float, node: Int32)] {
        let sorted = candidates.sorted { $0.score > $1.score || ($0.score == $1.score && $0.node < $1.node) }
        return selectNeighbors(base: base, sortedCandidates: sorted, m: m)
    }

    private func selectNeighbors(base: UnsafePointer<Float>, sortedCandidates: [(score: Float, node: Int32)], m: Int) -> [(score: Float, node: Int32)] {
        if sortedCandidates.count <= m { return sortedCandidates }
        var kept = [(score: Float, node: Int32)]()
        kept.reserveCapacity(m)
        for c in sortedCandidates {
            if kept.count >= m { break }
            let cv = UnsafePointer(vector(c.node))
            var good = true
            for r in kept where SIMDKernels.dot(cv, vector(r.node), dim) > c.score {
                good = false
                break
            }
            if good { kept.append(c) }
        }
        return kept
    }

    // MARK: Search (Algorithms 2 and 5)

    /// Greedy walk on one layer (Algorithm 2 with ef = 1): move to the best neighbour until none improves.
    @inline(__always)
    func greedy(_ q: UnsafePointer<Float>, _ ep: inout Int32, _ epScore: inout Float, _ level: Int, _ scratch: SearchScratch) {
        var changed = true
        let locks = concurrentLocks
        let scores = scratch.scores
        while changed {
            changed = false
            locks?.lock(ep)
            let l = links(ep, level)
            let n = Int(l[0])
            var best = ep
            SIMDKernels.gather(q, vectors, l + 1, n, dim, scores)
            for i in 0..<n {
                let c = l[1 + i]
                let s = scores[i]
                if s > epScore {
                    epScore = s
                    best = c
                    changed = true
                }
            }
            locks?.unlock(ep)
            ep = best
        }
    }

    /// Algorithm 2 (SEARCH-LAYER): best-first expansion from `entries`, keeping the ef best seen.
    /// With `skipDeleted`, tombstoned nodes are expanded (they still route) but never enter the result.
    /// Returns the result set, unordered.
    func searchLayer(_ q: UnsafePointer<Float>, entries: [(score: Float, node: Int32)], ef: Int, level: Int,
                     skipDeleted: Bool, scratch: SearchScratch) -> [(score: Float, node: Int32)] {
        scratch.prepare(capacity: count)
        // Move the heaps out of the scratch (swap, not copy) so their buffers stay uniquely owned.
        var candidates = ScoreHeap(maxHeap: true)  // max-heap: best candidate on top
        var results = ScoreHeap(maxHeap: false)  // min-heap: worst kept result on top
        swap(&candidates, &scratch.candidates)
        swap(&results, &scratch.results)
        candidates.removeAll()
        results.removeAll()
        for e in entries where !scratch.isVisited(e.node) {
            scratch.markVisited(e.node)
            candidates.push(e.score, e.node)
            if !(skipDeleted && deleted[Int(e.node)]) {
                results.push(e.score, e.node)
                if results.count > ef { results.pop() }
            }
        }
        let deletedFlags = deleted
        let fresh = scratch.neighbours
        let freshScores = scratch.scores
        let locks = concurrentLocks
        while let (cScore, cNode) = candidates.popTop() {
            // Line 7: stop when the best remaining candidate is worse than the worst result.
            if results.count >= ef, let worst = results.topScore, cScore < worst { break }
            // Lines 8-9: unvisited neighbours first (copied under the node's lock while a parallel
            // build may rewrite the list), then their scores in one gather call (four rows per pass).
            locks?.lock(cNode)
            let l = links(cNode, level)
            let n = Int(l[0])
            var m = 0
            for i in 0..<n {
                let e = l[1 + i]
                if scratch.isVisited(e) { continue }
                scratch.markVisited(e)
                fresh[m] = e
                m += 1
            }
            locks?.unlock(cNode)
            SIMDKernels.gather(q, vectors, fresh, m, dim, freshScores)
            // Lines 10-16: a neighbour enters both sets if it beats the worst result (or W is not full).
            for j in 0..<m {
                let e = fresh[j], s = freshScores[j]
                if results.count < ef || s > (results.topScore ?? -.infinity) {
                    candidates.push(s, e)
                    if !(skipDeleted && deletedFlags[Int(e)]) {
                        results.push(s, e)
                        if results.count > ef { results.pop() }
                    }
                }
            }
        }
        let out = results.elements
        swap(&candidates, &scratch.candidates)
        swap(&results, &scratch.results)
        return out
    }

    /// Algorithm 5 (K-NN-SEARCH): greedy descent to layer 1, then SEARCH-LAYER on layer 0 with
    /// ef = max(efSearch, k). Results best first (ties by lower label), at most k, none below `minScore`.
    public func search(query: [Float], k: Int, efSearch: Int? = nil, minScore: Float = -.infinity) throws -> [SearchHit] {
        guard k > 0 else { throw IndexError.invalidArgument("k must be at least 1, got \(k)") }
        guard query.count == dim else { throw IndexError.dimensionMismatch(context: "HNSW query", expected: dim, actual: query.count) }
        return query.withUnsafeBufferPointer { qb in
            guard let q = qb.baseAddress else { return [] }
            return search(q, k: k, ef: max(efSearch ?? parameters.efSearch, k), minScore: minScore)
        }
    }

    /// Many queries (nq rows of dim floats), spread over `threads` workers (searches are read-only).
    public func search(queries: [Float], k: Int, efSearch: Int? = nil, minScore: Float = -.infinity, threads: Int = 1) throws -> [[SearchHit]] {
        guard k > 0 else { throw IndexError.invalidArgument("k must be at least 1, got \(k)") }
        guard queries.count % dim == 0 else { throw IndexError.dimensionMismatch(context: "HNSW queries", expected: dim, actual: queries.count % dim) }
        let nq = queries.count / dim
        let ef = max(efSearch ?? parameters.efSearch, k)
        var out = [[SearchHit]](repeating: [], count: nq)
        let workers = max(1, min(threads, nq))
        queries.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                guard let qbase = qb.baseAddress else { return }
                let results = ob
                if workers == 1 {
                    for i in 0..<nq { results[i] = search(qbase + i * dim, k: k, ef: ef, minScore: minScore) }
                    return
                }
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    // Interleaved assignment balances queries of uneven cost across workers.
                    for i in stride(from: w, to: nq, by: workers) { results[i] = search(qbase + i * dim, k: k, ef: ef, minScore: minScore) }
                }
            }
        }
        return out
    }

    func search(_ q: UnsafePointer<Float>, k: Int, ef: Int, minScore: Float) -> [SearchHit] {
        guard entryPoint >= 0 else { return [] }
        let scratch = takeScratch()
        defer { returnScratch(scratch) }
        var ep = entryPoint
        var epScore = SIMDKernels.dot(q, vector(ep), dim)
        if maxLevel > 0 {
            for lc in stride(from: maxLevel, through: 1, by: -1) { greedy(q, &ep, &epScore, lc, scratch) }
        }
        let found = searchLayer(q, entries: [(epScore, ep)], ef: ef, level: 0, skipDeleted: true, scratch: scratch)
        var hits = found.compactMap { $0.score >= minScore ? SearchHit(id: labels[Int($0.node)], score: $0.score) : nil }
        hits.sort { SearchHit.isBetter($0.score, $0.id, than: $1.score, $1.id) }
        if hits.count > k { hits.removeLast(hits.count - k) }
        return hits
    }

    // MARK: Deletion

    /// Tombstones `label`. Returns false if it is unknown or already deleted.
    @discardableResult
    public func markDeleted(label: Int64) -> Bool {
        guard let node = nodeOf[label], !deleted[Int(node)] else { return false }
        deleted[Int(node)] = true
        deletedCount += 1
        return true
    }

    /// A fresh graph holding only live nodes, inserted in their original order with the same seed:
    /// the repair for accumulated tombstones.
    public func compacted() throws -> HNSWIndex {
        let fresh = try HNSWIndex(dim: dim, parameters: parameters, capacity: max(liveCount, 16))
        for node in 0..<count where !deleted[node] {
            try fresh.insert(label: labels[node], vector: UnsafeBufferPointer(start: vector(Int32(node)), count: dim))
        }
        return fresh
    }

    /// The stored vector of a live label.
    public func vector(label: Int64) -> [Float]? {
        guard let node = nodeOf[label], !deleted[Int(node)] else { return nil }
        return Array(UnsafeBufferPointer(start: vector(node), count: dim))
    }

    // MARK: Scratch

    private func takeScratch() -> SearchScratch {
        scratchLock.lock()
        defer { scratchLock.unlock() }
        return scratchPool.popLast() ?? SearchScratch()
    }

    private func returnScratch(_ s: SearchScratch) {
        scratchLock.lock()
        scratchPool.append(s)
        scratchLock.unlock()
    }
}
