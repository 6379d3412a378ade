import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// vlm_attention_strided_kv16 (a bf16 KV cache) on AttentionGQATests' cases, every SIMD path, 1 and 2 threads:
/// bitwise what vlm_attention_strided gives on the rows widened to fp32 (decode steps read the bf16 rows in place with
/// the same arithmetic; longer calls widen first), and within the fp32 tolerance of its naive twin.
@Suite struct AttentionKV16Tests {
    typealias Case = AttentionGQATests.Case

    /// x rounded to bf16 (vlm_f32_to_bf16_naive: nearest even) and those values widened back.
    static func rounded(_ x: [Float]) -> (bits: [UInt16], widened: [Float]) {
        var bits = [UInt16](repeating: 0, count: x.count), widened = [Float](repeating: 0, count: x.count)
        vlm_f32_to_bf16_naive(x, &bits, Int64(x.count))
        vlm_bf16_to_f32_naive(bits, &widened, Int64(x.count))
        return (bits, widened)
    }

    /// Runs the kv16 entry (or its naive twin) or, with `widened`, vlm_attention_strided on fp32 rows; token-major
    /// rows (head stride D). Unwritten output elements stay 777.
    static func run(_ c: Case, q: [Float], ldq: Int, k16: [UInt16], v16: [UInt16], kf: [Float], vf: [Float], ldk: Int,
                    ldv: Int, ldo: Int, bf16: Int32, mode: String) -> (status: Int32, out: [Float]) {
        var out = [Float](repeating: 777, count: c.b * c.tq * ldo)
        let (begin, end) = AttentionGQATests.ranges(c)
        let scale = 1 / Float(c.d).squareRoot()
        let a = (Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d))
        let call = { (m: UnsafePointer<UInt8>?) -> Int32 in
            switch mode {
            case "kv16":
                return vlm_attention_strided_kv16(a.0, a.1, a.2, a.3, a.4, a.5, q, Int64(ldq), k16, Int64(ldk), v16, Int64(ldv),
                                                  Int64(c.d), &out, Int64(ldo), scale, 0, begin, end, m, bf16)
            case "kv16-naive":
                return vlm_attention_strided_kv16_naive(a.0, a.1, a.2, a.3, a.4, a.5, q, Int64(ldq), k16, Int64(ldk), v16,
                                                        Int64(ldv), Int64(c.d), &out, Int64(ldo), scale, 0, begin, end, m, bf16)
            default:
                return vlm_attention_strided(a.0, a.1, a.2, a.3, a.4, a.5, q, Int64(ldq), kf, Int64(ldk), vf, Int64(ldv),
                                             Int64(c.d), &out, Int64(ldo), scale, 0, begin, end, m, bf16)
            }
        }
        let status = AttentionGQATests.mask(c).map { m in m.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
        return (status, out)
    }

    @Test func equalsFP32OnWidenedRowsAndMatchesNaive() {
        KernelPaths.forEach { path, threads in
            for (i, c) in AttentionGQATests.cases.enumerated() {
                let o = AttentionGQATests.operands(c, seed: UInt64(500 + 3 * i))
                let k = Self.rounded(o.k), v = Self.rounded(o.v)
                for bf16: Int32 in [0, 1] {
                    func go(_ mode: String) -> (status: Int32, out: [Float]) {
                        Self.run(c, q: o.q, ldq: o.ldq, k16: k.bits, v16: v.bits, kf: k.widened, vf: v.widened, ldk: o.ldk,
                                 ldv: o.ldv, ldo: o.ldo, bf16: bf16, mode: mode)
                    }
                    let fast = go("kv16"), fp32 = go("fp32"), ref = go("kv16-naive")
                    let label = "kv16 \(path) t=\(threads) case \(i) bf16=\(bf16)"
                    #expect(fast.status == 0 && fp32.status == 0 && ref.status == 0, "\(label): status")
                    #expect(fast.out == fp32.out, "\(label): differs from the fp32 path on the widened rows")
                    #expect(fast.out[(c.h * c.d) ..< o.ldo].allSatisfy { $0 == 777 }, "\(label): wrote past its row")
                    if bf16 == 0 {
                        // 2e-5 absolute, as AttentionGQATests: float sums against the double-precision reference.
                        let r = worstRatio(fast.out, ref.out) { _ in 2e-5 }
                        #expect(r.ratio <= 1, "\(label) at \(r.index): \(fast.out[max(r.index, 0)]) vs \(ref.out[max(r.index, 0)])")
                    }
                }
            }
        }
    }

    /// The naive twin is vlm_attention_strided_naive on the widened rows, exactly (bf16 compute included).
    @Test func naiveTwinIsTheFP32ReferenceOnWidenedRows() {
        for (i, c) in AttentionGQATests.cases.enumerated() where c.tk < 400 {
            let o = AttentionGQATests.operands(c, seed: UInt64(700 + 3 * i))
            let k = Self.rounded(o.k), v = Self.rounded(o.v)
            let (begin, end) = AttentionGQATests.ranges(c)
            let scale = 1 / Float(c.d).squareRoot()
            let a = (Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d))
            for bf16: Int32 in [0, 1] {
                var want = [Float](repeating: 777, count: c.b * c.tq * o.ldo)
                let call = { (m: UnsafePointer<UInt8>?) in
                    vlm_attention_strided_naive(a.0, a.1, a.2, a.3, a.4, a.5, o.q, Int64(o.ldq), k.widened, Int64(o.ldk), v.widened,
                                                Int64(o.ldv), Int64(c.d), &want, Int64(o.ldo), scale, 0, begin, end, m, bf16)
                }
                if let m = AttentionGQATests.mask(c) { m.withUnsafeBufferPointer { call($0.baseAddress) } } else { call(nil) }
                let got = Self.run(c, q: o.q, ldq: o.ldq, k16: k.bits, v16: v.bits, kf: [], vf: [], ldk: o.ldk, ldv: o.ldv,
                                   ldo: o.ldo, bf16: bf16, mode: "kv16-naive")
                #expect(got.status == 0 && got.out == want, "kv16 naive case \(i) bf16=\(bf16)")
            }
        }
    }

    @Test func headsNotAMultipleOfKeyValueHeadsIsAnError() {
        let c = Case(b: 1, h: 5, kvh: 2, tq: 1, tk: 3, d: 8)
        let o = AttentionGQATests.operands(c, seed: 1)
        let k = Self.rounded(o.k), v = Self.rounded(o.v)
        for mode in ["kv16", "kv16-naive"] {
            let r = Self.run(c, q: o.q, ldq: o.ldq, k16: k.bits, v16: v.bits, kf: [], vf: [], ldk: o.ldk, ldv: o.ldv,
                             ldo: o.ldo, bf16: 0, mode: mode)
            #expect(r.status == -1, "\(mode)")
        }
    }
}
