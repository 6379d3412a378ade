import Foundation
import Testing
@testable import VLMLayers
import VLMTensor

/// LayerKVCache keeps each key/value head's positions contiguous ([heads, allocated, headDim]) through appends of
/// one and several rows, growth past its reservation, copies and truncation.
@Suite("KV cache layout")
struct KVCacheLayoutTests {
    @Test("appends land head-major, survive growth, copy and truncate")
    func headMajorAppends() {
        let heads = 3, headDim = 5, width = heads * headDim
        let cache = LayerKVCache(capacity: 40, heads: heads, headDim: headDim, reserve: 2)
        // Source rows as a projection writes them: [q | k | v] with k at column 7 and v at 7 + width (ld 40).
        let ld = 40, keyOffset = 7, valueOffset = 7 + width
        func rows(_ n: Int, from: Int) -> Tensor {
            Tensor(shape: [n, ld], values: (0 ..< n * ld).map { Float(from * ld + $0) })
        }
        var expectedK: [[Float]] = [], expectedV: [[Float]] = []  // per position, width floats
        for (n, start) in [(1, 0), (1, 1), (4, 2), (9, 6)] {
            let src = rows(n, from: start)
            cache.append(src, rows: n, ld: ld, keyOffset: keyOffset, valueOffset: valueOffset)
            for r in 0 ..< n {
                expectedK.append(Array(src.scalars[(r * ld + keyOffset) ..< (r * ld + keyOffset + width)]))
                expectedV.append(Array(src.scalars[(r * ld + valueOffset) ..< (r * ld + valueOffset + width)]))
            }
        }
        #expect(cache.length == 15 && cache.allocated >= 15 && cache.allocated <= 40)
        #expect(cache.headStride == cache.allocated * headDim)
        func check(_ c: LayerKVCache, _ label: String) {
            let k = c.keys.scalars, v = c.values.scalars
            for s in 0 ..< c.length {
                for g in 0 ..< heads {
                    let at = g * c.headStride + s * headDim
                    #expect(Array(k[at ..< (at + headDim)]) == Array(expectedK[s][(g * headDim) ..< ((g + 1) * headDim)]), "\(label) key \(s) head \(g)")
                    #expect(Array(v[at ..< (at + headDim)]) == Array(expectedV[s][(g * headDim) ..< ((g + 1) * headDim)]), "\(label) value \(s) head \(g)")
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
