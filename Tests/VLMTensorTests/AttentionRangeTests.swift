import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// vlm_attention_ranged (explicit key range per query: sliding window, prefix-LM, bidirectional) against its
/// naive twin, and against vlm_attention's causal flag when the ranges spell the causal mask.
@Suite struct AttentionRangeTests {
    struct Case { let b, h, tq, tk, d: Int; let window: Int?; let prefix: Int; let mask: Bool }

    /// Ranges as AttentionMask computes them: query r at sequence index tk - tq + r.
    static func ranges(_ c: Case) -> ([Int64], [Int64]) {
        var begin = [Int64](), end = [Int64]()
        for r in 0 ..< c.tq {
            let q = c.tk - c.tq + r
            let hi = max(q + 1, c.prefix)
            let lo = c.window.map { max(0, q - $0 + 1) } ?? 0
            begin.append(Int64(lo))
            end.append(Int64(min(hi, c.tk)))
        }
        return (begin, end)
    }

    @Test func rangedMatchesNaive() {
        let cases = [
            Case(b: 1, h: 2, tq: 20, tk: 20, d: 16, window: 6, prefix: 0, mask: false),   // sliding window prefill
            Case(b: 1, h: 1, tq: 1, tk: 40, d: 32, window: 6, prefix: 0, mask: false),    // sliding window decode
            Case(b: 2, h: 3, tq: 9, tk: 30, d: 8, window: 4, prefix: 0, mask: true),      // continuation + padding
            Case(b: 1, h: 2, tq: 25, tk: 25, d: 16, window: nil, prefix: 10, mask: false), // prefix-LM
            Case(b: 1, h: 2, tq: 300, tk: 300, d: 16, window: 33, prefix: 0, mask: false), // several query blocks
        ]
        KernelPaths.forEach { path, threads in
            for (i, c) in cases.enumerated() {
                let width = c.h * c.d
                let ldq = width + 3, ldk = width + 1, ldv = width + 5, ldo = width + 2
                let q = randomFloats(c.b * c.tq * ldq, seed: UInt64(i * 3 + 50))
                let k = randomFloats(c.b * c.tk * ldk, seed: UInt64(i * 3 + 51), scale: 2)
                let v = randomFloats(c.b * c.tk * ldv, seed: UInt64(i * 3 + 52))
                let mask: [UInt8]? = c.mask ? (0 ..< c.b * c.tk).map { $0 % 5 == 2 ? 0 : 1 } : nil
                let (begin, end) = Self.ranges(c)
                var fast = [Float](repeating: 777, count: c.b * c.tq * ldo), ref = fast
                let scale = 1 / Float(c.d).squareRoot()
                let run = { (m: UnsafePointer<UInt8>?) in
                    vlm_attention_ranged(Int64(c.b), Int64(c.h), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ldk),
                                         v, Int64(ldv), &fast, Int64(ldo), scale, begin, end, m)
                    vlm_attention_ranged_naive(Int64(c.b), Int64(c.h), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ldk),
                                               v, Int64(ldv), &ref, Int64(ldo), scale, begin, end, m)
                }
                if let mask { mask.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                let r = worstRatio(fast, ref) { _ in 2e-5 }
                #expect(r.ratio <= 1, "ranged attention \(path) t=\(threads) case \(i) at \(r.index)")
            }
        }
    }

    /// Causal ranges give exactly what the causal flag gives (same kernel path, same arithmetic).
    @Test func causalRangesEqualCausalFlag() {
        let c = Case(b: 1, h: 2, tq: 7, tk: 19, d: 16, window: nil, prefix: 0, mask: false)
        let width = c.h * c.d
        let q = randomFloats(c.tq * width, seed: 9), k = randomFloats(c.tk * width, seed: 10), v = randomFloats(c.tk * width, seed: 11)
        let (begin, end) = Self.ranges(c)
        let a = Ops.attention(q: Tensor(shape: [c.tq, width], values: q), ldq: width, k: Tensor(shape: [c.tk, width], values: k), ldk: width,
                              v: Tensor(shape: [c.tk, width], values: v), ldv: width, batch: 1, heads: c.h, queryLength: c.tq,
                              keyLength: c.tk, headDim: c.d, scale: 0.25, keyBegin: begin, keyEnd: end)
        let b = Ops.attention(q: Tensor(shape: [c.tq, width], values: q), ldq: width, k: Tensor(shape: [c.tk, width], values: k), ldk: width,
                              v: Tensor(shape: [c.tk, width], values: v), ldv: width, batch: 1, heads: c.h, queryLength: c.tq,
                              keyLength: c.tk, headDim: c.d, scale: 0.25, causal: true)
        #expect(a.scalars == b.scalars)
    }
}
