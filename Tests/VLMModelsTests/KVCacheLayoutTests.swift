import CVLM
import Foundation
import Testing
@testable import VLMLayers
import VLMTensor

/// LayerKVCache keeps each key/value head's positions contiguous ([heads, allocated, headDim]) through appends of
/// one and several rows, growth past its reservation, copies and truncation, in fp32 and in bf16 (each element
/// rounded to nearest even when appended).
@Suite("KV cache layout")
struct KVCacheLayoutTests {
    /// x as the cache stores it: itself, or rounded to bf16 (vlm_f32_to_bf16_naive) and widened back.
    static func stored(_ x: [Float], _ precision: KVCachePrecision) -> [Float] {
        guard precision == .bfloat16 else { return x }
        var bits = [UInt16](repeating: 0, count: x.count), back = [Float](repeating: 0, count: x.count)
        vlm_f32_to_bf16_naive(x, &bits, Int64(x.count))
        vlm_bf16_to_f32_naive(bits, &back, Int64(x.count))
        return back
    }

    @Test("appends land head-major, survive growth, copy and truncate", arguments: KVCachePrecision.allCases)
    func headMajorAppends(precision: KVCachePrecision) {
        let heads = 3, headDim = 5, width = heads * headDim
        let cache = LayerKVCache(capacity: 40, heads: heads, headDim: headDim, reserve: 2, precision: precision)
        // Source rows as a projection writes them: [q | k | v] with k at column 7 and v at 7 + width (ld 40).
        let ld = 40, keyOffset = 7, valueOffset = 7 + width
        func rows(_ n: Int, from: Int) -> Tensor {
            Tensor(shape: [n, ld], values: (0 ..< n * ld).map { Float(from * ld + $0) * 1.001 })  // bf16 rounds most of these
        }
        var expectedK: [[Float]] = [], expectedV: [[Float]] = []  // per position, width floats
        for (n, start) in [(1, 0), (1, 1), (4, 2), (9, 6)] {
            let src = rows(n, from: start)
            cache.append(src, rows: n, ld: ld, keyOffset: keyOffset, valueOffset: valueOffset)
            for r in 0 ..< n {
                expectedK.append(Self.stored(Array(src.scalars[(r * ld + keyOffset) ..< (r * ld + keyOffset + width)]), precision))
                expectedV.append(Self.stored(Array(src.scalars[(r * ld + valueOffset) ..< (r * ld + valueOffset + width)]), precision))
            }
        }
        #expect(cache.length == 15 && cache.allocated >= 15 && cache.allocated <= 40)
        #expect(cache.headStride == cache.allocated * headDim)
        #expect(cache.bytes == 2 * cache.allocated * width * precision.bytes)
        // In bf16 the cache must hold the rounded values, not the sources (which most of them are not).
        let sources = (0 ..< 15).flatMap { p in (0 ..< width).map { Float(p * ld + keyOffset + $0) * 1.001 } }
        #expect((Array(expectedK.joined()) == sources) == (precision == .float32), "rounding is exercised in bf16 only")
        func check(_ c: LayerKVCache, _ label: String) {
            #expect(c.precision == precision)
            for s in 0 ..< c.length {
                for g in 0 ..< heads {
                    #expect(c.row(s, head: g) == Array(expectedK[s][(g * headDim) ..< ((g + 1) * headDim)]), "\(label) key \(s) head \(g)")
                    #expect(c.row(s, head: g, values: true) == Array(expectedV[s][(g * headDim) ..< ((g + 1) * headDim)]), "\(label) value \(s) head \(g)")
                }
            }
        }
        check(cache, "cache")
        let copy = cache.copy()
        #expect(copy.length == 15 && copy.capacity == 40)
        check(copy, "copy")
        // The copy is independent: appending to it leaves the original alone.
        copy.append(rows(1, from: 50), rows: 1, ld: ld, keyOffset: keyOffset, valueOffset: valueOffset)
        #expect(copy.length == 16 && cache.length == 15)
        check(cache, "original after the copy grew")
        cache.truncate(to: 4)
        #expect(cache.length == 4)
        check(cache, "truncated")
    }
}
