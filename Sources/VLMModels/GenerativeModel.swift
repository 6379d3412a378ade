import Foundation
import VLMTensor

/// A model that generates text token by token (LLaVA, the Llama family, ...). The generation loop, samplers,
/// streaming and the server use this protocol, never a concrete family.
public protocol GenerativeModel: AnyObject, Sendable {
    /// config.json's model_type.
    var modelType: String { get }
    /// Whether the model takes images.
    var supportsImages: Bool { get }
    /// Tokens the model can attend to (prompt, image tokens and answer together).
    var contextLength: Int { get }
    /// Rows of the logits.
    var vocabularySize: Int { get }
    /// End-of-sequence ids from config.json.
    var eosTokenIDs: [Int] { get }
}
