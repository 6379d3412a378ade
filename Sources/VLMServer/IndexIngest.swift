import Foundation
import SwiftVLM
import VLMIndex

/// `POST /v1/index`: uploads and files under the roots, into the index, all or nothing.
extension IndexService {
    /// One image to index.
    struct IngestItem: Sendable {
        enum Source: Sendable {
            /// Uploaded bytes, stored (content-addressed) in the uploads directory.
            case upload(Data, hash: String)
            /// A file under a root, read when it is encoded.
            case file
        }

        /// Names the item in errors: "images[2]", "paths[0]", "paths[1]: holiday/beach.jpg".
        let label: String
        /// What the store records (absolute, standardised; uploads: the file in the uploads directory).
        let path: String
        let source: Source
        let name: String?

        var metadata: String? {
            guard let name, let data = try? JSONSerialization.data(withJSONObject: ["name": name]) else { return nil }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Test hook (ServerKillTests): with VLM_TEST_UPLOAD_PAUSE_MS set, a write pauses that long between storing
    /// its upload files and committing their entries, so a test can kill the server there. Unset: no effect.
    static let testUploadPause: UInt32? = ProcessInfo.processInfo.environment["VLM_TEST_UPLOAD_PAUSE_MS"].flatMap { UInt32($0) }

    /// An item whose embedding is ready to be written.
    struct Encoded: Sendable {
        let item: IngestItem
        let stat: FileStat?  // files: taken before reading, so a later change is seen by the next add
        let hash: String
        let vector: [Float]
    }

    /// Validates every item first (base64, image headers, paths), then encodes what is new or changed in
    /// batches through the shared batcher, then writes the uploads and every record in one transaction.
    func add(_ request: IndexAddRequest, encoder: EncoderService) async throws -> (hits: [IndexHit], size: Int) {
        let config = encoder.config
        let uploads = request.images ?? [], paths = request.paths ?? []
        guard !uploads.isEmpty || !paths.isEmpty else { throw ServerError.invalidRequest("give 'images' and/or 'paths' to add") }
        guard uploads.count + paths.count <= config.maxInputsPerRequest else {
            throw ServerError.invalidRequest("\(uploads.count + paths.count) items; the limit is \(config.maxInputsPerRequest)")
        }
        let roots = roots, maxPixels = config.maxImagePixels, limit = config.maxInputsPerRequest
        let found = try await RequestInput.offload { () -> [IngestItem] in
            var items = try uploads.enumerated().map { try Self.uploadItem($1, label: "images[\($0)]", roots: roots, maxPixels: maxPixels) }
            for (i, raw) in paths.enumerated() {
                items += try Self.fileItems(raw, label: "paths[\(i)]", roots: roots, limit: limit - items.count)
            }
            return items
        }
        var seen = Set<String>()
        let items = found.filter { seen.insert($0.path).inserted }

        // Plan: uploads are content-addressed (stored means unchanged); files compare size and mtime, then
        // the content hash once read.
        let existing = try await store.files(paths: items.map(\.path)).filter { $0.value.embeddingID != nil }
        var unchanged = Set<String>(), todo: [IngestItem] = []
        for item in items {
            guard let stored = existing[item.path] else { todo.append(item); continue }
            switch item.source {
            case .upload: unchanged.insert(item.path)
            case .file:
                if let s = try? FileStat.of(path: item.path), s.size == stored.size, s.mtime == stored.mtime { unchanged.insert(item.path) } else { todo.append(item) }
            }
        }

        var encoded: [Encoded] = []
        for start in stride(from: 0, to: todo.count, by: config.maxBatch) {
            let chunk = Array(todo[start ..< min(start + config.maxBatch, todo.count)])
            let decoded = try await RequestInput.offload { try chunk.map { try Self.decode($0, existing: existing, roots: roots, maxPixels: maxPixels) } }
            for d in decoded where d.image == nil { unchanged.insert(d.item.path) }  // touched, same bytes
            let ready = decoded.filter { $0.image != nil }
            let vectors = try await encoder.batcher.embed(images: ready.compactMap(\.image))
            encoded += zip(ready, vectors).map { Encoded(item: $0.item, stat: $0.stat, hash: $0.hash, vector: $1) }
        }

        let keep = items.filter { unchanged.contains($0.path) }
        let ready = encoded, uploadStore = uploadStore
        let size = try await write { store in
            var created: [String] = []
            do {
                // Write new uploads, and restore an unchanged upload whose file was removed (not one whose entry a
                // concurrent delete removed since the plan: that would leave a file without an entry).
                let present = try await store.files(paths: keep.map(\.path))
                let restore = keep.filter { present[$0.path] != nil }
                let uploads = (restore + ready.map(\.item)).compactMap { item -> (path: String, data: Data)? in
                    if case .upload(let data, _) = item.source { return (item.path, data) }
                    return nil
                }
                created = try await RequestInput.offload { try Self.storeUploads(uploads, in: uploadStore) }
                let records = try ready.map { e in
                    FileRecord(stat: try e.stat ?? FileStat.of(path: e.item.path), contentHash: e.hash, metadata: e.item.metadata, vector: e.vector)
                }
                try await store.add(records)
            } catch {
                for path in created { uploadStore.remove(path: path) }
                throw ServerError.internalError("cannot store the images: \(error)")
            }
            return try await store.summary().count
        }
        let files = try await store.files(paths: items.map(\.path))
        let hits = items.compactMap { item -> IndexHit? in
            guard let file = files[item.path] else { return nil }
            var h = hit(file, score: nil)
            h.status = unchanged.contains(item.path) ? "unchanged" : existing[item.path] == nil ? "added" : "updated"
            return h
        }
        return (hits, size)
    }

    /// Writes the uploads whose file is missing, each whole and on disk (before the entries are committed);
    /// returns the paths created. On an error, removes those it created and rethrows.
    static func storeUploads(_ uploads: [(path: String, data: Data)], in uploadStore: UploadStore) throws -> [String] {
        var created: [String] = []
        do {
            for upload in uploads where !FileManager.default.fileExists(atPath: upload.path) {
                try uploadStore.write(upload.data, to: upload.path)
                created.append(upload.path)
            }
        } catch {
            for path in created { uploadStore.remove(path: path) }
            throw error
        }
        if !created.isEmpty, let pause = testUploadPause { usleep(pause * 1000) }
        return created
    }

    /// An upload: base64 decoded, header probed (422 above the pixel limit), content hash computed.
    static func uploadItem(_ upload: UploadItem, label: String, roots: IndexRoots, maxPixels: Int) throws -> IngestItem {
        do {
            let data = try RequestInput.imageBytes(upload.image)
            let probe: (format: ImageFormat, width: Int, height: Int)
            do { probe = try ImageDecoder.probe(data) } catch { throw ServerError.from(error) }
            if probe.width * probe.height > maxPixels {
                throw ServerError.imageTooLarge(width: probe.width, height: probe.height, limit: maxPixels)
            }
            let hash = SHA256Hasher.hex(data)
            let path = roots.uploads.lexical + "/" + UploadStore.fileName(hash: hash, ext: probe.format.fileExtension)
            return IngestItem(label: label, path: path, source: .upload(data, hash: hash), name: cleanName(upload.name))
        } catch let error as ServerError {
            throw error.labelled(label)
        }
    }

    /// A client-given name, reduced to something safe to store and show: its last path component, no
    /// control characters, at most 200 characters.
    static func cleanName(_ name: String?) -> String? {
        guard let name else { return nil }
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(String.UnicodeScalarView(last.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }))
            .trimmingCharacters(in: .whitespaces)
        return clean.isEmpty ? nil : String(clean.prefix(200))
    }

    static let imageExtensions = ImageFormat.fileExtensions

    /// The files a client path names: absolute, or relative to a root (the first root where it exists). It
    /// must resolve, symlinks followed, to a file or directory inside a root; a directory gives its
    /// image files (recursively, by ImageFormat.fileExtensions), skipping any whose real location is outside the roots.
    static func fileItems(_ raw: String, label: String, roots: IndexRoots, limit: Int) throws -> [IngestItem] {
        let refused = ServerError.invalidRequest("\(label): '\(raw.prefix(200))' is not a file or directory under the index roots")
        guard !raw.isEmpty, !raw.utf8.contains(0) else { throw refused }
        let candidates = raw.hasPrefix("/") ? [raw] : roots.roots.map { $0.lexical + "/" + raw }
        for candidate in candidates {
            let lexical = URL(fileURLWithPath: candidate).standardizedFileURL.path
            guard let real = SafeFiles.realPath(lexical), roots.contains(real: real) else { continue }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory) else { continue }
            guard isDirectory.boolValue else { return [IngestItem(label: label, path: lexical, source: .file, name: nil)] }
            var out: [IngestItem] = []
            let walker = FileManager.default.enumerator(atPath: lexical)
            while let relative = walker?.nextObject() as? String {
                guard imageExtensions.contains((relative as NSString).pathExtension.lowercased()) else { continue }
                let path = lexical + "/" + relative
                guard let r = SafeFiles.realPath(path), roots.contains(real: r) else { continue }
                var dir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: r, isDirectory: &dir), !dir.boolValue else { continue }
                out.append(IngestItem(label: "\(label): \(relative)", path: path, source: .file, name: nil))
                guard out.count <= limit else { throw ServerError.invalidRequest("\(label): more than \(limit) images in one request") }
            }
            return out.sorted { $0.path < $1.path }
        }
        throw refused
    }

    /// Reads (files: only inside the roots) and decodes one item. `image` is nil for a file whose bytes equal
    /// what is stored (touched but unchanged).
    static func decode(_ item: IngestItem, existing: [String: StoredFile], roots: IndexRoots, maxPixels: Int)
        throws -> (item: IngestItem, stat: FileStat?, hash: String, image: RGBImage?) {
        do {
            let data: Data, hash: String, stat: FileStat?
            switch item.source {
            case .upload(let bytes, let h):
                (data, hash, stat) = (bytes, h, nil)
            case .file:
                let s = try? FileStat.of(path: item.path)
                guard let s, let bytes = try SafeFiles.read(path: item.path, roots: roots, maxBytes: 1 << 30) else {
                    throw ServerError.invalidRequest("cannot read the file")
                }
                (data, hash, stat) = (bytes, SHA256Hasher.hex(bytes), s)
                if existing[item.path]?.contentHash == hash { return (item, stat, hash, nil) }
            }
            do {
                return (item, stat, hash, try ImageDecoder.decode(data, maxPixels: maxPixels, alpha: .compositeOnWhite))
            } catch {
                throw ServerError.from(error)
            }
        } catch let error as ServerError {
            throw error.labelled(item.label)
        }
    }
}

extension ServerError {
    /// Names the item of a multi-item request in the message (status unchanged).
    func labelled(_ label: String) -> ServerError {
        switch self {
        case .invalidBase64(let m): return .invalidBase64("\(label): \(m)")
        case .undecodableImage(let m): return .undecodableImage("\(label): \(m)")
        case .invalidRequest(let m): return m.hasPrefix(label) ? self : .invalidRequest("\(label): \(m)")
        default: return self
        }
    }
}
