import Foundation
import VLMModels
import VLMTensor

extension CLIPVisionConfig {
    var encoderSpec: EncoderSpec {
        EncoderSpec(dim: hiddenSize, heads: numAttentionHeads, intermediate: intermediateSize,
                    activation: Activation(huggingFace: hiddenAct) ?? .quickGelu, eps: layerNormEps)
    }
}

extension CLIPTextConfig {
    var encoderSpec: EncoderSpec {
        EncoderSpec(dim: hiddenSize, heads: numAttentionHeads, intermediate: intermediateSize,
                    activation: Activation(huggingFace: hiddenAct) ?? .quickGelu, eps: layerNormEps)
    }
}

// MARK: - Vision

/// Caches of CLIPVisionTransformer + visual_projection for one batch.
public struct VisionCache {
    let batch: Int
    let tokens: Int
    let patchEmbedding: LinearCache
    let preLayerNorm: LayerNormCache
    let layers: [EncoderLayerCache]
    let postLayerNorm: LayerNormCache
    let projection: LinearCache
}

/// Forward and backward of the image tower: im2col patches · Wᵀ -> [CLS] + positions -> pre_layrnorm ->
/// encoder -> post_layernorm(CLS) -> visual_projection (transformers' CLIPVisionTransformer, same im2col order as
/// the inference CLIPModel via `CLIPVisionConfig.patches`).
enum VisionTowerOp {
    /// pixels: [B, channels, S, S] -> image features [B, P] (get_image_features, unnormalised).
    static func forward(_ pixels: Tensor, params: ParameterSet, config: CLIPVisionConfig) -> (Tensor, VisionCache) {
        let b = pixels.shape[0], c = config.hiddenSize, g = config.patchesPerSide, tokens = g * g + 1
        let (h, patchCache) = PatchEmbeddingOp.forward(pixels, params: params, prefix: "vision_model", config: config)
        var (x, preCache) = LayerNormOp.forward(h, weight: params["vision_model.pre_layrnorm.weight"],
                                                bias: params["vision_model.pre_layrnorm.bias"], eps: config.layerNormEps)
        var layers: [EncoderLayerCache] = []
        for l in 0 ..< config.numHiddenLayers {
            let (y, cache) = EncoderLayerOp.forward(x, params: params, prefix: "vision_model.encoder.layers.\(l)",
                                                    spec: config.encoderSpec, batch: b, length: tokens, causal: false)
            layers.append(cache)
            x = y
        }
        let pooled = Tensor(uninitialized: [b, c])
        for bi in 0 ..< b { (pooled.pointer + bi * c).update(from: x.pointer + bi * tokens * c, count: c) }
        let (normed, postCache) = LayerNormOp.forward(pooled, weight: params["vision_model.post_layernorm.weight"],
                                                      bias: params["vision_model.post_layernorm.bias"], eps: config.layerNormEps)
        let (features, projCache) = LinearOp.forward(normed, weight: params["visual_projection.weight"], bias: nil)
        return (features, VisionCache(batch: b, tokens: tokens, patchEmbedding: patchCache, preLayerNorm: preCache,
                                       layers: layers, postLayerNorm: postCache, projection: projCache))
    }

    /// dFeatures: [B, P]. `body == false` stops after visual_projection (projection-only training).
    static func backward(_ dFeatures: Tensor, cache: VisionCache, params: ParameterSet, config: CLIPVisionConfig,
                         grads: Gradients, body: Bool) {
        let b = cache.batch, tokens = cache.tokens, c = config.hiddenSize
        let proj = LinearOp.backward(dFeatures, cache: cache.projection, weight: params["visual_projection.weight"],
                                     hasBias: false, needInput: body)
        grads.add("visual_projection.weight", proj.dw)
        guard body, let dNormed = proj.dx else { return }
        let post = LayerNormOp.backward(dNormed, cache: cache.postLayerNorm, weight: params["vision_model.post_layernorm.weight"])
        grads.add("vision_model.post_layernorm.weight", post.dw)
        grads.add("vision_model.post_layernorm.bias", post.db)
        // Only the CLS rows are pooled; every other row starts with zero gradient.
        var dx = Tensor(zeros: [b * tokens, c])
        for bi in 0 ..< b { (dx.pointer + bi * tokens * c).update(from: post.dx.pointer + bi * c, count: c) }
        for l in stride(from: config.numHiddenLayers - 1, through: 0, by: -1) {
            dx = EncoderLayerOp.backward(dx, cache: cache.layers[l], params: params, prefix: "vision_model.encoder.layers.\(l)", grads: grads)
        }
        let pre = LayerNormOp.backward(dx, cache: cache.preLayerNorm, weight: params["vision_model.pre_layrnorm.weight"])
        grads.add("vision_model.pre_layrnorm.weight", pre.dw)
        grads.add("vision_model.pre_layrnorm.bias", pre.db)
        PatchEmbeddingOp.backward(pre.dx, cache: cache.patchEmbedding, batch: b, params: params, prefix: "vision_model",
                                  config: config, grads: grads)
    }
}

// MARK: - Text

/// Caches of CLIPTextTransformer + text_projection for one batch.
public struct TextCache {
    let ids: [[Int]]
    /// Tokens kept per sequence: up to and including the pooled (EOS) token.
    let lengths: [Int]
    /// Padded length of the batch (the longest kept sequence).
    let length: Int
    let layers: [EncoderLayerCache]
    let finalLayerNorm: LayerNormCache
    let projection: LinearCache
}

/// Forward and backward of the text tower: token + position embeddings -> causal encoder -> final_layer_norm at
/// the pooled token -> text_projection. Each sequence is cut after its pooled token (the inference model's rule:
/// causal attention keeps later tokens out of it) and padded with zero rows to the batch's longest.
enum TextTowerOp {
    /// ids: B validated sequences -> text features [B, P] (get_text_features, unnormalised).
    static func forward(_ ids: [[Int]], params: ParameterSet, config: CLIPTextConfig) -> (Tensor, TextCache) {
        let b = ids.count, c = config.hiddenSize
        let lengths = ids.map { config.pooledIndex($0) + 1 }
        let t = lengths.max() ?? 1
        let tok = params["text_model.embeddings.token_embedding.weight"].pointer
        let pos = params["text_model.embeddings.position_embedding.weight"].pointer
        var x = Tensor(zeros: [b * t, c])
        for bi in 0 ..< b {
            for p in 0 ..< lengths[bi] {
                let row = x.pointer + (bi * t + p) * c, e = tok + ids[bi][p] * c
                for j in 0 ..< c { row[j] = e[j] + pos[p * c + j] }
            }
        }
        var layers: [EncoderLayerCache] = []
        for l in 0 ..< config.numHiddenLayers {
            let (y, cache) = EncoderLayerOp.forward(x, params: params, prefix: "text_model.encoder.layers.\(l)",
                                                    spec: config.encoderSpec, batch: b, length: t, causal: true)
            layers.append(cache)
            x = y
        }
        let pooled = Tensor(uninitialized: [b, c])
        for bi in 0 ..< b { (pooled.pointer + bi * c).update(from: x.pointer + (bi * t + lengths[bi] - 1) * c, count: c) }
        let (normed, lnCache) = LayerNormOp.forward(pooled, weight: params["text_model.final_layer_norm.weight"],
                                                    bias: params["text_model.final_layer_norm.bias"], eps: config.layerNormEps)
        let (features, projCache) = LinearOp.forward(normed, weight: params["text_projection.weight"], bias: nil)
        return (features, TextCache(ids: ids, lengths: lengths, length: t, layers: layers, finalLayerNorm: lnCache, projection: projCache))
    }

    /// dFeatures: [B, P]. `body == false` stops after text_projection.
    static func backward(_ dFeatures: Tensor, cache: TextCache, params: ParameterSet, config: CLIPTextConfig,
                         grads: Gradients, body: Bool) {
        let b = cache.ids.count, t = cache.length, c = config.hiddenSize
        let proj = LinearOp.backward(dFeatures, cache: cache.projection, weight: params["text_projection.weight"],
                                     hasBias: false, needInput: body)
        grads.add("text_projection.weight", proj.dw)
        guard body, let dNormed = proj.dx else { return }
        let ln = LayerNormOp.backward(dNormed, cache: cache.finalLayerNorm, weight: params["text_model.final_layer_norm.weight"])
        grads.add("text_model.final_layer_norm.weight", ln.dw)
        grads.add("text_model.final_layer_norm.bias", ln.db)
        var dx = Tensor(zeros: [b * t, c])
        for bi in 0 ..< b {
            (dx.pointer + (bi * t + cache.lengths[bi] - 1) * c).update(from: ln.dx.pointer + bi * c, count: c)
        }
        let lengths = cache.lengths
        for l in stride(from: config.numHiddenLayers - 1, through: 0, by: -1) {
            dx = EncoderLayerOp.backward(dx, cache: cache.layers[l], params: params, prefix: "text_model.encoder.layers.\(l)", grads: grads)
            // Padding rows carry no gradient (causality already makes it zero; this keeps it exact).
            zeroRows(dx, batch: b, length: t) { bi, p in p < lengths[bi] }
        }
        // Embedding gradients: scatter-add into the token rows used, sum over the batch for positions.
        let tokShape = params["text_model.embeddings.token_embedding.weight"].shape
        let posShape = params["text_model.embeddings.position_embedding.weight"].shape
        let dTok = Tensor(zeros: tokShape), dPos = Tensor(zeros: posShape)
        for bi in 0 ..< b {
            for p in 0 ..< lengths[bi] {
                let row = dx.pointer + (bi * t + p) * c, dt = dTok.pointer + cache.ids[bi][p] * c, dp = dPos.pointer + p * c
                for j in 0 ..< c {
                    dt[j] += row[j]
                    dp[j] += row[j]
                }
            }
        }
        grads.add("text_model.embeddings.token_embedding.weight", dTok)
        grads.add("text_model.embeddings.position_embedding.weight", dPos)
    }
}
