import Foundation
import VLMTensor

/// torch's `F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)` of a channel-last grid,
/// as SigLIP2 resizes its learned position table to each image's patch grid (Siglip2VisionEmbeddings
/// .resize_positional_embeddings, which transformers 5.25 writes in closed form with the same weights).
///
/// The antialiased bilinear filter is separable: each output row (column) is a normalised triangle-weighted sum of
/// input rows (columns). For output index i of an axis resized from `n` to `m`, with scale = n / m:
///   support = max(scale, 1), center = (i + 0.5) * scale,
///   w_j = max(0, 1 - |j + 0.5 - center| / support) for input j, then w /= sum(w)
/// (torch's _compute_weights_aa with the triangle filter; when upsampling, support 1 gives plain bilinear with
/// edge clamping through the renormalisation). torch only visits j in [trunc(center - support + 0.5),
/// trunc(center + support + 0.5)), outside of which the triangle is already zero.
/// Exception, where we follow transformers 5.25 (the model's rule) and not torch: torch 2.15's CPU antialias
/// kernel repeats the first output row when the output has a single column and a different row count; the
/// closed form (and this) compute the separable filter (Scripts/fixtures/siglip_fixtures.py records both).
public enum AntialiasedBilinear {
    /// The [outputSize, inputSize] weights of one axis, row-major; each row sums to 1.
    public static func weights(inputSize n: Int, outputSize m: Int) -> [Float] {
        precondition(n > 0 && m > 0, "AntialiasedBilinear: sizes must be positive")
        // Float32 like the reference: scale, center and the weights are float32 tensors in transformers.
        let scale = Float(n) / Float(m)
        let support = max(scale, 1)
        var out = [Float](repeating: 0, count: m * n)
        for i in 0 ..< m {
            let center = (Float(i) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0), hi = min(Int(center + support + 0.5), n)
            var total: Float = 0
            for j in lo ..< max(lo, hi) {
                let w = max(0, 1 - abs(Float(j) + 0.5 - center) / support)
                out[i * n + j] = w
                total += w
            }
            if total > 0 { for j in 0 ..< n { out[i * n + j] /= total } }
        }
        return out
    }

    /// grid: [n, n, C] (row, column, channel; the flat [n*n, C] position table) -> [rows*columns, C], the grid
    /// resized to rows x columns. Separable: columns first ([n, columns, C]), then rows.
    public static func resize(_ grid: Tensor, side n: Int, rows: Int, columns: Int) -> Tensor {
        let c = grid.count / max(n * n, 1)
        let wc = weights(inputSize: n, outputSize: columns), wr = weights(inputSize: n, outputSize: rows)
        let mid = Tensor(zeros: [n * columns, c])
        for y in 0 ..< n {
            for x in 0 ..< columns {
                let dst = mid.pointer + (y * columns + x) * c
                for j in 0 ..< n {
                    let w = wc[x * n + j]
                    if w == 0 { continue }
                    let src = grid.pointer + (y * n + j) * c
                    for k in 0 ..< c { dst[k] += w * src[k] }
                }
            }
        }
        let out = Tensor(zeros: [rows * columns, c])
        for y in 0 ..< rows {
            for i in 0 ..< n {
                let w = wr[y * n + i]
                if w == 0 { continue }
                for x in 0 ..< columns {
                    let dst = out.pointer + (y * columns + x) * c, src = mid.pointer + (i * columns + x) * c
                    for k in 0 ..< c { dst[k] += w * src[k] }
                }
            }
        }
        return out
    }

    /// The reference form, literally as transformers 5.25 computes it: every output position's 2-D weight over
    /// the whole grid (row weight x column weight, each from the untruncated triangle with center
    /// (i + 0.5) * scale - 0.5 against source index j), then one weighted sum. O(rows*columns*n*n*C); for tests.
    public static func resizeNaive(_ grid: Tensor, side n: Int, rows: Int, columns: Int) -> Tensor {
        let c = grid.count / max(n * n, 1)
        func axis(_ i: Int, _ m: Int) -> [Float] {
            let scale = Float(n) / Float(m), support = max(scale, 1)
            let center = (Float(i) + 0.5) * scale - 0.5
            let w = (0 ..< n).map { max(0, 1 - abs(Float($0) - center) / support) }
            let s = w.reduce(0, +)
            return w.map { $0 / s }
        }
        let out = Tensor(zeros: [rows * columns, c])
        for y in 0 ..< rows {
            let wy = axis(y, rows)
            for x in 0 ..< columns {
                let wx = axis(x, columns)
                let dst = out.pointer + (y * columns + x) * c
                for i in 0 ..< n {
                    for j in 0 ..< n {
                        let w = wy[i] * wx[j], src = grid.pointer + (i * n + j) * c
                        for k in 0 ..< c { dst[k] += w * src[k] }
                    }
                }
            }
        }
        return out
    }
}
