import Foundation
import VLMModels
import VLMTensor

/// CLIPVisionEmbeddings: im2col patches · Wᵀ, [CLS] prepended, position embeddings added (before pre_layrnorm).
/// Parameter names under `prefix` ("vision_model" in CLIPModel, "vision_tower.vision_model" in llava-hf).
enum PatchEmbeddingOp {
    /// pixels: [B, channels, S, S] -> [B*T, C], T = patches + 1.
    static func forward(_ pixels: Tensor, params: ParameterSet, prefix p: String, config: CLIPVisionConfig) -> (Tensor, LinearCache) {
        let b = pixels.shape[0], c = config.hiddenSize, g = config.patchesPerSide, tokens = g * g + 1
        let conv = params["\(p).embeddings.patch_embedding.weight"]
        let (embedded, patchCache) = LinearOp.forward(config.patches(pixels), weight: conv.reshaped([c, conv.count / c]), bias: nil)
        let cls = params["\(p).embeddings.class_embedding"].pointer
        let pos = params["\(p).embeddings.position_embedding.weight"].pointer
        let h = Tensor(uninitialized: [b * tokens, c])
        for bi in 0 ..< b {
            let row0 = h.pointer + bi * tokens * c
            for j in 0 ..< c { row0[j] = cls[j] + pos[j] }
            for t in 1 ..< tokens {
                let src = embedded.pointer + (bi * (tokens - 1) + t - 1) * c, row = h.pointer + (bi * tokens + t) * c
                for j in 0 ..< c { row[j] = src[j] + pos[t * c + j] }
            }
        }
        return (h, patchCache)
    }

    /// dh: [B*T, C] (gradient of the embeddings) -> class, position and patch-conv gradients into `grads`.
    static func backward(_ dh: Tensor, cache: LinearCache, batch b: Int, params: ParameterSet, prefix p: String,
                         config: CLIPVisionConfig, grads: Gradients) {
        let c = config.hiddenSize, tokens = config.patchesPerSide * config.patchesPerSide + 1
        // h[b, 0] = cls + pos[0]; h[b, t] = patch(b, t-1) + pos[t]: position and class gradients sum over the batch.
        let dCls = Tensor(zeros: [c]), dPos = Tensor(zeros: [tokens, c]), dEmbedded = Tensor(uninitialized: [b * (tokens - 1), c])
        for bi in 0 ..< b {
            for t in 0 ..< tokens {
                let row = dh.pointer + (bi * tokens + t) * c
                for j in 0 ..< c { dPos.pointer[t * c + j] += row[j] }
                if t == 0 {
                    for j in 0 ..< c { dCls.pointer[j] += row[j] }
                } else {
                    (dEmbedded.pointer + (bi * (tokens - 1) + t - 1) * c).update(from: row, count: c)
                }
            }
        }
        grads.add("\(p).embeddings.class_embedding", dCls)
        grads.add("\(p).embeddings.position_embedding.weight", dPos)
        let conv = params["\(p).embeddings.patch_embedding.weight"]
        let patch = LinearOp.backward(dEmbedded, cache: cache, weight: conv.reshaped([c, conv.count / c]), hasBias: false, needInput: false)
        grads.add("\(p).embeddings.patch_embedding.weight", patch.dw, shape: conv.shape)
    }
}

/// Caches of the LLaVA image-feature path for one batch.
public struct LlavaVisionCache {
    let batch: Int
    let patch: LinearCache
    let preLayerNorm: LayerNormCache
    /// Encoder layers 0 ..< deepest selected hidden state.
    let layers: [EncoderLayerCache]
    /// hidden_states indices of the selected layers, resolved (0 = embeddings after pre_layrnorm).
    let selected: [Int]
}

/// LlavaModel.get_image_features' vision half: hidden_states[i] for each vision_feature_layer (only the layers up
/// to the deepest one run), CLS dropped with strategy "default", concatenated along the channel axis.
enum LlavaVisionOp {
    static let prefix = "vision_tower.vision_model"

    /// pixels: [B, channels, S, S] -> [B * keep, C * layers].
    static func forward(_ pixels: Tensor, params: ParameterSet, config: LlavaConfig) -> (Tensor, LlavaVisionCache) {
        let v = config.visionConfig, b = pixels.shape[0], c = v.hiddenSize, tokens = v.patchesPerSide * v.patchesPerSide + 1
        let count = v.numHiddenLayers
        let selected = config.visionFeatureLayers.map { min(max($0 < 0 ? count + 1 + $0 : $0, 0), count) }
        let (h, patch) = PatchEmbeddingOp.forward(pixels, params: params, prefix: prefix, config: v)
        var (x, pre) = LayerNormOp.forward(h, weight: params["\(prefix).pre_layrnorm.weight"], bias: params["\(prefix).pre_layrnorm.bias"],
                                          eps: v.layerNormEps)
        var states: [Int: Tensor] = [0: x]
        var layers: [EncoderLayerCache] = []
        for l in 0 ..< (selected.max() ?? 0) {
            let (y, cache) = EncoderLayerOp.forward(x, params: params, prefix: "\(prefix).encoder.layers.\(l)", spec: v.encoderSpec,
                                                    batch: b, length: tokens, causal: false)
            layers.append(cache)
            x = y
            states[l + 1] = y
        }
        let keep = config.imageTokensPerImage, skip = tokens - keep, width = c * selected.count
        let out = Tensor(uninitialized: [b * keep, width])
        for (li, index) in selected.enumerated() {
            guard let state = states[index] else { continue }
            for img in 0 ..< b {
                for t in 0 ..< keep {
                    (out.pointer + (img * keep + t) * width + li * c).update(from: state.pointer + (img * tokens + skip + t) * c, count: c)
                }
            }
        }
        return (out, LlavaVisionCache(batch: b, patch: patch, preLayerNorm: pre, layers: layers, selected: selected))
    }

    /// dFeatures: [B * keep, C * layers] -> gradients of every vision parameter on the path into `grads`.
    static func backward(_ dFeatures: Tensor, cache: LlavaVisionCache, params: ParameterSet, config: LlavaConfig, grads: Gradients) {
        let v = config.visionConfig, b = cache.batch, c = v.hiddenSize, tokens = v.patchesPerSide * v.patchesPerSide + 1
        let keep = config.imageTokensPerImage, skip = tokens - keep, width = c * cache.selected.count
        // Gradient arriving at each selected hidden state.
        var incoming: [Int: Tensor] = [:]
        for (li, index) in cache.selected.enumerated() {
            let d = incoming[index] ?? Tensor(zeros: [b * tokens, c])
            incoming[index] = d
            for img in 0 ..< b {
                for t in 0 ..< keep {
                    let dst = d.pointer + (img * tokens + skip + t) * c, src = dFeatures.pointer + (img * keep + t) * width + li * c
                    for j in 0 ..< c { dst[j] += src[j] }
                }
            }
        }
        let deepest = cache.layers.count
        var dx = incoming[deepest] ?? Tensor(zeros: [b * tokens, c])
        for l in stride(from: deepest - 1, through: 0, by: -1) {
            dx = EncoderLayerOp.backward(dx, cache: cache.layers[l], params: params, prefix: "\(prefix).encoder.layers.\(l)", grads: grads)
            if let d = incoming[l] { Ops.addInPlace(dx, d) }
        }
        let pre = LayerNormOp.backward(dx, cache: cache.preLayerNorm, weight: params["\(prefix).pre_layrnorm.weight"])
        grads.add("\(prefix).pre_layrnorm.weight", pre.dw)
        grads.add("\(prefix).pre_layrnorm.bias", pre.db)
        PatchEmbeddingOp.backward(pre.dx, cache: cache.patch, batch: b, params: params, prefix: prefix, config: v, grads: grads)
    }
}
