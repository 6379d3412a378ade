import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// vlm_attention_gqa (grouped key/value heads; decode steps and short continuations take the few-query path,
/// which splits long contexts into key chunks merged by their maxima) against the double-precision naive twin,
/// on every SIMD path this CPU has, at 1 and 2 threads.
@Suite struct AttentionGQATests {
    struct Case {
        let b, h, kvh, tq, tk, d: Int
        var window: Int? = nil
        var maskEvery: Int? = nil      // every n-th key padded
        var maskPrefix = 0             // the first keys of every sequence padded (whole chunks masked)
        var empty = false              // the first query sees no key at all
    }

    static let cases: [Case] = [
        Case(b: 1, h: 15, kvh: 5, tq: 1, tk: 1, d: 64),                        // first decode step
        Case(b: 1, h: 15, kvh: 5, tq: 1, tk: 517, d: 64),                      // SmolLM2 decode, 3 chunks
        Case(b: 2, h: 12, kvh: 2, tq: 1, tk: 300, d: 128, maskEvery: 7),       // Qwen2-style group 6, padding
        Case(b: 1, h: 7, kvh: 1, tq: 2, tk: 1000, d: 72, window: 40),          // multi-query, sliding window
        Case(b: 1, h: 8, kvh: 2, tq: 4, tk: 600, d: 33, maskPrefix: 520),      // chunks with every key padded
        Case(b: 2, h: 4, kvh: 4, tq: 5, tk: 9, d: 8, empty: true),             // no grouping, an empty range
        Case(b: 1, h: 6, kvh: 2, tq: 9, tk: 140, d: 80),                       // 27 rows per head: GEMM path
        Case(b: 1, h: 16, kvh: 1, tq: 1, tk: 257, d: 16),                      // exactly 16 rows, two chunks
        Case(b: 1, h: 4, kvh: 4, tq: 1, tk: 301, d: 64),                       // one row per head (SmolLM2-1.7B)
        Case(b: 2, h: 8, kvh: 4, tq: 1, tk: 45, d: 20, maskEvery: 5),          // two rows, a short key block
        Case(b: 1, h: 14, kvh: 2, tq: 1, tk: 7, d: 136),                       // 7 rows (4 + 3), D past 128
    ]

    /// Causal ranges for queries at the end of the keys, optionally windowed; `empty` gives query 0 no keys.
    static func ranges(_ c: Case) -> ([Int64], [Int64]) {
        var begin = [Int64](), end = [Int64]()
        for r in 0 ..< c.tq {
            let pos = c.tk - c.tq + r
            begin.append(Int64(c.window.map { max(0, pos - $0 + 1) } ?? 0))
            end.append(Int64(c.empty && r == 0 ? 0 : pos + 1))
        }
        return (begin, end)
    }

    static func mask(_ c: Case) -> [UInt8]? {
        guard c.maskEvery != nil || c.maskPrefix > 0 else { return nil }
        return (0 ..< c.b * c.tk).map { i in
            let s = i % c.tk
            return s < c.maskPrefix || (c.maskEvery.map { s % $0 == $0 - 1 } ?? false) ? 0 : 1
        }
    }

    struct Operands { let q, k, v: [Float]; let ldq, ldk, ldv, ldo: Int }

    static func operands(_ c: Case, seed: UInt64) -> Operands {
        let ldq = c.h * c.d + 3, ldk = c.kvh * c.d + 1, ldv = c.kvh * c.d + 5, ldo = c.h * c.d + 2
        return Operands(q: randomFloats(c.b * c.tq * ldq, seed: seed), k: randomFloats(c.b * c.tk * ldk, seed: seed + 1, scale: 2),
                        v: randomFloats(c.b * c.tk * ldv, seed: seed + 2), ldq: ldq, ldk: ldk, ldv: ldv, ldo: ldo)
    }

    /// Runs the fast kernel (or its naive twin) on case c; unwritten output elements stay 777.
    static func run(_ c: Case, _ o: Operands, naive: Bool) -> (status: Int32, out: [Float]) {
        var out = [Float](repeating: 777, count: c.b * c.tq * o.ldo)
        let (begin, end) = ranges(c)
        let scale = 1 / Float(c.d).squareRoot()
        let call = { (m: UnsafePointer<UInt8>?) -> Int32 in
            let a = (Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d))
            if naive {
                vlm_attention_gqa_naive(a.0, a.1, a.2, a.3, a.4, a.5, o.q, Int64(o.ldq), o.k, Int64(o.ldk), o.v, Int64(o.ldv),
                                        &out, Int64(o.ldo), scale, begin, end, m)
                return 0
            }
            return vlm_attention_gqa(a.0, a.1, a.2, a.3, a.4, a.5, o.q, Int64(o.ldq), o.k, Int64(o.ldk), o.v, Int64(o.ldv),
                                     &out, Int64(o.ldo), scale, begin, end, m)
        }
        let status = mask(c).map { m in m.withUnsafeBufferPointer { call($0.baseAddress) } } ?? call(nil)
        return (status, out)
    }

    /// 2e-5 absolute: outputs are convex combinations of values in [-1, 1], summed in float (chunk merges included)
    /// against double.
    @Test func matchesNaiveOnEveryPath() {
        var byThreads: [String: [Int: [Float]]] = [:]
        KernelPaths.forEach { path, threads in
            for (i, c) in Self.cases.enumerated() {
                let o = Self.operands(c, seed: UInt64(100 + 3 * i))
                let fast = Self.run(c, o, naive: false), ref = Self.run(c, o, naive: true)
                #expect(fast.status == 0)
                let r = worstRatio(fast.out, ref.out) { _ in 2e-5 }
                #expect(r.ratio <= 1, "gqa \(path) t=\(threads) case \(i) at \(r.index): \(fast.out[max(r.index, 0)]) vs \(ref.out[max(r.index, 0)])")
                if c.empty {
                    #expect(fast.out[0 ..< (c.h * c.d)].allSatisfy { $0 == 0 }, "a query with no keys gets zeros (\(path))")
                }
                // Row padding past H*D is never written.
                #expect(fast.out[(c.h * c.d) ..< o.ldo].allSatisfy { $0 == 777 }, "gqa \(path) case \(i) wrote past its row")
                byThreads["\(path) \(i)", default: [:]][threads] = fast.out
            }
        }
        // Key chunks have a fixed size: one and two threads sum in the same order.
        for (key, runs) in byThreads.sorted(by: { $0.key < $1.key }) {
            if let one = runs[1], let two = runs[2] { #expect(one == two, "gqa \(key): 1 and 2 threads differ") }
        }
    }

    /// Query head h reads key/value head h / (H / KVH), exactly as repeating each key/value head (repeat_kv) and
    /// running ordinary multi-head attention: bitwise the same (each row's arithmetic does not depend on its
    /// neighbours).
    @Test func equalsRepeatedKeyValueHeads() {
        KernelPaths.forEach(threads: [2]) { path, _ in
            for (i, c) in Self.cases.enumerated() where c.kvh < c.h {
                let o = Self.operands(c, seed: UInt64(200 + 3 * i))
                let group = c.h / c.kvh
                func repeated(_ x: [Float], ld: Int) -> [Float] {
                    var y = [Float](repeating: 0, count: c.b * c.tk * c.h * c.d)
                    for row in 0 ..< c.b * c.tk {
                        for h in 0 ..< c.h {
                            for d in 0 ..< c.d { y[(row * c.h + h) * c.d + d] = x[row * ld + (h / group) * c.d + d] }
                        }
                    }
                    return y
                }
                let expanded = Operands(q: o.q, k: repeated(o.k, ld: o.ldk), v: repeated(o.v, ld: o.ldv), ldq: o.ldq,
                                        ldk: c.h * c.d, ldv: c.h * c.d, ldo: o.ldo)
                var mha = c
                mha = Case(b: c.b, h: c.h, kvh: c.h, tq: c.tq, tk: c.tk, d: c.d, window: c.window, maskEvery: c.maskEvery,
                           maskPrefix: c.maskPrefix, empty: c.empty)
                let grouped = Self.run(c, o, naive: false).out, plain = Self.run(mha, expanded, naive: false).out
                if (c.h / c.kvh) * c.tq <= 16 && c.tq <= 16 {
                    #expect(grouped == plain, "gqa \(path) case \(i): grouped differs from repeated heads")
                } else {
                    #expect(worstRatio(grouped, plain) { _ in 2e-6 }.ratio <= 1, "gqa \(path) case \(i)")
                }
            }
        }
    }

    /// A head-major KV cache ([KVH, capacity, D], read with ld D and head stride capacity * D through
    /// vlm_attention_strided) gives bitwise what token-major rows give: same rows, same arithmetic, only the
    /// addresses differ. Every single-sequence case, fp32 and bf16, fast kernels and naive twins, every path.
    @Test func headMajorLayoutEqualsTokenMajor() {
        KernelPaths.forEach(threads: [1, 2]) { path, threads in
            for (i, c) in Self.cases.enumerated() where c.b == 1 {
                let o = Self.operands(c, seed: UInt64(300 + 3 * i))
                let capacity = c.tk + 5  // unused positions after each head's run, as a cache has
                func headMajor(_ x: [Float], ld: Int) -> [Float] {
                    var y = [Float](repeating: .nan, count: c.kvh * capacity * c.d)
                    for s in 0 ..< c.tk {
                        for g in 0 ..< c.kvh {
                            for d in 0 ..< c.d { y[(g * capacity + s) * c.d + d] = x[s * ld + g * c.d + d] }
                        }
                    }
                    return y
                }
                let k = headMajor(o.k, ld: o.ldk), v = headMajor(o.v, ld: o.ldv)
                let (begin, end) = Self.ranges(c)
                let scale = 1 / Float(c.d).squareRoot()
                let mask = Self.mask(c)
                for bf16: Int32 in [0, 1] {
                    for naive in [false, true] {
                        func call(_ k: [Float], _ ldk: Int, _ v: [Float], _ ldv: Int, _ hs: Int) -> (Int32, [Float]) {
                            var out = [Float](repeating: 777, count: c.tq * o.ldo)
                            let a = (Int64(c.b), Int64(c.h), Int64(c.kvh), Int64(c.tq), Int64(c.tk), Int64(c.d))
                            let run = { (m: UnsafePointer<UInt8>?) -> Int32 in
                                if naive {
                                    vlm_attention_strided_naive(a.0, a.1, a.2, a.3, a.4, a.5, o.q, Int64(o.ldq), k, Int64(ldk), v, Int64(ldv),
                                                                Int64(hs), &out, Int64(o.ldo), scale, 0, begin, end, m, bf16)
                                    return 0
                                }
                                return vlm_attention_strided(a.0, a.1, a.2, a.3, a.4, a.5, o.q, Int64(o.ldq), k, Int64(ldk), v, Int64(ldv),
                                                             Int64(hs), &out, Int64(o.ldo), scale, 0, begin, end, m, bf16)
                            }
                            let status = mask.map { m in m.withUnsafeBufferPointer { run($0.baseAddress) } } ?? run(nil)
                            return (status, out)
                        }
                        let rows = call(o.k, o.ldk, o.v, o.ldv, c.d), heads = call(k, c.d, v, c.d, capacity * c.d)
                        #expect(rows.0 == 0 && heads.0 == 0)
                        #expect(rows.1 == heads.1, "\(path) t=\(threads) case \(i) bf16=\(bf16) naive=\(naive): head-major differs")
                        #expect(heads.1.allSatisfy { !$0.isNaN }, "\(path) case \(i): read past a head's positions")
                    }
                }
            }
        }
    }

    @Test func headsNotAMultipleOfKeyValueHeadsIsAnError() {
        let c = Case(b: 1, h: 5, kvh: 2, tq: 1, tk: 3, d: 8)
        let o = Self.operands(c, seed: 1)
        let r = Self.run(c, o, naive: false)
        #expect(r.status == -1)
    }
}
