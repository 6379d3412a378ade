import Foundation
import VLMImage
import VLMLayers
import VLMTensor

// MARK: - Configuration

/// `vision_config` of a SiglipConfig or Siglip2Config. Defaults are transformers' SiglipVisionConfig /
/// Siglip2VisionConfig defaults (they agree; `image_size` is SigLIP's, `num_patches` SigLIP2's).
public struct SigLIPVisionConfig: Decodable, Sendable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    /// SigLIP: side of the square input (the position table has (image_size / patch_size)^2 rows).
    public var imageSize = 224
    public var patchSize = 16
    /// SigLIP2: rows of the position table, a square grid resized per image.
    public var numPatches = 256
    public var hiddenAct = "gelu_pytorch_tanh"
    public var layerNormEps: Float = 1e-6
    public var visionUseHead = true

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
        case patchSize = "patch_size", numPatches = "num_patches", hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps", visionUseHead = "vision_use_head"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? numChannels
        imageSize = try c.squareSize(.imageSize, model: "SigLIP") ?? imageSize
        patchSize = try c.squareSize(.patchSize, model: "SigLIP") ?? patchSize
        numPatches = try c.decodeIfPresent(Int.self, forKey: .numPatches) ?? numPatches
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? layerNormEps
        visionUseHead = try c.decodeIfPresent(Bool.self, forKey: .visionUseHead) ?? visionUseHead
    }

    /// SigLIP: patches per side of the fixed input.
    public var patchesPerSide: Int { imageSize / patchSize }
    /// SigLIP2: side of the square position table (int(num_patches ** 0.5)).
    public var positionGridSide: Int { Int(Double(numPatches).squareRoot().rounded(.down)) }
    /// Width of a flattened patch.
    public var patchWidth: Int { numChannels * patchSize * patchSize }

    /// The checks of a vision config; `naflex` selects SigLIP2's position table rule.
    func validate(naflex: Bool, fail: (String) -> ModelError) throws {
        for (name, value) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                              ("num_attention_heads", numAttentionHeads), ("num_channels", numChannels),
                              ("patch_size", patchSize), (naflex ? "num_patches" : "image_size", naflex ? numPatches : imageSize)]
        where value <= 0 || value > 1 << 20 {
            throw fail("vision_config.\(name) = \(value) is out of range")
        }
        if numHiddenLayers < 0 || numHiddenLayers > 1024 { throw fail("vision_config.num_hidden_layers = \(numHiddenLayers) is out of range") }
        if hiddenSize % numAttentionHeads != 0 {
            throw fail("vision_config.hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        if naflex {
            let g = positionGridSide
            if g * g != numPatches { throw fail("vision_config.num_patches \(numPatches) is not a square (the position table is a grid)") }
        } else if imageSize % patchSize != 0 {
            throw fail("vision_config.image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        if Activation(huggingFace: hiddenAct) == nil { throw fail("vision_config.hidden_act '\(hiddenAct)' is not supported") }
    }
}

// MARK: - Vision transformer

/// SiglipVisionTransformer / Siglip2VisionTransformer (the SiglipVisionModel body, shared with the VLMs that
/// use SigLIP towers): patch embedding + learned positions (no class token) -> encoder -> post_layernorm ->
/// optional attention-pooling head. Hugging Face names are relative to the `vision_model` scope.
final class SigLIPVisionTransformer: @unchecked Sendable {
    /// How pixels arrive: SigLIP's conv over [B, ch, S, S], or SigLIP2's Linear over [B, N, p*p*ch] patches.
    enum PatchInput: Sendable { case convolution, flattened }

    let config: SigLIPVisionConfig
    let input: PatchInput
    let patchEmbedding: Linear     // embeddings.patch_embedding.{weight,bias}: conv [C, ch, p, p] or linear [C, p*p*ch]
    let positionTable: Tensor      // embeddings.position_embedding.weight [positions, C]
    let encoder: PreNormEncoder    // encoder.layers.{i}
    let postLayerNorm: LayerNorm   // post_layernorm
    let head: AttentionPoolingHead?  // head.* (vision_use_head)

    init(_ s: WeightScope, config: SigLIPVisionConfig, input: PatchInput) throws {
        self.config = config
        self.input = input
        let c = config.hiddenSize, p = config.patchSize, ch = config.numChannels
        switch input {
        case .convolution:
            patchEmbedding = try Linear(patchConvolution: s.scope("embeddings.patch_embedding"), out: c, channels: ch, patch: p, bias: true)
            positionTable = try s.tensor("embeddings.position_embedding.weight", shape: [config.patchesPerSide * config.patchesPerSide, c])
        case .flattened:
            // Siglip2VisionEmbeddings: nn.Linear(num_channels * p * p, C) over the processor's (ky, kx, c) patches.
            patchEmbedding = try Linear(s.scope("embeddings.patch_embedding"), in: ch * p * p, out: c)
            try s.applyReducedCompute(.all, [patchEmbedding])
            positionTable = try s.tensor("embeddings.position_embedding.weight", shape: [config.numPatches, c])
        }
        encoder = try PreNormEncoder(s.scope("encoder"), count: config.numHiddenLayers, dim: c, heads: config.numAttentionHeads,
                                     intermediate: config.intermediateSize,
                                     activation: Activation(huggingFace: config.hiddenAct) ?? .geluTanh, eps: config.layerNormEps)
        postLayerNorm = try LayerNorm(s.scope("post_layernorm"), dim: c, eps: config.layerNormEps)
        head = try config.visionUseHead ? AttentionPoolingHead(s.scope("head"), config: config) : nil
    }

    /// SigLIP. pixels: [B, ch, S, S] -> embeddings [B*T, C] (T = (S/p)^2): conv patches + the position table.
    func embeddings(pixels: Tensor) -> Tensor {
        let b = pixels.shape[0], g = config.patchesPerSide, t = g * g
        let patches = im2colPatches(pixels, channels: config.numChannels, size: config.imageSize, patch: config.patchSize)
        let h = patchEmbedding(patches)
        for bi in 0 ..< b { addRows(h, at: bi * t, positionTable.pointer, rows: t) }
        return h
    }

    /// SigLIP2 NaFlex. patches: [B, N, p*p*ch], grids: per image (rows, columns) with rows*columns <= N ->
    /// embeddings [B*N, C]: Linear patches + the position table resized to each grid (antialiased bilinear);
    /// padding positions get the resized grid's first position, as resize_positional_embeddings pads.
    func embeddings(patches: Tensor, grids: [PatchGrid]) -> Tensor {
        let b = patches.shape[0], n = patches.shape[1], c = config.hiddenSize, side = config.positionGridSide
        let h = patchEmbedding(patches.reshaped([b * n, patches.shape[2]]))
        var cache: [[Int]: Tensor] = [:]
        for (bi, grid) in grids.enumerated() {
            let key = [grid.rows, grid.columns]
            let resized = cache[key] ?? AntialiasedBilinear.resize(positionTable.reshaped([side, side, c]), side: side,
                                                                   rows: grid.rows, columns: grid.columns)
            cache[key] = resized
            let real = grid.rows * grid.columns
            addRows(h, at: bi * n, resized.pointer, rows: real)
            for r in real ..< n { addRows(h, at: bi * n + r, resized.pointer, rows: 1) }
        }
        return h
    }

    /// h[start + r] += src[r] for r < rows (rows of width C).
    private func addRows(_ h: Tensor, at start: Int, _ src: UnsafePointer<Float>, rows: Int) {
        let c = config.hiddenSize
        let dst = h.pointer + start * c
        for i in 0 ..< rows * c { dst[i] += src[i] }
    }

    /// embeddings: [B*T, C] -> last_hidden_state [B*T, C] (encoder, then post_layernorm). keyMask: [B*T], 0 for
    /// padded patches (create_bidirectional_mask of pixel_attention_mask), or nil.
    func lastHiddenState(_ embeddings: Tensor, batch: Int, length: Int, keyMask: [UInt8]?) -> Tensor {
        postLayerNorm(encoder(embeddings, batch: batch, length: length, causal: false, keyMask: keyMask))
    }

    /// last_hidden_state [B*T, C] -> pooler_output [B, C] through the head; nil without a head.
    func pooled(_ hidden: Tensor, batch: Int, length: Int, keyMask: [UInt8]?) -> Tensor? {
        head?(hidden, batch: batch, length: length, keyMask: keyMask)
    }
}

// MARK: - Attention pooling head

/// SiglipMultiheadAttentionPoolingHead: one learned probe attends over the tokens (torch nn.MultiheadAttention,
/// padded keys ignored through key_padding_mask), then h + mlp(layernorm(h)).
final class AttentionPoolingHead: @unchecked Sendable {
    let probeQuery: Tensor  // head.probe [1, 1, C] through the q rows of in_proj: [C]
    let keyValue: Linear    // head.attention.in_proj_weight rows C..<3C [2C, C], in_proj_bias[C..<3C]
    let out: Linear         // head.attention.out_proj.{weight [C, C], bias [C]}
    let layerNorm: LayerNorm  // head.layernorm
    let mlp: MLP            // head.mlp.fc1, head.mlp.fc2
    let heads: Int

    init(_ s: WeightScope, config: SigLIPVisionConfig) throws {
        let c = config.hiddenSize
        heads = config.numAttentionHeads
        let probe = try s.tensor("probe", shape: [1, 1, c])
        let inWeight = try s.tensor("attention.in_proj_weight", shape: [3 * c, c])  // q | k | v rows
        let inBias = try s.tensor("attention.in_proj_bias", shape: [3 * c])
        // The query is the same for every image: project the probe once, in float32 like the reference.
        let q = Tensor(zeros: [c])
        for i in 0 ..< c {
            var acc: Float = inBias.pointer[i]
            for j in 0 ..< c { acc += inWeight.pointer[i * c + j] * probe.pointer[j] }
            q.pointer[i] = acc
        }
        probeQuery = q
        let kvWeight = Tensor(uninitialized: [2 * c, c]), kvBias = Tensor(uninitialized: [2 * c])
        kvWeight.pointer.update(from: inWeight.pointer + c * c, count: 2 * c * c)
        kvBias.pointer.update(from: inBias.pointer + c, count: 2 * c)
        keyValue = try Linear(weight: kvWeight, bias: kvBias)
        out = try Linear(s.scope("attention.out_proj"), in: c, out: c)
        layerNorm = try LayerNorm(s.scope("layernorm"), dim: c, eps: config.layerNormEps)
        mlp = try MLP(s.scope("mlp"), dim: c, hidden: config.intermediateSize,
                      activation: Activation(huggingFace: config.hiddenAct) ?? .geluTanh)
    }

    /// x: [B*T, C] (post-layernorm tokens), keyMask: [B*T] with 0 for padding, or nil -> [B, C].
    func callAsFunction(_ x: Tensor, batch: Int, length: Int, keyMask: [UInt8]?) -> Tensor {
        let c = probeQuery.count
        let kv = keyValue(x)  // [B*T, k | v]
        let queries = Tensor(uninitialized: [batch, c])
        for b in 0 ..< batch { (queries.pointer + b * c).update(from: probeQuery.pointer, count: c) }
        let attended = Ops.attention(
            q: queries, ldq: c, k: kv, kOffset: 0, ldk: 2 * c, v: kv, vOffset: c, ldv: 2 * c,
            batch: batch, heads: heads, queryLength: 1, keyLength: length, headDim: c / heads,
            scale: 1 / Float(c / heads).squareRoot(), causal: false, keyMask: keyMask)
        let h = out(attended.reshaped([batch, c]))
        Ops.addInPlace(h, mlp(layerNorm(h)))  // residual + mlp(layernorm(residual))
        return h
    }
}
