import VLMTensor

// Pieces an encoder-decoder (BART, Florence-2's language model) adds to the shared layers: causal
// self-attention over a KV cache with the q/k/v/out_proj naming, cross-attention whose keys and values over the
// encoder output are computed once, and copies of caches (beam search forks a sequence's state).

// MARK: - Cached causal self-attention

extension SelfAttention {
    /// Causal self-attention of the next T rows of one sequence after the rows `cache` holds; their keys and
    /// values are appended to it. x: [T, C] -> [T, C].
    public func callAsFunction(_ x: Tensor, cache: LayerKVCache) -> Tensor {
        let t = x.shape[0], c = dim
        let fused = qkv(x)  // [T, q | k | v]
        let start = cache.length
        cache.append(fused, rows: t, ld: 3 * c, keyOffset: c, valueOffset: 2 * c)
        let begin = [Int64](repeating: 0, count: t), end = (0 ..< t).map { Int64(start + $0 + 1) }
        let attended = cache.attend(q: fused, ldq: 3 * c, heads: heads, queryLength: t, scale: 1 / Float(headDim).squareRoot(),
                                    keyBegin: begin, keyEnd: end)
        return out(attended.reshaped([t, c]))
    }
}

// MARK: - Cross-attention

/// Attention from decoder rows to an encoder's output (BartAttention with key_value_states), Hugging Face names
/// q_proj, k_proj, v_proj, out_proj. k and v are fused into one projection run once per encoder output.
public final class CrossAttention: @unchecked Sendable {
    public let query: Linear     // q_proj [C, C]
    public let keyValue: Linear  // k_proj | v_proj [2C, C]
    public let out: Linear       // out_proj [C, C]
    public let heads: Int
    public let headDim: Int
    public var dim: Int { heads * headDim }

    public init(_ scope: WeightScope, dim: Int, heads: Int) throws {
        guard heads > 0, dim % heads == 0 else {
            throw WeightError.invalid("\(scope.prefix): hidden size \(dim) is not a multiple of the \(heads) attention heads")
        }
        self.heads = heads
        headDim = dim / heads
        query = try Linear(scope.scope("q_proj"), in: dim, out: dim)
        let kv = try scope.packedWeight(["k_proj.weight", "v_proj.weight"], rows: [dim, dim], cols: dim)
        keyValue = Linear(packed: kv, bias: concatenateRows([try scope.tensor("k_proj.bias", shape: [dim]),
                                                            try scope.tensor("v_proj.bias", shape: [dim])]))
        out = try Linear(scope.scope("out_proj"), in: dim, out: dim)
    }

    /// The keys and values over an encoder output: memory [S, C] -> [S, k | v] (2C wide).
    public func keysValues(_ memory: Tensor) -> Tensor { keyValue(memory) }

    /// x: [T, C] decoder rows, kv: [S, 2C] from `keysValues` -> [T, C] (every row sees every encoder row).
    public func callAsFunction(_ x: Tensor, keysValues kv: Tensor) -> Tensor {
        let t = x.shape[0], s = kv.shape[0], c = dim
        let q = query(x)
        let attended = Ops.attention(q: q, ldq: c, k: kv, kOffset: 0, ldk: 2 * c, v: kv, vOffset: c, ldv: 2 * c, batch: 1,
                                     heads: heads, queryLength: t, keyLength: s, headDim: headDim,
                                     scale: 1 / Float(headDim).squareRoot(), causal: false)
        return out(attended.reshaped([t, c]))
    }
}

// MARK: - Copies

extension KVCache {
    /// An independent cache holding the same rows in every layer.
    public func copy() -> KVCache { KVCache(layerCaches: layers.map { $0.copy() }) }
}
