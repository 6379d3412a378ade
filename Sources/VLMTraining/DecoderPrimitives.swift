import Foundation
import VLMTensor

// Forward-with-cache and backward of the decoder's own building blocks (RMSNorm, rotary embedding, SwiGLU,
// token-embedding scatter, masked cross-entropy). Same conventions as Primitives.swift.

// MARK: - RMSNorm

public struct RMSNormCache {
    /// x · rstd: [M, D]
    public let normalized: Tensor
    /// 1 / sqrt(mean(x²) + eps) per row: [M]
    public let rstd: [Float]
}

public enum RMSNormOp {
    /// x: [M, D], weight: [D] -> y = weight ⊙ x / sqrt(mean(x²) + eps): [M, D] (transformers' LlamaRMSNorm).
    public static func forward(_ x: Tensor, weight: Tensor, eps: Float) -> (Tensor, RMSNormCache) {
        let d = x.shape[x.rank - 1], m = x.count / max(d, 1)
        let y = Tensor(uninitialized: [m, d]), xhat = Tensor(uninitialized: [m, d])
        var rstd = [Float](repeating: 0, count: m)
        let g = weight.pointer, xp = x.pointer
        withExtendedLifetime((x, weight)) {
            rstd.withUnsafeMutableBufferPointer { rp in
                parallelRanges(m, minPerChunk: max(1, (1 << 14) / max(d, 1))) { rows in
                    for r in rows {
                        let row = xp + r * d
                        var sq = 0.0
                        for j in 0 ..< d { sq += Double(row[j]) * Double(row[j]) }
                        let rs = 1 / (sq / Double(d) + Double(eps)).squareRoot()
                        rp[r] = Float(rs)
                        let xh = xhat.pointer + r * d, yr = y.pointer + r * d
                        for j in 0 ..< d {
                            let v = Float(Double(row[j]) * rs)
                            xh[j] = v
                            yr[j] = g[j] * v
                        }
                    }
                }
            }
        }
        return (y, RMSNormCache(normalized: xhat, rstd: rstd))
    }

    /// dy: [M, D] -> (dx: [M, D], dweight: [D]). With ĝ = dy ⊙ weight: dx = rstd · (ĝ - x̂ · mean(ĝ ⊙ x̂)),
    /// dweight = Σ_rows dy ⊙ x̂.
    public static func backward(_ dy: Tensor, cache: RMSNormCache, weight: Tensor) -> (dx: Tensor, dw: Tensor) {
        let d = weight.count, m = cache.rstd.count
        let dx = Tensor(uninitialized: [m, d]), dw = Tensor(uninitialized: [d])
        let g = weight.pointer, dyp = dy.pointer, xhp = cache.normalized.pointer, dxp = dx.pointer, dwp = dw.pointer
        withExtendedLifetime((dy, weight, cache.normalized)) {
            cache.rstd.withUnsafeBufferPointer { rstd in
                parallelRanges(m, minPerChunk: max(1, (1 << 14) / max(d, 1))) { rows in
                    for r in rows {
                        let dyr = dyp + r * d, xh = xhp + r * d, dxr = dxp + r * d
                        var sumGX = 0.0
                        for j in 0 ..< d { sumGX += Double(dyr[j] * g[j]) * Double(xh[j]) }
                        let meanGX = sumGX / Double(d), rs = Double(rstd[r])
                        for j in 0 ..< d { dxr[j] = Float(rs * (Double(dyr[j] * g[j]) - Double(xh[j]) * meanGX)) }
                    }
                }
            }
            // dweight: split by columns, each summing its rows in order (same bits on any thread count).
            parallelRanges(d, minPerChunk: m * d >= 1 << 15 ? 16 : d) { cols in
                var sw = [Double](repeating: 0, count: cols.count)
                for r in 0 ..< m {
                    let dyr = dyp + r * d + cols.lowerBound, xh = xhp + r * d + cols.lowerBound
                    for j in 0 ..< cols.count { sw[j] += Double(dyr[j] * xh[j]) }
                }
                for j in 0 ..< cols.count { dwp[cols.lowerBound + j] = Float(sw[j]) }
            }
        }
        return (dx, dw)
    }
}

// MARK: - Rotary position embedding

/// cos/sin per (position, frequency) for positions 0 ..< length: angle = position · inv_freq[i] in float32, as
/// transformers' LlamaRotaryEmbedding (attention scaling 1 for the default, linear and llama3 rope types).
public struct RotaryAngles: Sendable {
    public let cos: [Float]
    public let sin: [Float]
    public let half: Int
    public let length: Int

    public init(inverseFrequencies: [Float], length: Int) {
        half = inverseFrequencies.count
        self.length = length
        var c = [Float](repeating: 0, count: length * half), s = c
        for p in 0 ..< length {
            for i in 0 ..< half {
                let angle = Float(p) * inverseFrequencies[i]
                c[p * half + i] = Foundation.cos(angle)
                s[p * half + i] = Foundation.sin(angle)
            }
        }
        cos = c
        sin = s
    }
}

public enum RotaryOp {
    /// Rotates, in place, `heads` heads of `headDim` (= 2·half) in each row of x: [B*T, heads*headDim]; row
    /// b*T + t is at position t. Pair (i, i + half) as transformers' rotate_half:
    ///   y_i = x_i cos - x_{i+half} sin;  y_{i+half} = x_{i+half} cos + x_i sin.
    /// `inverse` rotates by -angle, which is the backward (the rotation is orthogonal: dx = Rᵀ dy).
    public static func apply(_ x: Tensor, heads: Int, headDim: Int, length t: Int, angles: RotaryAngles, inverse: Bool = false) {
        let half = angles.half, rows = x.shape[0], ld = heads * headDim
        precondition(2 * half == headDim && t <= angles.length && x.count == rows * ld, "rotary: x \(x.shape), \(heads)x\(headDim), T \(t)")
        let sign: Float = inverse ? -1 : 1
        let xp = x.pointer
        withExtendedLifetime(x) {
            angles.cos.withUnsafeBufferPointer { cosT in
                angles.sin.withUnsafeBufferPointer { sinT in
                    parallelRanges(rows, minPerChunk: max(1, (1 << 13) / max(ld, 1))) { range in
                        for r in range {
                            let p = r % t
                            for h in 0 ..< heads {
                                let v = xp + r * ld + h * headDim
                                for i in 0 ..< half {
                                    let c = cosT[p * half + i], s = sign * sinT[p * half + i]
                                    let a = v[i], b = v[i + half]
                                    v[i] = a * c - b * s
                                    v[i + half] = b * c + a * s
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - SwiGLU

public enum SwiGLUOp {
    /// gate, up: [M, I] -> (act(gate) ⊙ up, act(gate)): the gated MLP's hidden (LlamaMLP).
    public static func forward(gate: Tensor, up: Tensor, activation: Activation) -> (Tensor, Tensor) {
        let a = Ops.activate(gate, activation)
        let h = Tensor(uninitialized: gate.shape)
        for i in 0 ..< h.count { h.pointer[i] = a.pointer[i] * up.pointer[i] }
        return (h, a)
    }

    /// dh: [M, I] -> (dgate = dh ⊙ up ⊙ act'(gate), dup = dh ⊙ act(gate)).
    public static func backward(_ dh: Tensor, gate: Tensor, up: Tensor, activated: Tensor, activation: Activation) -> (Tensor, Tensor) {
        let dAct = Tensor(uninitialized: dh.shape), dUp = Tensor(uninitialized: dh.shape)
        for i in 0 ..< dh.count {
            dAct.pointer[i] = dh.pointer[i] * up.pointer[i]
            dUp.pointer[i] = dh.pointer[i] * activated.pointer[i]
        }
        return (ActivationGrad.backward(dAct, preActivation: gate, activation), dUp)
    }
}

// MARK: - Masked cross-entropy

/// Gaussian targets for ids that are ordered bins, e.g. PaliGemma's 1024 `<locNNNN>` tokens: a label on bin b
/// becomes the distribution q(b') ∝ exp(-(b' - b)² / 2σ²) over the bins within 3σ of b (normalised over those in
/// range). Why: with one-hot targets a box coordinate is a 1024-way choice whose neighbouring answers share
/// nothing, so a near miss costs as much as a far one and each bin learns only from its own rare labels; with
/// Gaussian targets the loss is lowest at the right bin and rises with the distance (the "distribution focal
/// loss" idea of Li et al. 2020, GFL, in its plainest form). Labels outside the range stay one-hot.
public struct OrdinalTargetSmoothing: Codable, Equatable, Sendable {
    /// Id of bin 0; bins are firstID ..< firstID + count.
    public var firstID: Int
    public var count: Int
    /// Standard deviation in bins; <= 0 means one-hot.
    public var sigma: Float

    public init(firstID: Int, count: Int, sigma: Float) {
        (self.firstID, self.count, self.sigma) = (firstID, count, sigma)
    }

    /// The target distribution of label `id` as (id, weight) pairs summing to 1.
    public func distribution(of id: Int) -> [(id: Int, weight: Float)] {
        let b = id - firstID
        guard sigma > 0, b >= 0, b < count else { return [(id, 1)] }
        let reach = Int((3 * sigma).rounded(.up))
        let lo = max(0, b - reach), hi = min(count - 1, b + reach)
        let s = Double(sigma)
        let raw = (lo ... hi).map { k in exp(-Double((k - b) * (k - b)) / (2 * s * s)) }
        let total = raw.reduce(0, +)
        return zip(lo ... hi, raw).map { (firstID + $0, Float($1 / total)) }
    }
}

public struct CrossEntropyCache {
    /// softmax(logits): [N, V]
    public let probabilities: Tensor
    /// Per row, the target distribution as (id, weight) pairs (one-hot: one pair of weight 1).
    public let targets: [[(id: Int, weight: Float)]]
}

public enum CrossEntropyOp {
    /// logits: [N, V], targets: N ids -> mean over the N rows of -log softmax(logits)[target] (torch's
    /// cross_entropy with reduction "mean" over the rows whose label is not ignore_index; the caller passes only
    /// those rows). With `smoothing`, labels in its range score against its Gaussian targets instead:
    /// -Σ q log softmax (torch's cross_entropy with probability targets). Log-sum-exp and the mean in Double.
    /// Returns the loss in Double.
    public static func forward(_ logits: Tensor, targets: [Int], smoothing: OrdinalTargetSmoothing? = nil) -> (Double, CrossEntropyCache) {
        let rows = targets.map { t -> [(id: Int, weight: Float)] in smoothing?.distribution(of: t) ?? [(id: t, weight: Float(1))] }
        return forward(logits, distributions: rows)
    }

    /// logits: [N, V], one target distribution per row ((id, weight) pairs summing to 1).
    public static func forward(_ logits: Tensor, distributions: [[(id: Int, weight: Float)]]) -> (Double, CrossEntropyCache) {
        let n = distributions.count, v = logits.shape[1]
        let probs = Tensor(uninitialized: [n, v])
        var total = 0.0
        for r in 0 ..< n {
            let row = logits.pointer + r * v, pr = probs.pointer + r * v
            var mx = -Float.infinity
            for j in 0 ..< v { mx = max(mx, row[j]) }
            var sum = 0.0
            for j in 0 ..< v { sum += exp(Double(row[j] - mx)) }
            let lse = Double(mx) + log(sum)
            for j in 0 ..< v { pr[j] = Float(exp(Double(row[j]) - lse)) }
            for (id, w) in distributions[r] { total += Double(w) * (lse - Double(row[id])) }
        }
        return (n > 0 ? total / Double(n) : 0, CrossEntropyCache(probabilities: probs, targets: distributions))
    }

    /// d loss / d logits: (softmax - q) / N, [N, V] (q one-hot for plain labels).
    public static func backward(cache: CrossEntropyCache) -> Tensor {
        let n = cache.targets.count, v = cache.probabilities.shape[1]
        let d = Tensor(uninitialized: [n, v])
        let scale = 1 / Float(max(n, 1))
        for r in 0 ..< n {
            let pr = cache.probabilities.pointer + r * v, dr = d.pointer + r * v
            for j in 0 ..< v { dr[j] = pr[j] * scale }
            for (id, w) in cache.targets[r] { dr[id] -= w * scale }
        }
        return d
    }
}

// MARK: - Token embedding

public enum EmbeddingOp {
    /// Scatter-add of row gradients into an embedding table's gradient: dTable[ids[r]] += dRows[r] for every
    /// row r with `use(r)`. dRows: [R, C] -> [vocab, C].
    public static func backward(_ dRows: Tensor, ids: [Int], vocab: Int, use: (Int) -> Bool) -> Tensor {
        let c = dRows.shape[1]
        let d = Tensor(zeros: [vocab, c])
        for (r, id) in ids.enumerated() where use(r) {
            let src = dRows.pointer + r * c, dst = d.pointer + id * c
            for j in 0 ..< c { dst[j] += src[j] }
        }
        return d
    }
}
