import CVLM

/// Convolutions over channels-last images (see cvlm_conv.h): x: [B, H, W, C], the token-major layout of the
/// linear layers (token = h * W + w). Shape mismatches are programmer errors (preconditions); callers validate
/// user input (image sizes, checkpoint shapes) first.
extension Ops {
    /// Output size of a convolution along one axis: floor((size + 2 pad - kernel) / stride) + 1 (0 if empty).
    public static func convOutputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        guard stride > 0, size + 2 * padding >= kernel else { return 0 }
        return (size + 2 * padding - kernel) / stride + 1
    }

    /// Dense conv2d: x: [B, H, W, Cin] -> [B, OH, OW, Cout]. weight: Cout x (kh*kw*Cin) packed with columns in
    /// (kh, kw, cin) order (see conv2dWeightRows); bias: [Cout] or nil. im2col + the packed GEMM.
    public static func conv2d(_ x: Tensor, _ weight: PackedLinearWeight, kernel: (height: Int, width: Int),
                              stride: Int, padding: Int, bias: Tensor?) -> Tensor {
        precondition(x.rank == 4, "conv2d: x \(x.shape) is not [B, H, W, C]")
        let (b, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(weight.inFeatures == kernel.height * kernel.width * cin, "conv2d: weight [\(weight.outFeatures), \(weight.inFeatures)] vs kernel \(kernel) x \(cin) channels")
        if let bias { precondition(bias.count == weight.outFeatures, "conv2d: bias \(bias.shape)") }
        let oh = convOutputSize(h, kernel: kernel.height, stride: stride, padding: padding)
        let ow = convOutputSize(w, kernel: kernel.width, stride: stride, padding: padding)
        precondition(oh > 0 && ow > 0, "conv2d: empty output for \(x.shape), kernel \(kernel), stride \(stride), padding \(padding)")
        let y = Tensor(uninitialized: [b, oh, ow, weight.outFeatures])
        let status = withExtendedLifetime((x, weight, bias)) {
            vlm_conv2d_nhwc(x.pointer, Int64(b), Int64(h), Int64(w), Int64(cin), weight.handle, Int64(kernel.height),
                            Int64(kernel.width), Int64(stride), Int64(padding), bias?.pointer, y.pointer)
        }
        precondition(status == 0, "conv2d: scratch allocation failed")
        return y
    }

    /// Reference twin of conv2d: weight unpacked [Cout, kh, kw, Cin], direct loops in double.
    public static func conv2dNaive(_ x: Tensor, weight: Tensor, stride: Int, padding: Int, bias: Tensor?) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && weight.shape[3] == x.shape[3], "conv2dNaive: x \(x.shape) weight \(weight.shape)")
        let (b, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let oh = convOutputSize(h, kernel: kh, stride: stride, padding: padding)
        let ow = convOutputSize(w, kernel: kw, stride: stride, padding: padding)
        let y = Tensor(zeros: [b, oh, ow, cout])
        withExtendedLifetime((x, weight, bias)) {
            vlm_conv2d_nhwc_naive(x.pointer, Int64(b), Int64(h), Int64(w), Int64(cin), weight.pointer, Int64(cout),
                                  Int64(kh), Int64(kw), Int64(stride), Int64(padding), bias?.pointer, y.pointer)
        }
        return y
    }

    /// PyTorch's conv weight [Cout, Cin, kh, kw] permuted to [Cout, kh, kw, Cin] (the rows conv2d packs).
    public static func conv2dWeightRows(_ weight: Tensor) -> Tensor {
        precondition(weight.rank == 4, "conv2dWeightRows: \(weight.shape)")
        let (cout, cin, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let out = Tensor(uninitialized: [cout, kh, kw, cin])
        for o in 0 ..< cout {
            for c in 0 ..< cin {
                for i in 0 ..< kh {
                    for j in 0 ..< kw {
                        out.pointer[((o * kh + i) * kw + j) * cin + c] = weight.pointer[((o * cin + c) * kh + i) * kw + j]
                    }
                }
            }
        }
        return out
    }

    /// Depth-wise conv2d, stride 1: x: [B, H, W, C] -> [B, H + 2p - kh + 1, W + 2p - kw + 1, C], plus x itself when
    /// `residual` (output size must equal the input's). weight: [kh, kw, C] (see depthwiseWeight); bias: [C] or nil.
    /// `naive` runs the reference twin (tests).
    public static func depthwiseConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, padding: Int, residual: Bool = false,
                                       naive: Bool = false) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 3 && weight.shape[2] == x.shape[3], "depthwiseConv2d: x \(x.shape) weight \(weight.shape)")
        let (b, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw) = (weight.shape[0], weight.shape[1])
        let oh = convOutputSize(h, kernel: kh, stride: 1, padding: padding)
        let ow = convOutputSize(w, kernel: kw, stride: 1, padding: padding)
        precondition(oh > 0 && ow > 0, "depthwiseConv2d: empty output")
        precondition(!residual || (oh == h && ow == w), "depthwiseConv2d: residual needs a same-size output")
        if let bias { precondition(bias.count == c, "depthwiseConv2d: bias \(bias.shape)") }
        let y = Tensor(uninitialized: [b, oh, ow, c])
        withExtendedLifetime((x, weight, bias)) {
            let f = naive ? vlm_depthwise_conv2d_nhwc_naive : vlm_depthwise_conv2d_nhwc
            f(x.pointer, Int64(b), Int64(h), Int64(w), Int64(c), weight.pointer, Int64(kh), Int64(kw), Int64(padding),
              bias?.pointer, residual ? 1 : 0, y.pointer)
        }
        return y
    }

    /// PyTorch's depth-wise weight [C, 1, kh, kw] transposed to [kh, kw, C].
    public static func depthwiseWeight(_ weight: Tensor) -> Tensor {
        precondition(weight.rank == 4 && weight.shape[1] == 1, "depthwiseWeight: \(weight.shape)")
        let (c, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
        let out = Tensor(uninitialized: [kh, kw, c])
        for ch in 0 ..< c {
            for t in 0 ..< kh * kw { out.pointer[t * c + ch] = weight.pointer[ch * kh * kw + t] }
        }
        return out
    }
}
