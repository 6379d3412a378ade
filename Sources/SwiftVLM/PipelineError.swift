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

