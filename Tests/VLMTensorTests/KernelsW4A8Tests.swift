import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// W4A8 decode (vlm_linear_w4a8: int4 codes x int8 activations in blocks of 32, int32 sums per block) against its
/// naive twin and against the weight-only int4 product, on odd shapes: N not a multiple of the 32-column panel, K not
/// a multiple of the block or the group (short last group and block), strided rows, 1-9 rows (chunks of 4).
///
/// Tolerances:
/// - SIMD vs naive twin without activation: bit for bit (integer sums exact, the same fma sequence per block and
///   group, one bias add);
/// - with an activation: the SIMD and scalar activation functions' own difference, 4e-6 relative (+ 1e-6);
/// - vs the weight-only product on the same dequantized weights w': each activation moves by at most half its
///   block's step d_b = max_b |x| / 127, so |y_w4a8 - y_fp32| <= sum_b (d_b / 2) sum_{k in b} |w'[n, k]|; taken with a
///   factor 0.5001 for the rounding of d_b and 127 / max|x|, plus float rounding 1e-6 sqrt(K) sum |x| |w'|.
@Suite struct KernelsW4A8Tests {
    static let shapes: [(m: Int, n: Int, k: Int, group: Int)] = [
        (1, 37, 77, 32), (2, 33, 100, 64), (3, 70, 300, 128), (4, 5, 129, 128), (1, 96, 257, 128),
        (4, 65, 131, 32), (1, 40, 3, 32), (2, 64, 1001, 1024), (5, 40, 2048, 128), (9, 31, 96, 32),
    ]

    static func packed(_ w: [Float], n: Int, k: Int, group: Int) -> OpaquePointer? {
        guard let p = vlm_packed_weight_create_grouped(Int64(n), Int64(k), VLM_WEIGHT_I4, Int64(group)) else { return nil }
        _ = vlm_pack_weight_rows(p, 0, w, VLM_SRC_F32, Int64(n))
        return p
    }

    /// Whether this run exercises a SIMD kernel at all; on CPUs without AVX512-VNNI + VBMI both sides are the naive
    /// twin and the comparison says so instead of passing silently.
    static var cpuHasSIMD: Bool {
        let need = UInt64(VLM_CPU_AVX512_VNNI.rawValue | VLM_CPU_AVX512_VBMI.rawValue)
        return vlm_cpu_isa() == VLM_ISA_AVX512 && vlm_cpu_features() & need == need
    }

    static func noteIfNoSIMD() {
        if !cpuHasSIMD {
            print("SKIPPED: W4A8 SIMD kernel (this CPU lacks AVX512-VNNI + VBMI): only the naive twin was checked")
        }
    }

    /// Both code orders: lane order (an unmarked weight: the kernel permutes) and quad order (marked for int8 compute:
    /// re-laid at marking, by the kernel's permutes on CPUs with VBMI and by the scalar re-layout when it is hidden).
    @Test(arguments: [false, true]) func simdKernelEqualsNaiveTwin(quadOrder: Bool) {
        Self.noteIfNoSIMD()
        // On the AVX-512 path of a CPU with VNNI + VBMI the SIMD kernel must be the one running.
        KernelPaths.exclusive { if Self.cpuHasSIMD { #expect(vlm_w4a8_fast_available() == 1) } }
        KernelsInt8GemmTests.checkTwins(Self.shapes, dtype: VLM_WEIGHT_I4, seed: 700,
                                        prepare: { if quadOrder { #expect(vlm_packed_weight_set_compute($0, VLM_COMPUTE_INT8) == 0) } },
                                        fast: vlm_linear_w4a8, naive: vlm_linear_w4a8_naive) {
            String(cString: vlm_w4a8_kernel()) + (quadOrder ? " (quad order)" : " (lane order)")
        }
    }

    static func rows(_ p: OpaquePointer, n: Int, k: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: n * k)
        out.withUnsafeMutableBufferPointer { b in for r in 0 ..< n { _ = vlm_packed_weight_get_row(p, Int64(r), b.baseAddress! + r * k) } }
        return out
    }

    /// Marking an int4 weight for int8 compute re-lays its codes (quad order) and unmarking lays them back: every
    /// dequantized value is the same bit for bit in both orders (short last groups padded to four rows included),
    /// rows packed while re-laid land where a fresh pack puts them, and the weight-only GEMV gives the same bits
    /// after the round trip. With VBMI hidden the scalar re-layout runs instead of the permutes.
    @Test func reLayoutKeepsEveryCode() {
        KernelPaths.forEach(threads: [1], hiding: [UInt64(VLM_CPU_AVX512_VBMI.rawValue)]) { path, _ in
            for (ci, s) in [(n: 37, k: 77, g: 32), (n: 64, k: 3, g: 32), (n: 33, k: 300, g: 128), (n: 5, k: 1030, g: 1024)].enumerated() {
                let w = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(40 + ci)), w2 = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(50 + ci))
                guard let p = Self.packed(w, n: s.n, k: s.k, group: s.g), let fresh = Self.packed(w2, n: s.n, k: s.k, group: s.g) else {
                    Issue.record("pack"); return
                }
                defer { vlm_packed_weight_free(p); vlm_packed_weight_free(fresh) }
                let before = Self.rows(p, n: s.n, k: s.k)
                let x = KernelsInt8GemmTests.activations(s.k, seed: UInt64(60 + ci))
                var y0 = [Float](repeating: 0, count: s.n), y1 = y0
                vlm_linear(x, 1, Int64(s.k), p, nil, VLM_ACT_NONE, &y0, Int64(s.n))
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == 0)
                #expect(Self.rows(p, n: s.n, k: s.k).map(\.bitPattern) == before.map(\.bitPattern), "\(path) \(s): quad order")
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == 0)  // marking twice re-lays nothing
                #expect(Self.rows(p, n: s.n, k: s.k).map(\.bitPattern) == before.map(\.bitPattern), "\(path) \(s): marked twice")
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY) == 0)
                #expect(Self.rows(p, n: s.n, k: s.k).map(\.bitPattern) == before.map(\.bitPattern), "\(path) \(s): back")
                vlm_linear(x, 1, Int64(s.k), p, nil, VLM_ACT_NONE, &y1, Int64(s.n))
                #expect(y0.map(\.bitPattern) == y1.map(\.bitPattern), "\(path) \(s): weight-only GEMV after the round trip")
                // Re-packing every row while in quad order writes the codes where a fresh pack (lane order) has them.
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == 0)
                #expect(vlm_pack_weight_rows(p, 0, w2, VLM_SRC_F32, Int64(s.n)) == 0)
                #expect(Self.rows(p, n: s.n, k: s.k).map(\.bitPattern) == Self.rows(fresh, n: s.n, k: s.k).map(\.bitPattern), "\(path) \(s): packed in quad order")
                #expect(vlm_packed_weight_set_compute(fresh, VLM_COMPUTE_INT8) == 0)
                var a = [Float](repeating: 0, count: s.n), b = a
                _ = vlm_linear_w4a8(x, 1, Int64(s.k), p, nil, VLM_ACT_NONE, &a, Int64(s.n))
                _ = vlm_linear_w4a8(x, 1, Int64(s.k), fresh, nil, VLM_ACT_NONE, &b, Int64(s.n))
                #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(path) \(s): W4A8 on both")
            }
        }
    }

    @Test func withinBlockQuantizationBoundOfWeightOnly() {
        KernelPaths.forEach(threads: [2]) { path, _ in
            for (ci, s) in Self.shapes.enumerated() {
                let w = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(1000 + ci))
                guard let p = Self.packed(w, n: s.n, k: s.k, group: s.group) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(p) }
                var deq = [Float](repeating: 0, count: s.n * s.k)
                for r in 0 ..< s.n { deq.withUnsafeMutableBufferPointer { _ = vlm_packed_weight_get_row(p, Int64(r), $0.baseAddress! + r * s.k) } }
                let x = KernelsInt8GemmTests.activations(s.m * s.k, seed: UInt64(1100 + ci)), bias = randomFloats(s.n, seed: UInt64(1200 + ci))
                var y = [Float](repeating: 0, count: s.m * s.n), ref = y, mag = y
                #expect(vlm_linear_w4a8(x, Int64(s.m), Int64(s.k), p, bias, VLM_ACT_NONE, &y, Int64(s.n)) == 0)
                vlm_linear_naive(x, Int64(s.m), Int64(s.k), deq, Int64(s.n), Int64(s.k), bias, VLM_ACT_NONE, &ref, Int64(s.n))
                vlm_linear_naive(x.map(abs), Int64(s.m), Int64(s.k), deq.map(abs), Int64(s.n), Int64(s.k), nil, VLM_ACT_NONE, &mag, Int64(s.n))
                var worst: Float = 0
                for m in 0 ..< s.m {
                    for n in 0 ..< s.n {
                        var bound: Float = 0
                        for b0 in stride(from: 0, to: s.k, by: 32) {
                            let ks = b0 ..< min(b0 + 32, s.k)
                            let d = ks.map { abs(x[m * s.k + $0]) }.max()! / 127
                            bound += 0.5001 * d * ks.reduce(0) { $0 + abs(deq[n * s.k + $1]) }
                        }
                        bound += 1e-6 * Float(s.k).squareRoot() * mag[m * s.n + n] + 1e-6
                        worst = max(worst, abs(y[m * s.n + n] - ref[m * s.n + n]) / bound)
                    }
                }
                #expect(worst <= 1, "\(path) M=\(s.m) N=\(s.n) K=\(s.k): error / bound = \(worst)")
            }
        }
    }

    /// A row of zeros gives the bias; a NaN or an infinity in a row gives NaN for that row only.
    @Test func specialRows() {
        KernelPaths.forEach(threads: [1]) { path, _ in
            let (m, n, k) = (4, 35, 70)
            var x = KernelsInt8GemmTests.activations(m * k, seed: 17)
            for i in 0 ..< k { x[i] = 0 }
            x[1 * k + 40] = .nan
            x[3 * k + 69] = .infinity
            let w = KernelsQuantTests.weights(n, k, seed: 18)
            guard let p = Self.packed(w, n: n, k: k, group: 32) else { Issue.record("pack"); return }
            defer { vlm_packed_weight_free(p) }
            let bias = randomFloats(n, seed: 19)
            var y = [Float](repeating: 0, count: m * n), want = y
            #expect(vlm_linear_w4a8(x, Int64(m), Int64(k), p, bias, VLM_ACT_NONE, &y, Int64(n)) == 0)
            _ = vlm_linear_w4a8_naive(x, Int64(m), Int64(k), p, bias, VLM_ACT_NONE, &want, Int64(n))
            #expect(zip(y, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(path)")
            #expect((0 ..< n).allSatisfy { y[$0] == bias[$0] }, "\(path): zero row")
            #expect((0 ..< n).allSatisfy { y[n + $0].isNaN && y[3 * n + $0].isNaN }, "\(path): NaN / inf rows")
            #expect((0 ..< n).allSatisfy { y[2 * n + $0].isFinite }, "\(path): neighbour")
        }
    }

    /// vlm_linear on an int4 weight marked int8-compute: W4A8 up to VLM_QGEMV_MAX_M rows (decode), the weight-only
    /// path above (prefill); an I8 weight marked int8-compute keeps its own routing; a float weight refuses the mode.
    @Test func computeModeRoutesByRows() {
        let (n, k) = (45, 96)
        let w = KernelsQuantTests.weights(n, k, seed: 21)
        guard let p = Self.packed(w, n: n, k: k, group: 32), let f = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_BF16) else {
            Issue.record("pack"); return
        }
        defer { vlm_packed_weight_free(p); vlm_packed_weight_free(f) }
        #expect(vlm_packed_weight_set_compute(f, VLM_COMPUTE_INT8) == -1)
        KernelPaths.exclusive {
            for m in [1, 2, 4, 5, 16, 20] {
                let x = KernelsInt8GemmTests.activations(m * k, seed: UInt64(22 + m))
                var weightOnly = [Float](repeating: 0, count: m * n), w4a8 = weightOnly, routed = weightOnly
                _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &weightOnly, Int64(n))
                _ = vlm_linear_w4a8(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &w4a8, Int64(n))
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == 0)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &routed, Int64(n))
                let expected = m <= Int(VLM_QGEMV_MAX_M) ? w4a8 : weightOnly
                #expect(zip(routed, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "M=\(m)")
                #expect(m > Int(VLM_QGEMV_MAX_M) || zip(w4a8, weightOnly).contains { $0 != $1 }, "M=\(m): W4A8 should round differently")
            }
            _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
        }
        #expect(vlm_linear_w4a8(nil, 1, 1, f, nil, VLM_ACT_NONE, nil, 1) == -1)
    }
}
