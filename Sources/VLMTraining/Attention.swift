import CVLM
import Foundation
import VLMTensor

/// Scaled dot-product attention over the fused QKV rows of a linear layer, with the softmax probabilities kept
/// for the backward pass. Same layout and masking rules as `vlm_attention` (cvlm_kernels.h): head h of token t
/// in sequence b reads q at qkv[(b*T + t), h*D ..< (h+1)*D], k at +C, v at +2C.
public struct AttentionCache {
    /// qkv: [B*T, 3C]
    public let qkv: Tensor
    /// softmax(scale · q kᵀ + mask): [B, H, T, T]; masked entries are exactly 0.
    public let probs: Tensor
    public let batch: Int, length: Int, heads: Int, headDim: Int
    public var scale: Float { 1 / Float(headDim).squareRoot() }
}

public enum AttentionOp {
    /// qkv: [B*T, 3C] -> out: [B*T, C].
    /// causal: key s is visible from query t iff s <= t. keyMask: [B*T], 0 = padded key (never attended).
    /// A query row with every key masked outputs zeros (vlm_softmax's rule for an all -inf row).
    public static func forward(qkv: Tensor, batch: Int, length t: Int, heads: Int, causal: Bool,
                               keyMask: [UInt8]? = nil) -> (Tensor, AttentionCache) {
        let c3 = qkv.shape[1], c = c3 / 3, d = c / heads
        precondition(qkv.shape[0] == batch * t && c % heads == 0, "attention: qkv \(qkv.shape) for B=\(batch) T=\(t) H=\(heads)")
        if let keyMask { precondition(keyMask.count == batch * t, "attention: keyMask \(keyMask.count) for B*T=\(batch * t)") }
        let out = Tensor(zeros: [batch * t, c])
        let probs = Tensor(uninitialized: [batch, heads, t, t])
        let scale = 1 / Float(d).squareRoot()
        // Sequences are independent (disjoint probs / out rows): split the batch across the kernel threads.
        // Each head's GEMMs are too small (T x T x D) for the pool, so without this they ran on one core.
        withExtendedLifetime(qkv) {
            parallelRanges(batch, minPerChunk: 1) { seqs in
                for b in seqs {
                    let base = qkv.pointer + b * t * c3
                    var padded: [Int] = []
                    if let keyMask { padded = (0 ..< t).filter { keyMask[b * t + $0] == 0 } }
                    for h in 0 ..< heads {
                        let p = probs.pointer + (b * heads + h) * t * t
                        gemm(transA: false, transB: true, m: t, n: t, k: d, alpha: scale,
                             a: base + h * d, lda: c3, b: base + c + h * d, ldb: c3, c: p, ldc: t)
                        // Masked scores: the future (causal) and padded keys. Padded keys are listed once per
                        // sequence, so this is O(T²) only for the causal triangle's stores.
                        for q in 0 ..< t {
                            let row = p + q * t
                            if causal && q + 1 < t { (row + q + 1).update(repeating: -.infinity, count: t - q - 1) }
                            for s in padded where !causal || s <= q { row[s] = -.infinity }
                        }
                        vlm_softmax(p, Int64(t), Int64(t))
                        gemm(transA: false, transB: false, m: t, n: d, k: t,
                             a: p, lda: t, b: base + 2 * c + h * d, ldb: c3, c: out.pointer + b * t * c + h * d, ldc: c)
                    }
                }
            }
        }
        return (out, AttentionCache(qkv: qkv, probs: probs, batch: batch, length: t, heads: heads, headDim: d))
    }

    /// dOut: [B*T, C] -> dqkv: [B*T, 3C]. With P the probabilities and S the scaled scores:
    /// dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP - rowsum(dP ⊙ P)) (softmax backward), dQ = scale·dS K, dK = scale·dSᵀ Q.
    public static func backward(_ dOut: Tensor, cache: AttentionCache) -> Tensor {
        let t = cache.length, heads = cache.heads, d = cache.headDim, c = heads * d, c3 = 3 * c
        let dqkv = Tensor(zeros: [cache.batch * t, c3])
        withExtendedLifetime((dOut, cache.qkv, cache.probs)) {
            parallelRanges(cache.batch, minPerChunk: 1) { seqs in
                let dp = Tensor(uninitialized: [t, t])
                for b in seqs {
                    let base = cache.qkv.pointer + b * t * c3, dBase = dqkv.pointer + b * t * c3
                    let dO = dOut.pointer + b * t * c
                    for h in 0 ..< heads {
                        let p = cache.probs.pointer + (b * heads + h) * t * t
                        // dV = Pᵀ dO
                        gemm(transA: true, transB: false, m: t, n: d, k: t,
                             a: p, lda: t, b: dO + h * d, ldb: c, c: dBase + 2 * c + h * d, ldc: c3)
                        // dP = dO Vᵀ
                        gemm(transA: false, transB: true, m: t, n: t, k: d,
                             a: dO + h * d, lda: c, b: base + 2 * c + h * d, ldb: c3, c: dp.pointer, ldc: t)
                        for q in 0 ..< t {
                            let pr = p + q * t, gr = dp.pointer + q * t
                            var dot: Float = 0
                            for s in 0 ..< t { dot += pr[s] * gr[s] }
                            for s in 0 ..< t { gr[s] = pr[s] * (gr[s] - dot) }
                        }
                        // dQ = scale · dS K ; dK = scale · dSᵀ Q
                        gemm(transA: false, transB: false, m: t, n: d, k: t, alpha: cache.scale,
                             a: dp.pointer, lda: t, b: base + c + h * d, ldb: c3, c: dBase + h * d, ldc: c3)
                        gemm(transA: true, transB: false, m: t, n: d, k: t, alpha: cache.scale,
                             a: dp.pointer, lda: t, b: base + h * d, ldb: c3, c: dBase + c + h * d, ldc: c3)
                    }
                }
            }
        }
        return dqkv
    }
}
