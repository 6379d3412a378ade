import Foundation

/// Binary persistence of an `HNSWIndex` (little-endian, version 1):
///
///     magic "VLMHNSW\0" | version u32 | dim u32 | M u32 | efConstruction u32 | efSearch u32
///     seed u64 | rngState u64 | count u64 | deletedCount u64 | entryPoint i32 | maxLevel i32
///     upperPoolCount u64 | storeID (u32 length + UTF-8) | fingerprint (u32 length + UTF-8)
///     labels i64[count] | levels i32[count] | deleted u8[count] | upperOffset i64[count]
///     vectors f32[count*dim] | links0 i32[count*(2M+1)] | upperPool i32[upperPoolCount]
///     checksum u64 (Checksum64 of every preceding byte)
///
/// The labels are the store's embedding ids the graph covers (ids are never reused, see
/// `VectorStore`), and storeID/fingerprint tie the file to one store lineage and one model.
/// Loading verifies the checksum AND every structural invariant (link targets in range, counts
/// within Mmax, pool offsets in bounds), so a corrupt file is reported, never dereferenced.
/// Saving writes a temporary file, fsyncs it, then renames it over the old one (atomic on POSIX).
extension HNSWIndex {
    static let magic: [UInt8] = Array("VLMHNSW".utf8) + [0]
    static let formatVersion: UInt32 = 1

    /// Facts recorded in a file header besides the graph itself.
    public struct FileInfo: Sendable, Equatable {
        public let storeID: String
        public let fingerprint: String
    }

    public func save(to path: String, info: FileInfo) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil),
              let handle = FileHandle(forWritingAtPath: tmp) else {
            throw IndexError.io(path: tmp, message: "cannot create")
        }
        var writer = ChecksummedWriter(handle: handle)
        do {
            defer { try? handle.close() }
            writer.bytes(Self.magic)
            writer.scalar(Self.formatVersion)
            for v in [dim, parameters.M, parameters.efConstruction, parameters.efSearch] { writer.scalar(UInt32(v)) }
            writer.scalar(parameters.seed)
            writer.scalar(rng.state)
            writer.scalar(UInt64(count))
            writer.scalar(UInt64(deletedCount))
            writer.scalar(entryPoint)
            writer.scalar(Int32(maxLevel))
            writer.scalar(UInt64(upperPoolCount))
            for s in [info.storeID, info.fingerprint] {
                let utf8 = Array(s.utf8)
                writer.scalar(UInt32(utf8.count))
                writer.bytes(utf8)
            }
            labels.withUnsafeBytes { writer.raw($0) }
            levels.withUnsafeBytes { writer.raw($0) }
            writer.bytes(deleted.map { $0 ? 1 : 0 })
            upperOffset.map { Int64($0) }.withUnsafeBytes { writer.raw($0) }
            writer.raw(UnsafeRawBufferPointer(start: vectors, count: count * dim * 4))
            writer.raw(UnsafeRawBufferPointer(start: links0, count: count * (maxM0 + 1) * 4))
            writer.raw(UnsafeRawBufferPointer(start: upperPool, count: upperPoolCount * 4))
            let sum = writer.checksum.finalize(totalLength: writer.written)
            writer.scalar(sum)
            try writer.flush()
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw IndexError.io(path: path, message: "write failed: \(error)")
        }
        if rename(tmp, path) != 0 {
            let message = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tmp)
            throw IndexError.io(path: path, message: "rename failed: \(message)")
        }
    }

    /// Loads a graph. Throws `IndexError.corruptFile` for any checksum or structural problem and
    /// `IndexError.io` if the file cannot be read.
    public static func load(from path: String) throws -> (index: HNSWIndex, info: FileInfo) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw IndexError.io(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        return try data.withUnsafeBytes { raw in try parse(raw, path: path) }
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, path: String) throws -> (index: HNSWIndex, info: FileInfo) {
        func corrupt(_ why: String) -> IndexError { .corruptFile(path: path, reason: why) }
        guard raw.count >= magic.count + 8 else { throw corrupt("file too short (\(raw.count) bytes)") }
        guard Array(raw[0..<magic.count]) == magic else { throw corrupt("not an HNSW file (bad magic)") }
        var sum = Checksum64()
        sum.update(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 8)]))
        let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self))
        guard sum.finalize(totalLength: raw.count - 8) == stored else { throw corrupt("checksum mismatch") }
        var r = Reader(raw: UnsafeRawBufferPointer(rebasing: raw[magic.count..<(raw.count - 8)]), path: path)
        let version: UInt32 = try r.scalar()
        guard version == formatVersion else { throw corrupt("format version \(version), expected \(formatVersion)") }
        let dim = Int(try r.scalar() as UInt32), m = Int(try r.scalar() as UInt32)
        let efC = Int(try r.scalar() as UInt32), efS = Int(try r.scalar() as UInt32)
        let seed: UInt64 = try r.scalar(), rngState: UInt64 = try r.scalar()
        let count = Int(try r.scalar() as UInt64), deletedCount = Int(try r.scalar() as UInt64)
        let entryPoint: Int32 = try r.scalar(), maxLevel = Int(try r.scalar() as Int32)
        let upperPoolCount = Int(try r.scalar() as UInt64)
        let storeID = try r.string(), fingerprint = try r.string()
        guard dim > 0, m >= 2, m <= 4096, efC >= 1, efS >= 1 else { throw corrupt("bad parameters dim \(dim) M \(m)") }
        guard dim <= 1 << 16, count >= 0, deletedCount <= count, upperPoolCount <= r.remaining / 4,
              count <= r.remaining / (dim * 4 + (2 * m + 1) * 4 + 21) else { throw corrupt("counts exceed the file size") }
        let maxM0 = 2 * m
        let index = try HNSWIndex(dim: dim, parameters: HNSWParameters(M: m, efConstruction: efC, efSearch: efS, seed: seed), capacity: max(count, 16))
        index.rng = SplitMix64(state: rngState)
        index.labels = try r.array(Int64.self, count)
        index.levels = try r.array(Int32.self, count)
        index.deleted = try r.array(UInt8.self, count).map { $0 != 0 }
        index.upperOffset = try r.array(Int64.self, count).map { Int($0) }
        try r.copy(into: UnsafeMutableRawPointer(index.vectors), byteCount: count * dim * 4)
        try r.copy(into: UnsafeMutableRawPointer(index.links0), byteCount: count * (maxM0 + 1) * 4)
        index.upperPool = HNSWIndex.grow(index.upperPool, from: 0, to: max(upperPoolCount, 16))
        index.upperPoolCapacity = max(upperPoolCount, 16)
        try r.copy(into: UnsafeMutableRawPointer(index.upperPool), byteCount: upperPoolCount * 4)
        guard r.remaining == 0 else { throw corrupt("\(r.remaining) trailing bytes") }
        index.count = count
        index.upperPoolCount = upperPoolCount
        index.deletedCount = index.deleted.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard index.deletedCount == deletedCount else { throw corrupt("deleted count \(index.deletedCount) vs header \(deletedCount)") }
        guard (count == 0 && entryPoint == -1 && maxLevel == -1) || (entryPoint >= 0 && Int(entryPoint) < count && maxLevel >= 0) else {
            throw corrupt("entry point \(entryPoint) out of range")
        }
        index.entryPoint = entryPoint
        index.maxLevel = maxLevel
        // Structural checks: every link must point inside the graph, every list within its cap.
        for node in 0..<count {
            let level = Int(index.levels[node])
            guard level >= 0, level <= maxLevelCap, level <= maxLevel else { throw corrupt("node \(node) level \(level)") }
            let offset = index.upperOffset[node]
            guard offset >= 0, offset + level * (m + 1) <= upperPoolCount else { throw corrupt("node \(node) link offset \(offset)") }
            for lc in 0...level {
                let l = index.links(Int32(node), lc)
                let n = Int(l[0])
                guard n >= 0, n <= (lc == 0 ? maxM0 : m) else { throw corrupt("node \(node) layer \(lc) has \(n) links") }
                for i in 0..<n where l[1 + i] < 0 || Int(l[1 + i]) >= count || Int(index.levels[Int(l[1 + i])]) < lc {
                    throw corrupt("node \(node) layer \(lc) links to invalid node \(l[1 + i])")
                }
            }
        }
        if count > 0 && Int(index.levels[Int(entryPoint)]) != maxLevel { throw corrupt("entry point level mismatch") }
        for node in 0..<count {
            let label = index.labels[node]
            // A re-added label keeps its tombstoned node as a router; the live node wins.
            if index.deleted[node], index.nodeOf[label] != nil { continue }
            index.nodeOf[label] = Int32(node)
        }
        let live = (0..<count).filter { !index.deleted[$0] }.map { index.labels[$0] }
        guard Set(live).count == live.count else { throw corrupt("duplicate live labels") }
        return (index, FileInfo(storeID: storeID, fingerprint: fingerprint))
    }
}

/// Buffered writer that checksums what it writes.
private struct ChecksummedWriter {
    let handle: FileHandle
    var checksum = Checksum64()
    var written = 0
    var buffer = Data()
    var error: Error?

    init(handle: FileHandle) { self.handle = handle }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        checksum.update(bytes)
        written += bytes.count
        // Large sections go straight through in 8 MiB slices; small ones are batched.
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let n = min(8 << 20, bytes.count - offset)
            buffer.append((base + offset).assumingMemoryBound(to: UInt8.self), count: n)
            offset += n
            if buffer.count >= 8 << 20 { drain() }
        }
    }

    mutating func bytes(_ b: [UInt8]) { b.withUnsafeBytes { raw($0) } }
    mutating func scalar<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { raw($0) } }

    private mutating func drain() {
        guard error == nil, !buffer.isEmpty else { return }
        do { try handle.write(contentsOf: buffer) } catch { self.error = error }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func flush() throws {
        drain()
        if let error { throw error }
    }
}

/// Bounds-checked little-endian reader.
private struct Reader {
    let raw: UnsafeRawBufferPointer
    let path: String
    var offset = 0
    var remaining: Int { raw.count - offset }

    mutating func scalar<T: FixedWidthInteger>() throws -> T {
        guard remaining >= MemoryLayout<T>.size else { throw IndexError.corruptFile(path: path, reason: "truncated header") }
        let v = T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    mutating func string() throws -> String {
        let n = Int(try scalar() as UInt32)
        guard n <= remaining else { throw IndexError.corruptFile(path: path, reason: "string length \(n) past end") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n)]), as: UTF8.self)
        offset += n
        return s
    }

    mutating func array<T>(_: T.Type, _ n: Int) throws -> [T] {
        let bytes = n * MemoryLayout<T>.stride
        guard n >= 0, bytes <= remaining else { throw IndexError.corruptFile(path: path, reason: "section of \(n) \(T.self) past end") }
        let out = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + bytes)]))
            initialized = n
        }
        offset += bytes
        return out
    }

    mutating func copy(into dst: UnsafeMutableRawPointer, byteCount: Int) throws {
        guard byteCount >= 0, byteCount <= remaining else { throw IndexError.corruptFile(path: path, reason: "section of \(byteCount) bytes past end") }
        guard byteCount > 0, let base = raw.baseAddress else { return }
        dst.copyMemory(from: base + offset, byteCount: byteCount)
        offset += byteCount
    }
}
