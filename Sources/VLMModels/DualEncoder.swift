import Foundation
import VLMImage
import VLMTensor
import VLMTokenizers

// MARK: - Scoring

/// How a dual encoder turns cosine similarities into logits and probabilities.
public enum ScoreFunction: Sendable, Equatable {
    /// CLIP: logits = logit_scale x cosine; probabilities are a softmax over the candidates
    /// (CLIPModel.forward's logits_per_image, softmax(dim=1) in the zero-shot pipeline).
    case softmax(logitScale: Float)
    /// SigLIP: logits = logit_scale x cosine + logit_bias; each pair's probability is its own sigmoid
    /// (SiglipModel.forward; the zero-shot pipeline applies torch.sigmoid).
    case sigmoid(logitScale: Float, logitBias: Float)

    /// One logit per cosine.
    public func logits(_ cosines: [Float]) -> [Float] {
        switch self {
        case .softmax(let scale): return cosines.map { scale * $0 }
        case .sigmoid(let scale, let bias): return cosines.map { scale * $0 + bias }
        }
    }

    /// Probabilities of the candidates (one image against several texts, or the reverse).
    public func probabilities(_ cosines: [Float]) -> [Float] {
        let z = logits(cosines)
        switch self {
        case .softmax:
            let m = z.max() ?? 0
            let e = z.map { exp($0 - m) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        case .sigmoid:
            return z.map { 1 / (1 + exp(-$0)) }
        }
    }

    /// "softmax" or "sigmoid", as APIs report it.
    public var name: String {
        switch self {
        case .softmax: return "softmax"
        case .sigmoid: return "sigmoid"
        }
    }

    /// The multiplier of cosines (exp of the checkpoint's logit_scale).
    public var logitScale: Float {
        switch self {
        case .softmax(let s), .sigmoid(let s, _): return s
        }
    }
}

// MARK: - Text policy

/// How a text tower wants its token sequences: at most `maxLength` ids (special tokens included, kept on
/// truncation) and padded as its processor pads them. SigLIP pools the last position, so its embeddings
/// depend on padding to max_length exactly as SiglipProcessor does; CLIP pools the EOS and takes sequences
/// unpadded.
public struct TextPolicy: Sendable, Equatable {
    public var maxLength: Int
    public var padding: Padding

    public init(maxLength: Int, padding: Padding = .none) {
        self.maxLength = maxLength
        self.padding = padding
    }

    /// The policy with `limit` (e.g. the tokenizer's model_max_length) applied as well.
    public func capped(at limit: Int?) -> TextPolicy {
        guard let limit, limit > 0, limit < maxLength else { return self }
        var p = self
        p.maxLength = limit
        if case .maxLength = padding { p.padding = .maxLength(limit) }
        return p
    }
}

// MARK: - Protocol

/// A model with an image tower and a text tower projected into one space (CLIP, SigLIP, SigLIP2). Everything
/// above the models (pipelines, server, index, evaluation) uses this protocol, never a concrete family.
public protocol DualEncoder: AnyObject, Sendable {
    /// config.json's model_type.
    var modelType: String { get }
    /// Width of the shared embedding space.
    var embeddingDim: Int { get }
    /// Cosines -> logits -> probabilities, with the checkpoint's learned scale (and bias).
    var scoring: ScoreFunction { get }
    /// Token sequence rule of the text tower (before the tokenizer's own model_max_length).
    var textPolicy: TextPolicy { get }
    /// The processor class used when the checkpoint's config names none.
    var defaultImageProcessor: String { get }
    /// pixels from the checkpoint's image processor -> [B, P], unnormalised (get_image_features).
    func imageFeatures(_ pixels: PixelInputs) throws -> Tensor
    /// B token sequences made by `textPolicy` -> [B, P], unnormalised (get_text_features).
    func textFeatures(_ ids: [[Int]]) throws -> Tensor
}
