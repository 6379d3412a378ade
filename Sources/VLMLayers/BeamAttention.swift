import VLMTensor

// Beam search's batched decode step: one new row for each of several sequences (beams), each with its own
// self-attention cache, so the projections run over all rows at once and stream their weights once per step
// instead of once per beam. Each row's attention is the single-sequence computation, unchanged.

extension SelfAttention {
    /// Causal self-attention of one new row per sequence: row b of x follows the rows caches[b] holds, and its
    /// key and value are appended there. x: [B, C] -> [B, C] (B = caches.count).
    public func callAsFunction(_ x: Tensor, caches: [LayerKVCache]) -> Tensor {
        let b = x.shape[0], c = dim
        precondition(caches.count == b, "SelfAttention: \(b) rows for \(caches.count) caches")
        let fused = qkv(x)  // [B, q | k | v]
        let attended = Tensor(uninitialized: [b, c])
        for (r, cache) in caches.enumerated() {
            let end = Int64(cache.length + 1)
            cache.append(fused, rows: 1, ld: 3 * c, keyOffset: r * 3 * c + c, valueOffset: r * 3 * c + 2 * c)
            let row = cache.attend(q: fused, qOffset: r * 3 * c, ldq: 3 * c, heads: heads, queryLength: 1,
                                   scale: 1 / Float(headDim).squareRoot(), keyBegin: [0], keyEnd: [end])
            (attended.pointer + r * c).update(from: row.pointer, count: c)
        }
        return out(attended)
    }
}
