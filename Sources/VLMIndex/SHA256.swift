import Crypto
import Foundation

/// SHA-256 (FIPS 180-4), streaming, over swift-crypto's `SHA256` (BoringSSL's implementation on Linux).
///
/// Why SHA-256 rather than a fast 64-bit hash: the content hash decides whether a file whose size or
/// mtime changed must be re-embedded, and is kept as the file's identity in the store. A 64-bit
/// non-cryptographic hash plus size would almost always do, but the cost difference is irrelevant
/// here — hashing runs only for new files and files whose (size, mtime) changed, and embedding one
/// image through the encoder costs far more than hashing it — while SHA-256 has no practical collisions
/// and hex digests are checkable with `sha256sum`. Stored digests are lower-case hex of the 32 bytes,
/// the same as those of the pure-Swift implementation this replaced (tested against FIPS vectors).
public struct SHA256Hasher {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    public mutating func update(_ data: Data) { hasher.update(data: data) }

    /// The 32-byte digest; the hasher must not be used afterwards.
    public mutating func finalize() -> [UInt8] { Array(hasher.finalize()) }

    /// Lower-case hex of a digest.
    static func hexString(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digest.count * 2)
        for byte in digest { out += [digits[Int(byte >> 4)], digits[Int(byte & 15)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lower-case hex digest of `data`.
    public static func hex(_ data: Data) -> String { hexString(Array(SHA256.hash(data: data))) }

    /// Lower-case hex digest of the file at `path`, read in 1 MiB chunks.
    public static func hex(fileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw IndexError.io(path: path, message: "cannot open for hashing") }
        defer { try? handle.close() }
        var h = SHA256Hasher()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { h.update(chunk) }
        } catch {
            throw IndexError.io(path: path, message: "read failed while hashing: \(error)")
        }
        return hexString(h.finalize())
    }
}
