import Foundation

/// Small-vector kernels for graph search, where each step scores one query against a handful of
/// scattered rows (a GEMM call per step would cost more than the arithmetic).
enum SIMDKernels {
    /// Inner product of two float vectors of length `n`, 2 x SIMD16 accumulators (two independent
    /// dependency chains hide add latency), scalar tail. Unaligned loads: rows of any dim work.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self)
            i &+= 32
        }
        if i + 16 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self)
            i &+= 16
        }
        var sum = (acc0 + acc1).sum()
        while i < n {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }

    /// Inner products of `q` with four rows at once (the "distance_four" trick of faiss): four
    /// independent load streams keep more cache misses in flight than four sequential dots, which
    /// matters in graph search where the rows are scattered over memory.
    @inline(__always)
    static func dot4(_ q: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>,
                     _ d: UnsafePointer<Float>, _ n: Int) -> SIMD4<Float> {
        let rq = UnsafeRawPointer(q), ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), rc = UnsafeRawPointer(c), rd = UnsafeRawPointer(d)
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let o = i &* 4
            let qv = rq.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s0 += qv * ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s1 += qv * rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s2 += qv * rc.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            s3 += qv * rd.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            i &+= 8
        }
        var out = SIMD4<Float>(s0.sum(), s1.sum(), s2.sum(), s3.sum())
        while i < n {
            out += q[i] * SIMD4<Float>(a[i], b[i], c[i], d[i])
            i &+= 1
        }
        return out
    }

    /// Squared L2 norm.
    static func normSquared(_ a: UnsafePointer<Float>, _ n: Int) -> Float { dot(a, a, n) }
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
