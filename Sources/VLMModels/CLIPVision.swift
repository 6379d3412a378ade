import Foundation
import VLMLayers
import VLMTensor

/// CLIPVisionTransformer (transformers' CLIPVisionModel body): patches -> [CLS] + positions -> pre-LN ->
/// encoder -> post-LN on CLS. Shared by CLIPModel (pooled + projection) and LLaVA (an intermediate layer's
/// hidden states). Hugging Face names are relative to the `vision_model` scope.
final class CLIPVisionTransformer: @unchecked Sendable {
    let config: CLIPVisionConfig
    let patchEmbedding: Linear        // embeddings.patch_embedding.weight [C, channels, p, p], no bias
    let classEmbedding: Tensor        // embeddings.class_embedding [C]
    let positionEmbedding: Embedding  // embeddings.position_embedding.weight [positions, C]
    let preLayerNorm: LayerNorm       // pre_layrnorm (sic)
    let encoder: PreNormEncoder       // encoder.layers.{i}
    let postLayerNorm: LayerNorm      // post_layernorm

    init(_ s: WeightScope, config: CLIPVisionConfig) throws {
        self.config = config
        let c = config.hiddenSize, p = config.patchSize, ch = config.numChannels
        patchEmbedding = try Linear(patchConvolution: s.scope("embeddings.patch_embedding"), out: c, channels: ch, patch: p, bias: false)
        classEmbedding = try s.tensor("embeddings.class_embedding", shape: [c])
        positionEmbedding = try Embedding(s.scope("embeddings.position_embedding"), count: config.numPositions, dim: c)
        preLayerNorm = try LayerNorm(s.scope("pre_layrnorm"), dim: c, eps: config.layerNormEps)
        encoder = try PreNormEncoder(s.scope("encoder"), count: config.numHiddenLayers, dim: c, heads: config.numAttentionHeads,
                                     intermediate: config.intermediateSize,
                                     activation: Activation(huggingFace: config.hiddenAct) ?? .quickGelu, eps: config.layerNormEps)
        postLayerNorm = try LayerNorm(s.scope("post_layernorm"), dim: c, eps: config.layerNormEps)
    }

    var tokens: Int { config.patchesPerSide * config.patchesPerSide + 1 }

    /// pixels: [B, channels, S, S] -> hidden_states[0]: [B*T, C] (embeddings after pre_layrnorm).
    func embeddings(_ pixels: Tensor) -> Tensor {
        let b = pixels.shape[0], c = config.hiddenSize, tokens = tokens
        let embedded = patchEmbedding(config.patches(pixels))  // [B*g*g, C]
        let h = Tensor(uninitialized: [b * tokens, c])
        // The position table widened once per call (it may be packed with --precision): [tokens, C].
        let positions = Tensor(uninitialized: [tokens, c])
        for t in 0 ..< tokens { positionEmbedding.copyRow(t, into: positions.pointer + t * c) }
        for bi in 0 ..< b {
            let row0 = h.pointer + bi * tokens * c
            for j in 0 ..< c { row0[j] = classEmbedding.pointer[j] + positions.pointer[j] }
            for t in 1 ..< tokens {
                let src = embedded.pointer + (bi * (tokens - 1) + t - 1) * c
                let pos = positions.pointer + t * c
                let row = h.pointer + (bi * tokens + t) * c
                for j in 0 ..< c { row[j] = src[j] + pos[j] }
            }
        }
        return preLayerNorm(h)
    }

    /// transformers' `hidden_states[index]` (0 = embeddings, i = output of layer i; negative counts from the end,
    /// -1 = last layer): [B*T, C]. Only the layers up to `index` run.
    func hiddenState(_ pixels: Tensor, index: Int) -> Tensor {
        let layers = config.numHiddenLayers
        let resolved = index < 0 ? layers + 1 + index : index
        let count = min(max(resolved, 0), layers)
        return encoder(embeddings(pixels), batch: pixels.shape[0], length: tokens, causal: false, layerCount: count)
    }

    /// Several `hidden_states[i]` from one pass (same indexing as `hiddenState`), in the order asked.
    func hiddenStates(_ pixels: Tensor, indices: [Int]) -> [Tensor] {
        let layers = config.numHiddenLayers
        let resolved = indices.map { min(max($0 < 0 ? layers + 1 + $0 : $0, 0), layers) }
        var captured: [Int: Tensor] = [:]
        var h = embeddings(pixels)
        if resolved.contains(0) { captured[0] = h }
        let deepest = resolved.max() ?? 0
        for (i, layer) in encoder.layers.prefix(deepest).enumerated() {
            h = layer(h, batch: pixels.shape[0], length: tokens, causal: false)
            if resolved.contains(i + 1) { captured[i + 1] = h }
        }
        return resolved.map { captured[$0] ?? h }
    }

    /// pixels -> [B, C]: post_layernorm of the last layer's CLS token (CLIPVisionModel's pooler_output).
    func pooled(_ pixels: Tensor) -> Tensor {
        let b = pixels.shape[0], c = config.hiddenSize, tokens = tokens
        let encoded = hiddenState(pixels, index: -1)
        let cls = Tensor(uninitialized: [b, c])
        for bi in 0 ..< b { (cls.pointer + bi * c).update(from: encoded.pointer + bi * tokens * c, count: c) }
        return postLayerNorm(cls)
    }
}
