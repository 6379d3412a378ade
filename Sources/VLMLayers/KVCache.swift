import Foundation
import VLMTensor

/// What a KV cache stores its keys and values in.
public enum KVCachePrecision: String, Sendable, CaseIterable {
    /// float32: the exact path, the default.
    case float32 = "fp32"
    /// bfloat16 (rounded to nearest even when appended): half the memory and half the bytes a decode step reads, as
    /// PyTorch keeps the cache of a bf16 model. Attention computes in fp32 on the rows widened back (exactly).
    case bfloat16 = "bf16"

    /// Bytes per stored element.
    public var bytes: Int { self == .float32 ? 4 : 2 }

    /// The cache of a decoder whose layers are stored as `storage`: bf16 under a reduced `--precision` (bf16, int8,
    /// int4 and forced fp16 storage: their weights already round far more than a bf16 cache adds), fp32 for exact
    /// loads and for checkpoints loaded as stored (bf16 checkpoints and quantized ones keep transformers' fp32
    /// arithmetic). VLM_KV_CACHE=fp32|bf16 overrides (to measure one against the other).
    public static func standard(for storage: WeightStorage) -> KVCachePrecision {
        switch ProcessInfo.processInfo.environment["VLM_KV_CACHE"]?.lowercased() {
        case "fp32", "float32": return .float32
        case "bf16", "bfloat16": return .bfloat16
        default: break
        }
        switch storage {
        case .bfloat16, .float16, .int8, .int4: return .bfloat16
        case .float32, .asStored: return .float32
        }
    }
}

/// Keys and values of one layer for one sequence, head-major: head g's keys are one contiguous run of
/// positions ([heads, allocated, headDim]), so a decode step reads each head's keys and values as a stream instead
/// of one headDim slice every `heads * headDim` elements (with 32 key/value heads of 64, a row every 8 KB: a page
/// per key, which the hardware prefetchers do not follow). Storage grows on demand (doubling) up to `capacity`
/// positions, so a cache sized for a whole context costs only what it holds. Elements are fp32 or bf16
/// (`precision`); `attend` runs attention over what is held either way.
public final class LayerKVCache: @unchecked Sendable {
    public let precision: KVCachePrecision
    public private(set) var length = 0
    public let capacity: Int
    public let heads: Int
    public let headDim: Int
    public var width: Int { heads * headDim }
    private var keys: Buffer    // [heads, allocated, headDim]
    private var values: Buffer  // [heads, allocated, headDim]

    /// 64-byte aligned, zeroed storage of `count` elements of the cache's precision.
    private final class Buffer {
        let raw: UnsafeMutableRawPointer
        let count: Int
        init(count: Int, bytes: Int) {
            self.count = count
            raw = UnsafeMutableRawPointer.allocate(byteCount: max(count * bytes, 1), alignment: 64)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(count * bytes, 1))
        }
        deinit { raw.deallocate() }
    }

    public init(capacity: Int, heads: Int, headDim: Int, reserve: Int = 256, precision: KVCachePrecision = .float32) {
        self.capacity = capacity
        self.heads = heads
        self.headDim = headDim
        self.precision = precision
        let initial = min(capacity, max(reserve, 1))
        keys = Buffer(count: heads * initial * headDim, bytes: precision.bytes)
        values = Buffer(count: heads * initial * headDim, bytes: precision.bytes)
    }

    /// Positions allocated now.
    public var allocated: Int { keys.count / max(width, 1) }

    /// Elements from one head's run to the next (the attention kernels' kvHeadStride; rows are headDim apart).
    public var headStride: Int { allocated * headDim }

    /// Bytes allocated for keys and values.
    public var bytes: Int { 2 * allocated * width * precision.bytes }

    /// Makes room for `rows` positions in total (at most `capacity`), keeping what is held.
    func reserve(_ rows: Int) {
        guard rows > allocated else { return }
        let grown = min(capacity, max(rows, allocated * 2)), e = precision.bytes
        let k = Buffer(count: heads * grown * headDim, bytes: e), v = Buffer(count: heads * grown * headDim, bytes: e)
        for g in 0 ..< heads {
            (k.raw + g * grown * headDim * e).copyMemory(from: keys.raw + g * headStride * e, byteCount: length * headDim * e)
            (v.raw + g * grown * headDim * e).copyMemory(from: values.raw + g * headStride * e, byteCount: length * headDim * e)
        }
        keys = k
        values = v
    }

    /// Stores `count` floats at element `index` of `buffer` in the cache's precision.
    private func store(_ src: UnsafePointer<Float>, into buffer: Buffer, at index: Int, count: Int) {
        switch precision {
        case .float32:
            (buffer.raw.assumingMemoryBound(to: Float.self) + index).update(from: src, count: count)
        case .bfloat16:
            Ops.f32ToBF16(src, buffer.raw.assumingMemoryBound(to: UInt16.self) + index, count: count)
        }
    }

    /// Appends `rows` keys and values read from `source` rows (stride `ld`), each `heads * headDim` wide (head after
    /// head, as a projection writes them) at column offsets. source: [rows, ld]
    func append(_ source: Tensor, rows: Int, ld: Int, keyOffset: Int, valueOffset: Int) {
        reserve(length + rows)
        let stride = headStride
        withExtendedLifetime(source) {
            for r in 0 ..< rows {
                let k = source.pointer + r * ld + keyOffset, v = source.pointer + r * ld + valueOffset
                let at = (length + r) * headDim
                for g in 0 ..< heads {
                    store(k + g * headDim, into: keys, at: g * stride + at, count: headDim)
                    store(v + g * headDim, into: values, at: g * stride + at, count: headDim)
                }
            }
        }
        length += rows
    }

    public func reset() { length = 0 }

    /// Drops positions from `newLength` on (e.g. to reuse a shared prompt prefix).
    public func truncate(to newLength: Int) { length = min(length, max(newLength, 0)) }

    /// An independent cache holding the same positions (same capacity and precision).
    public func copy() -> LayerKVCache {
        let other = LayerKVCache(capacity: capacity, heads: heads, headDim: headDim, reserve: max(length, 1), precision: precision)
        let e = precision.bytes
        for g in 0 ..< heads {
            (other.keys.raw + g * other.headStride * e).copyMemory(from: keys.raw + g * headStride * e, byteCount: length * headDim * e)
            (other.values.raw + g * other.headStride * e).copyMemory(from: values.raw + g * headStride * e, byteCount: length * headDim * e)
        }
        other.length = length
        return other
    }

    /// Key (or value) of position `position`, head `head`, as stored (bf16 widened exactly). For inspection and tests.
    public func row(_ position: Int, head: Int, values wantValues: Bool = false) -> [Float] {
        precondition(position >= 0 && position < length && head >= 0 && head < heads, "LayerKVCache.row: \(position), head \(head)")
        let buffer = wantValues ? values : keys, at = head * headStride + position * headDim
        var out = [Float](repeating: 0, count: headDim)
        out.withUnsafeMutableBufferPointer { dst in
            guard let base = dst.baseAddress else { return }
            switch precision {
            case .float32: base.update(from: buffer.raw.assumingMemoryBound(to: Float.self) + at, count: headDim)
            case .bfloat16: Ops.bf16ToF32(buffer.raw.assumingMemoryBound(to: UInt16.self) + at, base, count: headDim)
            }
        }
        return out
    }

    /// Attention of `queryLength` rows of q (from element qOffset, rows ldq apart, `heads` query heads sharing the
    /// cache's key/value heads in groups) against every position held, within each row's [keyBegin, keyEnd) and
    /// keyMask ([length]). q: [queryLength, ldq] -> [1, queryLength, heads * headDim]. `bf16`: the products on bf16
    /// operands where the CPU has AVX512_BF16 (prefill; decode steps stay fp32 on what is stored).
    public func attend(q: Tensor, qOffset: Int = 0, ldq: Int, heads queryHeads: Int, queryLength: Int, scale: Float,
                       keyBegin: [Int64], keyEnd: [Int64], keyMask: [UInt8]? = nil, bf16: Bool = false,
                       naive: Bool = false) -> Tensor {
        withExtendedLifetime((keys, values)) {
            Ops.attention(q: q, qOffset: qOffset, ldq: ldq, cacheKeys: keys.raw, cacheValues: values.raw,
                          kvBF16: precision == .bfloat16, kvHeadStride: headStride, heads: queryHeads, kvHeads: heads,
                          queryLength: queryLength, keyLength: length, headDim: headDim, scale: scale,
                          keyBegin: keyBegin, keyEnd: keyEnd, keyMask: keyMask, naive: naive, bf16: bf16)
        }
    }
}

/// Per-sequence cache for every layer of a decoder.
public final class KVCache: @unchecked Sendable {
    public let layers: [LayerKVCache]
    public var length: Int { layers.first?.length ?? 0 }
    public var capacity: Int { layers.first?.capacity ?? 0 }
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }
    public var precision: KVCachePrecision { layers.first?.precision ?? .float32 }

    public init(layers count: Int, capacity: Int, heads: Int, headDim: Int, precision: KVCachePrecision = .float32) {
        layers = (0 ..< count).map { _ in
            LayerKVCache(capacity: capacity, heads: heads, headDim: headDim, precision: precision)
        }
    }

    /// A cache over existing per-layer caches (copies for beam search).
    public init(layerCaches: [LayerKVCache]) { layers = layerCaches }

    public func reset() { layers.forEach { $0.reset() } }
    public func truncate(to length: Int) { layers.forEach { $0.truncate(to: length) } }
}
