import CVLM
import Foundation
import VLMLayers
import VLMTensor

// DaViT, Florence-2's vision tower (transformers' Florence2VisionBackbone), over channels-last feature maps:
// x: [B, H, W, C] with token h * W + w, the layout of flatten(2).transpose(1, 2) that its blocks work in, so the
// convolutions, norms, attentions and MLPs need no transposes between them. Hugging Face names are relative to
// `model.vision_tower`.

// MARK: - Convolutions

/// Florence2VisionConvEmbed: a strided patch convolution with a LayerNorm before it (over the input channels,
/// `patch_prenorm`) or after it (over the output channels).
final class DaViTConvEmbed: @unchecked Sendable {
    let weight: PackedLinearWeight  // conv.weight [out, in, k, k], packed as [out, k*k*in] rows
    let bias: Tensor                // conv.bias [out]
    let norm: LayerNorm             // norm [prenorm ? in : out]
    let kernel: Int, stride: Int, padding: Int, preNorm: Bool

    init(_ s: WeightScope, config: Florence2VisionConfig, stage i: Int) throws {
        let cin = i == 0 ? config.inChannels : config.embedDim[i - 1], cout = config.embedDim[i]
        kernel = config.patchSize[i]
        stride = config.patchStride[i]
        padding = config.patchPadding[i]
        preNorm = config.patchPrenorm[i]
        let torchWeight = try s.tensor("conv.weight", shape: [cout, cin, kernel, kernel])
        weight = try PackedLinearWeight(weight: Ops.conv2dWeightRows(torchWeight).reshaped([cout, kernel * kernel * cin]),
                                        name: s.key("conv.weight"))
        bias = try s.tensor("conv.bias", shape: [cout])
        norm = try LayerNorm(s.scope("norm"), dim: preNorm ? cin : cout, eps: 1e-5)
    }

    /// Output side for an input side (0 when the input is too small for the kernel).
    func outputSize(_ size: Int) -> Int { Ops.convOutputSize(size, kernel: kernel, stride: stride, padding: padding) }

    /// x: [B, H, W, Cin] -> [B, OH, OW, Cout]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let input = preNorm ? norm(x) : x
        let y = Ops.conv2d(input, weight, kernel: (kernel, kernel), stride: stride, padding: padding, bias: bias)
        return preNorm ? y : norm(y)
    }
}

/// The depth-wise 3x3 convolutional position encoding of a block, with its residual: `conv(x) + x`.
struct DaViTPositionConv: @unchecked Sendable {
    let weight: Tensor  // weight [C, 1, 3, 3], kept as [3, 3, C]
    let bias: Tensor    // bias [C]

    init(_ s: WeightScope, dim: Int) throws {
        weight = Ops.depthwiseWeight(try s.tensor("weight", shape: [dim, 1, 3, 3]))
        bias = try s.tensor("bias", shape: [dim])
    }

    /// x: [B, H, W, C] -> x + dwconv(x)
    func callAsFunction(_ x: Tensor) -> Tensor { Ops.depthwiseConv2d(x, weight: weight, bias: bias, padding: 1, residual: true) }
}

// MARK: - Attention

/// Florence2VisionWindowAttention: multi-head self-attention inside non-overlapping window x window tiles of
/// the feature map, zero-padded at the bottom and right up to whole windows (the padded cells take part as
/// keys, their qkv being the bias, exactly as transformers pads before the projection).
final class DaViTWindowAttention: @unchecked Sendable {
    let qkv: Linear   // qkv [3C, C]: q | k | v, heads contiguous within each
    let proj: Linear  // proj [C, C]
    let heads: Int, window: Int
    /// `--precision bf16`: the projections and the attention products compute in bf16 (as every other layer).
    let bf16: Bool

    init(_ s: WeightScope, dim: Int, heads: Int, window: Int, qkvBias: Bool) throws {
        qkv = try Linear(s.scope("qkv"), in: dim, out: 3 * dim, bias: qkvBias)
        proj = try Linear(s.scope("proj"), in: dim, out: dim)
        try s.applyReducedCompute(.all, [qkv, proj])
        bf16 = s.computesInBF16
        self.heads = heads
        self.window = window
    }

    /// x: [B, H, W, C] -> [B, H, W, C]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ws = window, rows = (h + ws - 1) / ws, cols = (w + ws - 1) / ws, t = ws * ws, count = b * rows * cols
        let windows = Tensor(zeros: [count * t, c])
        forEachCell(b: b, h: h, w: w) { windowRow, imageRow in
            (windows.pointer + windowRow * c).update(from: x.pointer + imageRow * c, count: c)
        }
        let fused = qkv(windows)  // [count * t, 3C]
        let headDim = c / heads
        let attended = Ops.attention(q: fused, qOffset: 0, ldq: 3 * c, k: fused, kOffset: c, ldk: 3 * c, v: fused, vOffset: 2 * c,
                                     ldv: 3 * c, batch: count, heads: heads, queryLength: t, keyLength: t, headDim: headDim,
                                     scale: 1 / Float(headDim).squareRoot(), causal: false, bf16: bf16)
        let projected = proj(attended.reshaped([count * t, c]))
        let out = Tensor(uninitialized: x.shape)
        forEachCell(b: b, h: h, w: w) { windowRow, imageRow in
            (out.pointer + imageRow * c).update(from: projected.pointer + windowRow * c, count: c)
        }
        return out
    }

    /// body(row among the windows' tokens, row of the feature map) for every real (unpadded) cell. Windows are
    /// ordered (image, window row, window column), tokens within a window row-major.
    private func forEachCell(b: Int, h: Int, w: Int, _ body: (Int, Int) -> Void) {
        let ws = window, rows = (h + ws - 1) / ws, cols = (w + ws - 1) / ws
        for bi in 0 ..< b {
            for y in 0 ..< h {
                for xi in 0 ..< w {
                    let win = (bi * rows + y / ws) * cols + xi / ws
                    body(win * ws * ws + (y % ws) * ws + xi % ws, (bi * h + y) * w + xi)
                }
            }
        }
    }
}

/// Florence2VisionChannelAttention: attention between the channels of each group, over all tokens of an image
/// (the "sequence" is the group's channels, the "head dimension" the tokens, scale tokens^-1/2).
final class DaViTChannelAttention: @unchecked Sendable {
    let qkv: Linear   // qkv [3C, C]: q | k | v, groups contiguous within each
    let proj: Linear  // proj [C, C]
    let groups: Int

    init(_ s: WeightScope, dim: Int, groups: Int, qkvBias: Bool) throws {
        qkv = try Linear(s.scope("qkv"), in: dim, out: 3 * dim, bias: qkvBias)
        proj = try Linear(s.scope("proj"), in: dim, out: dim)
        try s.applyReducedCompute(.all, [qkv, proj])
        self.groups = groups
    }

    /// x: [B, H, W, C] -> [B, H, W, C]. Per image and group g (channels g*gd ..< (g+1)*gd of q, k, v, each
    /// [N, gd] read in place from the fused projection, row stride 3C): S = softmax(scale q^T k) [gd, gd], then
    /// out = v S^T [N, gd] written straight into the token-major output, so nothing is transposed.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, c) = (x.shape[0], x.shape[3]), n = x.shape[1] * x.shape[2], gd = c / groups
        let fused = qkv(x)  // [B, H, W, 3C]
        let mixed = Tensor(uninitialized: x.shape)
        let scores = Tensor(uninitialized: [gd, gd])
        let scale = 1 / Float(n).squareRoot()
        withExtendedLifetime((fused, mixed, scores)) {
            for bi in 0 ..< b {
                let image = UnsafePointer(fused.pointer + bi * n * 3 * c), out = mixed.pointer + bi * n * c
                for g in 0 ..< groups {
                    let q = image + g * gd, k = q + c, v = q + 2 * c
                    let s1 = vlm_sgemm(1, 0, Int64(gd), Int64(gd), Int64(n), scale, q, Int64(3 * c), k, Int64(3 * c), 0, scores.pointer, Int64(gd))
                    vlm_softmax(scores.pointer, Int64(gd), Int64(gd))
                    let s2 = vlm_sgemm(0, 1, Int64(n), Int64(gd), Int64(gd), 1, v, Int64(3 * c), scores.pointer, Int64(gd), 0,
                                       out + g * gd, Int64(c))
                    if s1 != 0 || s2 != 0 { fatalError("out of memory for the scratch of channel attention over \(n) tokens") }  // safe: memory exhaustion, not input
                }
            }
        }
        return proj(mixed)
    }
}

/// dst[j * rows + i] = src[i * cols + j]: a [rows, cols] block transposed to [cols, rows].
func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
    let tile = 32
    for i0 in stride(from: 0, to: rows, by: tile) {
        for j0 in stride(from: 0, to: cols, by: tile) {
            for i in i0 ..< min(i0 + tile, rows) {
                for j in j0 ..< min(j0 + tile, cols) { dst[j * rows + i] = src[i * cols + j] }
            }
        }
    }
}

// MARK: - Blocks and stages

/// Florence2VisionSpatialBlock or Florence2VisionChannelBlock: x = x + conv1(x); x += mixer(norm1(x));
/// x = x + conv2(x); x += ffn(norm2(x)).
final class DaViTBlock: @unchecked Sendable {
    enum Mixer { case window(DaViTWindowAttention), channel(DaViTChannelAttention) }

    let conv1: DaViTPositionConv  // conv1
    let norm1: LayerNorm          // norm1
    let mixer: Mixer              // window_attn | channel_attn
    let conv2: DaViTPositionConv  // conv2
    let norm2: LayerNorm          // norm2
    let ffn: MLP                  // ffn.fc1, ffn.fc2

    init(_ s: WeightScope, config: Florence2VisionConfig, stage i: Int, spatial: Bool) throws {
        let dim = config.embedDim[i]
        conv1 = try DaViTPositionConv(s.scope("conv1"), dim: dim)
        norm1 = try LayerNorm(s.scope("norm1"), dim: dim, eps: 1e-5)
        mixer = spatial
            ? .window(try DaViTWindowAttention(s.scope("window_attn"), dim: dim, heads: config.numHeads[i],
                                               window: config.windowSize, qkvBias: config.qkvBias))
            : .channel(try DaViTChannelAttention(s.scope("channel_attn"), dim: dim, groups: config.numGroups[i], qkvBias: config.qkvBias))
        conv2 = try DaViTPositionConv(s.scope("conv2"), dim: dim)
        norm2 = try LayerNorm(s.scope("norm2"), dim: dim, eps: 1e-5)
        ffn = try MLP(s.scope("ffn"), dim: dim, hidden: config.mlpHidden(i), activation: config.activation ?? .gelu)
    }

    /// x: [B, H, W, C] -> [B, H, W, C]
    func callAsFunction(_ x: Tensor) -> Tensor {
        let h = conv1(x)
        let normed = norm1(h)
        switch mixer {
        case .window(let attention): Ops.addInPlace(h, attention(normed))
        case .channel(let attention): Ops.addInPlace(h, attention(normed))
        }
        let g = conv2(h)
        Ops.addInPlace(g, ffn(norm2(g)))
        return g
    }
}

/// One DaViT stage: convs.{i} then blocks.{i}.{j}.{spatial_block, channel_block}.
final class DaViTStage: @unchecked Sendable {
    let embed: DaViTConvEmbed
    let blocks: [(spatial: DaViTBlock, channel: DaViTBlock)]

    init(_ s: WeightScope, config: Florence2VisionConfig, stage i: Int) throws {
        embed = try DaViTConvEmbed(s.scope("convs.\(i)"), config: config, stage: i)
        blocks = try (0 ..< config.depths[i]).map { j in
            let b = s.scope("blocks.\(i).\(j)")
            return (try DaViTBlock(b.scope("spatial_block"), config: config, stage: i, spatial: true),
                    try DaViTBlock(b.scope("channel_block"), config: config, stage: i, spatial: false))
        }
    }

    /// x: [B, H, W, Cin] -> [B, OH, OW, C]
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = embed(x)
        for block in blocks { h = block.channel(block.spatial(h)) }
        return h
    }
}
