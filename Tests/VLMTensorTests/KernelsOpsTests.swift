import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// Fast row-wise / elementwise / attention kernels against their naive (double-accumulating) twins.
@Suite struct KernelsOpsTests {
    static let dims = [1, 7, 16, 17, 33, 768, 769]

    @Test func layerNormAndRMSNormMatchNaive() {
        // Float two-pass statistics vs double reference: 2e-5 relative to (1 + |ref|).
        KernelPaths.forEach { path, _ in
            for (i, dim) in Self.dims.enumerated() {
                let rows = 3
                let x = randomFloats(rows * dim, seed: UInt64(i), scale: 4).enumerated().map { $0.element + Float($0.offset % 5) }
                let g = randomFloats(dim, seed: 77), b = randomFloats(dim, seed: 78)
                for (gamma, beta) in [(g, b), (nil, nil)] as [([Float]?, [Float]?)] {
                    var fast = [Float](repeating: 0, count: x.count), ref = fast
                    vlm_layernorm(x, &fast, Int64(rows), Int64(dim), gamma, beta, 1e-5)
                    vlm_layernorm_naive(x, &ref, Int64(rows), Int64(dim), gamma, beta, 1e-5)
                    let r = worstRatio(fast, ref) { 2e-5 * (1 + abs(ref[$0])) }
                    #expect(r.ratio <= 1, "layernorm \(path) dim=\(dim) at \(r.index)")
                    vlm_rmsnorm(x, &fast, Int64(rows), Int64(dim), gamma, 1e-6)
                    vlm_rmsnorm_naive(x, &ref, Int64(rows), Int64(dim), gamma, 1e-6)
                    let r2 = worstRatio(fast, ref) { 2e-5 * (1 + abs(ref[$0])) }
                    #expect(r2.ratio <= 1, "rmsnorm \(path) dim=\(dim) at \(r2.index)")
                }
                // In place (x aliases y).
                var inPlace = x
                var ref = [Float](repeating: 0, count: x.count)
                inPlace.withUnsafeMutableBufferPointer { p in
                    vlm_layernorm(p.baseAddress, p.baseAddress, Int64(rows), Int64(dim), nil, nil, 1e-5)
                }
                vlm_layernorm_naive(x, &ref, Int64(rows), Int64(dim), nil, nil, 1e-5)
                #expect(worstRatio(inPlace, ref) { 2e-5 * (1 + abs(ref[$0])) }.ratio <= 1)
            }
        }
    }

    @Test func softmaxMatchesNaive() {
        // 1e-6 absolute + 1e-5 relative (exp is ~2 ulp, the sum is float).
        KernelPaths.forEach { path, _ in
            for (i, cols) in (Self.dims + [1000]).enumerated() {
                let rows = 4
                var x = randomFloats(rows * cols, seed: UInt64(i + 10), scale: 10)
                for c in 0..<cols where c % 3 == 1 { x[cols + c] = -.infinity }  // row 1: partly masked
                for c in 0..<cols { x[2 * cols + c] = -.infinity }                 // row 2: fully masked
                var fast = x, ref = x
                vlm_softmax(&fast, Int64(rows), Int64(cols))
                vlm_softmax_naive(&ref, Int64(rows), Int64(cols))
                let r = worstRatio(fast, ref) { 1e-6 + 1e-5 * abs(ref[$0]) }
                #expect(r.ratio <= 1, "softmax \(path) cols=\(cols) at \(r.index)")
                #expect(fast[(2 * cols)..<(3 * cols)].allSatisfy { $0 == 0 }, "fully masked row -> zeros")
            }
        }
    }

    /// Activations on a dense grid plus special values. GELU (erf): 1e-6 relative (+1e-37 absolute for
    /// subnormal results). Sigmoid-based ones: 1e-6 relative plus 1.2e-7 * |v| where v is the sigmoid
    /// argument, the inherent float rounding of v = 1.702 x (torch evaluates it in float too).
    @Test func activationsMatchNaive() {
        var grid: [Float] = stride(from: Float(-16), through: 16, by: 0.0137).map { $0 }
        grid += [0, -0.0, 1e-30, -1e-30, Float(bitPattern: 0x0001_16C2), -Float(bitPattern: 0x0001_16C2), 88, -88, 100, -100, .infinity, -.infinity, .nan, 3.0e38, -3.0e38]
        let acts: [(vlm_activation, Float)] = [
            (VLM_ACT_GELU, 0), (VLM_ACT_GELU_TANH, 1.6), (VLM_ACT_QUICK_GELU, 1.702), (VLM_ACT_SILU, 1), (VLM_ACT_RELU, 0),
        ]
        KernelPaths.forEach(threads: [1]) { path, _ in
            for (act, slope) in acts {
                var fast = grid, ref = grid
                vlm_activate(&fast, Int64(grid.count), act)
                vlm_activate_naive(&ref, Int64(grid.count), act)
                for i in 0..<grid.count {
                    let x = grid[i]
                    if ref[i].isNaN || fast[i].isNaN {
                        #expect(ref[i].isNaN == fast[i].isNaN || x.isInfinite, "\(path) act=\(act.rawValue) x=\(x): \(fast[i]) vs \(ref[i])")
                        continue
                    }
                    if ref[i].isInfinite { #expect(fast[i] == ref[i]); continue }
                    let v = abs(x) < 1e30 ? abs(x * slope * (1 + 0.044715 * x * x * (slope == 1.6 ? 1 : 0))) : 0
                    let tol = abs(ref[i]) * (1e-6 + 1.2e-7 * min(v, 1e4)) + 1e-37
                    #expect(abs(fast[i] - ref[i]) <= tol, "\(path) act=\(act.rawValue) x=\(x): \(fast[i]) vs \(ref[i])")
                }
            }
        }
    }

    /// Activation derivatives (training backward) against the double-precision reference on a dense grid:
    /// the derivatives are bounded by ~1.13, so an absolute 4e-6 (+ 2e-6 relative) is float rounding of
    /// the sigmoid / erf arguments, not a formula difference. Special values: NaN stays NaN, infinities give
    /// the limits (0 or 1), and dy scales the result.
    @Test func activationBackwardMatchesNaive() {
        var z: [Float] = stride(from: Float(-16), through: 16, by: 0.0131).map { $0 }
        z += [0, -0.0, 1e-30, -1e-30, 88, -88, 100, -100, .infinity, -.infinity, .nan]
        let dy = (0..<z.count).map { Float($0 % 7) - 2.5 }
        let acts: [vlm_activation] = [VLM_ACT_NONE, VLM_ACT_GELU, VLM_ACT_GELU_TANH, VLM_ACT_QUICK_GELU, VLM_ACT_SILU, VLM_ACT_RELU]
        KernelPaths.forEach(threads: [1, 2]) { path, _ in
            for act in acts {
                var fast = [Float](repeating: 0, count: z.count), ref = fast
                vlm_activation_backward(dy, z, &fast, Int64(z.count), act)
                vlm_activation_backward_naive(dy, z, &ref, Int64(z.count), act)
                var worst: Float = 0, at = -1
                for i in 0..<z.count {
                    if ref[i].isNaN || fast[i].isNaN {
                        #expect(ref[i].isNaN && fast[i].isNaN, "\(path) act=\(act.rawValue) z=\(z[i]): \(fast[i]) vs \(ref[i])")
                        continue
                    }
                    let err = abs(fast[i] - ref[i]) / (abs(dy[i]) * (4e-6 + 2e-6 * abs(ref[i] / dy[i])))
                    if err > worst { (worst, at) = (err, i) }
                }
                #expect(worst <= 1, "\(path) act=\(act.rawValue) worst at z=\(at >= 0 ? z[at] : 0): \(at >= 0 ? fast[at] : 0) vs \(at >= 0 ? ref[at] : 0)")
            }
        }
        // Large inputs split across the pool: same values as one call on the whole range.
        let n = 200_003
        let big = randomFloats(n, seed: 8).map { $0 * 6 }, g = randomFloats(n, seed: 9)
        var whole = [Float](repeating: 0, count: n)
        vlm_activation_backward(g, big, &whole, Int64(n), VLM_ACT_QUICK_GELU)
        var ref = whole
        vlm_activation_backward_naive(g, big, &ref, Int64(n), VLM_ACT_QUICK_GELU)
        #expect(zip(whole, ref).allSatisfy { abs($0 - $1) <= 4e-6 * max(1, abs($1)) * 6 })
    }

    @Test func addBiasL2MatchNaive() {
        KernelPaths.forEach(threads: [1, 2]) { path, _ in
            for (i, n) in [1, 15, 16, 17, 1000, 70001].enumerated() {
                let a = randomFloats(n, seed: UInt64(i)), b = randomFloats(n, seed: UInt64(i + 1))
                var fast = [Float](repeating: 0, count: n), ref = fast
                vlm_add(a, b, &fast, Int64(n))
                vlm_add_naive(a, b, &ref, Int64(n))
                #expect(fast == ref, "add \(path) n=\(n)")
            }
            for (i, dim) in Self.dims.enumerated() {
                let rows = 5
                var x = randomFloats(rows * dim, seed: UInt64(i + 3))
                for c in 0..<dim { x[dim + c] = 0 }  // a zero row stays zero
                let bias = randomFloats(dim, seed: 4)
                var fast = x, ref = x
                vlm_add_bias(&fast, bias, Int64(rows), Int64(dim))
                vlm_add_bias_naive(&ref, bias, Int64(rows), Int64(dim))
                #expect(fast == ref, "add_bias \(path) dim=\(dim)")
                fast = x; ref = x
                vlm_l2_normalize(&fast, Int64(rows), Int64(dim))
                vlm_l2_normalize_naive(&ref, Int64(rows), Int64(dim))
                #expect(worstRatio(fast, ref) { _ in 2e-6 }.ratio <= 1, "l2 \(path) dim=\(dim)")
                #expect(fast[dim..<(2 * dim)].allSatisfy { $0 == 0 })
            }
        }
    }

    /// Attention vs naive: 2e-5 absolute (outputs are convex combinations of values in [-1, 1]).
    @Test func attentionMatchesNaive() {
        struct Case { let b, h, tq, tk, d: Int; let causal: Bool; let mask: Bool }
        let cases = [
            Case(b: 2, h: 3, tq: 5, tk: 5, d: 8, causal: false, mask: false),
            Case(b: 1, h: 2, tq: 17, tk: 17, d: 32, causal: true, mask: false),
            Case(b: 2, h: 2, tq: 3, tk: 9, d: 16, causal: true, mask: false),    // Tq < Tk (KV cache)
            Case(b: 2, h: 4, tq: 33, tk: 33, d: 64, causal: false, mask: true),  // batch 1 fully masked
            Case(b: 2, h: 1, tq: 7, tk: 12, d: 33, causal: true, mask: true),
            Case(b: 1, h: 1, tq: 1, tk: 7, d: 64, causal: false, mask: false),   // decode
            Case(b: 1, h: 2, tq: 300, tk: 300, d: 16, causal: true, mask: false), // several query blocks
        ]
        KernelPaths.forEach { path, threads in
            for (i, c) in cases.enumerated() {
                let width = c.h * c.d
                let ldq = width + 3, ldk = width + 1, ldv = width + 5, ldo = width + 2
                let q = randomFloats(c.b * c.tq * ldq, seed: UInt64(i * 3))
                let k = randomFloats(c.b * c.tk * ldk, seed: UInt64(i * 3 + 1), scale: 2)
                let v = randomFloats(c.b * c.tk * ldv, seed: UInt64(i * 3 + 2))
                var mask: [UInt8]? = nil
                if c.mask {
                    var m = [UInt8](repeating: 1, count: c.b * c.tk)
                    for s in 0..<c.tk { m[s] = s % 4 == 3 ? 0 : 1; m[c.tk + s] = 0 }  // batch 1: every key padded
                    mask = m
                }
                var fast = [Float](repeating: 777, count: c.b * c.tq * ldo), ref = fast
                let scale = 1 / Float(c.d).squareRoot()
                let run = { (m: UnsafePointer<UInt8>?) in
                    vlm_attention(Int64(c.b), Int64(c.h), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ldk),
                                  v, Int64(ldv), &fast, Int64(ldo), scale, c.causal ? 1 : 0, m)
                    vlm_attention_naive(Int64(c.b), Int64(c.h), Int64(c.tq), Int64(c.tk), Int64(c.d), q, Int64(ldq), k, Int64(ldk),
                                        v, Int64(ldv), &ref, Int64(ldo), scale, c.causal ? 1 : 0, m)
                }
                if let mask { mask.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                let r = worstRatio(fast, ref) { _ in 2e-5 }
                #expect(r.ratio <= 1, "attention \(path) t=\(threads) case \(i) at \(r.index): \(fast[max(r.index, 0)]) vs \(ref[max(r.index, 0)])")
                if c.mask { #expect(fast[(c.tq * ldo)..<(c.tq * ldo + width)].allSatisfy { $0 == 0 }, "fully masked -> zeros") }
            }
        }
    }
}
