import Foundation
@_exported import VLMImage
@_exported import VLMModels
@_exported import VLMTensor
@_exported import VLMTokenizers
@_exported import VLMScenes

/// Errors of the pipelines; lower modules' errors pass through unchanged (each names its own culprit).
public enum PipelineError: Error, CustomStringConvertible {
    case invalidArgument(String)
    case input(String, underlying: Error)
    /// Images were given to a text-only checkpoint (named).
    case imagesNotSupported(model: String)
    /// The checkpoint's tokenizer has no token for the model's image_token_index.
    case imageTokenMissing(id: Int, model: String)
    /// The rendered prompt's image tokens do not match the images given.
    case imageCountMismatch(placeholders: Int, images: Int, token: String)
    /// The prompt (image tokens included) leaves no room in the model's context.
    case promptTooLong(tokens: Int, imageTokens: Int, context: Int)
    /// The chat message list cannot be rendered (empty, unknown role, or the chat template refused it).
    case invalidConversation(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .input(let what, let underlying): return "\(what): \(underlying)"
        case .imagesNotSupported(let model): return "the model \(model) is text-only; it does not take images"
        case .imageTokenMissing(let id, let model):
            return "the tokenizer of \(model) has no token for image_token_index \(id); this checkpoint cannot take images"
        case .imageCountMismatch(let placeholders, let images, let token):
            return "the prompt has \(placeholders) image token(s) \(token) but \(images) image(s) were given"
        case .promptTooLong(let tokens, let imageTokens, let context):
            let detail = imageTokens > 0 ? " (\(imageTokens) of them image tokens)" : ""
            return "the prompt has \(tokens) tokens\(detail); the model's context is \(context) tokens and at least one must be left to generate"
        case .invalidConversation(let message): return "invalid chat: \(message)"
        }
    }
}

/// One label's score in a zero-shot classification.
public struct LabelScore: Sendable, Codable, Equatable {
    public let label: String
    public let probability: Float
    public let logit: Float
}

/// A CLIP checkpoint directory ready to use: model, tokenizer and image processor, as transformers'
/// CLIPModel + CLIPProcessor would load them from the same files.
public final class CLIPPipeline: @unchecked Sendable {
    public let directory: URL
    public let model: CLIPModel
    public let tokenizer: any Tokenizer
    public let processor: ImageProcessor
    /// Texts are truncated to this many tokens, EOS kept (tokenizer's model_max_length capped by the model).
    public let maxTextLength: Int
    /// Images preprocessed and encoded per model call; bounds memory for long file lists.
    public var imageBatchSize = 16

    public static func load(directory: URL) throws -> CLIPPipeline {
        let model = try CLIPModel.load(directory: directory)
        let tokenizer = try TokenizerLoader.load(directory: directory)
        let processor = try ImageProcessor.load(directory: directory)
        return CLIPPipeline(directory: directory, model: model, tokenizer: tokenizer, processor: processor)
    }

    public init(directory: URL, model: CLIPModel, tokenizer: any Tokenizer, processor: ImageProcessor) {
        self.directory = directory
        self.model = model
        self.tokenizer = tokenizer
        self.processor = processor
        maxTextLength = min(TokenizerLoader.modelMaxLength(directory: directory) ?? model.maxTextLength, model.maxTextLength)
    }

    // MARK: Text

    /// Token ids with BOS/EOS, truncated to `maxTextLength` (EOS kept), unpadded.
    public func tokenize(_ texts: [String]) throws -> [[Int]] {
        try texts.map { try tokenizer.encode($0, maxLength: maxTextLength) }
    }

    /// Text embeddings [N][P]: L2-normalised unless `normalize` is false (then get_text_features' raw projection).
    public func embed(texts: [String], normalize: Bool = true) throws -> [[Float]] {
        let features = try model.textFeatures(tokenize(texts))
        return Self.rows(normalize ? Ops.l2Normalize(features) : features)
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
            let features = try model.imageFeatures(processor.preprocess(batch))
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

    /// Zero-shot classification: softmax over labels of exp(logit_scale) * cos(image, template(label)), best first.
    public func classify(image: RGBImage, labels: [String], template: String = "a photo of a {}.") throws -> [LabelScore] {
        let cleaned = labels.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !cleaned.isEmpty else { throw PipelineError.invalidArgument("no labels given") }
        let prompts = cleaned.map { template.contains("{}") ? template.replacingOccurrences(of: "{}", with: $0) : "\(template) \($0)" }
        let text = try embed(texts: prompts)
        guard let img = try embed(images: [image]).first else { return [] }
        let logits = text.map { model.logitScale * Self.dot(img, $0) }
        let probs = Self.softmax(logits)
        return zip(cleaned, zip(probs, logits)).map { LabelScore(label: $0, probability: $1.0, logit: $1.1) }
            .sorted { $0.probability > $1.probability }
    }

    /// Cosine similarities [images][texts] of normalised embeddings (multiply by `model.logitScale` for logits).
    public func similarity(imageEmbeddings: [[Float]], textEmbeddings: [[Float]]) -> [[Float]] {
        imageEmbeddings.map { img in textEmbeddings.map { Self.dot(img, $0) } }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func rows(_ t: Tensor) -> [[Float]] {
        let n = t.shape.first ?? 0, d = n == 0 ? 0 : t.count / n
        return (0 ..< n).map { Array(UnsafeBufferPointer(start: t.pointer + $0 * d, count: d)) }
    }
}
