import CVLM

/// Tensor-level wrappers of the CVLM kernels. Every op allocates a fresh output unless named *InPlace.
/// Shape mismatches are programmer errors (preconditions); validate user input before calling.
public enum Ops {
    /// x: [..., K] -> [..., N] = act(x W^T + bias).  bias: [N].
    public static func linear(_ x: Tensor, _ w: PackedLinearWeight, bias: Tensor?, activation: Activation = .none) -> Tensor {
        let k = w.inFeatures, n = w.outFeatures
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == k, "linear: x \(x.shape) vs weight [\(n), \(k)]")
        if let bias { precondition(bias.count == n, "linear: bias \(bias.shape) vs \(n) outputs") }
        let m = x.count / k
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        let y = Tensor(uninitialized: outShape)
        let status = withExtendedLifetime((x, w, bias)) {
            vlm_linear(x.pointer, Int64(m), Int64(k), w.handle, bias?.pointer, activation.c, y.pointer, Int64(n))
        }
        Kernels.checkAllocation(status, "linear [\(m), \(k)] x [\(n), \(k)]^T")
        return y
    }

    /// x: [..., K] -> fc2(activation(fc1(x))): [..., N2], two `linear`s with the same results bit for bit. The hidden
    /// rows are kept one cache line longer when their size is a multiple of 2 KiB (CLIP/SigLIP widths 2048-4096):
    /// fc2 then reads them in place, where a [M, 4096] hidden tensor would be copied once more per call to keep its
    /// rows out of one L1 set (gemm_driver.c, a_aliased; ~1% of a ViT-L/14 image).
    public static func linearChain(_ x: Tensor, _ w1: PackedLinearWeight, bias1: Tensor?, activation: Activation,
                                   _ w2: PackedLinearWeight, bias2: Tensor?) -> Tensor {
        let k = w1.inFeatures, hidden = w1.outFeatures, n = w2.outFeatures
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == k, "linear: x \(x.shape) vs weight [\(hidden), \(k)]")
        precondition(w2.inFeatures == hidden, "linear chain: [\(hidden), \(k)] then [\(n), \(w2.inFeatures)]")
        if let bias1 { precondition(bias1.count == hidden, "linear: bias \(bias1.shape) vs \(hidden) outputs") }
        if let bias2 { precondition(bias2.count == n, "linear: bias \(bias2.shape) vs \(n) outputs") }
        let m = x.count / k
        let ldh = (hidden * 4) % 2048 == 0 ? hidden + 16 : hidden
        let h = Tensor(uninitialized: [max(m, 1), ldh])
        var outShape = x.shape
        outShape[outShape.count - 1] = n
        let y = Tensor(uninitialized: outShape)
        let first = withExtendedLifetime((x, w1, bias1, h)) {
            vlm_linear(x.pointer, Int64(m), Int64(k), w1.handle, bias1?.pointer, activation.c, h.pointer, Int64(ldh))
        }
        Kernels.checkAllocation(first, "linear [\(m), \(k)] x [\(hidden), \(k)]^T")
        let second = withExtendedLifetime((h, w2, bias2, y)) {
            vlm_linear(h.pointer, Int64(m), Int64(ldh), w2.handle, bias2?.pointer, VLM_ACT_NONE, y.pointer, Int64(n))
        }
        Kernels.checkAllocation(second, "linear [\(m), \(hidden)] x [\(n), \(hidden)]^T")
        return y
    }

    /// a: [M, K] (or [K, M] if transposeA), b: [K, N] (or [N, K] if transposeB) -> [M, N].
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        product(a, b, transposeA, transposeB, "matmul") { m, n, k, c in
            vlm_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k), 1,
                      a.pointer, Int64(a.shape[1]), b.pointer, Int64(b.shape[1]), 0, c, Int64(max(n, 1)))
        }
    }

    /// As `matmul`, with both operands rounded to bf16 and the products summed in fp32 (`vlm_matmul_bf16`). The
    /// tiles run at twice the fp32 multiply-add rate on CPUs with AVX512_BF16, but both operands are packed per
    /// call, so narrow products (width 128) gain nothing; elsewhere the same numbers, slower.
    public static func matmulBF16(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        product(a, b, transposeA, transposeB, "bf16 matmul") { m, n, k, c in
            vlm_matmul_bf16(transposeA ? 1 : 0, transposeB ? 1 : 0, Int64(m), Int64(n), Int64(k),
                            a.pointer, Int64(a.shape[1]), b.pointer, Int64(b.shape[1]), c, Int64(max(n, 1)))
        }
    }

    /// The shapes of op(a) op(b) checked, C allocated, `run(M, N, K, C)` called with both operands alive.
    private static func product(_ a: Tensor, _ b: Tensor, _ transposeA: Bool, _ transposeB: Bool, _ name: String,
                                _ run: (Int, Int, Int, UnsafeMutablePointer<Float>) -> Int32) -> Tensor {
        precondition(a.rank == 2 && b.rank == 2, "\(name): ranks \(a.shape) \(b.shape)")
        let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
        precondition(k == kb, "\(name): inner dimensions \(a.shape)\(transposeA ? "^T" : "") x \(b.shape)\(transposeB ? "^T" : "")")
        let c = Tensor(uninitialized: [m, n])
        let status = withExtendedLifetime((a, b)) { run(m, n, k, c.pointer) }
        Kernels.checkAllocation(status, "\(name) [\(m), \(k)] x [\(k), \(n)]")
        return c
    }

    /// LayerNorm over the last axis (biased variance, like torch.nn.LayerNorm). weight/bias: [dim].
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let dim = lastDim(x, "layerNorm")
        if let weight { precondition(weight.count == dim, "layerNorm: weight \(weight.shape) vs dim \(dim)") }
        if let bias { precondition(bias.count == dim, "layerNorm: bias \(bias.shape) vs dim \(dim)") }
        let y = Tensor(uninitialized: x.shape)
        withExtendedLifetime((x, weight, bias)) {
            vlm_layernorm(x.pointer, y.pointer, Int64(x.count / max(dim, 1)), Int64(dim), weight?.pointer, bias?.pointer, eps)
        }
        return y
    }

    /// RMSNorm over the last axis (x / sqrt(mean(x^2) + eps) * weight).
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
        let dim = lastDim(x, "rmsNorm")
        if let weight { precondition(weight.count == dim, "rmsNorm: weight \(weight.shape) vs dim \(dim)") }
        let y = Tensor(uninitialized: x.shape)
        withExtendedLifetime((x, weight)) {
            vlm_rmsnorm(x.pointer, y.pointer, Int64(x.count / max(dim, 1)), Int64(dim), weight?.pointer, eps)
        }
        return y
    }

    /// Softmax over the last axis. A row that is entirely -inf becomes zeros.
    public static func softmax(_ x: Tensor) -> Tensor {
        let dim = lastDim(x, "softmax")
        let y = x.copy()
        vlm_softmax(y.pointer, Int64(x.count / max(dim, 1)), Int64(dim))
        return y
    }

    public static func activate(_ x: Tensor, _ act: Activation) -> Tensor {
        let y = x.copy()
        vlm_activate(y.pointer, Int64(y.count), act.c)
        return y
    }

    /// a + b, same shape.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: \(a.shape) vs \(b.shape)")
        let y = Tensor(uninitialized: a.shape)
        withExtendedLifetime((a, b)) { vlm_add(a.pointer, b.pointer, y.pointer, Int64(a.count)) }
        return y
    }

    /// a += b, same element count.
    public static func addInPlace(_ a: Tensor, _ b: Tensor) {
        precondition(a.count == b.count, "addInPlace: \(a.shape) vs \(b.shape)")
        withExtendedLifetime((a, b)) { vlm_add(a.pointer, b.pointer, a.pointer, Int64(a.count)) }
    }

    /// Rows of the last axis divided by their L2 norm (zero rows stay zero).
    public static func l2Normalize(_ x: Tensor) -> Tensor {
        let dim = lastDim(x, "l2Normalize")
        let y = x.copy()
        vlm_l2_normalize(y.pointer, Int64(x.count / max(dim, 1)), Int64(dim))
        return y
    }

    /// Multi-head attention reading heads in place (see vlm_attention). q: [B, Tq, ldq-wide rows] starting
    /// at element qOffset, k/v: [B, Tk, ...]; keyMask: [B * Tk], 0 = padded key. Returns [B, Tq, H*D].
    /// `bf16`: bf16 operands summed in fp32 where the CPU has AVX512_BF16 (vlm_attention_bf16), else fp32.
    public static func attention(q: Tensor, qOffset: Int = 0, ldq: Int, k: Tensor, kOffset: Int = 0, ldk: Int,
                                 v: Tensor, vOffset: Int = 0, ldv: Int,
                                 batch: Int, heads: Int, queryLength: Int, keyLength: Int, headDim: Int,
                                 scale: Float, causal: Bool, keyMask: [UInt8]? = nil, bf16: Bool = false) -> Tensor {
        let width = heads * headDim
        func need(_ rows: Int, _ ld: Int, _ off: Int) -> Int { rows == 0 ? 0 : off + (rows - 1) * ld + width }
        precondition(ldq >= width && ldk >= width && ldv >= width, "attention: ld smaller than heads*headDim")
        precondition(q.count >= need(batch * queryLength, ldq, qOffset), "attention: q \(q.shape) too small")
        precondition(k.count >= need(batch * keyLength, ldk, kOffset), "attention: k \(k.shape) too small")
        precondition(v.count >= need(batch * keyLength, ldv, vOffset), "attention: v \(v.shape) too small")
        if let keyMask { precondition(keyMask.count == batch * keyLength, "attention: keyMask count \(keyMask.count)") }
        let out = Tensor(uninitialized: [batch, queryLength, width])
        let status = withExtendedLifetime((q, k, v)) {
            let run = { (mask: UnsafePointer<UInt8>?) -> Int32 in
                if bf16 {
                    return vlm_attention_bf16(Int64(batch), Int64(heads), Int64(heads), Int64(queryLength), Int64(keyLength),
                                              Int64(headDim), q.pointer + qOffset, Int64(ldq), k.pointer + kOffset, Int64(ldk),
                                              v.pointer + vOffset, Int64(ldv), out.pointer, Int64(width), scale, causal ? 1 : 0,
                                              nil, nil, mask)
                }
                return vlm_attention(Int64(batch), Int64(heads), Int64(queryLength), Int64(keyLength), Int64(headDim),
                                     q.pointer + qOffset, Int64(ldq), k.pointer + kOffset, Int64(ldk), v.pointer + vOffset, Int64(ldv),
                                     out.pointer, Int64(width), scale, causal ? 1 : 0, mask)
            }
            if let keyMask { return keyMask.withUnsafeBufferPointer { run($0.baseAddress) } } else { return run(nil) }
        }
        Kernels.checkAllocation(status, "attention (\(batch) x \(heads) heads, \(queryLength) x \(keyLength) tokens)")
        return out
    }

    /// Attention with an explicit key range per query (see vlm_attention_ranged / vlm_attention_gqa): query t
    /// attends keys s with keyBegin[t] <= s < keyEnd[t] (and keyMask). q: [B, Tq, ldq-wide rows], k/v: [B, Tk, ...]
    /// holding `kvHeads` heads (default `heads`; grouped-query attention: query head h reads key/value head
    /// h / (heads / kvHeads)); keyBegin/keyEnd: [Tq], shared by the batch; keyMask: [B * Tk]. Returns
    /// [B, Tq, H*D]. `kvHeadStride`: floats from one key/value head to the next (default headDim, token-major rows);
    /// a head-major cache ([kvHeads, capacity, headDim]) passes ld headDim and stride capacity * headDim
    /// (vlm_attention_strided). `naive` runs the portable reference kernel (tests). `bf16`: bf16 operands summed in
    /// fp32 where the CPU has AVX512_BF16 and a key/value head has enough query rows (vlm_attention_bf16), else as
    /// without it.
    public static func attention(q: Tensor, qOffset: Int = 0, ldq: Int, k: Tensor, kOffset: Int = 0, ldk: Int,
                                 v: Tensor, vOffset: Int = 0, ldv: Int, kvHeadStride: Int? = nil,
                                 batch: Int, heads: Int, kvHeads: Int? = nil, queryLength: Int, keyLength: Int,
                                 headDim: Int, scale: Float, keyBegin: [Int64], keyEnd: [Int64],
                                 keyMask: [UInt8]? = nil, naive: Bool = false, bf16: Bool = false) -> Tensor {
        let width = heads * headDim, kvh = kvHeads ?? heads, hs = kvHeadStride ?? headDim
        precondition(kvh > 0 && heads % kvh == 0, "attention: \(heads) heads are not a multiple of \(kvh) key/value heads")
        precondition(hs >= headDim, "attention: key/value head stride \(hs) smaller than headDim \(headDim)")
        // The last float read: the last row of the last head.
        func need(_ rows: Int, _ ld: Int, _ off: Int, _ heads: Int, _ stride: Int) -> Int {
            rows == 0 ? 0 : off + (rows - 1) * ld + (heads - 1) * stride + headDim
        }
        precondition(ldq >= width && ldk >= headDim && ldv >= headDim, "attention: ld smaller than headDim")
        precondition(hs != headDim || (ldk >= kvh * headDim && ldv >= kvh * headDim), "attention: ld smaller than kvHeads*headDim")
        precondition(q.count >= need(batch * queryLength, ldq, qOffset, heads, headDim), "attention: q \(q.shape) too small")
        precondition(k.count >= need(batch * keyLength, ldk, kOffset, kvh, hs), "attention: k \(k.shape) too small")
        precondition(v.count >= need(batch * keyLength, ldv, vOffset, kvh, hs), "attention: v \(v.shape) too small")
        precondition(keyBegin.count == queryLength && keyEnd.count == queryLength, "attention: key ranges for \(keyBegin.count) queries, not \(queryLength)")
        if let keyMask { precondition(keyMask.count == batch * keyLength, "attention: keyMask count \(keyMask.count)") }
        let out = Tensor(uninitialized: [batch, queryLength, width])
        let status = withExtendedLifetime((q, k, v)) {
            keyBegin.withUnsafeBufferPointer { begin in
                keyEnd.withUnsafeBufferPointer { end in
                    let run = { (mask: UnsafePointer<UInt8>?) -> Int32 in
                        let args = (Int64(batch), Int64(heads), Int64(kvh), Int64(queryLength), Int64(keyLength), Int64(headDim))
                        if naive {
                            vlm_attention_strided_naive(args.0, args.1, args.2, args.3, args.4, args.5,
                                                        q.pointer + qOffset, Int64(ldq), k.pointer + kOffset, Int64(ldk), v.pointer + vOffset,
                                                        Int64(ldv), Int64(hs), out.pointer, Int64(width), scale, 0, begin.baseAddress,
                                                        end.baseAddress, mask, bf16 ? 1 : 0)
                            return 0
                        }
                        return vlm_attention_strided(args.0, args.1, args.2, args.3, args.4, args.5,
                                                     q.pointer + qOffset, Int64(ldq), k.pointer + kOffset, Int64(ldk), v.pointer + vOffset,
                                                     Int64(ldv), Int64(hs), out.pointer, Int64(width), scale, 0, begin.baseAddress,
                                                     end.baseAddress, mask, bf16 ? 1 : 0)
                    }
                    if let keyMask { return keyMask.withUnsafeBufferPointer { run($0.baseAddress) } } else { return run(nil) }
                }
            }
        }
        Kernels.checkAllocation(status, "attention (\(batch) x \(heads) heads, \(queryLength) x \(keyLength) tokens)")
        return out
    }

    /// Attention over a key/value cache held outside tensors (VLMLayers' LayerKVCache): k and v are fp32, or bf16
    /// when `kvBF16` (vlm_attention_strided_kv16: the numbers of the fp32 path on the rows widened), head-major with
    /// rows `headDim` apart and heads `kvHeadStride` elements apart; the caller guarantees they hold `keyLength`
    /// positions of `kvHeads` heads. q: [queryLength, ldq-wide rows] from element qOffset -> [1, queryLength, H*D].
    public static func attention(q: Tensor, qOffset: Int = 0, ldq: Int, cacheKeys k: UnsafeRawPointer,
                                 cacheValues v: UnsafeRawPointer, kvBF16: Bool, kvHeadStride: Int, heads: Int,
                                 kvHeads: Int, queryLength: Int, keyLength: Int, headDim: Int, scale: Float,
                                 keyBegin: [Int64], keyEnd: [Int64], keyMask: [UInt8]? = nil, naive: Bool = false,
                                 bf16: Bool = false) -> Tensor {
        let width = heads * headDim
        precondition(kvHeads > 0 && heads % kvHeads == 0, "attention: \(heads) heads are not a multiple of \(kvHeads) key/value heads")
        precondition(kvHeadStride >= keyLength * headDim, "attention: key/value head stride \(kvHeadStride) below \(keyLength) rows")
        precondition(ldq >= width && q.count >= (queryLength == 0 ? 0 : qOffset + (queryLength - 1) * ldq + width),
                     "attention: q \(q.shape) too small")
        precondition(keyBegin.count == queryLength && keyEnd.count == queryLength, "attention: key ranges for \(keyBegin.count) queries, not \(queryLength)")
        if let keyMask { precondition(keyMask.count == keyLength, "attention: keyMask count \(keyMask.count)") }
        let out = Tensor(uninitialized: [1, queryLength, width])
        let status = withExtendedLifetime(q) {
            keyBegin.withUnsafeBufferPointer { begin in
                keyEnd.withUnsafeBufferPointer { end in
                    let run = { (mask: UnsafePointer<UInt8>?) -> Int32 in
                        let a = (Int64(heads), Int64(kvHeads), Int64(queryLength), Int64(keyLength), Int64(headDim))
                        let qp = q.pointer + qOffset, ld = Int64(headDim), hs = Int64(kvHeadStride), f = Int32(bf16 ? 1 : 0)
                        if kvBF16 {
                            let k16 = k.assumingMemoryBound(to: UInt16.self), v16 = v.assumingMemoryBound(to: UInt16.self)
                            return naive
                                ? vlm_attention_strided_kv16_naive(1, a.0, a.1, a.2, a.3, a.4, qp, Int64(ldq), k16, ld, v16, ld, hs,
                                                                   out.pointer, Int64(width), scale, 0, begin.baseAddress, end.baseAddress, mask, f)
                                : vlm_attention_strided_kv16(1, a.0, a.1, a.2, a.3, a.4, qp, Int64(ldq), k16, ld, v16, ld, hs,
                                                             out.pointer, Int64(width), scale, 0, begin.baseAddress, end.baseAddress, mask, f)
                        }
                        let kf = k.assumingMemoryBound(to: Float.self), vf = v.assumingMemoryBound(to: Float.self)
                        if naive {
                            vlm_attention_strided_naive(1, a.0, a.1, a.2, a.3, a.4, qp, Int64(ldq), kf, ld, vf, ld, hs, out.pointer,
                                                        Int64(width), scale, 0, begin.baseAddress, end.baseAddress, mask, f)
                            return 0
                        }
                        return vlm_attention_strided(1, a.0, a.1, a.2, a.3, a.4, qp, Int64(ldq), kf, ld, vf, ld, hs, out.pointer,
                                                     Int64(width), scale, 0, begin.baseAddress, end.baseAddress, mask, f)
                    }
                    if let keyMask { return keyMask.withUnsafeBufferPointer { run($0.baseAddress) } } else { return run(nil) }
                }
            }
        }
        Kernels.checkAllocation(status, "attention over a \(kvBF16 ? "bf16" : "fp32") cache (\(heads) heads, \(queryLength) x \(keyLength) tokens)")
        return out
    }

    public static func f16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        vlm_f16_to_f32(src, dst, Int64(count))
    }

    public static func bf16ToF32(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        vlm_bf16_to_f32(src, dst, Int64(count))
    }

    public static func f32ToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        vlm_f32_to_f16(src, dst, Int64(count))
    }

    public static func f32ToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
        vlm_f32_to_bf16(src, dst, Int64(count))
    }

    private static func lastDim(_ x: Tensor, _ op: String) -> Int {
        precondition(x.rank >= 1, "\(op): scalar tensor")
        return x.shape[x.rank - 1]
    }
}
