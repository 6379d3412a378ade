import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// vlm_attention_bf16 (bf16 operands, fp32 sums: the attention of `--precision bf16` encoders) against its definition
/// (vlm_attention_bf16_naive: the rounded operands in double, P rounded to bf16 after the softmax), on the AVX-512
/// path of CPUs with AVX512_BF16, at 1 and 2 threads; skipped, and said so, on CPUs without it.
@Suite struct AttentionBF16Tests {
    struct Case { let b, h, kvh, tq, tk, d: Int; var causal = false; var mask = false }

    static let cases: [Case] = [
        Case(b: 2, h: 3, kvh: 3, tq: 70, tk: 70, d: 64),                  // encoder: several row tiles, 3 key panels
        Case(b: 1, h: 4, kvh: 2, tq: 33, tk: 100, d: 40, causal: true),   // grouped heads, causal continuation
        Case(b: 2, h: 2, kvh: 2, tq: 17, tk: 129, d: 72, mask: true),     // padded keys, one sequence all padded
        Case(b: 1, h: 2, kvh: 2, tq: 18, tk: 37, d: 33),                  // odd head size and key count
        Case(b: 1, h: 1, kvh: 1, tq: 69, tk: 300, d: 80),                 // two query blocks of 64
        Case(b: 1, h: 2, kvh: 2, tq: 20, tk: 1, d: 16),                   // one key
    ]

    static func run(_ c: Case, seed: UInt64, _ kernel: (Case, [Float], [Float], [Float], Int, Int, UnsafeMutablePointer<Float>, [UInt8]?) -> Int32)
        -> (status: Int32, out: [Float], ldo: Int) {
        let width = c.h * c.d, kvWidth = c.kvh * c.d
        let ldq = width + 3, ld = kvWidth + 1, ldo = width + 2
        let q = randomFloats(c.b * c.tq * ldq, seed: seed), k = randomFloats(c.b * c.tk * ld, seed: seed + 1, scale: 2)
        let v = randomFloats(c.b * c.tk * ld, seed: seed + 2)
        var mask: [UInt8]? = nil
        if c.mask { mask = (0 ..< c.b * c.tk).map { $0 >= c.tk ? 0 : ($0 % 5 == 3 ? 0 : 1) } }
        var out = [Float](repeating: 777, count: c.b * c.tq * ldo)
        let status = out.withUnsafeMutableBufferPointer { o in kernel(c, q, k, v, ldq, ld, o.baseAddress!, mask) }
        return (status, out, ldo)
    }

    static func fast(_ c: Case, _ q: [Float], _ k: [Float], _ v: [Float], _ ldq: Int, _ ld: Int, _ out: UnsafeMutablePointer<Float>, _ mask: [UInt8]?) -> Int32 {
        let ldo = c.h * c.d + 2
        let call = { (m: UnsafePointer<UInt8>?) in
            vlm_attention_bf16(Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ld),
                               v, Int64(ld), out, Int64(ldo), 1 / Float(c.d).squareRoot(), c.causal ? 1 : 0, nil, nil, m)
        }
        return mask.map { m in m.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
    }

    static func naive(_ c: Case, _ q: [Float], _ k: [Float], _ v: [Float], _ ldq: Int, _ ld: Int, _ out: UnsafeMutablePointer<Float>, _ mask: [UInt8]?) -> Int32 {
        let ldo = c.h * c.d + 2
        let call = { (m: UnsafePointer<UInt8>?) in
            vlm_attention_bf16_naive(Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ld),
                                     v, Int64(ld), out, Int64(ldo), 1 / Float(c.d).squareRoot(), c.causal ? 1 : 0, nil, nil, m)
        }
        mask.map { m in m.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
        return 0
    }

    static func exact(_ c: Case, _ q: [Float], _ k: [Float], _ v: [Float], _ ldq: Int, _ ld: Int, _ out: UnsafeMutablePointer<Float>, _ mask: [UInt8]?) -> Int32 {
        let ldo = c.h * c.d + 2
        var begin = [Int64](), end = [Int64]()
        for t in 0 ..< c.tq { begin.append(0); end.append(Int64(c.causal ? t + c.tk - c.tq + 1 : c.tk)) }
        let call = { (m: UnsafePointer<UInt8>?) in
            vlm_attention_gqa(Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ld),
                              v, Int64(ld), out, Int64(ldo), 1 / Float(c.d).squareRoot(), begin, end, m)
        }
        return mask.map { m in m.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
    }

    /// Tolerance against the definition: the fast path's fp32 softmax may round a probability to the neighbouring
    /// bf16 value where the double one does not (one bf16 ulp, 2^-8 relative), which moves O by at most
    /// 2^-8 sum_s p_s |v_s| <= 2^-8 max |v| = 2^-8 here; the fp32 sums add ~1e-6. On average the outputs must
    /// agree far closer (mean |diff| <= 1e-4), which a wrong layout or rounding would not.
    @Test func matchesDefinition() {
        guard UInt64(vlm_cpu_features()) & UInt64(VLM_CPU_AVX512_BF16.rawValue) != 0 else {
            print("AttentionBF16Tests: skipped, this CPU has no AVX512_BF16 (bf16 attention is the fp32 one here)")
            return
        }
        KernelPaths.forEach { path, threads in
            guard vlm_attention_bf16_available() != 0 else { return }  // the AVX2 path: fp32 attention, tested elsewhere
            for (i, c) in Self.cases.enumerated() {
                let f = Self.run(c, seed: UInt64(300 + 3 * i), Self.fast), r = Self.run(c, seed: UInt64(300 + 3 * i), Self.naive)
                #expect(f.status == 0)
                let width = c.h * c.d
                var worst: Float = 0, sum: Float = 0, n = 0
                for row in 0 ..< c.b * c.tq {
                    for x in 0 ..< width {
                        let d = abs(f.out[row * f.ldo + x] - r.out[row * f.ldo + x])
                        worst = max(worst, d.isNaN ? .infinity : d); sum += d; n += 1
                    }
                    #expect(f.out[(row * f.ldo + width) ..< (row + 1) * f.ldo].allSatisfy { $0 == 777 }, "case \(i) wrote past its row")
                }
                #expect(worst <= 1 / 256 + 1e-5, "bf16 attention \(path) t=\(threads) case \(i): worst |diff| \(worst)")
                #expect(sum / Float(max(n, 1)) <= 1e-4, "bf16 attention \(path) t=\(threads) case \(i): mean |diff| \(sum / Float(max(n, 1)))")
                if c.mask {  // the second sequence has every key padded: zeros
                    let start = c.tq * f.ldo
                    #expect((0 ..< c.tq).allSatisfy { t in f.out[(start + t * f.ldo) ..< (start + t * f.ldo + width)].allSatisfy { $0 == 0 } })
                }
            }
        }
    }

    /// Close to fp32 attention (the rounding of q, k, v and p costs well under 5e-2 on values in [-1, 1]) but not
    /// equal to it (it does compute in bf16); decode-sized calls are the fp32 few-query path exactly.
    @Test func closeToFloat32AndExactForFewQueries() {
        KernelPaths.exclusive {
            guard vlm_attention_bf16_available() != 0 else {
                print("AttentionBF16Tests: skipped, no AVX512_BF16 on this CPU"); return
            }
            let c = Self.cases[0]
            let f = Self.run(c, seed: 9, Self.fast), e = Self.run(c, seed: 9, Self.exact)
            let diffs = zip(f.out, e.out).map { abs($0 - $1) }
            #expect(diffs.max()! < 5e-2 && diffs.max()! > 0, "bf16 vs fp32 attention: max |diff| \(diffs.max()!)")
            let decode = Case(b: 1, h: 6, kvh: 2, tq: 1, tk: 90, d: 64)
            let fd = Self.run(decode, seed: 10, Self.fast), ed = Self.run(decode, seed: 10, Self.exact)
            #expect(fd.out == ed.out)
        }
    }
}
