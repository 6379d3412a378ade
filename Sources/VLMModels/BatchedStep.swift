import VLMTensor

/// A generative model that can feed one token to each of several states in one pass (beam search's running
/// beams): its weights are streamed once per step for all of them instead of once per state. Row b of the result
/// equals `step(token: tokens[b], state: states[b])`.
public protocol BatchedStepModel: GenerativeModel {
    /// tokens[b] fed to states[b] (distinct states, each prefilled): logits [B, vocab].
    func step(tokens: [Int], states: [any GenerationState]) throws -> Tensor
}
