import Foundation
import VLMImage
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let posixWrite = Glibc.write
#elseif canImport(Darwin)
private let posixWrite = Darwin.write
#endif

/// Image file format of an export.
public enum SceneImageFormat: Equatable, Sendable {
    case png
    case jpeg(quality: Int)

    var fileExtension: String { self == .png ? "png" : "jpg" }
    var name: String { self == .png ? "png" : "jpeg" }

    func encode(_ image: SceneImage) throws -> Data {
        switch self {
        case .png: return try ImageEncoder.png(width: image.width, height: image.height, rgb: image.pixels)
        case let .jpeg(quality): return try ImageEncoder.jpeg(width: image.width, height: image.height, rgb: image.pixels, quality: quality)
        }
    }
}

/// What an export wrote.
public struct ExportSummary: Sendable {
    public let directory: URL
    public let count: Int
    public let seconds: Double
}

/// Batch entry points: in-memory generation for training loops, and export to files for other tools.
public enum SceneDataset {
    /// Scenes `start ..< start + count` of a split, with pixels and text, without touching the disk.
    /// `threads > 1` renders in parallel; the result is identical either way.
    public static func generate(count: Int, seed: UInt64, split: SceneSplit, kind: KindSelection = .mixed,
                                config: SceneConfig = SceneConfig(), start: Int = 0, threads: Int = 1) throws -> [GeneratedScene] {
        let generator = try SceneGenerator(seed: seed, config: config)
        guard threads > 1, count > 1 else { return try generator.generate(count: count, split: split, kind: kind, start: start) }
        guard start >= 0 else { throw SceneError.invalidArgument("start must be >= 0") }
        var results = [Result<GeneratedScene, Error>?](repeating: nil, count: max(0, count))
        results.withUnsafeMutableBufferPointer { buffer in
            let slots = buffer  // each iteration writes only its own slot
            DispatchQueue.concurrentPerform(iterations: count) { i in
                slots[i] = Result { try generator.generate(index: start + i, split: split, kind: kind) }
            }
        }
        return try results.compactMap { try $0?.get() }
    }

    /// The first `count` scenes (in index order) whose canonical caption differs from every earlier one's,
    /// plus their indices. Retrieval metrics (text -> image R@1) need this: "three yellow stars" can describe
    /// several scenes, and a tie between identical captions says nothing about the model.
    public static func uniqueCaptionScenes(count: Int, seed: UInt64, split: SceneSplit, kind: KindSelection = .multi,
                                           config: SceneConfig = SceneConfig()) throws -> [GeneratedScene] {
        guard count >= 0 else { throw SceneError.invalidArgument("count must be >= 0, got \(count)") }
        let generator = try SceneGenerator(seed: seed, config: config)
        var seen = Set<String>(), out: [GeneratedScene] = []
        var index = 0
        // Bounded so a tiny caption space (e.g. only single objects) cannot loop forever.
        while out.count < count && index < count * 50 + 1000 {
            let g = try generator.generate(index: index, split: split, kind: kind)
            if seen.insert(g.text.caption).inserted { out.append(g) }
            index += 1
        }
        guard out.count == count else {
            throw SceneError.invalidArgument("only \(out.count) distinct captions in the first \(index) \(split.rawValue) scenes")
        }
        return out
    }

    /// Writes `count` images (images/000000.png, ...), manifest.jsonl (one JSON object per image, same
    /// order) and dataset.json to `directory`.
    ///
    /// Everything is first written to a hidden sibling directory which is renamed into place at the end, so
    /// an interrupted export never leaves a manifest that points at missing images. An existing non-empty
    /// `directory` is an error unless `overwrite` is set. Output bytes do not depend on `threads`.
    @discardableResult
    public static func export(count: Int, seed: UInt64, split: SceneSplit, kind: KindSelection = .mixed,
                              config: SceneConfig = SceneConfig(), format: SceneImageFormat = .png, to directory: URL,
                              overwrite: Bool = false, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                              progress: ((Int) -> Void)? = nil) throws -> ExportSummary {
        guard count >= 0 else { throw SceneError.invalidArgument("count must be >= 0, got \(count)") }
        if case let .jpeg(q) = format, !(1...100).contains(q) { throw SceneError.invalidArgument("JPEG quality must be 1...100, got \(q)") }
        let generator = try SceneGenerator(seed: seed, config: config)
        let fm = FileManager.default
        let target = directory.standardizedFileURL
        let existing = try? fm.contentsOfDirectory(atPath: target.path)
        if let existing, !existing.isEmpty, !overwrite { throw SceneError.outputExists(path: target.path) }
        if existing == nil, fm.fileExists(atPath: target.path) { throw SceneError.outputExists(path: target.path) }  // a file

        let started = Date()
        let parent = target.deletingLastPathComponent()
        // Unique per call, so two exports (even to the same target) never share a staging directory.
        let staging = parent.appendingPathComponent(".\(target.lastPathComponent).partial-\(UUID().uuidString.prefix(8))")
        do {
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging.appendingPathComponent("images"), withIntermediateDirectories: true)
        } catch {
            throw SceneError.writeFailed(path: staging.path, reason: "\(error)")
        }
        do {
            try writeAll(generator: generator, count: count, split: split, kind: kind, format: format, staging: staging,
                         threads: max(1, threads), progress: progress)
            let info = DatasetInfo(seed: seed, split: split, kind: kind, count: count, config: config, imageFormat: format.name)
            try write(try jsonEncoder(pretty: true).encode(info), to: staging.appendingPathComponent("dataset.json"))
            if existing != nil {
                do { try fm.removeItem(at: target) } catch { throw SceneError.writeFailed(path: target.path, reason: "\(error)") }
            }
            do { try fm.moveItem(at: staging, to: target) } catch { throw SceneError.writeFailed(path: target.path, reason: "\(error)") }
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
        return ExportSummary(directory: target, count: count, seconds: Date().timeIntervalSince(started))
    }

    /// Reads a manifest.jsonl back (for tools and tests).
    public static func readManifest(_ url: URL) throws -> [ManifestRecord] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw SceneError.writeFailed(path: url.path, reason: "cannot read: \(error)") }
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).enumerated().map { line, bytes in
            do { return try decoder.decode(ManifestRecord.self, from: Data(bytes)) } catch {
                throw SceneError.invalidArgument("\(url.lastPathComponent):\(line + 1): \(error)")
            }
        }
    }

    /// "images/000042.png": zero-padded to at least 6 digits so names sort in index order.
    public static func fileName(index: Int, count: Int, format: SceneImageFormat) -> String {
        let digits = max(6, String(max(count - 1, 0)).count)
        let number = String(index)
        return "images/" + String(repeating: "0", count: max(0, digits - number.count)) + number + "." + format.fileExtension
    }

    static func jsonEncoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        // Sorted keys: identical bytes for identical content, whatever the dictionary order.
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Plain open/write/close: Foundation's `Data.write` measured ~20x slower per small file on Linux, and the
    /// staging directory already makes the export atomic as a whole.
    private static func write(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SceneError.writeFailed(path: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                guard let base = raw.baseAddress else { break }
                let n = posixWrite(fd, base + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw SceneError.writeFailed(path: url.path, reason: String(cString: strerror(errno))) }
                offset += n
            }
        }
    }

    /// Generates and encodes in chunks, in parallel within a chunk, then writes the chunk in index order.
    private static func writeAll(generator: SceneGenerator, count: Int, split: SceneSplit, kind: KindSelection,
                                 format: SceneImageFormat, staging: URL, threads: Int, progress: ((Int) -> Void)?) throws {
        let manifestURL = staging.appendingPathComponent("manifest.jsonl")
        guard FileManager.default.createFile(atPath: manifestURL.path, contents: nil) else {
            throw SceneError.writeFailed(path: manifestURL.path, reason: "cannot create file")
        }
        let handle: FileHandle
        do { handle = try FileHandle(forWritingTo: manifestURL) } catch {
            throw SceneError.writeFailed(path: manifestURL.path, reason: "\(error)")
        }
        defer { try? handle.close() }
        let encoder = jsonEncoder()
        let chunk = 256
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            var results = [Result<(ManifestRecord, Data), Error>?](repeating: nil, count: n)
            let work = { (i: Int) -> Result<(ManifestRecord, Data), Error> in
                Result {
                    let index = start + i
                    let g = try generator.generate(index: index, split: split, kind: kind)
                    let bytes: Data
                    do { bytes = try format.encode(g.image) } catch { throw SceneError.encodeFailed(index: index, reason: "\(error)") }
                    return (ManifestRecord(g, file: fileName(index: index, count: count, format: format)), bytes)
                }
            }
            if threads > 1 && n > 1 {
                results.withUnsafeMutableBufferPointer { buffer in
                    let base = buffer  // each iteration writes only its own slot
                    DispatchQueue.concurrentPerform(iterations: n) { i in base[i] = work(i) }
                }
            } else {
                for i in 0..<n { results[i] = work(i) }
            }
            var lines = Data()
            for result in results {
                guard let result else { continue }
                let (record, bytes) = try result.get()
                try write(bytes, to: staging.appendingPathComponent(record.file))
                do { lines.append(try encoder.encode(record)) } catch {
                    throw SceneError.writeFailed(path: manifestURL.path, reason: "\(error)")
                }
                lines.append(UInt8(ascii: "\n"))
            }
            do { try handle.write(contentsOf: lines) } catch { throw SceneError.writeFailed(path: manifestURL.path, reason: "\(error)") }
            start += n
            progress?(start)
        }
    }
}
