import Foundation
import VLMImage
import VLMIndex

/// Thumbnails of indexed images for the result grid (`GET /v1/index/{id}/thumbnail`): JPEG, longest edge
/// `edge`, made on first request and kept on disk (`<index>.thumbnails/` next to a SQLite index, or the
/// `--thumbnails` directory), so a page of results over 20 MB originals costs a few small file reads.
///
/// Keys: SHA-256 of (edge, the file's real path, device, inode, size, mtime in ns) — taken with fstat on the
/// descriptor the original is read from, so a file that changes (or is replaced) gets a new key and a new
/// thumbnail; the entry's older thumbnails are deleted then. Layout: `<directory>/<entry id>/<key>.jpg`.
/// Making one holds the original's pixels under the server's pixel budget (503 when busy; over
/// --max-image-pixels: 422), like a request's images.
final class ThumbnailCache: Sendable {
    let directory: URL
    let edge: Int

    init(directory: URL, edge: Int) throws {
        guard (16 ... 4096).contains(edge) else { throw ServerError.invalidConfiguration("--thumbnail-size must be in 16...4096, got \(edge)") }
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ServerError.invalidConfiguration("cannot create the thumbnail directory \(directory.path): \(error.localizedDescription)")
        }
        (self.directory, self.edge) = (directory.standardizedFileURL, edge)
    }

    /// The cache key of the open file `fd` (real path `real`, fstat `info`).
    func cacheKey(real: String, info: stat) -> String {
        let mtime = "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        return String(SHA256Hasher.hex(Data("v1|\(edge)|\(real)|\(info.st_dev)|\(info.st_ino)|\(info.st_size)|\(mtime)".utf8)).prefix(32))
    }

    /// The thumbnail of entry `id` stored at `path`, and its key (the ETag); nil when the file cannot be served
    /// (missing, not a regular file, outside the roots). `ifNoneMatch`: when it equals the key, no bytes are read
    /// or made and `data` is empty (the caller answers 304).
    func thumbnail(id: Int64, path: String, roots: IndexRoots, config: ServerConfig, ifNoneMatch: String?) throws -> (data: Data, key: String)? {
        try SafeFiles.withOpened(path: path, roots: roots) { fd, info -> (data: Data, key: String) in
            let real = SafeFiles.openedPath(fd) ?? path
            let key = cacheKey(real: real, info: info)
            if ifNoneMatch == "\"\(key)\"" { return (Data(), key) }
            let folder = directory.appendingPathComponent(String(id))
            let file = folder.appendingPathComponent(key + ".jpg")
            if let cached = try? Data(contentsOf: file), !cached.isEmpty { return (cached, key) }
            let original = try SafeFiles.readAll(fd, size: Int(info.st_size), maxBytes: 256 << 20)
            let data = try make(original, config: config)
            store(data, at: file, in: folder)
            return (data, key)
        }
    }

    private func make(_ original: Data, config: ServerConfig) throws -> Data {
        do {
            let (_, width, height) = try ImageDecoder.probe(original)
            guard width * height <= config.maxImagePixels else {
                throw ServerError.imageTooLarge(width: width, height: height, limit: config.maxImagePixels)
            }
            let reservation = try config.pixelBudget.reserve(width * height, limit: config.maxPixelsInFlight, retryAfter: config.retryAfterSeconds)
            defer { reservation.release() }
            return try Thumbnail.jpeg(original, maxEdge: edge, maxPixels: config.maxImagePixels)
        } catch let error as ServerError {
            throw error
        } catch let error as ImageError {
            if case .tooLarge = error { throw ServerError.from(error) }
            throw ServerError.indexEntryNotFound("no thumbnail: the indexed file does not decode (\(error))")  // 404, as /image
        } catch {
            throw ServerError.from(error)
        }
    }

    /// Writes atomically (a temporary file renamed into place) and drops the entry's other thumbnails (made for
    /// an earlier version of the file). A cache that cannot be written only costs speed: the thumbnail is served.
    private func store(_ data: Data, at file: URL, in folder: URL) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
            try data.write(to: file, options: .atomic)
            for name in try fm.contentsOfDirectory(atPath: folder.path) where name != file.lastPathComponent && name.hasSuffix(".jpg") {
                try? fm.removeItem(at: folder.appendingPathComponent(name))
            }
        } catch {
            FileHandle.standardError.write(Data("vlm serve: cannot cache a thumbnail in \(folder.path): \(error.localizedDescription)\n".utf8))
        }
    }
}
