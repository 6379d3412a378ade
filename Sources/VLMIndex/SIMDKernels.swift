import CVLM
import Foundation

/// Inner products for graph search, where each step scores one query against a handful of scattered
/// rows (a GEMM call per step would cost more than the arithmetic). They run the CVLM kernels
/// (`vlm_dot`, `vlm_dot_gather`: AVX-512 / AVX2 picked at run time, naive C elsewhere).
enum SIMDKernels {
    /// Inner product of two float vectors of length `n` (any alignment).
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        vlm_dot(a, b, Int64(n))
    }

    /// `out[i] = q . (base + idx[i] * n)` for i < count: one query against rows of a node-major matrix,
    /// four rows per pass with the next ones prefetched (faiss's "distance_four" + prefetch).
    @inline(__always)
    static func gather(_ q: UnsafePointer<Float>, _ base: UnsafePointer<Float>, _ idx: UnsafePointer<Int32>, _ count: Int,
                       _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        vlm_dot_gather(q, base, Int64(n), idx, Int64(count), Int64(n), out)
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny deterministic generator for HNSW level draws.
/// Its state is one UInt64, persisted with the graph so later inserts stay reproducible.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so -ln(u) is finite.
    mutating func nextUnitOpenZero() -> Double {
        Double((next() >> 11) + 1) * (1.0 / 9007199254740992.0)
    }
}

/// A 64-bit checksum over bytes, 8 bytes per step (multiply-xorshift mixing, in the spirit of
/// wyhash/xxh64's finalisers). Detects accidental corruption and truncation; not cryptographic.
struct Checksum64 {
    private(set) var value: UInt64 = 0x243F_6A88_85A3_08D3
    private var pending = [UInt8]()

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        if !pending.isEmpty {
            while i < n && pending.count < 8 { pending.append(bytes[i]); i += 1 }
            if pending.count == 8 {
                var w: UInt64 = 0
                for (j, b) in pending.enumerated() { w |= UInt64(b) << UInt64(8 * j) }
                mix(w)
                pending.removeAll(keepingCapacity: true)
            }
        }
        guard let base = bytes.baseAddress else { return }
        while n - i >= 8 {
            mix(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            i += 8
        }
        while i < n { pending.append(bytes[i]); i += 1 }
    }

    @inline(__always)
    private mutating func mix(_ w: UInt64) {
        var h = value ^ w
        h = (h ^ (h >> 32)) &* 0xD6E8_FEB8_6659_FD93
        h = (h ^ (h >> 29)) &* 0x9E37_79B9_7F4A_7C15
        value = h ^ (h >> 32)
    }

    /// Final value; folds in the trailing bytes and the total length.
    func finalize(totalLength: Int) -> UInt64 {
        var copy = self
        var w: UInt64 = 0
        for (j, b) in pending.enumerated() { w |= UInt64(b) << UInt64(8 * j) }
        copy.mix(w ^ 0xA5)
        copy.mix(UInt64(totalLength))
        return copy.value
    }
}
