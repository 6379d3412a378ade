import CVLM
import Foundation
import VLMTensor

// Forward-with-cache and backward of the elementwise / row-wise building blocks. Conventions follow PyTorch:
// weights are [out, in], gradients have the shape of what they differentiate, and every backward *returns*
// fresh tensors (the caller accumulates into the gradient table).

/// Strided GEMM on raw pointers (row-major): C = alpha·op(A)·op(B) + beta·C. Used where operands are
/// column blocks of a wider matrix (attention heads inside the fused QKV rows), which `Ops.matmul` cannot address.
@inline(__always)
func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    vlm_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
}

/// a += b (same element count).
func accumulate(_ a: Tensor, _ b: Tensor) { Ops.addInPlace(a, b) }

/// Flattens all leading axes: [..., K] -> [M, K].
func matrix(_ x: Tensor) -> Tensor {
    let k = x.shape[x.rank - 1]
    return x.reshaped([x.count / max(k, 1), k])
}

// MARK: - Linear

/// What a linear layer's backward needs: its input and, with an activation, the pre-activation.
public struct LinearCache {
    /// x: [M, K]
    public let input: Tensor
    /// z = x Wᵀ + b: [M, N], only kept when an activation follows.
    public let preActivation: Tensor?
    public let activation: Activation
}

public enum LinearOp {
    /// x: [M, K], weight: [N, K], bias: [N] or nil -> y = act(x Wᵀ + b): [M, N].
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Activation = .none) -> (Tensor, LinearCache) {
        let x2 = matrix(x)
        let z = Ops.matmul(x2, weight, transposeB: true)
        if let bias {
            withExtendedLifetime(bias) { vlm_add_bias(z.pointer, bias.pointer, Int64(z.shape[0]), Int64(z.shape[1])) }
        }
        guard activation != .none else { return (z, LinearCache(input: x2, preActivation: nil, activation: .none)) }
        // The activation uses the inference kernel so trained and served outputs agree.
        let y = Ops.activate(z, activation)
        return (y, LinearCache(input: x2, preActivation: z, activation: activation))
    }

    /// dy: [M, N] -> (dx: [M, K] (nil unless needInput), dW: [N, K], db: [N] (nil unless hasBias)).
    /// dX = dZ·W and dW = dZᵀ·X (torch.nn.functional.linear's backward).
    public static func backward(_ dy: Tensor, cache: LinearCache, weight: Tensor, hasBias: Bool, needInput: Bool = true)
        -> (dx: Tensor?, dw: Tensor, db: Tensor?) {
        var dz = matrix(dy)
        if let z = cache.preActivation { dz = ActivationGrad.backward(dz, preActivation: z, cache.activation) }
        let dw = Ops.matmul(dz, cache.input, transposeA: true)
        let db = hasBias ? columnSums(dz) : nil
        let dx = needInput ? Ops.matmul(dz, weight) : nil
        return (dx, dw, db)
    }

    /// x: [M, N] -> [N], the sum over rows (bias gradient), accumulated in Double.
    static func columnSums(_ x: Tensor) -> Tensor {
        let m = x.shape[0], n = x.shape[1]
        var acc = [Double](repeating: 0, count: n)
        for i in 0 ..< m {
            let row = x.pointer + i * n
            for j in 0 ..< n { acc[j] += Double(row[j]) }
        }
        return Tensor(shape: [n], values: acc.map { Float($0) })
    }
}

// MARK: - Activations

public enum ActivationGrad {
    /// d act(z)/dz for the activations the C kernels implement (definitions in cvlm_kernels.h).
    @inline(__always)
    public static func derivative(_ zf: Float, _ act: Activation) -> Float {
        let z = Double(zf)
        switch act {
        case .none: return 1
        case .relu: return zf > 0 ? 1 : 0
        case .gelu:
            // d/dz [z Φ(z)] = Φ(z) + z φ(z)
            let cdf = 0.5 * (1 + erf(z * 0.70710678118654752440))
            let pdf = exp(-0.5 * z * z) * 0.39894228040143267794
            return Float(cdf + z * pdf)
        case .geluTanh:
            let k = 0.79788456080286535588
            let u = k * (z + 0.044715 * z * z * z)
            let t = tanh(u)
            return Float(0.5 * (1 + t) + 0.5 * z * (1 - t * t) * k * (1 + 3 * 0.044715 * z * z))
        case .quickGelu:
            // d/dz [z σ(1.702 z)] = σ + 1.702 z σ (1 - σ)
            let s = 1 / (1 + exp(-1.702 * z))
            return Float(s + 1.702 * z * s * (1 - s))
        case .silu:
            let s = 1 / (1 + exp(-z))
            return Float(s + z * s * (1 - s))
        }
    }

    /// dy, z: [M, N] -> dz = dy ⊙ act'(z)
    public static func backward(_ dy: Tensor, preActivation z: Tensor, _ act: Activation) -> Tensor {
        let dz = Tensor(uninitialized: dy.shape)
        let n = dy.count
        let dp = dy.pointer, zp = z.pointer, out = dz.pointer
        // Element-wise and exp-bound (~10% of a training step single-threaded): split into contiguous chunks
        // across the kernel threads. Each element is computed the same way whatever the split.
        let chunks = n >= 1 << 15 ? max(1, Kernels.threads) : 1
        let per = (n + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in c * per ..< min(n, (c + 1) * per) { out[i] = dp[i] * derivative(zp[i], act) }
        }
        return dz
    }
}

// MARK: - LayerNorm

public struct LayerNormCache {
    /// (x - mean) · rstd: [M, D]
    public let normalized: Tensor
    /// 1 / sqrt(var + eps) per row: [M]
    public let rstd: [Float]
}

public enum LayerNormOp {
    /// x: [M, D], weight/bias: [D] -> y: [M, D] (biased variance, eps inside the root, like torch.nn.LayerNorm).
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> (Tensor, LayerNormCache) {
        let d = x.shape[x.rank - 1], m = x.count / max(d, 1)
        let y = Tensor(uninitialized: [m, d]), xhat = Tensor(uninitialized: [m, d])
        var rstd = [Float](repeating: 0, count: m)
        let g = weight.pointer, b = bias.pointer
        for r in 0 ..< m {
            let row = x.pointer + r * d
            var sum = 0.0
            for j in 0 ..< d { sum += Double(row[j]) }
            let mean = sum / Double(d)
            var sq = 0.0
            for j in 0 ..< d { let c = Double(row[j]) - mean; sq += c * c }
            let rs = 1 / (sq / Double(d) + Double(eps)).squareRoot()
            rstd[r] = Float(rs)
            let xh = xhat.pointer + r * d, yr = y.pointer + r * d
            for j in 0 ..< d {
                let v = Float((Double(row[j]) - mean) * rs)
                xh[j] = v
                yr[j] = v * g[j] + b[j]
            }
        }
        return (y, LayerNormCache(normalized: xhat, rstd: rstd))
    }

    /// dy: [M, D] -> (dx: [M, D], dweight: [D], dbias: [D]).
    /// dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)) with ĝ = dy ⊙ weight.
    public static func backward(_ dy: Tensor, cache: LayerNormCache, weight: Tensor) -> (dx: Tensor, dw: Tensor, db: Tensor) {
        let d = weight.count, m = cache.rstd.count
        let dx = Tensor(uninitialized: [m, d])
        var dw = [Double](repeating: 0, count: d), db = [Double](repeating: 0, count: d)
        let g = weight.pointer
        for r in 0 ..< m {
            let dyr = dy.pointer + r * d, xh = cache.normalized.pointer + r * d, dxr = dx.pointer + r * d
            var sumG = 0.0, sumGX = 0.0
            for j in 0 ..< d {
                let gj = Double(dyr[j] * g[j])
                sumG += gj
                sumGX += gj * Double(xh[j])
                dw[j] += Double(dyr[j] * xh[j])
                db[j] += Double(dyr[j])
            }
            let meanG = sumG / Double(d), meanGX = sumGX / Double(d), rs = Double(cache.rstd[r])
            for j in 0 ..< d { dxr[j] = Float(rs * (Double(dyr[j] * g[j]) - meanG - Double(xh[j]) * meanGX)) }
        }
        return (dx, Tensor(shape: [d], values: dw.map { Float($0) }), Tensor(shape: [d], values: db.map { Float($0) }))
    }
}

// MARK: - L2 normalisation

public enum L2NormalizeOp {
    /// x: [M, D] -> (y = x / ‖x‖: [M, D], norms: [M]). No epsilon, as transformers' CLIPModel (x / x.norm()).
    public static func forward(_ x: Tensor) -> (Tensor, [Float]) {
        let d = x.shape[x.rank - 1], m = x.count / max(d, 1)
        let y = Tensor(uninitialized: [m, d])
        var norms = [Float](repeating: 0, count: m)
        for r in 0 ..< m {
            let row = x.pointer + r * d
            var sq = 0.0
            for j in 0 ..< d { sq += Double(row[j]) * Double(row[j]) }
            let n = sq.squareRoot()
            norms[r] = Float(n)
            let inv = n > 0 ? 1 / n : 0
            for j in 0 ..< d { y.pointer[r * d + j] = Float(Double(row[j]) * inv) }
        }
        return (y, norms)
    }

    /// dy, y: [M, D] -> dx = (dy - y (y·dy)) / ‖x‖
    public static func backward(_ dy: Tensor, output y: Tensor, norms: [Float]) -> Tensor {
        let d = y.shape[1], m = y.shape[0]
        let dx = Tensor(uninitialized: [m, d])
        for r in 0 ..< m {
            let yr = y.pointer + r * d, g = dy.pointer + r * d
            var dot = 0.0
            for j in 0 ..< d { dot += Double(yr[j]) * Double(g[j]) }
            let inv = norms[r] > 0 ? 1 / Double(norms[r]) : 0
            for j in 0 ..< d { dx.pointer[r * d + j] = Float((Double(g[j]) - Double(yr[j]) * dot) * inv) }
        }
        return dx
    }
}
