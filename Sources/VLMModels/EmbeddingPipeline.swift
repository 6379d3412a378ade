import Foundation
import VLMImage
import VLMLayers
import VLMTensor
import VLMTokenizers

/// One label's score in a zero-shot classification.
public struct LabelScore: Sendable, Codable, Equatable {
    public let label: String
    public let probability: Float
    public let logit: Float

    public init(label: String, probability: Float, logit: Float) {
        self.label = label
        self.probability = probability
        self.logit = logit
    }
}

/// A dual-encoder checkpoint directory ready to use (CLIP, SigLIP, SigLIP2: whatever the registry loads):
/// model, tokenizer, text policy and image processor, as transformers' AutoModel + AutoProcessor load them
/// from the same files.
public final class EmbeddingPipeline: @unchecked Sendable {
    public let directory: URL
    public let model: any DualEncoder
    public let tokenizer: any Tokenizer
    public let processor: any ImageInputProcessor
    /// How texts become ids: the model's policy, capped by the tokenizer's model_max_length.
    public let textPolicy: TextPolicy
    /// Images preprocessed and encoded per model call; bounds memory for long file lists.
    public var imageBatchSize = 16

    /// The weight precision the towers were loaded with (`--precision`); fp32 is exact.
    public let precision: Precision

    /// Loads any dual encoder the registry knows, its weights kept in `precision` (nil: fp32); a generative
    /// checkpoint is refused naming its family.
    public static func load(directory: URL, precision: Precision? = nil) throws -> EmbeddingPipeline {
        let model = try ModelRegistry.loadDualEncoder(directory: directory, precision: precision)
        let tokenizer = try TokenizerLoader.load(directory: directory)
        let processor = try ImageProcessors.load(directory: directory, defaultClass: model.defaultImageProcessor)
        return EmbeddingPipeline(directory: directory, model: model, tokenizer: tokenizer, processor: processor, precision: precision ?? .fp32)
    }

    public init(directory: URL, model: any DualEncoder, tokenizer: any Tokenizer, processor: any ImageInputProcessor,
                precision: Precision = .fp32) {
        self.directory = directory
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
        self.precision = precision
        textPolicy = model.textPolicy.capped(at: TokenizerLoader.modelMaxLength(directory: directory))
    }

    /// Maximum tokens per text (special tokens included).
    public var maxTextLength: Int { textPolicy.maxLength }
    public var embeddingDim: Int { model.embeddingDim }
    public var scoring: ScoreFunction { model.scoring }

    // MARK: Text

    /// Token ids with special tokens, truncated to the policy's length (EOS kept), unpadded: what a user sees
    /// with `vlm tokenize` and what counts as usage.
    public func tokenize(_ texts: [String]) throws -> [[Int]] {
        try texts.map { try tokenizer.encode($0, maxLength: textPolicy.maxLength) }
    }

    /// Rows as the text tower takes them: padded with the pad token when the policy pads (SigLIP pads to
    /// max_length, and its pooled output depends on it), on the tokenizer's side (Siglip2Tokenizer pads left).
    public func padded(_ ids: [[Int]]) throws -> [[Int]] {
        guard case .maxLength(let length) = textPolicy.padding else { return ids }
        guard let pad = tokenizer.padTokenID else { throw TokenizerError.missingPadToken }
        let left = tokenizer.paddingSide == .left
        return ids.map { row in
            let fill = Array(repeating: pad, count: max(0, length - row.count))
            return left ? fill + row : row + fill
        }
    }

    /// Text embeddings [N][P] of tokenised texts (`tokenize`; padding is added here).
    public func embed(tokenized ids: [[Int]], normalize: Bool = true) throws -> [[Float]] {
        let features = try model.textFeatures(padded(ids))
        return Self.rows(normalize ? Ops.l2Normalize(features) : features)
    }

    /// Text embeddings [N][P]: L2-normalised unless `normalize` is false (then get_text_features as it is).
    public func embed(texts: [String], normalize: Bool = true) throws -> [[Float]] {
        try embed(tokenized: tokenize(texts), normalize: normalize)
    }

    // MARK: Images

    /// Image embeddings [N][P] for decoded images.
    public func embed(images: [RGBImage], normalize: Bool = true) throws -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(images.count)
        var start = 0
        while start < images.count {
            let batch = Array(images[start ..< min(start + imageBatchSize, images.count)])
            start += batch.count
            let features = try model.imageFeatures(processor.pixelInputs(batch))
            out += Self.rows(normalize ? Ops.l2Normalize(features) : features)
        }
        return out
    }

    /// Image embeddings for files, decoded in batches (errors name the file).
    public func embed(imageFiles: [URL], normalize: Bool = true) throws -> [[Float]] {
        var out: [[Float]] = []
        var start = 0
        while start < imageFiles.count {
            let files = imageFiles[start ..< min(start + imageBatchSize, imageFiles.count)]
            start += files.count
            let images = try files.map { try ImageDecoder.load($0, alpha: .compositeOnWhite) }
            out += try embed(images: images, normalize: normalize)
        }
        return out
    }

    // MARK: Scores

    /// Zero-shot classification of one image against labels put into `template` ("{}" is the label), best first:
    /// softmax over the labels for CLIP, each label's own sigmoid for SigLIP.
    public func classify(image: RGBImage, labels: [String], template: String = ZeroShot.defaultTemplate) throws -> [LabelScore] {
        let prompts = try ZeroShot.prompts(labels: labels, template: template)
        let text = try embed(texts: prompts.map(\.prompt))
        guard let img = try embed(images: [image]).first else { return [] }
        return ZeroShot.scores(image: img, labels: prompts.map(\.label), texts: text, scoring: scoring)
    }

    /// Cosine similarities [images][texts] of normalised embeddings (`scoring.logits` turns a row into logits).
    public func similarity(imageEmbeddings: [[Float]], textEmbeddings: [[Float]]) -> [[Float]] {
        imageEmbeddings.map { img in textEmbeddings.map { ZeroShot.dot(img, $0) } }
    }

    public static func rows(_ t: Tensor) -> [[Float]] {
        let n = t.shape.first ?? 0, d = n == 0 ? 0 : t.count / n
        return (0 ..< n).map { Array(UnsafeBufferPointer(start: t.pointer + $0 * d, count: d)) }
    }
}

/// Zero-shot classification and similarity, written once: the CLI, the server, the index and evaluation all
/// score through here.
public enum ZeroShot {
    public static let defaultTemplate = "a photo of a {}."

    /// Cleaned labels (trimmed, empties dropped) and their prompts; no label left is an error.
    public static func prompts(labels: [String], template: String) throws -> [(label: String, prompt: String)] {
        let cleaned = labels.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !cleaned.isEmpty else { throw ModelError.invalidInput("no labels given") }
        return cleaned.map { ($0, prompt(label: $0, template: template)) }
    }

    /// The label put into the template at "{}", or appended after a space when the template has none.
    public static func prompt(label: String, template: String) -> String {
        template.contains("{}") ? template.replacingOccurrences(of: "{}", with: label) : "\(template) \(label)"
    }

    /// Scores of normalised `texts` (one per label) against a normalised image, best first.
    public static func scores(image: [Float], labels: [String], texts: [[Float]], scoring: ScoreFunction) -> [LabelScore] {
        let cosines = texts.map { dot(image, $0) }
        let logits = scoring.logits(cosines), probabilities = scoring.probabilities(cosines)
        return labels.indices.map { LabelScore(label: labels[$0], probability: probabilities[$0], logit: logits[$0]) }
            .sorted { $0.probability > $1.probability }
    }

    public static func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
}
