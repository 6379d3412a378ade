import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The directory where a server keeps the images clients upload to its index (`vlm serve --index`): each
/// image once, named by its content (`<first 32 hex digits of SHA-256>.<ext>`), referenced by one index entry.
///
/// Crash safety (the server can be killed at any moment, `kill -9` included):
/// - a file is written to a temporary name in the same directory (`.upload-<random>.tmp`), fsynced, renamed
///   to its final name and the directory fsynced, and only then is the entry committed to the database; so
///   the database never names a missing or half-written file;
/// - a delete commits the database first and unlinks the file after.
/// A kill between the two steps of either leaves an unreferenced file (or a temporary): `sweep` removes those
/// when the server opens the index, and `check` reports them (and anything worse) until then.
public struct UploadStore: Sendable {
    /// Standardised path, as the server stores entry paths.
    public let directory: String

    public init(directory: String) {
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
    }

    static let temporaryPrefix = ".upload-"
    static let temporarySuffix = ".tmp"

    /// The stored name of an image with SHA-256 `hash` (hex) and file extension `ext`.
    public static func fileName(hash: String, ext: String) -> String { "\(hash.prefix(32)).\(ext)" }

    /// Whether `name` is one the store gives: 32 lowercase hex digits, a dot, an extension.
    static func isStoredName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 32, !parts[1].isEmpty else { return false }
        return parts[0].allSatisfy { ("0" ... "9").contains($0) || ("a" ... "f").contains($0) }
    }

    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(temporaryPrefix) && name.hasSuffix(temporarySuffix) }

    /// Writes `data` at `path` (inside the directory) crash-safely: temporary file, fsync, rename, fsync of
    /// the directory. An existing file at `path` is replaced whole.
    public func write(_ data: Data, to path: String) throws {
        let tmp = directory + "/" + Self.temporaryPrefix + UUID().uuidString + Self.temporarySuffix
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IndexError.io(path: tmp, message: "cannot create: \(String(cString: strerror(errno)))") }
        var failure: String?
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = posixWrite(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { failure = "write failed: \(String(cString: strerror(errno)))"; return }
                done += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = "fsync failed: \(String(cString: strerror(errno)))" }
        close(fd)
        if failure == nil, rename(tmp, path) != 0 { failure = "rename failed: \(String(cString: strerror(errno)))" }
        if let failure {
            unlink(tmp)
            throw IndexError.io(path: path, message: failure)
        }
        syncDirectory()
    }

    /// Removes a stored file (after its entry's deletion was committed).
    public func remove(path: String) {
        unlink(path)
        syncDirectory()
    }

    private func syncDirectory() {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        fsync(dfd)
        close(dfd)
    }

    /// The file names in the directory, split into stored images, temporaries and anything else.
    func listing() throws -> (stored: [String], temporary: [String], other: [String]) {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw IndexError.io(path: directory, message: "cannot list the uploads directory: \(error.localizedDescription)")
        }
        var out: (stored: [String], temporary: [String], other: [String]) = ([], [], [])
        for name in names.sorted() {
            if Self.isTemporary(name) { out.temporary.append(name) } else if Self.isStoredName(name) { out.stored.append(name) } else { out.other.append(name) }
        }
        return out
    }

    /// The entries of `index` whose file lies in this directory, by file name (lexical or resolved path).
    func entries(of index: any VectorIndex) throws -> [String: String] {
        let real = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        var out: [String: String] = [:]
        for path in try index.allPaths() {
            let parent = (path as NSString).deletingLastPathComponent
            if parent == directory || parent == real { out[(path as NSString).lastPathComponent] = path }
        }
        return out
    }

    /// Whether the directory and `index` agree: every entry in the directory has its file, whole (its SHA-256
    /// is the stored content hash, and its name matches it); every stored image has an entry; no temporary is
    /// left. Returns the problems (empty: consistent). Files that are not the store's are ignored.
    public func check(index: any VectorIndex) throws -> [String] {
        let listing = try listing()
        let entries = try entries(of: index)
        var problems: [String] = []
        var missing: [String] = [], damaged: [String] = []
        for (name, path) in entries.sorted(by: { $0.key < $1.key }) {
            guard FileManager.default.fileExists(atPath: path) else { missing.append(name); continue }
            let hash = try SHA256Hasher.hex(fileAt: path)
            let stored = try index.file(path: path)?.contentHash
            if hash != stored || (Self.isStoredName(name) && !hash.hasPrefix(String(name.prefix(32)))) { damaged.append(name) }
        }
        let unreferenced = listing.stored.filter { entries[$0] == nil }
        if !missing.isEmpty { problems.append("\(missing.count) indexed upload(s) missing from \(directory): \(Self.sample(missing))") }
        if !damaged.isEmpty { problems.append("\(damaged.count) upload(s) whose bytes differ from the indexed content hash: \(Self.sample(damaged))") }
        if !unreferenced.isEmpty { problems.append("\(unreferenced.count) file(s) in \(directory) with no index entry: \(Self.sample(unreferenced))") }
        if !listing.temporary.isEmpty { problems.append("\(listing.temporary.count) unfinished temporary upload(s) in \(directory)") }
        return problems
    }

    /// Removes what a crash can leave behind: temporaries, and stored images no entry references. Returns
    /// the names removed. Only the store's own names are touched.
    @discardableResult
    public func sweep(index: any VectorIndex) throws -> [String] {
        let listing = try listing()
        let entries = try entries(of: index)
        let doomed = listing.temporary + listing.stored.filter { entries[$0] == nil }
        for name in doomed { unlink(directory + "/" + name) }
        if !doomed.isEmpty { syncDirectory() }
        return doomed
    }

    static func sample(_ names: [String]) -> String {
        names.prefix(3).joined(separator: ", ") + (names.count > 3 ? ", ..." : "")
    }
}

/// write(2), named apart from `UploadStore.write`.
private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}
