import VLMTensor

/// An auxiliary loss on the projector's output rows: chosen image tokens are classified into the vocabulary
/// by the language model's own head (the tied embedding, or lm_head), after a parameter-free RMS normalisation,
/// before the image position rows are added.
///
/// Why: the decoder finds "the star" among the image tokens by matching a query made from the question's word
/// against the tokens' keys. When the projector's row of a star patch already points along the embedding of
/// "star", that match is available from the first layer on, instead of having to be computed inside the
/// decoder first (a target on the decoder's output rows trains shape into the last layer's states, which no
/// attention reads).
struct ImageTargetCache {
    /// Feature rows scored, in order.
    let rows: [Int]
    let norm: RMSNormCache
    let head: LinearCache
    let crossEntropy: CrossEntropyCache
    let weight: Float
    /// The normalisation's gain: ones (no parameter).
    let gain: Tensor
}

extension TrainableLlava {
    /// features: [N, C], the projector's output for the batch's N image tokens (image-major); labels: N ids or
    /// -100. Returns the mean cross-entropy over the labelled rows, or nil when none is labelled.
    func imageTargetForward(features: Tensor, labels: [Int], weight: Float) -> (Double, ImageTargetCache)? {
        let c = features.shape[1]
        let rows = labels.indices.filter { labels[$0] != LlavaTrainingBatch.ignoreIndex }
        guard !rows.isEmpty, weight > 0 else { return nil }
        let gathered = Tensor(uninitialized: [rows.count, c])
        for (k, r) in rows.enumerated() { (gathered.pointer + k * c).update(from: features.pointer + r * c, count: c) }
        let ones = Tensor(zeros: [c])
        for i in 0 ..< c { ones[i] = 1 }
        let (normed, normCache) = RMSNormOp.forward(gathered, weight: ones, eps: spec.eps)
        let (logits, headCache) = LinearOp.forward(normed, weight: parameters[headName], bias: nil)
        let (loss, ce) = CrossEntropyOp.forward(logits, targets: rows.map { labels[$0] })
        return (loss, ImageTargetCache(rows: rows, norm: normCache, head: headCache, crossEntropy: ce, weight: weight, gain: ones))
    }

    /// Adds weight x d(loss)/d(features) into dFeatures ([N, C]) and the head's gradient into `grads`.
    func imageTargetBackward(_ cache: ImageTargetCache, into dFeatures: Tensor, grads: Gradients) {
        let c = dFeatures.shape[1]
        let dLogits = CrossEntropyOp.backward(cache: cache.crossEntropy)
        for i in 0 ..< dLogits.count { dLogits[i] *= cache.weight }
        let head = LinearOp.backward(dLogits, cache: cache.head, weight: parameters[headName], hasBias: false)
        grads.add(headName, head.dw)
        guard let dNormed = head.dx else { return }
        let dx = RMSNormOp.backward(dNormed, cache: cache.norm, weight: cache.gain).dx
        for (k, r) in cache.rows.enumerated() {
            let src = dx.pointer + k * c, dst = dFeatures.pointer + r * c
            for j in 0 ..< c { dst[j] += src[j] }
        }
    }
}
