import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// Group-quantized weights (I8 symmetric, I4 with zero points) against their references, on odd shapes:
/// k not a multiple of the group, n not a multiple of the 32-row panel, M = 1, 3, 4 (fused group GEMV) and
/// 5, 17 (dequantize + fp32 micro-kernel).
///
/// Tolerances reproduce each path's rounding:
/// - packing rounds exactly like vlm_quantize_naive, so dequantized rows equal s * (q - z) bit for bit;
/// - M > VLM_QGEMV_MAX_M dequantizes exactly and runs the f32 kernels, so it equals an F32 weight holding
///   the dequantized values bit for bit;
/// - the fused GEMV sums x q per group in fp32 then scales once (s (sum x q - z sum x)): against the naive
///   twin (fp32 sum of x * s(q - z)) it differs by float rounding, bounded by ~(K + 2 group) eps relative to
///   sum |x| |s| (|q| + |z|) per output, taken here as 4e-7 * sqrt(K) * that magnitude plus one ulp of it.
@Suite struct KernelsQuantTests {
    static let shapes: [(n: Int, k: Int, group: Int)] = [(37, 77, 32), (33, 100, 64), (5, 31, 32), (70, 300, 128), (1, 129, 128)]
    static let ms = [1, 2, 3, 4, 5, 17]

    struct Reference {
        let q: [Int8], scales: [Float], zeros: [UInt8], groups: Int
        /// s * (q - z), the defined dequantization.
        func dequantized(n: Int, k: Int, group: Int, zeroPoint: Bool) -> [Float] {
            (0 ..< n * k).map { i in
                let r = i / k, g = (i % k) / group
                let z = zeroPoint ? Int(zeros[r * groups + g]) : 0
                return scales[r * groups + g] * Float(Int(q[i]) - z)
            }
        }
        /// |s| (|q| + |z|), the magnitude the fused GEMV's rounding scales with.
        func magnitude(n: Int, k: Int, group: Int) -> [Float] {
            (0 ..< n * k).map { i in
                let r = i / k, g = (i % k) / group
                return abs(scales[r * groups + g]) * Float(abs(Int(q[i])) + Int(zeros[r * groups + g]))
            }
        }
    }

    static func quantize(_ w: [Float], n: Int, k: Int, bits: Int32, group: Int) -> Reference? {
        let groups = (k + group - 1) / group
        var q = [Int8](repeating: 0, count: n * k), s = [Float](repeating: 0, count: n * groups), z = [UInt8](repeating: 0, count: n * groups)
        guard vlm_quantize_naive(w, Int64(n), Int64(k), bits, Int64(group), &q, &s, &z) == 0 else { return nil }
        return Reference(q: q, scales: s, zeros: z, groups: groups)
    }

    /// Weights with a skew on some rows (asymmetric ranges) and a few larger values.
    static func weights(_ n: Int, _ k: Int, seed: UInt64) -> [Float] {
        randomFloats(n * k, seed: seed).enumerated().map { i, v in v * (i % 7 == 0 ? 3 : 1) + ((i / k) % 3 == 0 ? 0.5 : 0) }
    }

    @Test(arguments: [VLM_WEIGHT_I8, VLM_WEIGHT_I4])
    func dequantizedRowsMatchNaiveQuantizerExactly(dtype: vlm_weight_dtype) {
        let bits: Int32 = dtype == VLM_WEIGHT_I4 ? 4 : 8
        for (ci, s) in Self.shapes.enumerated() {
            let w = Self.weights(s.n, s.k, seed: UInt64(10 + ci))
            guard let ref = Self.quantize(w, n: s.n, k: s.k, bits: bits, group: s.group),
                  let p = vlm_packed_weight_create_grouped(Int64(s.n), Int64(s.k), dtype, Int64(s.group)) else {
                Issue.record("quantize/create failed"); return
            }
            defer { vlm_packed_weight_free(p) }
            #expect(vlm_pack_weight_rows(p, 0, w, VLM_SRC_F32, Int64(s.n)) == 0)
            #expect(vlm_packed_weight_dtype(p) == dtype && vlm_packed_weight_group(p) == Int64(s.group))
            let expected = ref.dequantized(n: s.n, k: s.k, group: s.group, zeroPoint: bits == 4)
            var row = [Float](repeating: 0, count: s.k)
            for r in 0 ..< s.n {
                #expect(vlm_packed_weight_get_row(p, Int64(r), &row) == 0)
                let want = Array(expected[(r * s.k) ..< ((r + 1) * s.k)])
                #expect(zip(row, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(dtype) shape \(s) row \(r)")
            }
            // The codes stay in range and the rounding error is at most half a step.
            let qmax = bits == 8 ? 127 : 15, qmin = bits == 8 ? -127 : 0
            #expect(ref.q.allSatisfy { Int($0) >= qmin && Int($0) <= qmax })
            for i in 0 ..< s.n * s.k {
                let step = ref.scales[(i / s.k) * ref.groups + (i % s.k) / s.group]
                #expect(abs(expected[i] - w[i]) <= step * 0.5001 + 1e-7, "\(dtype) \(s) i=\(i): \(w[i]) -> \(expected[i])")
            }
        }
    }

    @Test(arguments: [VLM_WEIGHT_I8, VLM_WEIGHT_I4])
    func linearMatchesNaiveTwinAndDequantizedF32(dtype: vlm_weight_dtype) {
        let bits: Int32 = dtype == VLM_WEIGHT_I4 ? 4 : 8
        KernelPaths.forEach { path, threads in
            for (ci, s) in Self.shapes.enumerated() {
                let w = Self.weights(s.n, s.k, seed: UInt64(20 + ci))
                guard let ref = Self.quantize(w, n: s.n, k: s.k, bits: bits, group: s.group),
                      let pq = vlm_packed_weight_create_grouped(Int64(s.n), Int64(s.k), dtype, Int64(s.group)) else {
                    Issue.record("quantize/create failed"); return
                }
                defer { vlm_packed_weight_free(pq) }
                _ = vlm_pack_weight_rows(pq, 0, w, VLM_SRC_F32, Int64(s.n))
                let deq = ref.dequantized(n: s.n, k: s.k, group: s.group, zeroPoint: bits == 4)
                let mag = ref.magnitude(n: s.n, k: s.k, group: s.group)
                guard let pf = vlm_pack_weight(deq, Int64(s.n), Int64(s.k), VLM_WEIGHT_F32) else { Issue.record("pack"); return }
                defer { vlm_packed_weight_free(pf) }
                let bias = randomFloats(s.n, seed: UInt64(30 + ci))
                for (mi, m) in Self.ms.enumerated() {
                    let act: vlm_activation = mi % 2 == 0 ? VLM_ACT_NONE : VLM_ACT_SILU
                    let ldx = s.k + mi % 3, ldy = s.n + mi % 2
                    let x = randomFloats(m * ldx, seed: UInt64(40 + mi * 7 + ci))
                    var yq = [Float](repeating: 7, count: m * ldy), yf = yq, naive = yq, bound = yq
                    #expect(vlm_linear(x, Int64(m), Int64(ldx), pq, mi % 3 != 0 ? bias : nil, act, &yq, Int64(ldy)) == 0)
                    vlm_linear(x, Int64(m), Int64(ldx), pf, mi % 3 != 0 ? bias : nil, act, &yf, Int64(ldy))
                    vlm_linear_naive(x, Int64(m), Int64(ldx), deq, Int64(s.n), Int64(s.k), mi % 3 != 0 ? bias : nil, act, &naive, Int64(ldy))
                    vlm_linear_naive(x.map(abs), Int64(m), Int64(ldx), mag, Int64(s.n), Int64(s.k), nil, VLM_ACT_NONE, &bound, Int64(ldy))
                    let label = "\(path) t=\(threads) \(dtype) M=\(m) N=\(s.n) K=\(s.k) group \(s.group)"
                    if m > Int(VLM_QGEMV_MAX_M) {
                        #expect(zip(yq, yf).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(label): differs from f32 on dequantized weights")
                    }
                    let tol = 4e-7 * Float(s.k).squareRoot()
                    let (ratio, at) = worstRatio(yq, naive) { i in (i % ldy) < s.n ? tol * max(bound[i], 1e-3) + 1e-7 : 1e-30 }
                    #expect(ratio <= 1, "\(label) at \(at): \(yq[max(at, 0)]) vs \(naive[max(at, 0)])")
                }
            }
        }
    }

    /// The naive path (no SIMD) reads quantized panels: it equals the unpacked naive linear on the
    /// dequantized weights (same sum order), bit for bit.
    @Test func naivePathReadsQuantizedPanels() {
        KernelPaths.exclusive {
            _ = vlm_force_isa(VLM_ISA_NAIVE)
            defer { _ = vlm_force_isa(VLM_ISA_AVX512) }
            let (n, k, m, group) = (37, 77, 3, 32)
            let w = Self.weights(n, k, seed: 3), x = randomFloats(m * k, seed: 4)
            for dtype in [VLM_WEIGHT_I8, VLM_WEIGHT_I4] {
                let bits: Int32 = dtype == VLM_WEIGHT_I4 ? 4 : 8
                guard let ref = Self.quantize(w, n: n, k: k, bits: bits, group: group),
                      let p = vlm_packed_weight_create_grouped(Int64(n), Int64(k), dtype, Int64(group)) else { Issue.record("create"); return }
                defer { vlm_packed_weight_free(p) }
                _ = vlm_pack_weight_rows(p, 0, w, VLM_SRC_F32, Int64(n))
                var y = [Float](repeating: 0, count: m * n), want = y
                vlm_linear(x, Int64(m), Int64(k), p, nil, VLM_ACT_NONE, &y, Int64(n))
                vlm_linear_naive(x, Int64(m), Int64(k), ref.dequantized(n: n, k: k, group: group, zeroPoint: bits == 4), Int64(n), Int64(k),
                                 nil, VLM_ACT_NONE, &want, Int64(n))
                #expect(zip(y, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(dtype)")
            }
        }
    }

    /// Sizes and bad arguments: group must be a multiple of 32; 16-bit sources quantize from their widened
    /// values; the byte count includes scales (and zero points); all-zero groups stay zero.
    @Test func formatsAndArguments() {
        #expect(vlm_packed_weight_create_grouped(10, 10, VLM_WEIGHT_I8, 48) == nil)
        #expect(vlm_packed_weight_create_grouped(10, 10, VLM_WEIGHT_I4, 16) == nil)
        #expect(vlm_packed_weight_create_grouped(10, 10, vlm_weight_dtype(rawValue: 9), 32) == nil)
        var q = [Int8](repeating: 0, count: 4), s = [Float](repeating: 0, count: 1)
        #expect(vlm_quantize_naive([1, 2, 3, 4], 1, 4, 4, 32, &q, &s, nil) == -1)  // 4-bit needs zero points
        #expect(vlm_quantize_naive([1, 2, 3, 4], 1, 4, 5, 32, &q, &s, nil) == -1)
        let (n, k) = (40, 200)
        guard let i8 = vlm_packed_weight_create(Int64(n), Int64(k), VLM_WEIGHT_I8),
              let i4 = vlm_packed_weight_create(Int64(n), Int64(k), VLM_WEIGHT_I4) else { Issue.record("create"); return }
        defer { vlm_packed_weight_free(i8); vlm_packed_weight_free(i4) }
        #expect(vlm_packed_weight_group(i8) == Int64(VLM_QUANT_GROUP_DEFAULT))
        // 2 panels x (a full group of 128 k + the last group of 72 k, rounded up to 64 bytes): 128 scale bytes
        // and 32-byte code rows; I4 adds 32 zero-point bytes and has 16-byte code rows.
        #expect(vlm_packed_weight_bytes(i8) == 2 * ((128 + 128 * 32) + (128 + 72 * 32)))
        #expect(vlm_packed_weight_bytes(i4) == 2 * ((128 + 32 + 128 * 16) + 1344))
        let zeros = [Float](repeating: 0, count: n * k)
        _ = vlm_pack_weight_rows(i4, 0, zeros, VLM_SRC_F32, Int64(n))
        var row = [Float](repeating: 1, count: k)
        _ = vlm_packed_weight_get_row(i4, 5, &row)
        #expect(row.allSatisfy { $0 == 0 })
        // A bf16 source quantizes exactly like its widened float32 values.
        let w = randomFloats(n * k, seed: 8)
        var raw = [UInt16](repeating: 0, count: n * k), wide = [Float](repeating: 0, count: n * k)
        vlm_f32_to_bf16_naive(w, &raw, Int64(n * k)); vlm_bf16_to_f32_naive(raw, &wide, Int64(n * k))
        guard let a = vlm_pack_weight_ex(raw, VLM_SRC_BF16, Int64(n), Int64(k), VLM_WEIGHT_I8),
              let b = vlm_pack_weight_ex(wide, VLM_SRC_F32, Int64(n), Int64(k), VLM_WEIGHT_I8) else { Issue.record("pack"); return }
        defer { vlm_packed_weight_free(a); vlm_packed_weight_free(b) }
        var ra = row, rb = row
        for r in [0, 17, 39] {
            _ = vlm_packed_weight_get_row(a, Int64(r), &ra); _ = vlm_packed_weight_get_row(b, Int64(r), &rb)
            #expect(ra == rb)
        }
        #expect(vlm_weight_format_info(VLM_WEIGHT_I4)?.pointee.zero_point == 1)
        #expect(vlm_weight_format_info(VLM_WEIGHT_I8)?.pointee.bits == 8)
    }

    /// The decode kernel a format reports is the one that runs: I8 decode takes the AVX-512 GEMV on AVX-512 CPUs
    /// (it was reported as the AVX2 one), I4 the AVX2 GEMV on both; prefill dequantizes.
    @Test func reportedDecodeKernelFollowsThePath() {
        KernelPaths.exclusive {
            defer { _ = vlm_force_isa(VLM_ISA_AVX512) }
            if Kernels.cpuISA == "avx512" {
                _ = vlm_force_isa(VLM_ISA_AVX512)
                #expect(Kernels.kernel(for: .int8, rows: 1) == "avx512 int8 group GEMV, fp32 FMA")
                #expect(Kernels.kernel(for: .int4, rows: 4) == "avx2 int4 group GEMV, fp32 FMA")
                #expect(Kernels.kernel(for: .int8, rows: 5).hasSuffix("avx512 fp32 FMA 14x32"))
            }
            if Kernels.cpuISA != "naive" {
                _ = vlm_force_isa(VLM_ISA_AVX2)
                #expect(Kernels.kernel(for: .int8, rows: 1) == "avx2 int8 group GEMV, fp32 FMA")
                #expect(Kernels.kernel(for: .int8, rows: 5) == "avx2 dequantize to fp32 + avx2 fp32 FMA 6x16")
            }
            _ = vlm_force_isa(VLM_ISA_NAIVE)
            #expect(Kernels.kernel(for: .int8, rows: 1) == "naive")
        }
    }

    /// CPU features form a set with names; the ISA in use follows from them.
    @Test func cpuFeatureSet() {
        let names = Kernels.cpuFeatures
        #expect(Set(names).count == names.count)
        if Kernels.cpuISA != "naive" { #expect(names.contains("avx2") && names.contains("fma") && names.contains("f16c")) }
        if Kernels.cpuISA == "avx512" { #expect(names.contains("avx512f") && names.contains("avx512bw")) }
        #expect(vlm_cpu_feature_name(3) == nil)
    }
}
