import Foundation
import SwiftVLM
import ServiceLifecycle
import VLMIndex

/// The server's vector index: any `VectorIndex` (the SQLite `SearchIndex` with its exact matrix and HNSW
/// graph, or a shared Milvus collection), the directories images may be read from, and the uploads directory.
///
/// Concurrency: request paths call the index through its `AsyncVectorIndex` face only (`store`), so no thread of
/// Swift's cooperative pool ever waits on the index: Milvus calls await their RPCs; the SQLite index runs on its
/// own reader threads (searches in parallel under a read lock) and writer thread (under the write lock, so a
/// search never sees a half-applied write). This server's writes are serialised by an async lock (`write`), so a
/// write that plans, then stores, sees no other write of this server in between.
///
/// Durability: uploads are written whole (temporary file, fsync, rename) before their entry is committed; the
/// store commits each write (one transaction); the HNSW graph file is refreshed at most
/// every `persistInterval` seconds after writes and at shutdown (`persistNow`). A graph file that lags
/// behind is reconciled with the store when the index is next opened (see `SearchIndex`).
public final class IndexService: @unchecked Sendable {
    /// The synchronous index (start-up work, identity); request paths use `store`.
    public let index: any VectorIndex
    /// The async face of `index` (`VectorIndex.makeAsync`).
    let store: any AsyncVectorIndex
    let roots: IndexRoots
    let thumbnails: ThumbnailCache
    let config: ServerConfig
    /// The uploads directory: crash-safe writes, and the tidy-up of what a crash leaves (see `UploadStore`).
    let uploadStore: UploadStore
    /// File name of the database (what /healthz reports; the full server path stays private).
    let name: String
    private let writeLock = AsyncLock()
    private var lastPersist = DispatchTime.now()  // under writeLock only
    /// Size and strategy as of the last write, for /healthz and /metrics: they never wait for the index lock
    /// (a write that builds the HNSW graph can hold it for seconds).
    private let summaryLock = NSLock()
    private var summary: (count: Int, strategy: String)
    private var summaryTime = DispatchTime.now()
    private var refreshing = false
    static let sharedRefreshInterval: Double = 5
    static let persistInterval: Double = 30

    /// Opens (or creates) the index at `config.indexPath` for a checkpoint of `identity`; an index built by
    /// another model is refused (`IndexError.modelMismatch`). Creates the uploads directory.
    public init(config: ServerConfig, identity: ModelIdentity) throws {
        let defaultUploads: URL, defaultThumbnails: URL
        if let backend = config.indexBackend {
            index = try backend.open(identity)
            name = backend.name
            defaultUploads = backend.defaultUploads
            defaultThumbnails = URL(fileURLWithPath: backend.defaultUploads.standardizedFileURL.path + ".thumbnails")
        } else {
            guard let url = config.indexPath else { throw ServerError.invalidConfiguration("no index path") }
            let path = url.standardizedFileURL.path
            index = try SearchIndex(path: path, model: identity)
            name = url.lastPathComponent
            defaultUploads = URL(fileURLWithPath: path + ".uploads")
            defaultThumbnails = URL(fileURLWithPath: path + ".thumbnails")
        }
        let uploads = config.uploadsDirectory ?? defaultUploads
        do { try FileManager.default.createDirectory(at: uploads, withIntermediateDirectories: true) } catch {
            throw ServerError.invalidConfiguration("cannot create the uploads directory \(uploads.path): \(error.localizedDescription)")
        }
        roots = try IndexRoots(roots: config.indexRoots, uploads: uploads)
        thumbnails = try ThumbnailCache(directory: config.thumbnailDirectory ?? defaultThumbnails, edge: config.thumbnailEdge)
        self.config = config
        uploadStore = UploadStore(directory: roots.uploads.lexical)
        // A kill between writing an upload and committing it (or committing a delete and unlinking) leaves a
        // file without an entry; this index's own uploads directory is tidied here. (A shared collection's
        // directory is not: another replica may be between the two steps.)
        if index is SearchIndex {
            let swept = try uploadStore.sweep(index: index)
            if !swept.isEmpty {
                FileHandle.standardError.write(Data("vlm serve: removed \(swept.count) upload file(s) left without an index entry by an interrupted write\n".utf8))
            }
        }
        store = index.makeAsync()
        summary = (try index.entryCount(), index.searchStrategy)
        // One machine's index: warn about files the server cannot show. (Not for shared indexes: a scan of a
        // large collection on every replica's start is too slow, and other workers' paths may differ.)
        let outside = index is SearchIndex ? try index.allPaths().filter { roots.locate($0) == nil }.count : 0
        if outside > 0 {
            FileHandle.standardError.write(Data(("vlm serve: \(outside) indexed image(s) are outside the --root directories: "
                + "search returns them without an image URL (serve their folders with --root DIR)\n").utf8))
        }
    }

    /// The size as of the last write. A shared index (Milvus) also grows by other workers' and replicas' writes:
    /// its size is refreshed in the background when the cached one is older than `sharedRefreshInterval`, so
    /// /healthz and /metrics follow the collection without waiting on it.
    var count: Int {
        let (n, refresh) = summaryLock.withLock { () -> (Int, Bool) in
            let stale = !(index is SearchIndex) && !refreshing
                && Double(DispatchTime.now().uptimeNanoseconds - summaryTime.uptimeNanoseconds) / 1e9 >= Self.sharedRefreshInterval
            if stale { refreshing = true }
            return (summary.count, stale)
        }
        if refresh {
            Task { [self] in
                let fresh = try? await store.summary().count
                summaryLock.withLock {
                    if let fresh { summary.count = fresh }
                    summaryTime = DispatchTime.now()
                    refreshing = false
                }
            }
        }
        return n
    }
    var fingerprint: String { index.identity.fingerprint }
    var strategy: String { summaryLock.withLock { summary.strategy } }

    /// Runs `body` as this server's only write in progress; then refreshes the cached size and strategy, and
    /// the graph file now and then.
    func write<T: Sendable>(_ body: @Sendable (any AsyncVectorIndex) async throws -> T) async throws -> T {
        await writeLock.acquire()
        defer { writeLock.release() }
        let result: Result<T, Error>
        do { result = .success(try await body(store)) } catch { result = .failure(error) }
        if let s = try? await store.summary() {
            summaryLock.withLock { (summary, summaryTime) = ((s.count, s.strategy), DispatchTime.now()) }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - lastPersist.uptimeNanoseconds) / 1e9
        if elapsed >= Self.persistInterval { await persistLocked() }
        return try result.get()
    }

    /// Writes the graph file if it changed (called at shutdown; waits for the write in progress).
    public func persistNow() async {
        await writeLock.acquire()
        defer { writeLock.release() }
        await persistLocked()
    }

    private func persistLocked() async {
        lastPersist = DispatchTime.now()
        do { try await store.persist() } catch {
            FileHandle.standardError.write(Data("vlm serve: cannot save the HNSW graph: \(error)\n".utf8))
        }
    }

    // MARK: Entries as clients see them

    /// The public view of a stored file: its id, its path relative to the root holding it (just the file name
    /// when it is under no root: server paths stay private), the name given at upload, and the URL of its
    /// image when it is under a root.
    func hit(_ file: StoredFile, score: Float?) -> IndexHit {
        let location = roots.locate(file.path)
        return IndexHit(id: file.fileID, score: score, path: location?.relative ?? (file.path as NSString).lastPathComponent,
                        name: Self.uploadName(file.metadata), url: location == nil ? nil : "/v1/index/\(file.fileID)/image",
                        thumbnail: location == nil ? nil : "/v1/index/\(file.fileID)/thumbnail")
    }

    static func uploadName(_ metadata: String?) -> String? {
        guard let metadata, let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any] else { return nil }
        return object["name"] as? String
    }

    // MARK: Reads

    /// Top-k files for a unit query vector.
    func search(_ query: [Float], k: Int, minScore: Float) async throws -> (hits: [IndexHit], size: Int, strategy: String) {
        let found = try await store.searchFiles(query, k: k, minScore: minScore)
        // The size as of this server's last write (a shared index's refreshed in the background).
        return (found.map { hit($0.file, score: $0.score) }, count, strategy)
    }

    /// The bytes and MIME type of an entry's image, read only if the file's real location (symlinks
    /// resolved, checked on the opened descriptor) is inside a root. Anything else is 404, with one message
    /// whatever the reason, so clients cannot probe the file system.
    func image(id: Int64) async throws -> (data: Data, mime: String, etag: String) {
        let notFound = ServerError.indexEntryNotFound("no image for index entry \(id)")
        guard let file = try await store.file(id: id) else {
            throw ServerError.indexEntryNotFound("no index entry with id \(id)")
        }
        let roots = roots
        let data = try await RequestInput.offload { try SafeFiles.read(path: file.path, roots: roots, maxBytes: 256 << 20) }
        guard let data, let mime = SafeFiles.imageMIME(data) else { throw notFound }
        return (data, mime, "\"\(file.contentHash.prefix(32))\"")
    }

    /// Entry `id`'s thumbnail (JPEG) and its ETag, from the cache or made now (`ThumbnailCache`); the same
    /// containment checks and single 404 message as `image`. With a matching `ifNoneMatch`, `data` is empty.
    func thumbnail(id: Int64, ifNoneMatch: String?) async throws -> (data: Data, etag: String) {
        guard let file = try await store.file(id: id) else {
            throw ServerError.indexEntryNotFound("no index entry with id \(id)")
        }
        let (roots, thumbnails, config) = (roots, thumbnails, config)
        let found = try await RequestInput.offload {
            try thumbnails.thumbnail(id: id, path: file.path, roots: roots, config: config, ifNoneMatch: ifNoneMatch)
        }
        guard let found else { throw ServerError.indexEntryNotFound("no image for index entry \(id)") }
        return (found.data, "\"\(found.key)\"")
    }

    // MARK: Deletion

    /// Removes entry `id`; an uploaded image's file is deleted too (files under roots are the user's and
    /// stay). Returns the new index size.
    func remove(id: Int64) async throws -> Int {
        let roots = roots, uploadStore = uploadStore
        return try await write { store in
            guard let file = try await store.file(id: id) else { throw ServerError.indexEntryNotFound("no index entry with id \(id)") }
            try await store.remove(paths: [file.path])
            // After the commit: a kill in between leaves an unreferenced file, removed at the next start.
            if roots.isUpload(file.path) { uploadStore.remove(path: file.path) }
            return try await store.summary().count
        }
    }
}

/// The directories the server may read images from: the operator's `--root`s and the uploads directory,
/// each as given (standardised, to match the paths `vlm index add` stores) and with symlinks resolved.
struct IndexRoots: Sendable {
    struct Root: Sendable {
        let lexical: String
        let real: String
    }

    let roots: [Root]
    let uploads: Root

    init(roots: [URL], uploads: URL) throws {
        func make(_ url: URL, _ what: String) throws -> Root {
            let lexical = url.standardizedFileURL.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: lexical, isDirectory: &isDirectory), isDirectory.boolValue,
                  let real = SafeFiles.realPath(lexical) else {
                throw ServerError.invalidConfiguration("\(what) \(lexical) is not a directory")
            }
            return Root(lexical: lexical, real: real)
        }
        self.uploads = try make(uploads, "uploads directory")
        self.roots = try roots.map { try make($0, "--root") } + [self.uploads]
    }

    static func isInside(_ path: String, _ directory: String) -> Bool {
        directory == "/" ? path.hasPrefix("/") : (path == directory || path.hasPrefix(directory + "/"))
    }

    /// The root a stored path lies under (lexically, as given or as resolved) and the path relative to it.
    /// Lexical only: it decides what clients are shown; serving checks the real location again.
    func locate(_ path: String) -> (root: Root, relative: String)? {
        guard !path.split(separator: "/").contains("..") else { return nil }
        for root in roots {
            for base in [root.lexical, root.real] where Self.isInside(path, base) && path != base {
                let start = path.index(path.startIndex, offsetBy: base == "/" ? 1 : base.count + 1)
                return (root, String(path[start...]))
            }
        }
        return nil
    }

    /// Whether a resolved (symlink-free) path is a root or inside one.
    func contains(real path: String) -> Bool {
        roots.contains { Self.isInside(path, $0.real) }
    }

    func isUpload(_ path: String) -> Bool {
        (Self.isInside(path, uploads.lexical) || Self.isInside(path, uploads.real)) && !path.split(separator: "/").contains("..")
    }
}

/// Reading client-named files without ever leaving the roots.
enum SafeFiles {
    /// realpath(3): absolute, no symlinks, no `.`/`..`; nil if it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Where an open descriptor really points (Linux: /proc/self/fd; elsewhere: F_GETPATH).
    static func openedPath(_ fd: Int32) -> String? {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0 ..< n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
        var buffer = [CChar](repeating: 0, count: Int(MAXPATHLEN) + 1)
        guard fcntl(fd, F_GETPATH, &buffer) != -1 else { return nil }
        return String(cString: buffer)
        #endif
    }

    /// The contents of a regular file whose real location is inside `roots`; nil if it is missing, not a
    /// regular file, or (after following every symlink) outside them (see `withOpened`).
    static func read(path: String, roots: IndexRoots, maxBytes: Int) throws -> Data? {
        try withOpened(path: path, roots: roots) { fd, info in try readAll(fd, size: Int(info.st_size), maxBytes: maxBytes) }
    }

    /// Runs `body` with an open descriptor on `path` and its fstat, if `path` is a regular file whose real
    /// location is inside `roots`; nil otherwise. The containment check runs on the opened descriptor, so
    /// swapping a path component for a symlink after the check changes nothing.
    static func withOpened<T>(path: String, roots: IndexRoots, _ body: (Int32, stat) throws -> T) throws -> T? {
        // Checked before opening too, so nothing outside the roots is ever opened (opening a device node can
        // have effects); the check on the descriptor below closes the race with a path swapped meanwhile.
        guard let resolved = realPath(path), roots.contains(real: resolved) else { return nil }
        // O_NONBLOCK: a FIFO planted under a root must not block the reader (it then fails the S_IFREG test).
        let fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard let real = openedPath(fd) ?? realPath(resolved), roots.contains(real: real) else { return nil }
        return try body(fd, info)
    }

    /// Up to `size` bytes of an open file from its start (fewer if it shrank meanwhile).
    static func readAll(_ fd: Int32, size: Int, maxBytes: Int) throws -> Data {
        guard size <= maxBytes else { throw ServerError.internalError("indexed file is larger than \(maxBytes) bytes") }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }  // shrank meanwhile: serve what is there
            done += n
        }
        return Data(bytes[0 ..< done])
    }

    /// image/jpeg or image/png from the magic bytes (never from the name); nil for anything else.
    static func imageMIME(_ data: Data) -> String? {
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        return nil
    }
}

/// A lock for async code: waiters are suspended (FIFO), never blocking a thread.
final class AsyncLock: @unchecked Sendable {
    private let mutex = NSLock()
    private var held = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = mutex.withLock { () -> Bool in
                if held { waiters.append(continuation); return false }
                held = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    /// Hands the lock to the longest waiter, if any.
    func release() {
        let next = mutex.withLock { () -> CheckedContinuation<Void, Never>? in
            if waiters.isEmpty { held = false; return nil }
            return waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Saves the HNSW graph when the server shuts down (the store itself is always committed).
struct IndexPersistService: Service {
    let index: IndexService

    func run() async throws {
        try? await gracefulShutdown()
        await index.persistNow()
    }
}
