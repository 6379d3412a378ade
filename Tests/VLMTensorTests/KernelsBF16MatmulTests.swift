import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// vlm_matmul_bf16 (training's products: both operands rounded to bf16, fp32 sums) against its naive twin (double
/// sums of the rounded operands) for every transpose combination, on odd shapes (M past the 14-row tile, N past the
/// 32-column panel, K odd and K = 1) with padded strides, on every ISA path at 1 and 2 threads.
///
/// Tolerance: the twin is the exact sum of the same exact products (rounded once); the kernel sums them in fp32, so
/// each output is within K u mag of it (u = 2^-24, mag = sum_k |bf16(a) bf16(b)|), + 1e-6 for sums near zero. Reading
/// an operand in the wrong orientation or with the wrong stride moves a result by whole products, far above this.
@Suite struct KernelsBF16MatmulTests {
    static let shapes: [(m: Int, n: Int, k: Int)] = [(17, 37, 77), (1, 5, 1), (30, 70, 129), (64, 33, 300), (5, 96, 2), (128, 352, 257)]

    @Test func everyTransposeMatchesTheNaiveTwin() {
        KernelPaths.forEach { path, threads in
            for (ci, s) in Self.shapes.enumerated() {
                for transA in [false, true] {
                    for transB in [false, true] {
                        // Stored shapes: A [M, K] or [K, M]; B [K, N] or [N, K]; each row padded by 3.
                        let aRows = transA ? s.k : s.m, aCols = transA ? s.m : s.k, lda = aCols + 3
                        let bRows = transB ? s.n : s.k, bCols = transB ? s.k : s.n, ldb = bCols + 3, ldc = s.n + 2
                        let a = randomFloats(aRows * lda, seed: UInt64(40 + ci)), b = randomFloats(bRows * ldb, seed: UInt64(60 + ci))
                        var c = [Float](repeating: 7, count: s.m * ldc), want = c, mag = c
                        #expect(vlm_matmul_bf16(transA ? 1 : 0, transB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), a, Int64(lda),
                                                b, Int64(ldb), &c, Int64(ldc)) == 0)
                        #expect(vlm_matmul_bf16_naive(transA ? 1 : 0, transB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), a, Int64(lda),
                                                      b, Int64(ldb), &want, Int64(ldc)) == 0)
                        _ = vlm_matmul_bf16_naive(transA ? 1 : 0, transB ? 1 : 0, Int64(s.m), Int64(s.n), Int64(s.k), a.map(abs), Int64(lda),
                                                  b.map(abs), Int64(ldb), &mag, Int64(ldc))
                        let u = Float(1) / Float(1 << 24)
                        var worst: Float = 0, at = -1
                        for m in 0 ..< s.m {
                            for n in 0 ..< s.n {
                                let i = m * ldc + n
                                let r = abs(c[i] - want[i]) / (Float(s.k) * u * mag[i] + 1e-6)
                                if !(r <= worst) { worst = r; at = i }
                            }
                        }
                        let label = "\(path) t=\(threads) M=\(s.m) N=\(s.n) K=\(s.k) transA=\(transA) transB=\(transB)"
                        #expect(worst <= 1, "\(label) at \(at): \(at >= 0 ? c[at] : 0) vs \(at >= 0 ? want[at] : 0)")
                        #expect((0 ..< s.m).allSatisfy { c[$0 * ldc + s.n] == 7 && c[$0 * ldc + s.n + 1] == 7 }, "\(label) wrote past N")
                    }
                }
            }
        }
    }

    @Test func theTwinRoundsBothOperands() {
        // 1 + 2^-9 rounds to 1 in bf16 (ties to even): the product of the rounded operands is exactly 1.
        let a: [Float] = [1 + 1.0 / 512], b: [Float] = [1 + 1.0 / 512]
        var c: [Float] = [0], want: [Float] = [0]
        #expect(vlm_matmul_bf16_naive(0, 0, 1, 1, 1, a, 1, b, 1, &want, 1) == 0)
        #expect(vlm_matmul_bf16(0, 0, 1, 1, 1, a, 1, b, 1, &c, 1) == 0)
        #expect(want == [1] && c == [1])
    }

    @Test func badArgumentsAreRefused() {
        var c = [Float](repeating: 0, count: 4)
        let a = [Float](repeating: 1, count: 4)
        #expect(vlm_matmul_bf16(0, 0, 2, 2, 2, a, 1, a, 2, &c, 2) == -1)  // lda < K
        #expect(vlm_matmul_bf16(0, 1, 2, 2, 2, a, 2, a, 1, &c, 2) == -1)  // transB: ldb < K
        #expect(vlm_matmul_bf16(0, 0, 2, 2, 2, a, 2, a, 2, &c, 1) == -1)  // ldc < N
    }

    /// Bit for bit on every path (AVX-512 with AVX512_BF16 packs pairs with vcvtne2ps2bf16, the others with the scalar
    /// rounding; both round to nearest even).
    @Test func transposedPackingEqualsPackingTheTranspose() {
        KernelPaths.forEach(threads: [1]) { path, _ in
        for (n, k) in [(37, 77), (32, 2), (5, 1), (70, 129), (16, 3)] {
            let ldb = n + 5
            let b = randomFloats(k * ldb, seed: UInt64(n * 31 + k))  // B [K, N]: W = Bᵀ [N, K]
            var t = [Float](repeating: 0, count: n * k)
            for r in 0 ..< n { for c in 0 ..< k { t[r * k + c] = b[c * ldb + r] } }
            for dtype in [VLM_WEIGHT_F32, VLM_WEIGHT_BF16] {
                guard let direct = vlm_pack_weight(t, Int64(n), Int64(k), dtype), let w = vlm_packed_weight_create(Int64(n), Int64(k), dtype) else {
                    Issue.record("pack"); return
                }
                defer { vlm_packed_weight_free(direct); vlm_packed_weight_free(w) }
                #expect(vlm_pack_weight_transposed(w, b, Int64(ldb)) == 0)
                var r1 = [Float](repeating: 0, count: k), r2 = r1
                for r in 0 ..< n {
                    _ = vlm_packed_weight_get_row(direct, Int64(r), &r1)
                    _ = vlm_packed_weight_get_row(w, Int64(r), &r2)
                    #expect(r1 == r2, "\(path) N=\(n) K=\(k) dtype=\(dtype.rawValue) row \(r)")
                }
            }
        }
        }
    }
}
