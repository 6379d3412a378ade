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

/// Runs body over `count` items split into contiguous ranges, one per kernel thread when there are at least
/// `minPerChunk` items per range (else on the caller). Callers write disjoint outputs per item, so results
/// never depend on the split (the training numbers are the same on any core count).
func parallelRanges(_ count: Int, minPerChunk: Int, _ body: (Range<Int>) -> Void) {
    let chunks = max(1, min(Kernels.threads, count / max(minPerChunk, 1)))
    if chunks == 1 { body(0 ..< count); return }
    let per = (count + chunks - 1) / chunks
    // On the kernels' own pool (vlm_parallel_run), not Dispatch: a second set of threads competed with the pool's
    // workers, which spin for ~50 µs after each GEMM, for the same two cores.
    withoutActuallyEscaping(body) { body in
        let job = RangeJob(count: count, per: per, body: body)
        withExtendedLifetime(job) {
            vlm_parallel_run(Int64(chunks), { ctx, task in
                guard let ctx else { return }
                let job = Unmanaged<RangeJob>.fromOpaque(ctx).takeUnretainedValue()
                let lo = Int(task) * job.per, hi = min(job.count, lo + job.per)
                if lo < hi { job.body(lo ..< hi) }
            }, Unmanaged.passUnretained(job).toOpaque())
        }
    }
}

/// parallelRanges' split and body, handed to C as an opaque context.
private final class RangeJob {
    let count: Int, per: Int
    let body: (Range<Int>) -> Void
    init(count: Int, per: Int, body: @escaping (Range<Int>) -> Void) {
        (self.count, self.per, self.body) = (count, per, body)
    }
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

/// How the linear layers' three products (forward, input and weight gradients) compute during training.
public enum TrainingCompute: String, Codable, Sendable, CaseIterable {
    /// Exact fp32 (the parity tests' mode).
    case fp32
    /// Operands rounded to bf16, products summed in fp32 (`Ops.matmulBF16`): twice the multiply-add rate on CPUs with
    /// AVX512_BF16. Parameters, optimizer state, norms, softmax, attention and the loss stay fp32 (PyTorch's bf16
    /// autocast rounds the same products, and also their outputs, which stay fp32 here).
    case bf16
}

public enum LinearOp {
    /// The products' precision for the current task (`LinearOp.$compute.withValue(.bf16) { ... }` around a step).
    @TaskLocal public static var compute: TrainingCompute = .fp32

    static func product(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        compute == .bf16 ? Ops.matmulBF16(a, b, transposeA: transposeA, transposeB: transposeB)
            : Ops.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
    }

    /// x: [M, K], weight: [N, K], bias: [N] or nil -> y = act(x Wᵀ + b): [M, N].
    public static func forward(_ x: Tensor, weight: Tensor, bias: Tensor?, activation: Activation = .none) -> (Tensor, LinearCache) {
        let x2 = matrix(x)
        let z = product(x2, weight, transposeB: true)
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
        let dw = product(dz, cache.input, transposeA: true)
        let db = hasBias ? columnSums(dz) : nil
        let dx = needInput ? product(dz, weight) : nil
        return (dx, dw, db)
    }

    /// x: [M, N] -> [N], the sum over rows (bias gradient), accumulated in Double.
    static func columnSums(_ x: Tensor) -> Tensor {
        let m = x.shape[0], n = x.shape[1]
        let out = Tensor(uninitialized: [n])
        let xp = x.pointer, op = out.pointer
        // Split by columns: every column still sums its rows in order (same bits on any thread count).
        withExtendedLifetime(x) {
            parallelRanges(n, minPerChunk: m * n >= 1 << 15 ? 16 : n) { cols in
                var acc = [Double](repeating: 0, count: cols.count)
                for i in 0 ..< m {
                    let row = xp + i * n + cols.lowerBound
                    for j in 0 ..< cols.count { acc[j] += Double(row[j]) }
                }
                for j in 0 ..< cols.count { op[cols.lowerBound + j] = Float(acc[j]) }
            }
        }
        return out
    }
}

// MARK: - Activations

public enum ActivationGrad {
    /// d act(z)/dz in double precision (`vlm_act_derivative_scalar`, the reference for the SIMD kernels; the
    /// activation definitions are in cvlm_kernels.h).
    public static func derivative(_ z: Float, _ act: Activation) -> Float { vlm_act_derivative_scalar(z, act.c) }

    /// dy, z: [M, N] -> dz = dy ⊙ act'(z). SIMD and split across the kernel threads (an elementwise pass
    /// that was ~13% of a training step in scalar Swift); each element's value does not depend on the split.
    public static func backward(_ dy: Tensor, preActivation z: Tensor, _ act: Activation) -> Tensor {
        precondition(dy.count == z.count, "activation backward: dy \(dy.shape) vs z \(z.shape)")
        let dz = Tensor(uninitialized: dy.shape)
        withExtendedLifetime((dy, z)) {
            vlm_activation_backward(dy.pointer, z.pointer, dz.pointer, Int64(dy.count), act.c)
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
        let rstdT = Tensor(uninitialized: [m])
        let g = weight.pointer, b = bias.pointer, xp = x.pointer, rp = rstdT.pointer
        withExtendedLifetime((x, weight, bias)) {
            parallelRanges(m, minPerChunk: max(1, (1 << 14) / max(d, 1))) { rows in
                for r in rows {
                    let row = xp + r * d
                    var sum = 0.0
                    for j in 0 ..< d { sum += Double(row[j]) }
                    let mean = sum / Double(d)
                    var sq = 0.0
                    for j in 0 ..< d { let c = Double(row[j]) - mean; sq += c * c }
                    let rs = 1 / (sq / Double(d) + Double(eps)).squareRoot()
                    rp[r] = Float(rs)
                    let xh = xhat.pointer + r * d, yr = y.pointer + r * d
                    for j in 0 ..< d {
                        let v = Float((Double(row[j]) - mean) * rs)
                        xh[j] = v
                        yr[j] = v * g[j] + b[j]
                    }
                }
            }
        }
        return (y, LayerNormCache(normalized: xhat, rstd: rstdT.scalars))
    }

    /// dy: [M, D] -> (dx: [M, D], dweight: [D], dbias: [D]).
    /// dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)) with ĝ = dy ⊙ weight.
    public static func backward(_ dy: Tensor, cache: LayerNormCache, weight: Tensor) -> (dx: Tensor, dw: Tensor, db: Tensor) {
        let d = weight.count, m = cache.rstd.count
        let dx = Tensor(uninitialized: [m, d]), dw = Tensor(uninitialized: [d]), db = Tensor(uninitialized: [d])
        let g = weight.pointer, dyp = dy.pointer, xhp = cache.normalized.pointer
        let dxp = dx.pointer, dwp = dw.pointer, dbp = db.pointer
        withExtendedLifetime((dy, weight, cache.normalized)) {
            cache.rstd.withUnsafeBufferPointer { rstd in
                // dx: independent per row.
                parallelRanges(m, minPerChunk: max(1, (1 << 14) / max(d, 1))) { rows in
                    for r in rows {
                        let dyr = dyp + r * d, xh = xhp + r * d, dxr = dxp + r * d
                        var sumG = 0.0, sumGX = 0.0
                        for j in 0 ..< d {
                            let gj = Double(dyr[j] * g[j])
                            sumG += gj
                            sumGX += gj * Double(xh[j])
                        }
                        let meanG = sumG / Double(d), meanGX = sumGX / Double(d), rs = Double(rstd[r])
                        for j in 0 ..< d { dxr[j] = Float(rs * (Double(dyr[j] * g[j]) - meanG - Double(xh[j]) * meanGX)) }
                    }
                }
            }
            // dweight, dbias: split by columns, each summing its rows in order.
            parallelRanges(d, minPerChunk: m * d >= 1 << 15 ? 16 : d) { cols in
                var sw = [Double](repeating: 0, count: cols.count), sb = sw
                for r in 0 ..< m {
                    let dyr = dyp + r * d + cols.lowerBound, xh = xhp + r * d + cols.lowerBound
                    for j in 0 ..< cols.count {
                        sw[j] += Double(dyr[j] * xh[j])
                        sb[j] += Double(dyr[j])
                    }
                }
                for j in 0 ..< cols.count { dwp[cols.lowerBound + j] = Float(sw[j]); dbp[cols.lowerBound + j] = Float(sb[j]) }
            }
        }
        return (dx, dw, db)
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
