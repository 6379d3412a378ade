import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// int8 compute (vlm_linear_i8: int8 activations per token and group x I8 weights, int32 sums per group) against its naive
/// twin and against the fp32 product with the dequantized weights, on odd shapes: M not a multiple of the 6- or
/// 8-row tiles, N not a multiple of the 32-column panel, K odd and not a multiple of the group, strided rows.
///
/// Tolerances:
/// - SIMD vs naive twin without activation: bit for bit (the integer sums are exact and every path runs the
///   same float operations per group: a product with the activation scale, an fma with the weight scale; one bias add);
/// - with an activation: the SIMD and scalar activation functions' own difference, 4e-6 relative (+ 1e-6);
/// - vs the fp32 (weight-only) product on the same dequantized weights w': each activation moves by at most half
///   its group's step, |x - sa q| <= sa / 2 (sa = max |x| / 127 over the group's k), so |y_i8 - y_fp32| <=
///   sum_g (sa_g / 2) sum_{k in g} |w'[n, k]|; taken with a factor 0.5001 for the rounding of sa and 127 / max|x|,
///   plus float rounding 1e-6 sqrt(K) sum |x| |w'|. `outlierChannelCoarsensOnlyItsGroup` holds a per-token scale (the
///   definition before session 16) to account too.
@Suite struct KernelsInt8GemmTests {
    static let shapes: [(m: Int, n: Int, k: Int, group: Int)] = [
        (17, 37, 77, 32), (16, 33, 100, 64), (23, 70, 300, 128), (1, 5, 129, 128), (50, 96, 257, 128),
        (31, 65, 131, 32), (19, 40, 3, 32), (9, 64, 1001, 1024),
        (20, 40, 2048, 128),  // 2 KiB rows of u8 activations (4 KiB as int16): padded stride
        (64, 1000, 301, 128),  // 32 panels in 8 tasks at 2 threads: the shrinking (guided) split of panel ranges
        (64, 3, 4100, 128),  // 262 K activations: converted on the pool; 8 row tiles in blocks of 3 (L2 blocking)
        (72, 300, 2100, 128),  // 9 row tiles in blocks of 7 over the 1-3 panels of a task, kept in scratch
    ]

    static func packed(_ w: [Float], n: Int, k: Int, group: Int) -> OpaquePointer? {
        guard let p = vlm_packed_weight_create_grouped(Int64(n), Int64(k), VLM_WEIGHT_I8, Int64(group)) else { return nil }
        _ = vlm_pack_weight_rows(p, 0, w, VLM_SRC_F32, Int64(n))
        return p
    }

    /// Activations with outliers (every 11th value x4) so the per-token scale is set by a few values.
    static func activations(_ count: Int, seed: UInt64) -> [Float] {
        randomFloats(count, seed: seed).enumerated().map { i, v in i % 11 == 0 ? 4 * v : v }
    }

    typealias LinearFn = (UnsafePointer<Float>?, Int64, Int64, OpaquePointer?, UnsafePointer<Float>?, vlm_activation,
                          UnsafeMutablePointer<Float>?, Int64) -> Int32

    /// `fast` against its naive twin on every kernel path and thread count, for each shape and activation (none,
    /// GELU, SiLU) with strided rows: bit for bit without an activation, else within the activation functions' own
    /// SIMD-vs-scalar difference (4e-6 relative + 1e-6); nothing written past N.
    static func checkTwins(_ shapes: [(m: Int, n: Int, k: Int, group: Int)], dtype: vlm_weight_dtype, seed: UInt64,
                           hiding: [UInt64] = [], prepare: (OpaquePointer) -> Void = { _ in }, fast: LinearFn,
                           naive: LinearFn, kernel: () -> String) {
        KernelPaths.forEach(hiding: hiding) { path, threads in
            for (ci, s) in shapes.enumerated() {
                let w = KernelsQuantTests.weights(s.n, s.k, seed: seed + UInt64(ci))
                guard let p = vlm_packed_weight_create_grouped(Int64(s.n), Int64(s.k), dtype, Int64(s.group)) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(p) }
                _ = vlm_pack_weight_rows(p, 0, w, VLM_SRC_F32, Int64(s.n))
                prepare(p)
                let bias = randomFloats(s.n, seed: seed + 100 + UInt64(ci))
                for (ai, act) in [VLM_ACT_NONE, VLM_ACT_GELU, VLM_ACT_SILU].enumerated() {
                    let ldx = s.k + ai, ldy = s.n + (ci % 2)
                    let x = activations(s.m * ldx, seed: seed + 200 + UInt64(ci * 3 + ai))
                    var y = [Float](repeating: 7, count: s.m * ldy), want = y
                    let b = ai == 1 ? nil : bias
                    #expect(fast(x, Int64(s.m), Int64(ldx), p, b, act, &y, Int64(ldy)) == 0)
                    #expect(naive(x, Int64(s.m), Int64(ldx), p, b, act, &want, Int64(ldy)) == 0)
                    let label = "\(path) t=\(threads) \(kernel()) M=\(s.m) N=\(s.n) K=\(s.k) g=\(s.group) act=\(act.rawValue)"
                    if act == VLM_ACT_NONE {
                        #expect(zip(y, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(label)")
                    } else {
                        let (ratio, at) = worstRatio(y, want) { i in 4e-6 * abs(want[i]) + 1e-6 }
                        #expect(ratio <= 1, "\(label) at \(at): \(y[max(at, 0)]) vs \(want[max(at, 0)])")
                    }
                    if ldy > s.n { #expect((0 ..< s.m).allSatisfy { y[$0 * ldy + s.n] == 7 }, "\(label) wrote past N") }
                }
            }
        }
    }

    @Test func simdPathsEqualNaiveTwin() {
        // VNNI CPUs with VBMI re-lay out the weights with a byte permute, those without with a transpose: both run.
        Self.checkTwins(Self.shapes, dtype: VLM_WEIGHT_I8, seed: 100, hiding: [UInt64(VLM_CPU_AVX512_VBMI.rawValue)],
                        fast: vlm_linear_i8, naive: vlm_linear_i8_naive) {
            String(cString: vlm_i8_gemm_kernel())
        }
    }

    static let vnniAndVbmi = UInt64(VLM_CPU_AVX512_VNNI.rawValue | VLM_CPU_AVX512_VBMI.rawValue)

    /// The twin test above reaches both re-layouts only if hiding VBMI really switches the kernel.
    @Test(.enabled(if: vlm_cpu_isa() == VLM_ISA_AVX512 && vlm_cpu_features() & vnniAndVbmi == vnniAndVbmi,
                   "needs a CPU with AVX512_VNNI and AVX512_VBMI"))
    func vbmiAndTransposeVariantsBothRun() {
        var names: [String: String] = [:]
        KernelPaths.forEach(threads: [1], hiding: [UInt64(VLM_CPU_AVX512_VBMI.rawValue)]) { path, _ in
            names[path] = String(cString: vlm_i8_gemm_kernel())
        }
        #expect(names["avx512"] == "avx512-vnni+vbmi int8 vpdpbusd 8x32", "\(names)")
        #expect(names["avx512-no-avx512_vbmi"] == "avx512-vnni int8 vpdpbusd 8x32", "\(names)")
        // Under the lock: another test forcing a path meanwhile would change what the default reports.
        KernelPaths.exclusive {
            #expect(String(cString: vlm_i8_gemm_kernel()) == "avx512-vnni+vbmi int8 vpdpbusd 8x32", "features shown again")
        }
    }

    @Test func withinQuantizationBoundOfFp32() {
        KernelPaths.forEach(threads: [2]) { path, _ in
            for (ci, s) in Self.shapes.enumerated() {
                let w = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(400 + ci))
                guard let p = Self.packed(w, n: s.n, k: s.k, group: s.group) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(p) }
                var deq = [Float](repeating: 0, count: s.n * s.k)
                for r in 0 ..< s.n { deq.withUnsafeMutableBufferPointer { _ = vlm_packed_weight_get_row(p, Int64(r), $0.baseAddress! + r * s.k) } }
                let x = Self.activations(s.m * s.k, seed: UInt64(500 + ci)), bias = randomFloats(s.n, seed: UInt64(600 + ci))
                var y = [Float](repeating: 0, count: s.m * s.n), ref = y, mag = y
                #expect(vlm_linear_i8(x, Int64(s.m), Int64(s.k), p, bias, VLM_ACT_NONE, &y, Int64(s.n)) == 0)
                vlm_linear_naive(x, Int64(s.m), Int64(s.k), deq, Int64(s.n), Int64(s.k), bias, VLM_ACT_NONE, &ref, Int64(s.n))
                vlm_linear_naive(x.map(abs), Int64(s.m), Int64(s.k), deq.map(abs), Int64(s.n), Int64(s.k), nil, VLM_ACT_NONE, &mag, Int64(s.n))
                var worst: Float = 0
                let groups = stride(from: 0, to: s.k, by: s.group).map { $0 ..< min($0 + s.group, s.k) }
                for m in 0 ..< s.m {
                    let sa = groups.map { g in g.map { abs(x[m * s.k + $0]) }.max()! / 127 }
                    for n in 0 ..< s.n {
                        let step = zip(groups, sa).reduce(Float(0)) { sum, gs in
                            sum + gs.1 * gs.0.reduce(Float(0)) { $0 + abs(deq[n * s.k + $1]) }
                        }
                        let bound = 0.5001 * step + 1e-6 * Float(s.k).squareRoot() * mag[m * s.n + n] + 1e-6
                        worst = max(worst, abs(y[m * s.n + n] - ref[m * s.n + n]) / bound)
                    }
                }
                #expect(worst <= 1, "\(path) M=\(s.m) N=\(s.n) K=\(s.k): error / bound = \(worst)")
            }
        }
    }

    /// One channel 300x the others (the massive activations of real decoders): with scales per group, the error
    /// against the weight-only product stays within the per-group bound, and its mean is under a quarter of what one
    /// scale per token gives (the same activations fake-quantized per token, times the same dequantized weights): the
    /// outlier's group keeps the per-token error, the other 15 groups of this 2048-wide row lose it.
    @Test func outlierChannelCoarsensOnlyItsGroup() {
        let (m, n, k, group) = (20, 40, 2048, 128)
        let w = KernelsQuantTests.weights(n, k, seed: 31)
        guard let p = Self.packed(w, n: n, k: k, group: group) else { Issue.record("pack"); return }
        defer { vlm_packed_weight_free(p) }
        var deq = [Float](repeating: 0, count: n * k)
        for r in 0 ..< n { deq.withUnsafeMutableBufferPointer { _ = vlm_packed_weight_get_row(p, Int64(r), $0.baseAddress! + r * k) } }
        var x = randomFloats(m * k, seed: 32)
        for r in 0 ..< m { x[r * k + 7] = 300 * (r % 2 == 0 ? 1 : -1) }
        var perToken = x
        for r in 0 ..< m {
            let sa = x[(r * k) ..< ((r + 1) * k)].map(abs).max()! / 127
            for i in 0 ..< k { perToken[r * k + i] = sa * (x[r * k + i] / sa).rounded(.toNearestOrEven) }
        }
        var ref = [Float](repeating: 0, count: m * n), tokenY = ref
        vlm_linear_naive(x, Int64(m), Int64(k), deq, Int64(n), Int64(k), nil, VLM_ACT_NONE, &ref, Int64(n))
        vlm_linear_naive(perToken, Int64(m), Int64(k), deq, Int64(n), Int64(k), nil, VLM_ACT_NONE, &tokenY, Int64(n))
        let tokenError = zip(tokenY, ref).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(m * n)
        KernelPaths.forEach(threads: [1]) { path, _ in
            var y = [Float](repeating: 0, count: m * n)
            #expect(vlm_linear_i8(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &y, Int64(n)) == 0)
            var worst: Float = 0
            for r in 0 ..< m {
                for c in 0 ..< n {
                    var bound: Float = 1e-4
                    for g in stride(from: 0, to: k, by: group) {
                        let sa = x[(r * k + g) ..< (r * k + g + group)].map(abs).max()! / 127
                        bound += 0.5001 * sa * deq[(c * k + g) ..< (c * k + g + group)].reduce(0) { $0 + abs($1) }
                    }
                    worst = max(worst, abs(y[r * n + c] - ref[r * n + c]) / bound)
                }
            }
            let groupError = zip(y, ref).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(m * n)
            #expect(worst <= 1, "\(path): error / per-group bound = \(worst)")
            #expect(groupError < tokenError / 4, "\(path): mean error \(groupError) per group vs \(tokenError) per token")
        }
    }

    /// A row of zeros gives the bias; a row holding NaN gives NaN; neighbours are unaffected. Checkpoint codes of
    /// -128 (vlm_pack_quantized_rows accepts any int8) are multiplied exactly.
    @Test func specialRowsAndFullRangeCodes() {
        KernelPaths.forEach(threads: [1]) { path, _ in
            let (m, n, k) = (18, 35, 70)
            var x = Self.activations(m * k, seed: 7)
            for i in 0 ..< k { x[2 * k + i] = 0 }
            x[5 * k + 3] = .nan
            x[6 * k + 9] = .infinity
            let codes = (0 ..< n * k).map { Int8(truncatingIfNeeded: $0 % 3 == 0 ? -128 : ($0 * 37) % 255 - 127) }
            let scales = randomFloats(n * 3, seed: 9).map { abs($0) * 0.01 + 1e-3 }
            guard let p = vlm_packed_weight_create_grouped(Int64(n), Int64(k), VLM_WEIGHT_I8, 32) else { Issue.record("create"); return }
            defer { vlm_packed_weight_free(p) }
            #expect(vlm_pack_quantized_rows(p, 0, codes, scales, nil, Int64(n)) == 0)
            let bias = randomFloats(n, seed: 10)
            var y = [Float](repeating: 0, count: m * n), want = y
            #expect(vlm_linear_i8(x, Int64(m), Int64(k), p, bias, VLM_ACT_NONE, &y, Int64(n)) == 0)
            _ = vlm_linear_i8_naive(x, Int64(m), Int64(k), p, bias, VLM_ACT_NONE, &want, Int64(n))
            #expect(zip(y, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(path)")
            #expect((0 ..< n).allSatisfy { y[2 * n + $0] == bias[$0] }, "\(path): zero row")
            #expect((0 ..< n).allSatisfy { y[5 * n + $0].isNaN && y[6 * n + $0].isNaN }, "\(path): NaN / inf rows")
            #expect((0 ..< n).allSatisfy { y[4 * n + $0].isFinite && y[7 * n + $0].isFinite }, "\(path): neighbours")
        }
    }

    /// vlm_linear on a weight marked int8-compute: W8A8 from VLM_I8_GEMM_MIN_M rows, weight-only below (decode).
    @Test func computeModeRoutesByRows() {
        let (n, k) = (45, 96)
        let w = KernelsQuantTests.weights(n, k, seed: 11)
        guard let p = Self.packed(w, n: n, k: k, group: 32), let f = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32) else {
            Issue.record("pack"); return
        }
        defer { vlm_packed_weight_free(p); vlm_packed_weight_free(f) }
        #expect(vlm_packed_weight_set_compute(f, VLM_COMPUTE_INT8) == -1)
        #expect(vlm_packed_weight_compute(p) == VLM_COMPUTE_WEIGHT_ONLY)
        KernelPaths.exclusive {
            for m in [1, 4, Int(VLM_I8_GEMM_MIN_M) - 1, Int(VLM_I8_GEMM_MIN_M), 40] {
                let x = Self.activations(m * k, seed: UInt64(12 + m))
                var weightOnly = [Float](repeating: 0, count: m * n), int8 = weightOnly, routed = weightOnly
                _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &weightOnly, Int64(n))
                _ = vlm_linear_i8(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &int8, Int64(n))
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == 0)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &routed, Int64(n))
                let expected = m >= Int(VLM_I8_GEMM_MIN_M) ? int8 : weightOnly
                #expect(zip(routed, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "M=\(m)")
            }
            _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
        }
        #expect(vlm_linear_i8(nil, 1, 1, f, nil, VLM_ACT_NONE, nil, 1) == -1)
        #expect(!String(cString: vlm_i8_gemm_kernel()).isEmpty)
    }
}
