import Foundation
import VLMTensor

/// The index calls a server makes while answering requests, async: none of them blocks a thread of Swift's
/// cooperative pool. (On Linux that pool is libdispatch's worker pool, a few threads per core shared with every
/// DispatchQueue: a worker blocked on a semaphore, a lock or a synchronous RPC is a worker the waited-for task
/// cannot run on. With enough requests in flight every worker waits and nothing runs: the Milvus backend's
/// synchronous wrapper stalled `vlm serve` that way.)
///
/// Get one with `VectorIndex.makeAsync()`: a backend with an async client implements it natively (Milvus); any
/// other index runs its blocking work on dedicated threads (`OffloadedVectorIndex`, the SQLite store). The
/// synchronous `base` stays available for startup work and the CLI.
///
/// Consistency: each call is atomic against this process's writes through the same object (the SQLite wrapper
/// holds a readers-writer lock); callers that need several calls to be atomic (plan, then write) serialise them.
public protocol AsyncVectorIndex: AnyObject, Sendable {
    /// The synchronous index underneath (identity, location, startup work).
    var base: any VectorIndex { get }
    /// Number of stored embeddings and the search strategy ("exact", "hnsw", "milvus-hnsw").
    func summary() async throws -> (count: Int, strategy: String)
    /// Top-k files for a unit query vector, best first, scores below `minScore` dropped.
    func searchFiles(_ query: [Float], k: Int, minScore: Float) async throws -> [(file: StoredFile, score: Float)]
    func file(id: Int64) async throws -> StoredFile?
    /// The stored files among `paths`, by path (absent: not stored).
    func files(paths: [String]) async throws -> [String: StoredFile]
    /// Stores records (see `VectorIndex.add`).
    @discardableResult func add(_ records: [FileRecord]) async throws -> UpsertResult
    /// Removes files by path; returns the embedding ids removed.
    @discardableResult func remove(paths: [String]) async throws -> [Int64]
    /// Saves deferred derived state (see `VectorIndex.persist`).
    func persist() async throws
}

/// Any `VectorIndex` made async by running its calls on dedicated threads: reads on a few reader threads under
/// the read lock (searches run in parallel), writes on one writer thread under the write lock, so a search never
/// sees a half-applied write and a long write (building the HNSW graph) holds no thread of the cooperative pool.
public final class OffloadedVectorIndex: AsyncVectorIndex, @unchecked Sendable {
    public let base: any VectorIndex
    private let lock = ReadWriteLock()
    private let readers: BlockingThreads
    private let writer: BlockingThreads

    /// `readers`: threads for concurrent reads (default: 2 per core, at least 4).
    public init(_ base: any VectorIndex, readers: Int? = nil) {
        self.base = base
        let cores = ProcessInfo.processInfo.activeProcessorCount
        self.readers = BlockingThreads(count: readers ?? max(4, 2 * cores), name: "vlm-index-read")
        writer = BlockingThreads(count: 1, name: "vlm-index-write")
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (any VectorIndex) throws -> T) async throws -> T {
        try await readers.run { [base, lock] in try lock.withRead { try body(base) } }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (any VectorIndex) throws -> T) async throws -> T {
        try await writer.run { [base, lock] in try lock.withWrite { try body(base) } }
    }

    public func summary() async throws -> (count: Int, strategy: String) {
        try await read { (try $0.entryCount(), $0.searchStrategy) }
    }

    public func searchFiles(_ query: [Float], k: Int, minScore: Float) async throws -> [(file: StoredFile, score: Float)] {
        try await read { try $0.searchFiles(query, k: k, minScore: minScore) }
    }

    public func file(id: Int64) async throws -> StoredFile? {
        try await read { try $0.file(id: id) }
    }

    public func files(paths: [String]) async throws -> [String: StoredFile] {
        try await read { index in
            var out: [String: StoredFile] = [:]
            for path in paths { out[path] = try index.file(path: path) }
            return out
        }
    }

    @discardableResult
    public func add(_ records: [FileRecord]) async throws -> UpsertResult {
        try await write { try $0.add(records) }
    }

    @discardableResult
    public func remove(paths: [String]) async throws -> [Int64] {
        try await write { try $0.remove(paths: paths) }
    }

    /// On the writer thread (after queued writes) under the read lock: saving reads the graph only, searches go on.
    public func persist() async throws {
        try await writer.run { [base, lock] in try lock.withRead { try base.persist() } }
    }
}

/// A fixed set of dedicated threads running blocking work for async callers (FIFO). Unlike a DispatchQueue,
/// whose work runs on libdispatch's shared worker pool, these threads are nobody else's, so blocking here (on
/// SQLite, a lock, a disk) takes nothing from Swift's cooperative pool. The threads end when this object goes.
public final class BlockingThreads: Sendable {
    private let core: Core

    /// `count` threads (fewer if the system refuses to create more; with none at all, work runs on the caller).
    public init(count: Int, name: String) {
        core = Core()
        var started = 0
        for i in 0 ..< max(1, count) where DetachedThread.start(name: count > 1 ? "\(name)-\(i)" : name, { [core] in core.loop() }) {
            started += 1
        }
        if started == 0 { core.runInline() }
    }

    deinit { core.stop() }

    /// Runs `work` on one of the threads; the caller's task is suspended meanwhile.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            core.submit { continuation.resume(with: Result { try work() }) } onRefused: {
                continuation.resume(throwing: IndexError.invalidArgument("the index is closed"))
            }
        }
    }

    final class Core: @unchecked Sendable {
        private let condition = NSCondition()
        private var jobs: [@Sendable () -> Void] = []
        private var head = 0
        private var stopped = false

        private var inline = false

        /// No thread could be started: jobs run on their submitter (blocking it, but correct).
        func runInline() {
            condition.lock()
            inline = true
            condition.unlock()
        }

        func submit(_ job: @escaping @Sendable () -> Void, onRefused: () -> Void) {
            condition.lock()
            guard !stopped else {
                condition.unlock()
                return onRefused()
            }
            if inline {
                condition.unlock()
                return job()
            }
            jobs.append(job)
            condition.signal()
            condition.unlock()
        }

        func stop() {
            condition.lock()
            stopped = true  // queued jobs still run: their callers are waiting for them
            condition.broadcast()
            condition.unlock()
        }

        func loop() {
            condition.lock()
            while true {
                while head == jobs.count && !stopped { condition.wait() }
                if head == jobs.count { break }  // stopped and drained
                let job = jobs[head]
                head += 1
                if head > 64 && head * 2 > jobs.count {
                    jobs.removeFirst(head)
                    head = 0
                }
                condition.unlock()
                job()
                condition.lock()
            }
            condition.unlock()
        }
    }
}

/// pthread readers-writer lock.
public final class ReadWriteLock: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)

    public init() { pthread_rwlock_init(lock, nil) }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    public func withRead<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    public func withWrite<T>(_ body: () throws -> T) rethrows -> T {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
