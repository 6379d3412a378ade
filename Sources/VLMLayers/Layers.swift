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

    /// Loads `<scope>.weight` [out, in] and, if `bias`, `<scope>.bias` [out].
    public convenience init(_ scope: WeightScope, in inFeatures: Int, out outFeatures: Int, bias: Bool = true) throws {
        let w = try scope.tensor("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try scope.tensor("bias", shape: [outFeatures]) : nil
        try self.init(weight: w, bias: b)
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

/// nn.Embedding: a [count, dim] table gathered by index.
public struct Embedding: @unchecked Sendable {
    public let table: Tensor
    public var count: Int { table.shape[0] }
    public var dim: Int { table.shape[1] }

    public init(_ scope: WeightScope, count: Int, dim: Int) throws {
        table = try scope.tensor("weight", shape: [count, dim])
    }

    /// Row `index` of the table; the caller has validated the index.
    public func row(_ index: Int) -> UnsafeMutablePointer<Float> { table.pointer + index * dim }
}
