import Foundation

/// Per-search working memory: visited marks by generation (no clearing between searches) and heaps.
final class SearchScratch {
    private var tags: UnsafeMutablePointer<UInt32>
    private var tagCapacity = 0
    private var generation: UInt32 = 0
    /// Unvisited neighbours of the node being expanded (at most Mmax0 <= 2 * 4096).
    let neighbours = UnsafeMutablePointer<Int32>.allocate(capacity: 8192 + 1)
    /// Their scores (one `SIMDKernels.gather` call per expanded node).
    let scores = UnsafeMutablePointer<Float>.allocate(capacity: 8192 + 1)
    var candidates = ScoreHeap(maxHeap: true)
    var results = ScoreHeap(maxHeap: false)

    init() { tags = UnsafeMutablePointer<UInt32>.allocate(capacity: 1) }

    deinit {
        tags.deallocate()
        neighbours.deallocate()
        scores.deallocate()
    }

    func prepare(capacity: Int) {
        if tagCapacity < capacity {
            let newCapacity = capacity + capacity / 2 + 16
            tags.deallocate()
            tags = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
            tags.initialize(repeating: 0, count: newCapacity)
            tagCapacity = newCapacity
            generation = 0
        }
        generation &+= 1
        if generation == 0 {  // wrapped: old marks could alias the new generation
            tags.update(repeating: 0, count: tagCapacity)
            generation = 1
        }
    }

    @inline(__always) func isVisited(_ node: Int32) -> Bool { tags[Int(node)] == generation }
    @inline(__always) func markVisited(_ node: Int32) { tags[Int(node)] = generation }
}

/// Binary heap of (score, node). `maxHeap` puts the highest score on top, otherwise the lowest.
struct ScoreHeap {
    let maxHeap: Bool
    private(set) var scores: [Float] = []
    private(set) var nodes: [Int32] = []

    init(maxHeap: Bool) { self.maxHeap = maxHeap }

    var count: Int { scores.count }
    var topScore: Float? { scores.first }
    var elements: [(score: Float, node: Int32)] { (0..<scores.count).map { (scores[$0], nodes[$0]) } }

    mutating func removeAll() {
        scores.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
    }

    @inline(__always) private func above(_ a: Float, _ b: Float) -> Bool { maxHeap ? a > b : a < b }

    mutating func push(_ score: Float, _ node: Int32) {
        scores.append(score)
        nodes.append(node)
        var i = scores.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            guard above(scores[i], scores[p]) else { break }
            scores.swapAt(i, p)
            nodes.swapAt(i, p)
            i = p
        }
    }

    @discardableResult
    mutating func pop() -> (Float, Int32)? {
        guard let top = scores.first else { return nil }
        let topNode = nodes[0]
        let lastScore = scores.removeLast(), lastNode = nodes.removeLast()
        if !scores.isEmpty {
            scores[0] = lastScore
            nodes[0] = lastNode
            var i = 0
            let n = scores.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && above(scores[l], scores[m]) { m = l }
                if r < n && above(scores[r], scores[m]) { m = r }
                if m == i { break }
                scores.swapAt(i, m)
                nodes.swapAt(i, m)
                i = m
            }
        }
        return (top, topNode)
    }

    mutating func popTop() -> (Float, Int32)? { pop() }
}

/// Striped per-node mutexes for parallel construction (node i uses stripe i mod 1024) plus one
/// global lock for the entry point. At most one stripe is held at a time, and the global lock is
/// never requested while holding a stripe, so there is no lock-order cycle.
final class NodeLocks {
    private static let stripes = 1024
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    private let global: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutexes = .allocate(capacity: Self.stripes)
        global = .allocate(capacity: 1)
        for i in 0..<Self.stripes { pthread_mutex_init(mutexes + i, nil) }
        pthread_mutex_init(global, nil)
    }

    deinit {
        for i in 0..<Self.stripes { pthread_mutex_destroy(mutexes + i) }
        pthread_mutex_destroy(global)
        mutexes.deallocate()
        global.deallocate()
    }

    @inline(__always) func lock(_ node: Int32) { pthread_mutex_lock(mutexes + (Int(node) & (Self.stripes - 1))) }
    @inline(__always) func unlock(_ node: Int32) { pthread_mutex_unlock(mutexes + (Int(node) & (Self.stripes - 1))) }
    func lockGlobal() { pthread_mutex_lock(global) }
    func unlockGlobal() { pthread_mutex_unlock(global) }
}
