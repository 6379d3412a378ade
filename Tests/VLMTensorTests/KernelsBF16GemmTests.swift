import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// bf16 compute (vlm_linear_bf16: activations rounded to bf16 x BF16 weights, exact products summed in fp32)
/// against its naive twin and against the fp32 product on the same weights, on odd shapes: M not a multiple of the
/// 14-row tile, N not a multiple of the 32-column panel, K odd (a zero pair partner) and below one pair, strided
/// rows and outputs. Every ISA path runs (AVX-512: vdpbf16ps where the CPU has AVX512_BF16, else the fallback;
/// AVX2: the fallback through the fp32 kernel).
///
/// Tolerances (u = 2^-24, the fp32 unit roundoff; mag = sum_k |xb w|):
/// - SIMD vs naive twin: both sum the same exact products; they may differ in the order of the two products of a
///   pair (hardware) or of all of them (the fallback's fp32 kernel) and in flushing denormals, so each is within
///   K u mag of the exact sum and the two within 2 K u mag (+ 1e-6 for sums near zero); with an activation, the
///   SIMD and scalar activations' own difference on top (4e-6 relative). A layout or pairing error moves a result
///   by a whole product, ~mag / sqrt(K), far above this.
/// - vs fp32 compute on the same weights: rounding an activation moves it by at most half a bf16 ulp (2^-8
///   relative), so |y_bf16 - y_fp32| <= 2^-8 sum_k |x w| + 2 K u sum_k |x w|.
@Suite struct KernelsBF16GemmTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (17, 37, 77), (16, 33, 100), (29, 70, 300), (1, 5, 129), (50, 96, 257), (31, 65, 131), (19, 40, 3),
        (9, 64, 1001), (15, 1, 1), (14, 32, 2),
        (20, 40, 1024),  // 2 KiB rows of bf16 activations: the driver pads their stride (L1 set aliasing)
        (64, 1000, 301),  // 32 panels in 8 tasks at 2 threads: the shrinking (guided) split of panel ranges
    ]

    static func packed(_ w: [Float], n: Int, k: Int) -> OpaquePointer? { vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_BF16) }

    /// The weights as the kernels see them: rounded to bf16, widened back.
    static func widened(_ p: OpaquePointer, n: Int, k: Int) -> [Float] {
        var w = [Float](repeating: 0, count: n * k)
        w.withUnsafeMutableBufferPointer { b in for r in 0 ..< n { _ = vlm_packed_weight_get_row(p, Int64(r), b.baseAddress! + r * k) } }
        return w
    }

    static func roundedToBF16(_ x: [Float]) -> [Float] {
        var h = [UInt16](repeating: 0, count: x.count), out = x
        vlm_f32_to_bf16_naive(x, &h, Int64(x.count))
        vlm_bf16_to_f32_naive(h, &out, Int64(x.count))
        return out
    }

    /// sum_k |a[m, k]| |w[n, k]| for every output.
    static func magnitudes(_ a: [Float], lda: Int, _ w: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var mag = [Float](repeating: 0, count: m * n)
        let aa = a.map(abs), ww = w.map(abs)
        vlm_linear_naive(aa, Int64(m), Int64(lda), ww, Int64(n), Int64(k), nil, VLM_ACT_NONE, &mag, Int64(n))
        return mag
    }

    @Test func simdPathsMatchNaiveTwin() {
        KernelPaths.forEach { path, threads in
            for (ci, s) in Self.shapes.enumerated() {
                let w0 = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(700 + ci))
                guard let p = Self.packed(w0, n: s.n, k: s.k) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(p) }
                let w = Self.widened(p, n: s.n, k: s.k)
                let bias = randomFloats(s.n, seed: UInt64(800 + ci))
                for (ai, act) in [VLM_ACT_NONE, VLM_ACT_GELU, VLM_ACT_SILU].enumerated() {
                    let ldx = s.k + ai, ldy = s.n + (ci % 2)
                    let x = randomFloats(s.m * ldx, seed: UInt64(900 + ci * 3 + ai))
                    var y = [Float](repeating: 7, count: s.m * ldy), want = y
                    let b = ai == 1 ? nil : bias
                    #expect(vlm_linear_bf16(x, Int64(s.m), Int64(ldx), p, b, act, &y, Int64(ldy)) == 0)
                    #expect(vlm_linear_bf16_naive(x, Int64(s.m), Int64(ldx), p, b, act, &want, Int64(ldy)) == 0)
                    let mag = Self.magnitudes(Self.roundedToBF16(x), lda: ldx, w, m: s.m, n: s.n, k: s.k)
                    let label = "\(path) t=\(threads) \(String(cString: vlm_bf16_gemm_kernel())) M=\(s.m) N=\(s.n) K=\(s.k) act=\(act.rawValue)"
                    let u = Float(1) / Float(1 << 24)
                    var worst: Float = 0, at = -1
                    for m in 0 ..< s.m {
                        for n in 0 ..< s.n {
                            let i = m * ldy + n
                            let tol = 2 * Float(s.k) * u * mag[m * s.n + n] + 1e-6 + (act == VLM_ACT_NONE ? 0 : 4e-6 * abs(want[i]))
                            let r = abs(y[i] - want[i]) / tol
                            if !(r <= worst) { worst = r; at = i }
                        }
                    }
                    #expect(worst <= 1, "\(label) at \(at): \(at >= 0 ? y[at] : 0) vs \(at >= 0 ? want[at] : 0)")
                    // Padding columns past N are untouched.
                    if ldy > s.n { #expect((0 ..< s.m).allSatisfy { y[$0 * ldy + s.n] == 7 }, "\(label) wrote past N") }
                }
            }
        }
    }

    @Test func withinActivationRoundingOfFp32() {
        KernelPaths.forEach(threads: [2]) { path, _ in
            for (ci, s) in Self.shapes.enumerated() {
                let w0 = KernelsQuantTests.weights(s.n, s.k, seed: UInt64(1000 + ci))
                guard let p = Self.packed(w0, n: s.n, k: s.k) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(p) }
                let w = Self.widened(p, n: s.n, k: s.k)
                let x = randomFloats(s.m * s.k, seed: UInt64(1100 + ci)), bias = randomFloats(s.n, seed: UInt64(1200 + ci))
                var y = [Float](repeating: 0, count: s.m * s.n), ref = y
                #expect(vlm_linear_bf16(x, Int64(s.m), Int64(s.k), p, bias, VLM_ACT_NONE, &y, Int64(s.n)) == 0)
                vlm_linear_naive(x, Int64(s.m), Int64(s.k), w, Int64(s.n), Int64(s.k), bias, VLM_ACT_NONE, &ref, Int64(s.n))
                let mag = Self.magnitudes(x, lda: s.k, w, m: s.m, n: s.n, k: s.k)
                let u = Float(1) / Float(1 << 24)
                var worst: Float = 0, changed = false
                for i in 0 ..< y.count {
                    let bound = Float(1) / 256 * mag[i] + 2 * Float(s.k) * u * mag[i] + 1e-6
                    worst = max(worst, abs(y[i] - ref[i]) / bound)
                    if y[i] != ref[i] { changed = true }
                }
                #expect(worst <= 1, "\(path) M=\(s.m) N=\(s.n) K=\(s.k): error / bound = \(worst)")
                // The activations really are rounded (random floats are not bf16 values).
                if s.k > 2 { #expect(changed, "\(path) M=\(s.m) N=\(s.n) K=\(s.k): bf16 compute gave the fp32 result") }
            }
        }
    }

    /// A row of zeros gives the bias; a row holding NaN gives NaN, an infinity NaN or an infinity; neighbours are
    /// unaffected.
    @Test func specialRows() {
        KernelPaths.forEach(threads: [1]) { path, _ in
            let (m, n, k) = (18, 35, 70)
            var x = randomFloats(m * k, seed: 7)
            for i in 0 ..< k { x[2 * k + i] = 0 }
            x[5 * k + 3] = .nan
            x[6 * k + 9] = .infinity
            let w = KernelsQuantTests.weights(n, k, seed: 8)
            guard let p = Self.packed(w, n: n, k: k) else { Issue.record("pack"); return }
            defer { vlm_packed_weight_free(p) }
            let bias = randomFloats(n, seed: 10)
            var y = [Float](repeating: 0, count: m * n)
            #expect(vlm_linear_bf16(x, Int64(m), Int64(k), p, bias, VLM_ACT_NONE, &y, Int64(n)) == 0)
            #expect((0 ..< n).allSatisfy { y[2 * n + $0] == bias[$0] }, "\(path): zero row")
            #expect((0 ..< n).allSatisfy { y[5 * n + $0].isNaN && !y[6 * n + $0].isFinite }, "\(path): NaN / inf rows")
            #expect((0 ..< n).allSatisfy { y[4 * n + $0].isFinite && y[7 * n + $0].isFinite }, "\(path): neighbours")
        }
    }

    /// vlm_linear on a weight marked bf16-compute: bf16 compute from VLM_BF16_GEMM_MIN_M rows, exact below
    /// (decode); the mode only fits BF16 weights.
    @Test func computeModeRoutesByRows() {
        let (n, k) = (45, 96)
        let w = KernelsQuantTests.weights(n, k, seed: 11)
        guard let p = Self.packed(w, n: n, k: k), let f = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32),
              let q = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_I8) else {
            Issue.record("pack"); return
        }
        defer { vlm_packed_weight_free(p); vlm_packed_weight_free(f); vlm_packed_weight_free(q) }
        #expect(vlm_packed_weight_set_compute(f, VLM_COMPUTE_BF16) == -1)
        #expect(vlm_packed_weight_set_compute(q, VLM_COMPUTE_BF16) == -1)
        #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_INT8) == -1)
        #expect(vlm_packed_weight_compute(p) == VLM_COMPUTE_WEIGHT_ONLY)
        KernelPaths.exclusive {
            for m in [1, 4, Int(VLM_BF16_GEMM_MIN_M) - 1, Int(VLM_BF16_GEMM_MIN_M), 40] {
                let x = randomFloats(m * k, seed: UInt64(12 + m))
                var exact = [Float](repeating: 0, count: m * n), bf16 = exact, routed = exact
                _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &exact, Int64(n))
                _ = vlm_linear_bf16(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &bf16, Int64(n))
                #expect(vlm_packed_weight_set_compute(p, VLM_COMPUTE_BF16) == 0)
                #expect(vlm_packed_weight_compute(p) == VLM_COMPUTE_BF16)
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &routed, Int64(n))
                let expected = m >= Int(VLM_BF16_GEMM_MIN_M) ? bf16 : exact
                #expect(zip(routed, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "M=\(m)")
            }
            _ = vlm_packed_weight_set_compute(p, VLM_COMPUTE_WEIGHT_ONLY)
        }
        #expect(vlm_linear_bf16(nil, 1, 1, f, nil, VLM_ACT_NONE, nil, 1) == -1)
        #expect(!String(cString: vlm_bf16_gemm_kernel()).isEmpty)
    }

    /// The CPU's AVX512_BF16 decides the kernel: named so a benchmark says which one ran.
    @Test func kernelFollowsCPUFeatures() {
        KernelPaths.exclusive {
            let name = String(cString: vlm_bf16_gemm_kernel())
            let hasBF16 = vlm_cpu_features() & UInt64(VLM_CPU_AVX512_BF16.rawValue) != 0
            #expect(name.contains("vdpbf16ps") == (hasBF16 && vlm_active_isa() == VLM_ISA_AVX512), "\(name)")
        }
    }
}
