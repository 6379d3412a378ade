import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// Convolution kernels (NHWC) against their naive twins on odd shapes, and the layout helpers against a
/// direct NCHW definition.
@Suite struct KernelsConvTests {
    /// (B, H, W, Cin, Cout, kernel, stride, padding): DaViT's 7/4/3 and 3/2/1 patch embeddings and odd cases.
    static let denseCases: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (2, 23, 17, 3, 5, 7, 4, 3), (1, 9, 13, 7, 33, 3, 2, 1), (1, 5, 4, 17, 9, 3, 2, 1), (3, 3, 3, 1, 1, 3, 1, 0),
        (1, 30, 31, 3, 40, 7, 4, 3), (1, 2, 7, 5, 3, 3, 2, 1),
    ]

    @Test func conv2dMatchesNaive() throws {
        // GEMM (float, FMA) vs double direct loops: 1e-5 * (1 + sum |x w|) per element, the sum bounded by K.
        KernelPaths.forEach { path, threads in
            for (i, (b, h, w, cin, cout, k, s, p)) in Self.denseCases.enumerated() {
                let x = Tensor(shape: [b, h, w, cin], values: randomFloats(b * h * w * cin, seed: UInt64(i)))
                let weight = Tensor(shape: [cout, k, k, cin], values: randomFloats(cout * k * k * cin, seed: UInt64(100 + i)))
                let bias = Tensor(shape: [cout], values: randomFloats(cout, seed: UInt64(200 + i)))
                guard let packed = try? PackedLinearWeight(weight: weight.reshaped([cout, k * k * cin])) else {
                    Issue.record("pack failed"); return
                }
                let fast = Ops.conv2d(x, packed, kernel: (k, k), stride: s, padding: p, bias: bias)
                let ref = Ops.conv2dNaive(x, weight: weight, stride: s, padding: p, bias: bias)
                #expect(fast.shape == ref.shape)
                #expect(fast.shape == [b, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1, cout])
                let bound = Float(k * k * cin)
                let r = worstRatio(fast.scalars, ref.scalars) { _ in 1e-5 * (1 + bound) / 8 }
                #expect(r.ratio <= 1, "conv2d \(path) threads=\(threads) case \(i) at \(r.index)")
            }
        }
    }

    @Test func conv2dNaiveMatchesDirectNCHWDefinition() {
        // The permuted weight rows and NHWC loops equal PyTorch's NCHW formula (same double sums).
        let (b, h, w, cin, cout, k, s, p) = (1, 6, 5, 2, 3, 3, 2, 1)
        let xNCHW = randomFloats(b * cin * h * w, seed: 5), wTorch = randomFloats(cout * cin * k * k, seed: 6)
        let xNHWC = Tensor(zeros: [b, h, w, cin])
        for c in 0 ..< cin { for i in 0 ..< h { for j in 0 ..< w { xNHWC[(i * w + j) * cin + c] = xNCHW[(c * h + i) * w + j] } } }
        let rows = Ops.conv2dWeightRows(Tensor(shape: [cout, cin, k, k], values: wTorch))
        let y = Ops.conv2dNaive(xNHWC, weight: rows, stride: s, padding: p, bias: nil)
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        for o in 0 ..< cout {
            for i in 0 ..< oh {
                for j in 0 ..< ow {
                    var acc: Double = 0
                    for c in 0 ..< cin {
                        for u in 0 ..< k {
                            for v in 0 ..< k {
                                let ii = i * s - p + u, jj = j * s - p + v
                                guard ii >= 0, ii < h, jj >= 0, jj < w else { continue }
                                acc += Double(xNCHW[(c * h + ii) * w + jj]) * Double(wTorch[((o * cin + c) * k + u) * k + v])
                            }
                        }
                    }
                    #expect(abs(Float(acc) - y[(i * ow + j) * cout + o]) <= 1e-6)
                }
            }
        }
    }

    @Test func depthwiseMatchesNaive() {
        // FMA in float vs double: 1e-6 * (1 + 9 + |x|) per element (inputs in [-1, 1)).
        let cases: [(Int, Int, Int, Int, Int, Int)] = [  // B, H, W, C, kernel, padding
            (2, 7, 5, 3, 3, 1), (1, 13, 11, 17, 3, 1), (1, 1, 1, 8, 3, 1), (3, 4, 9, 33, 3, 1), (1, 6, 7, 9, 5, 2),
            (1, 8, 6, 23, 3, 0), (1, 24, 28, 64, 3, 1),
        ]
        KernelPaths.forEach { path, threads in
            for (i, (b, h, w, c, k, p)) in cases.enumerated() {
                let x = Tensor(shape: [b, h, w, c], values: randomFloats(b * h * w * c, seed: UInt64(300 + i)))
                let weight = Tensor(shape: [k, k, c], values: randomFloats(k * k * c, seed: UInt64(400 + i)))
                let bias = Tensor(shape: [c], values: randomFloats(c, seed: UInt64(500 + i)))
                for (useBias, residual) in [(true, false), (false, false), (true, true)] where !residual || 2 * p == k - 1 {
                    let fast = Ops.depthwiseConv2d(x, weight: weight, bias: useBias ? bias : nil, padding: p, residual: residual)
                    let ref = Ops.depthwiseConv2d(x, weight: weight, bias: useBias ? bias : nil, padding: p, residual: residual, naive: true)
                    #expect(fast.shape == ref.shape && fast.shape == [b, h + 2 * p - k + 1, w + 2 * p - k + 1, c])
                    let r = worstRatio(fast.scalars, ref.scalars) { _ in 1e-6 * Float(2 + k * k) }
                    #expect(r.ratio <= 1, "depthwise \(path) threads=\(threads) case \(i) bias=\(useBias) residual=\(residual) at \(r.index)")
                }
            }
        }
    }

    @Test func depthwiseWeightTransposesTorchLayout() {
        let torch = Tensor(shape: [2, 1, 3, 3], values: (0 ..< 18).map(Float.init))
        let t = Ops.depthwiseWeight(torch)
        #expect(t.shape == [3, 3, 2])
        #expect(t.scalars == [0, 9, 1, 10, 2, 11, 3, 12, 4, 13, 5, 14, 6, 15, 7, 16, 8, 17])
    }
}
