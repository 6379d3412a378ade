import CVLM
import Testing
@testable import VLMTensor

/// Naive kernels against hand-computed values.
@Suite struct KernelsReferenceTests {
    @Test func geluAtKnownPoints() {
        // Values of 0.5 x (1 + erf(x / sqrt 2)) from 0.5 x erfc(-x / sqrt 2) in double (Python math); tolerance 1e-6 relative.
        let xs: [Float] = [-3, -1, -0.5, 0, 0.5, 1, 3]
        let expected: [Double] = [-0.004049694094890287, -0.15865525393145707, -0.15426876936299344, 0,
                                  0.34573123063700656, 0.8413447460685429, 2.99595030590511]
        var v = xs
        vlm_activate_naive(&v, Int64(v.count), VLM_ACT_GELU)
        for (got, want) in zip(v, expected) {
            #expect(abs(Double(got) - want) <= 1e-6 * max(abs(want), 1e-3), "gelu \(got) vs \(want)")
        }
    }

    @Test func softmaxKnownRow() {
        var v: [Float] = [1, 2, 3]
        vlm_softmax_naive(&v, 1, 3)
        let expected: [Float] = [0.09003057, 0.24472847, 0.66524096]
        for (g, w) in zip(v, expected) { #expect(abs(g - w) < 1e-7) }
    }

    @Test func layerNormKnownRow() {
        // mean 2.5, biased variance 1.25 -> (x - 2.5) / sqrt(1.25 + 1e-5)
        let x: [Float] = [1, 2, 3, 4]
        var y = [Float](repeating: 0, count: 4)
        vlm_layernorm_naive(x, &y, 1, 4, nil, nil, 1e-5)
        let s = (1.25 + 1e-5).squareRoot()
        for i in 0..<4 { #expect(abs(Double(y[i]) - (Double(x[i]) - 2.5) / s) < 1e-6) }
    }
}
