import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// Fast GEMM / linear paths against their naive twins on odd shapes, for every SIMD path and 1/2 threads.
///
/// Tolerance: |fast - naive| <= 5e-7 * sqrt(K) * sum_k |a_k b_k| (+ |bias|): float accumulation error of
/// either summation order grows like sqrt(K) * eps relative to the sum of magnitudes (eps = 6e-8, with
/// headroom). Activations are 1.13-Lipschitz at most, so the same bound holds after the epilogue.
@Suite struct KernelsGemmTests {
    static let linearShapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (3, 17, 31), (1, 65, 33), (17, 33, 65), (31, 65, 129), (50, 129, 33), (65, 31, 257),
        (14, 32, 769), (33, 96, 50), (2, 768 + 1, 5), (460, 33, 20), (15, 70, 300), (3, 100, 700),
        (29, 40, 1024),  // rows 4 KiB apart (when ldx == K): copied to a longer stride so they do not alias in L1
    ]

    @Test func linearMatchesNaive() {
        let acts: [vlm_activation] = [VLM_ACT_NONE, VLM_ACT_GELU, VLM_ACT_GELU_TANH, VLM_ACT_QUICK_GELU, VLM_ACT_SILU, VLM_ACT_RELU]
        KernelPaths.forEach { path, threads in
            for (idx, s) in Self.linearShapes.enumerated() {
                let act = acts[idx % acts.count]
                let withBias = idx % 4 < 2  // each activation appears with and without bias
                let ldx = s.k + (idx % 3), ldy = s.n + (idx % 4)
                let x = randomFloats(s.m * ldx, seed: UInt64(idx))
                let w = randomFloats(s.n * s.k, seed: UInt64(100 + idx))
                let bias = randomFloats(s.n, seed: UInt64(200 + idx))
                guard let packed = vlm_pack_weight(w, Int64(s.n), Int64(s.k), VLM_WEIGHT_F32) else {
                    Issue.record("pack failed"); return
                }
                defer { vlm_packed_weight_free(packed) }
                #expect(vlm_packed_weight_rows(packed) == Int64(s.n) && vlm_packed_weight_cols(packed) == Int64(s.k))
                let sentinel: Float = 12345
                var fast = [Float](repeating: sentinel, count: s.m * ldy)
                var ref = fast
                var mag = fast
                let absX = x.map(abs), absW = w.map(abs), absB = bias.map(abs)
                vlm_linear(x, Int64(s.m), Int64(ldx), packed, withBias ? bias : nil, act, &fast, Int64(ldy))
                vlm_linear_naive(x, Int64(s.m), Int64(ldx), w, Int64(s.n), Int64(s.k), withBias ? bias : nil, act, &ref, Int64(ldy))
                vlm_linear_naive(absX, Int64(s.m), Int64(ldx), absW, Int64(s.n), Int64(s.k), withBias ? absB : nil, VLM_ACT_NONE, &mag, Int64(ldy))
                let scale = 5e-7 * Float(s.k).squareRoot()
                let (ratio, at) = worstRatio(fast, ref) { i in (i % ldy) < s.n ? scale * max(mag[i], 1e-3) : 1e-30 }
                #expect(ratio <= 1, "\(path) t=\(threads) M=\(s.m) N=\(s.n) K=\(s.k) act=\(act.rawValue) at \(at): \(fast[max(at, 0)]) vs \(ref[max(at, 0)])")
                // Padding columns (ld > width) are untouched.
                for r in 0..<s.m { for c in s.n..<ldy { #expect(fast[r * ldy + c] == sentinel) } }
            }
        }
    }

    /// Activation rows a multiple of 2 KiB apart are copied to rows one cache line longer before the micro-kernel
    /// reads them (L1 set aliasing); the copy changes no value, so the result equals the in-place read of the same
    /// rows at a non-aliasing stride, bit for bit.
    @Test func aliasedRowStrideGivesTheInPlaceResult() {
        KernelPaths.forEach { path, threads in
            // 700 rows: several row blocks; on 2 threads the copy is made once for every task (pack_a_once).
            for (m, n, k) in [(29, 70, 512), (40, 33, 2048), (15, 64, 1536), (700, 40, 1024)] {
                let x = randomFloats(m * k, seed: 7), w = randomFloats(n * k, seed: 8)
                var xWide = [Float](repeating: 0, count: m * (k + 3))
                for r in 0 ..< m { for c in 0 ..< k { xWide[r * (k + 3) + c] = x[r * k + c] } }
                guard let packed = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32) else { Issue.record("pack failed"); return }
                defer { vlm_packed_weight_free(packed) }
                var aliased = [Float](repeating: 0, count: m * n), inPlace = aliased
                vlm_linear(x, Int64(m), Int64(k), packed, nil, VLM_ACT_NONE, &aliased, Int64(n))
                vlm_linear(xWide, Int64(m), Int64(k + 3), packed, nil, VLM_ACT_NONE, &inPlace, Int64(n))
                #expect(aliased == inPlace, "\(path) t=\(threads) M=\(m) N=\(n) K=\(k)")
            }
        }
    }

    @Test func sgemmMatchesNaive() {
        // The last two span several MC row blocks and KC blocks, so they take the packed-once A and B paths
        // (transA / alpha, and any B with more than one row tile).
        let shapes: [(m: Int, n: Int, k: Int)] = [(1, 1, 1), (3, 5, 7), (17, 33, 31), (50, 65, 129), (31, 1, 64), (65, 40, 257), (20, 3, 600),
                                                  (340, 45, 520), (661, 70, 33)]
        let scalars: [(alpha: Float, beta: Float)] = [(1, 0), (0.5, 1), (-1.5, 0.25)]
        KernelPaths.forEach { path, threads in
            for (idx, s) in shapes.enumerated() {
                for ta in [0, 1] {
                    for tb in [0, 1] {
                        let (alpha, beta) = scalars[(idx + ta + 2 * tb) % scalars.count]
                        let lda = (ta == 1 ? s.m : s.k) + 2, ldb = (tb == 1 ? s.k : s.n) + 1, ldc = s.n + 3
                        let a = randomFloats((ta == 1 ? s.k : s.m) * lda, seed: UInt64(idx * 7 + ta))
                        let b = randomFloats((tb == 1 ? s.n : s.k) * ldb, seed: UInt64(idx * 11 + tb + 50))
                        var c0 = randomFloats(s.m * ldc, seed: 999)
                        if beta == 0 { c0 = c0.map { _ in Float.nan } }  // beta == 0 must not read C
                        var fast = c0, ref = c0
                        vlm_sgemm(Int32(ta), Int32(tb), Int64(s.m), Int64(s.n), Int64(s.k), alpha, a, Int64(lda), b, Int64(ldb), beta, &fast, Int64(ldc))
                        vlm_sgemm_naive(Int32(ta), Int32(tb), Int64(s.m), Int64(s.n), Int64(s.k), alpha, a, Int64(lda), b, Int64(ldb), beta, &ref, Int64(ldc))
                        var mag = [Float](repeating: 0, count: s.m * ldc)
                        vlm_sgemm_naive(Int32(ta), Int32(tb), Int64(s.m), Int64(s.n), Int64(s.k), abs(alpha), a.map(abs), Int64(lda), b.map(abs), Int64(ldb), 0, &mag, Int64(ldc))
                        let scale = 5e-7 * Float(s.k).squareRoot()
                        let (ratio, at) = worstRatio(fast, ref) { i in
                            (i % ldc) < s.n ? scale * max(mag[i] + (beta == 0 ? 0 : abs(beta * c0[i])), 1e-3) : 1e-30
                        }
                        #expect(ratio <= 1, "\(path) t=\(threads) \(s) tA=\(ta) tB=\(tb) at \(at)")
                    }
                }
            }
        }
    }

    /// Packing whole operands once per call must not change a single bit: same tiles, K blocks and FMA order
    /// whatever the thread count (training results are reproducible across machines' core counts).
    @Test func sgemmIsThreadCountInvariant() {
        let (m, n, k) = (700, 77, 530)  // three row blocks
        for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let a = randomFloats(m * k, seed: 5), b = randomFloats(k * n, seed: 6)
            var outs: [String: [[Float]]] = [:]
            KernelPaths.forEach(threads: [1, 2, 3]) { path, _ in
                var c = [Float](repeating: 0, count: m * n)
                vlm_sgemm(Int32(ta), Int32(tb), Int64(m), Int64(n), Int64(k), 0.75, a, Int64(ta == 1 ? m : k), b, Int64(tb == 1 ? k : n), 0, &c, Int64(n))
                outs[path, default: []].append(c)
            }
            for (path, o) in outs {
                #expect(o.count == 3 && o.allSatisfy { $0 == o[0] }, "\(path) tA=\(ta) tB=\(tb)")
            }
        }
    }

    /// A transposed A read in place (the column-major micro-kernel where the ISA has one, else a transpose
    /// copy) must give the same bits as multiplying the explicitly transposed matrix: same tiles, same FMA order.
    @Test func transposedAMatchesExplicitTransposeBitForBit() {
        for (m, n, k) in [(128, 96, 3520), (7, 33, 300), (301, 70, 33), (13, 5, 1)] {
            let a = randomFloats(k * m, seed: 21), b = randomFloats(k * n, seed: 22)  // A stored [k, m]: op(A) = Aᵀ
            var at = [Float](repeating: 0, count: m * k)
            for i in 0 ..< m { for q in 0 ..< k { at[i * k + q] = a[q * m + i] } }
            KernelPaths.forEach(threads: [1, 2]) { path, threads in
                var viaT = [Float](repeating: 0, count: m * n), explicit = viaT
                vlm_sgemm(1, 0, Int64(m), Int64(n), Int64(k), 1, a, Int64(m), b, Int64(n), 0, &viaT, Int64(n))
                vlm_sgemm(0, 0, Int64(m), Int64(n), Int64(k), 1, at, Int64(k), b, Int64(n), 0, &explicit, Int64(n))
                #expect(viaT == explicit, "\(path) t=\(threads) M=\(m) N=\(n) K=\(k)")
            }
        }
    }

    @Test func packRejectsEmpty() {
        let w: [Float] = [1]
        #expect(vlm_pack_weight(w, 0, 1, VLM_WEIGHT_F32) == nil)
        #expect(vlm_pack_weight(w, 1, 0, VLM_WEIGHT_F32) == nil)
    }

    /// The pool is shared: concurrent callers (one runs on the pool, the others inline) must all get
    /// correct results.
    @Test func concurrentCallersAgree() async {
        let (m, n, k) = (40, 96, 200)
        let x = randomFloats(m * k, seed: 1), w = randomFloats(n * k, seed: 2)
        guard let packed = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32) else { Issue.record("pack"); return }
        defer { vlm_packed_weight_free(packed) }
        let handle = UInt(bitPattern: packed)
        var ref = [Float](repeating: 0, count: m * n)
        vlm_linear_naive(x, Int64(m), Int64(k), w, Int64(n), Int64(k), nil, VLM_ACT_NONE, &ref, Int64(n))
        let refCopy = ref
        await withTaskGroup(of: Float.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    guard let p = OpaquePointer(bitPattern: handle) else { return .infinity }
                    var worst: Float = 0
                    for _ in 0..<20 {
                        var y = [Float](repeating: 0, count: m * n)
                        vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &y, Int64(n))
                        for i in 0..<y.count { worst = max(worst, abs(y[i] - refCopy[i])) }
                    }
                    return worst
                }
            }
            for await worst in group { #expect(worst < 1e-3) }
        }
    }
}
