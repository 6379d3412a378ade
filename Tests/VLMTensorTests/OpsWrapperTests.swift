import CVLM
import Testing
@testable import VLMTensor
import VLMTestSupport

/// The Swift API the models code against: shapes, errors, and agreement with the C reference.
@Suite struct OpsWrapperTests {
    @Test func activationFromHuggingFace() {
        #expect(Activation(huggingFace: "gelu") == .gelu)
        #expect(Activation(huggingFace: "quick_gelu") == .quickGelu)
        #expect(Activation(huggingFace: "gelu_new") == .geluTanh)
        #expect(Activation(huggingFace: "gelu_pytorch_tanh") == .geluTanh)
        #expect(Activation(huggingFace: "gelu_fast") == .geluTanh)
        #expect(Activation(huggingFace: "silu") == .silu)
        #expect(Activation(huggingFace: "swish") == .silu)
        #expect(Activation(huggingFace: "relu") == .relu)
        #expect(Activation(huggingFace: "mish") == nil)
        #expect(Activation(rawValue: "gelu_tanh") == .geluTanh)
    }

    @Test func packedWeightRejectsBadRank() {
        #expect(throws: TensorError.self) { try PackedLinearWeight(weight: Tensor(zeros: [2, 3, 4])) }
        do {
            _ = try PackedLinearWeight(weight: Tensor(zeros: [6]), name: "fc1.weight")
            Issue.record("expected a throw")
        } catch let error as TensorError {
            #expect(error.description.contains("fc1.weight"))
        } catch { Issue.record("unexpected \(error)") }
    }

    @Test func linearKeepsLeadingDimensions() throws {
        let (k, n) = (37, 70)
        let x = Tensor(shape: [2, 3, k], values: randomFloats(2 * 3 * k, seed: 1))
        let wValues = randomFloats(n * k, seed: 2)
        let w = try PackedLinearWeight(weight: Tensor(shape: [n, k], values: wValues))
        #expect(w.outFeatures == n && w.inFeatures == k)
        let bias = Tensor(shape: [n], values: randomFloats(n, seed: 3))
        let y = Ops.linear(x, w, bias: bias, activation: .quickGelu)
        #expect(y.shape == [2, 3, n])
        var ref = [Float](repeating: 0, count: 6 * n)
        vlm_linear_naive(x.scalars, 6, Int64(k), wValues, Int64(n), Int64(k), bias.scalars, VLM_ACT_QUICK_GELU, &ref, Int64(n))
        #expect(worstRatio(y.scalars, ref) { _ in 1e-4 }.ratio <= 1)
    }

    @Test func matmulTransposes() {
        // [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]]
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4]), b = Tensor(shape: [2, 2], values: [5, 6, 7, 8])
        #expect(Ops.matmul(a, b).scalars == [19, 22, 43, 50])
        #expect(Ops.matmul(a, b, transposeA: true).scalars == [26, 30, 38, 44])
        #expect(Ops.matmul(a, b, transposeB: true).scalars == [17, 23, 39, 53])
        let c = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(Ops.matmul(c, c, transposeB: true).shape == [2, 2])
        #expect(Ops.matmul(c, c, transposeA: true).shape == [3, 3])
    }

    @Test func rowOps() {
        let x = Tensor(shape: [2, 4], values: [1, 2, 3, 4, 0, 0, 0, 0])
        let ln = Ops.layerNorm(x, weight: nil, bias: nil, eps: 1e-5)
        let s = (1.25 + 1e-5).squareRoot()
        for i in 0..<4 { #expect(abs(Double(ln[i]) - (Double(i + 1) - 2.5) / s) < 1e-5) }
        #expect(ln.scalars[4...].allSatisfy { $0 == 0 })
        let rms = Ops.rmsNorm(x, weight: Tensor(shape: [4], values: [2, 2, 2, 2]), eps: 0)
        #expect(abs(rms[3] - 2 * 4 / (7.5 as Float).squareRoot()) < 1e-5)
        let sm = Ops.softmax(Tensor(shape: [1, 3], values: [1, 2, 3]))
        #expect(abs(sm[2] - 0.66524096) < 1e-6)
        let l2 = Ops.l2Normalize(Tensor(shape: [1, 2], values: [3, 4]))
        #expect(abs(l2[0] - 0.6) < 1e-6 && abs(l2[1] - 0.8) < 1e-6)
        let act = Ops.activate(Tensor(shape: [2], values: [-1, 1]), .relu)
        #expect(act.scalars == [0, 1])
        let sum = Ops.add(x, x)
        #expect(sum[3] == 8)
        Ops.addInPlace(sum, x)
        #expect(sum[3] == 12)
    }

    /// A fused QKV projection output [B*T, 3C] feeds attention through offsets 0, C, 2C and ld = 3C.
    @Test func attentionFromFusedQKV() {
        let (b, t, h, d) = (2, 5, 2, 8)
        let c = h * d
        let qkv = Tensor(shape: [b * t, 3 * c], values: randomFloats(b * t * 3 * c, seed: 9))
        let mask: [UInt8] = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
        let out = Ops.attention(q: qkv, qOffset: 0, ldq: 3 * c, k: qkv, kOffset: c, ldk: 3 * c, v: qkv, vOffset: 2 * c, ldv: 3 * c,
                                batch: b, heads: h, queryLength: t, keyLength: t, headDim: d,
                                scale: 1 / Float(d).squareRoot(), causal: false, keyMask: mask)
        #expect(out.shape == [b, t, c])
        var ref = [Float](repeating: 0, count: b * t * c)
        let p = qkv.pointer
        vlm_attention_naive(Int64(b), Int64(h), Int64(t), Int64(t), Int64(d), p, Int64(3 * c), p + c, Int64(3 * c), p + 2 * c, Int64(3 * c),
                            &ref, Int64(c), 1 / Float(d).squareRoot(), 0, mask)
        #expect(worstRatio(out.scalars, ref) { _ in 2e-5 }.ratio <= 1)
    }

    @Test func conversionWrappers() {
        let halves: [UInt16] = [0x3C00, 0xC000, 0x7C00]
        var out = [Float](repeating: 0, count: 3)
        halves.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { Ops.f16ToF32(src.baseAddress!, $0.baseAddress!, count: 3) }
        }
        #expect(out == [1, -2, .infinity])
        let bf: [UInt16] = [0x3F80, 0x4040]
        bf.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { Ops.bf16ToF32(src.baseAddress!, $0.baseAddress!, count: 2) }
        }
        #expect(out[0] == 1 && out[1] == 3)
    }

    @Test func kernelSettings() {
        KernelPaths.exclusive {
            #expect(["naive", "avx2", "avx512"].contains(Kernels.isa))
            Kernels.forceISA("naive")
            #expect(Kernels.isa == "naive")
            Kernels.forceISA("avx512")
            #expect(Kernels.isa == Kernels.cpuISA)
            let before = Kernels.threads
            Kernels.threads = 1
            #expect(Kernels.threads == 1)
            Kernels.threads = 0
            #expect(Kernels.threads == before)
        }
    }
}
