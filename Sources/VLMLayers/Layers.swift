import VLMTensor

/// nn.Linear: y = x W^T + b with W: [out, in] as PyTorch stores it; packed once for the GEMM kernel.
public final class Linear: @unchecked Sendable {
    public let weight: PackedLinearWeight
    public let bias: Tensor?
    public var inFeatures: Int { weight.inFeatures }
    public var outFeatures: Int { weight.outFeatures }

    public init(weight: Tensor, bias: Tensor?) throws {
        self.weight = try PackedLinearWeight(weight: weight)
        self.bias = bias
    }

    /// A layer over an already packed weight (fused projections, a tied LM head sharing the embedding table).
    public init(packed: PackedLinearWeight, bias: Tensor?) {
        self.weight = packed
        self.bias = bias
    }

    /// Loads `<scope>.weight` [out, in] in the scope's storage (16-bit kept as stored with `.asStored`) and,
    /// if `bias`, `<scope>.bias` [out] as float32.
    public convenience init(_ scope: WeightScope, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws {
        let w = try scope.packedWeight(["weight"], rows: [outFeatures], cols: inFeatures)
        let b = bias ? try scope.tensor("bias", shape: [outFeatures]) : nil
        self.init(packed: w, bias: b)
    }

    /// A stride-p "valid" convolution (a ViT patch embedding) as a GEMM over patches flattened in the weight's
    /// (channel, ky, kx) order: `<scope>.weight` [out, channels, p, p] (and `<scope>.bias` [out] if `bias`),
    /// packed in the scope's storage like every other projection, so `--precision` covers it too.
    public convenience init(patchConvolution scope: WeightScope, out: Int, channels: Int, patch: Int, bias: Bool) throws {
        let conv = try scope.tensor("weight", shape: [out, channels, patch, patch])
        let stored = scope.loader.store?.entry(scope.key("weight"))?.dtype ?? .f32
        let packed: PackedLinearWeight
        do {
            packed = try PackedLinearWeight(weight: conv.reshaped([out, channels * patch * patch]), name: scope.key("weight"),
                                            storage: scope.storage.packedStorage(for: stored))
        } catch let e as TensorError { throw WeightError.storage(e) }
        self.init(packed: packed, bias: bias ? try scope.tensor("bias", shape: [out]) : nil)
        try scope.applyReducedCompute(.all, [self])
    }

    /// x: [..., in] -> [..., out], with the activation fused into the GEMM epilogue.
    public func callAsFunction(_ x: Tensor, activation: Activation = .none) -> Tensor {
        Ops.linear(x, weight, bias: bias, activation: activation)
    }
}

/// nn.LayerNorm over the last axis (biased variance, eps inside the square root).
public struct LayerNorm: @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(_ scope: WeightScope, dim: Int, eps: Float) throws {
        weight = try scope.tensor("weight", shape: [dim])
        bias = try scope.tensor("bias", shape: [dim])
        self.eps = eps
    }

    /// x: [..., dim]
    public func callAsFunction(_ x: Tensor) -> Tensor { Ops.layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// nn.Embedding: a [count, dim] table gathered by index. Float32 storage keeps a row-major table; 16-bit and
/// quantized (int8/int4) storage keep the table packed like a linear weight, so a tied LM head reuses it (one
/// copy in memory), and lookups widen (dequantize) the row exactly.
public struct Embedding: @unchecked Sendable {
    /// Float32 storage (row-major), or nil when the table is packed.
    public let table: Tensor?
    /// 16-bit or quantized storage: the table as a [count, dim] packed weight.
    public let packed: PackedLinearWeight?
    public let count: Int
    public let dim: Int

    /// Loads `<scope>.weight` [count, dim]; kept packed when the scope's storage resolves to 16 bits or a
    /// quantized format, else as a float32 table.
    public init(_ scope: WeightScope, count: Int, dim: Int) throws {
        self.count = count
        self.dim = dim
        let dtype = scope.loader.store?.entry(scope.key("weight"))?.dtype ?? .f32
        if scope.storage.packedStorage(for: dtype) != .float32 {
            table = nil
            packed = try scope.packedWeight(["weight"], rows: [count], cols: dim)
        } else {
            table = try scope.tensor("weight", shape: [count, dim])
            packed = nil
        }
    }

    /// dst[0..<dim] = row `index` as float32, whatever the storage; the caller has validated the index.
    public func copyRow(_ index: Int, into dst: UnsafeMutablePointer<Float>) {
        if let table { dst.update(from: table.pointer + index * dim, count: dim) } else { packed?.copyRow(index, into: dst) }
    }

    /// The table packed for a tied LM head: the packed table itself (shared), or a float32 packing of the table.
    public func packedForHead() throws -> PackedLinearWeight {
        if let packed { return packed }
        guard let table else { throw WeightError.invalid("embedding has no table") }
        return try PackedLinearWeight(weight: table)
    }
}
