import Foundation
import VLMTensor

/// Symmetric InfoNCE over a batch of B matched pairs, as transformers' CLIPModel(return_loss=True):
///   logits_per_text = exp(logit_scale) · T Iᵀ  (T, I: L2-normalised embeddings, [B, P])
///   loss = (CE(logits_per_text, arange(B)) + CE(logits_per_textᵀ, arange(B))) / 2
/// (modeling_clip.py: clip_loss / contrastive_loss; open_clip's ClipLoss is the same mean of the two directions).
/// `logit_scale` is the learnable log-temperature; open_clip clamps it to [0, ln 100] after each optimizer step
/// (train.py), not inside the forward, so the loss here uses it as is.
public struct ContrastiveLossResult {
    public var loss: Float { Float(exactLoss) }
    /// The loss as accumulated (Double), for finite-difference checks.
    public let exactLoss: Double
    /// logits_per_image: [B, T] (row i: image i against every text, extra negatives last).
    public let logitsPerImage: Tensor
    let similarity: [Double]  // T Iᵀ, row-major [text, image], T rows
    let scale: Double
    let batch: Int
}

public enum ContrastiveLoss {
    /// imageEmbeds: [B, P]; textEmbeds: [T, P] with T >= B, already L2-normalised; logitScale: the parameter
    /// (log of the multiplier). Texts 0..<B are the images' captions; texts B..<T are extra negatives (NegCLIP,
    /// Yuksekgonul et al. 2023: hard negatives such as attribute-swapped captions) that only enlarge the
    /// image->text softmax. With T == B this is exactly CLIP's loss.
    public static func forward(imageEmbeds: Tensor, textEmbeds: Tensor, logitScale: Float) -> ContrastiveLossResult {
        let b = imageEmbeds.shape[0], p = imageEmbeds.shape[1], nt = textEmbeds.shape[0]
        let scale = exp(Double(logitScale))
        var sim = [Double](repeating: 0, count: nt * b)
        for t in 0 ..< nt {
            for i in 0 ..< b {
                var s = 0.0
                for k in 0 ..< p { s += Double(textEmbeds.pointer[t * p + k]) * Double(imageEmbeds.pointer[i * p + k]) }
                sim[t * b + i] = s
            }
        }
        var loss = 0.0
        // Text -> image: rows of logits_per_text (captions only); image -> text: its columns (all texts).
        for r in 0 ..< b {
            loss += logSumExp((0 ..< b).map { scale * sim[r * b + $0] }) - scale * sim[r * b + r]
            loss += logSumExp((0 ..< nt).map { scale * sim[$0 * b + r] }) - scale * sim[r * b + r]
        }
        loss /= Double(2 * b)
        let perImage = Tensor(uninitialized: [b, nt])
        for i in 0 ..< b { for t in 0 ..< nt { perImage[i * nt + t] = Float(scale * sim[t * b + i]) } }
        return ContrastiveLossResult(exactLoss: loss, logitsPerImage: perImage, similarity: sim, scale: scale, batch: b)
    }

    /// -> (dImageEmbeds [B, P], dTextEmbeds [T, P], dLogitScale). With L = s·S (S = T Iᵀ, [T, B]):
    /// dL = (softmax_rows(L[:B]) - Id + softmax_cols(L) - Id) / (2B); dT = s·dL·I, dI = s·dLᵀ·T, d logit_scale = s·Σ dL ⊙ S.
    public static func backward(_ r: ContrastiveLossResult, imageEmbeds: Tensor, textEmbeds: Tensor) -> (Tensor, Tensor, Float) {
        let b = r.batch, p = imageEmbeds.shape[1], s = r.scale, nt = textEmbeds.shape[0]
        var dl = [Double](repeating: 0, count: nt * b)
        for row in 0 ..< b {
            let logits = (0 ..< b).map { s * r.similarity[row * b + $0] }
            let lse = logSumExp(logits)
            for col in 0 ..< b { dl[row * b + col] += exp(logits[col] - lse) - (row == col ? 1 : 0) }
        }
        for col in 0 ..< b {
            let logits = (0 ..< nt).map { s * r.similarity[$0 * b + col] }
            let lse = logSumExp(logits)
            for row in 0 ..< nt { dl[row * b + col] += exp(logits[row] - lse) - (row == col ? 1 : 0) }
        }
        var dScale = 0.0
        for k in 0 ..< nt * b {
            dl[k] /= Double(2 * b)
            dScale += dl[k] * r.similarity[k]
        }
        let dText = Tensor(zeros: [nt, p]), dImage = Tensor(zeros: [b, p])
        for t in 0 ..< nt {
            for i in 0 ..< b {
                let g = s * dl[t * b + i]
                for k in 0 ..< p {
                    dText.pointer[t * p + k] += Float(g * Double(imageEmbeds.pointer[i * p + k]))
                    dImage.pointer[i * p + k] += Float(g * Double(textEmbeds.pointer[t * p + k]))
                }
            }
        }
        // d/d logit_scale of exp(logit_scale) · S is exp(logit_scale) · S.
        return (dImage, dText, Float(dScale * s))
    }

    static func logSumExp(_ x: [Double]) -> Double {
        let m = x.max() ?? 0
        return m + log(x.reduce(0) { $0 + exp($1 - m) })
    }
}
