import Foundation
import VLMLayers
import VLMModels
import VLMTensor

/// One batch for the image-prefix language-model loss: B sequences, one image each.
public struct LlavaTrainingBatch {
    /// [B, channels, S, S], image b belongs to sequence b.
    public let pixels: Tensor
    /// B unpadded token sequences; each holds exactly `imageTokensPerImage` image placeholders.
    public let ids: [[Int]]
    /// B label sequences of the same lengths: the token scored at each position, -100 where nothing is scored.
    /// Position t is predicted from positions < t (transformers' ForCausalLMLoss shift).
    public let labels: [[Int]]
    /// Optional targets of the projector's output rows (`ImageTokenTargets`): B x imageTokensPerImage ids
    /// (image-major), -100 where nothing is scored.
    public let imageLabels: [Int]?

    public init(pixels: Tensor, ids: [[Int]], labels: [[Int]], imageLabels: [Int]? = nil) {
        self.pixels = pixels
        self.ids = ids
        self.labels = labels
        self.imageLabels = imageLabels
    }

    public static let ignoreIndex = -100
    public var size: Int { ids.count }
}

/// One forward pass: the loss and everything backward needs.
public struct LlavaForwardPass {
    public let loss: Float
    public let exactLoss: Double
    /// Scored tokens (rows of the cross-entropy).
    public let scoredTokens: Int
    /// The image-token targets' mean cross-entropy (not in `loss`), when the batch has any.
    public let imageTargetLoss: Double?
    let imageTargets: ImageTargetCache?
    let batch: Int, length: Int
    let ids: [Int]
    let imageRows: [Int]
    let vision: LlavaVisionCache?
    let projector1: LinearCache, projector2: LinearCache
    let layers: [DecoderLayerCache]
    let scoredRows: [Int]
    let finalNorm: RMSNormCache
    let head: LinearCache
    let crossEntropy: CrossEntropyCache
}

/// LlavaForConditionalGeneration with parameters as named tensors (llava-hf keys, the list the inference
/// LlavaModel claims), a forward that keeps caches, a backward that returns gradients by name, and `save` that
/// writes a checkpoint the inference model loads unchanged.
public final class TrainableLlava: @unchecked Sendable {
    public let config: LlavaConfig
    public let parameters: ParameterSet
    /// Frozen: the vision tower runs without caches and gets no gradient (the projector and decoder train).
    public var freezeVision = false
    /// Gaussian targets for labels that are ordered bins (the location tokens); nil: one-hot everywhere.
    public var targetSmoothing: OrdinalTargetSmoothing?
    /// Weight of the image-token targets' loss next to the language-model loss.
    public var imageTargetWeight: Float = 1
    /// config.json as read from a checkpoint, written back verbatim.
    var configJSON: Data?
    let spec: DecoderSpec
    let angles: RotaryAngles

    static let text = "language_model.model"
    static let head = "language_model.lm_head.weight"
    static let embed = "language_model.model.embed_tokens.weight"
    /// LlavaConfig.imagePositionEmbedding's rows (a SwiftVLM extension).
    public static let imagePositions = "multi_modal_projector.position_embedding"
    /// The token embedding's parameter name (llava-hf layout).
    public static var embeddingName: String { embed }

    public init(config: LlavaConfig, parameters: ParameterSet) throws {
        let shapes = try Self.parameterShapes(config)
        for (name, shape) in shapes {
            guard let t = parameters.tensor(name) else { throw TrainingError.checkpoint("missing parameter '\(name)'") }
            guard t.shape == shape else { throw TrainingError.checkpoint("parameter '\(name)' has shape \(t.shape), expected \(shape)") }
        }
        let t = config.textConfig
        self.config = config
        self.parameters = parameters
        spec = DecoderSpec(dim: t.hiddenSize, heads: t.numAttentionHeads, kvHeads: t.kvHeads, headDim: t.resolvedHeadDim,
                           intermediate: t.intermediateSize, activation: Activation(huggingFace: t.hiddenAct) ?? .silu, eps: t.rmsNormEps)
        do { angles = RotaryAngles(inverseFrequencies: try t.inverseFrequencies(), length: t.maxPositionEmbeddings) } catch {
            throw TrainingError.invalidConfig("\(error)")
        }
    }

    /// The inference model's parameter list for `config`, after checking the decoder is one training covers.
    public static func parameterShapes(_ config: LlavaConfig) throws -> [(name: String, shape: [Int])] {
        let t = config.textConfig
        guard !t.attentionBias, !t.mlpBias, (0 ..< t.numHiddenLayers).allSatisfy({ t.window(ofLayer: $0) == nil }),
              (t.rope.partialRotaryFactor ?? 1) == 1, t.resolvedHeadDim % 2 == 0 else {
            throw TrainingError.invalidConfig("training covers Llama decoders without biases, sliding windows or partial rotary (\(t.modelType) with those settings is not)")
        }
        do { return try LlavaModel.parameterShapes(config: config) } catch { throw TrainingError.invalidConfig("\(error)") }
    }

    /// Loads a llava-hf layout checkpoint directory, every key strictly (position_ids / inv_freq buffers ignored).
    public static func load(directory: URL) throws -> TrainableLlava {
        let config: LlavaConfig, data: Data
        do {
            data = try ConfigFile.data(in: directory)
            config = try ConfigFile.decode(LlavaConfig.self, in: directory)
        } catch { throw TrainingError.checkpoint("\(error)") }
        guard config.modelType == "llava" else {
            throw TrainingError.checkpoint("\(directory.path) has model_type '\(config.modelType)'; generative training takes LLaVA-layout checkpoints")
        }
        let store: WeightStore
        do { store = try WeightStore(directory: directory) } catch { throw TrainingError.checkpoint("\(error)") }
        let set = ParameterSet()
        for (name, shape) in try parameterShapes(config) {
            guard let entry = store.entry(name) else { throw TrainingError.checkpoint("\(directory.path) lacks tensor '\(name)' (llava-hf layout expected)") }
            guard entry.shape == shape else { throw TrainingError.checkpoint("tensor '\(name)' has shape \(entry.shape) but the config implies \(shape)") }
            do { set.set(name, try store.tensor(name).copy()) } catch { throw TrainingError.checkpoint("\(name): \(error)") }
        }
        let extra = store.keys.subtracting(set.names).filter { !$0.hasSuffix("position_ids") && !$0.hasSuffix("inv_freq") }.sorted()
        guard extra.isEmpty else { throw TrainingError.checkpoint("\(directory.path) has tensors LLaVA does not use: \(extra.prefix(5).joined(separator: ", "))") }
        let model = try TrainableLlava(config: config, parameters: set)
        model.configJSON = data
        return model
    }

    /// A freshly initialised model, seeded (transformers' scheme with initializer_range 0.02): matrices and
    /// embeddings N(0, 0.02), biases 0, norm gains 1.
    public static func random(config: LlavaConfig, seed: UInt64) throws -> TrainableLlava {
        var rng = SplitMix64(seed: seed)
        let set = ParameterSet()
        for (name, shape) in try parameterShapes(config) {
            let t = Tensor(zeros: shape)
            let isNorm = shape.count == 1 && (name.contains("norm") || name.contains("layrnorm"))
            if isNorm && name.hasSuffix(".weight") {
                for i in 0 ..< t.count { t[i] = 1 }
            } else if !name.hasSuffix(".bias") && !isNorm {
                for i in 0 ..< t.count { t[i] = rng.nextGaussian() * 0.02 }
            }
            set.set(name, t)
        }
        return try TrainableLlava(config: config, parameters: set)
    }

    public var headName: String { config.textConfig.tieWordEmbeddings ? Self.embed : Self.head }

    public func isTrainable(_ name: String) -> Bool { !(freezeVision && name.hasPrefix("vision_tower.")) }

    // MARK: - Forward / backward

    /// The image-prefix LM loss of a batch: mean cross-entropy over the positions whose label is not -100.
    public func forward(_ batch: LlavaTrainingBatch) throws -> LlavaForwardPass {
        try validate(batch)
        let b = batch.size, t = batch.ids.map(\.count).max() ?? 1, c = config.textConfig.hiddenSize
        // Image features -> projector.
        let visionCache: LlavaVisionCache?
        let selected: Tensor
        if freezeVision {
            selected = LlavaVisionOp.forward(batch.pixels, params: parameters, config: config).0
            visionCache = nil
        } else {
            (selected, visionCache) = LlavaVisionOp.forward(batch.pixels, params: parameters, config: config)
        }
        let bias = config.multimodalProjectorBias, act = Activation(huggingFace: config.projectorHiddenAct) ?? .gelu
        let (p1, c1) = LinearOp.forward(selected, weight: parameters["multi_modal_projector.linear_1.weight"],
                                        bias: bias ? parameters["multi_modal_projector.linear_1.bias"] : nil, activation: act)
        let (features, c2) = LinearOp.forward(p1, weight: parameters["multi_modal_projector.linear_2.weight"],
                                              bias: bias ? parameters["multi_modal_projector.linear_2.bias"] : nil)
        // The image-token targets read the projector's rows before the position rows are added.
        let imageTargets = batch.imageLabels.flatMap { imageTargetForward(features: features, labels: $0, weight: imageTargetWeight) }
        if config.imagePositionEmbedding { LlavaModel.addImagePositions(parameters[Self.imagePositions], to: features) }
        // Embeddings, image rows replaced in order (masked_scatter); padding rows stay zero.
        var ids = [Int](repeating: 0, count: b * t), keyMask = [UInt8](repeating: 0, count: b * t), imageRows: [Int] = []
        var x = Tensor(zeros: [b * t, c])
        let table = parameters[Self.embed].pointer
        for bi in 0 ..< b {
            for (pos, id) in batch.ids[bi].enumerated() {
                let r = bi * t + pos
                ids[r] = id
                keyMask[r] = 1
                if id == config.imageTokenIndex {
                    (x.pointer + r * c).update(from: features.pointer + imageRows.count * c, count: c)
                    imageRows.append(r)
                } else {
                    (x.pointer + r * c).update(from: table + id * c, count: c)
                }
            }
        }
        var layers: [DecoderLayerCache] = []
        for l in 0 ..< config.textConfig.numHiddenLayers {
            let (y, cache) = DecoderLayerOp.forward(x, params: parameters, prefix: "\(Self.text).layers.\(l)", spec: spec,
                                                    batch: b, length: t, angles: angles, keyMask: keyMask)
            layers.append(cache)
            x = y
        }
        // Only scored rows go through the final norm and the vocabulary projection.
        var scoredRows: [Int] = [], targets: [Int] = []
        for bi in 0 ..< b {
            let labels = batch.labels[bi]
            for pos in 0 ..< max(labels.count - 1, 0) where labels[pos + 1] != LlavaTrainingBatch.ignoreIndex {
                scoredRows.append(bi * t + pos)
                targets.append(labels[pos + 1])
            }
        }
        let gathered = Tensor(uninitialized: [scoredRows.count, c])
        for (k, r) in scoredRows.enumerated() { (gathered.pointer + k * c).update(from: x.pointer + r * c, count: c) }
        let (normed, normCache) = RMSNormOp.forward(gathered, weight: parameters["\(Self.text).norm.weight"], eps: spec.eps)
        let (logits, headCache) = LinearOp.forward(normed, weight: parameters[headName], bias: nil)
        let (loss, ce) = CrossEntropyOp.forward(logits, targets: targets, smoothing: targetSmoothing)
        return LlavaForwardPass(loss: Float(loss), exactLoss: loss, scoredTokens: targets.count,
                                imageTargetLoss: imageTargets?.0, imageTargets: imageTargets?.1, batch: b, length: t, ids: ids,
                                imageRows: imageRows, vision: visionCache, projector1: c1, projector2: c2, layers: layers,
                                scoredRows: scoredRows, finalNorm: normCache, head: headCache, crossEntropy: ce)
    }

    /// Gradients of the pass's loss by parameter name (frozen parameters get none).
    public func backward(_ pass: LlavaForwardPass) -> Gradients {
        let grads = Gradients()
        let c = config.textConfig.hiddenSize, vocab = config.textConfig.vocabSize
        let dLogits = CrossEntropyOp.backward(cache: pass.crossEntropy)
        let head = LinearOp.backward(dLogits, cache: pass.head, weight: parameters[headName], hasBias: false)
        let norm = RMSNormOp.backward(head.dx ?? dLogits, cache: pass.finalNorm, weight: parameters["\(Self.text).norm.weight"])
        var dx = Tensor(zeros: [pass.batch * pass.length, c])
        for (k, r) in pass.scoredRows.enumerated() { (dx.pointer + r * c).update(from: norm.dx.pointer + k * c, count: c) }
        for l in stride(from: pass.layers.count - 1, through: 0, by: -1) {
            dx = DecoderLayerOp.backward(dx, cache: pass.layers[l], params: parameters, prefix: "\(Self.text).layers.\(l)", spec: spec,
                                         length: pass.length, angles: angles, grads: grads)
        }
        // Embedding table: every text row (image rows came from the projector); tied, plus the head's gradient.
        let image = Set(pass.imageRows)
        let dTable = EmbeddingOp.backward(dx, ids: pass.ids, vocab: vocab) { !image.contains($0) }
        if config.textConfig.tieWordEmbeddings { Ops.addInPlace(dTable, head.dw) } else { grads.add(Self.head, head.dw) }
        grads.add(Self.embed, dTable)
        grads.add("\(Self.text).norm.weight", norm.dw)
        // Projector.
        let dFeatures = Tensor(uninitialized: [pass.imageRows.count, c])
        for (k, r) in pass.imageRows.enumerated() { (dFeatures.pointer + k * c).update(from: dx.pointer + r * c, count: c) }
        let bias = config.multimodalProjectorBias
        if config.imagePositionEmbedding {
            // Row t of every image got the same position row: its gradient is the sum over images.
            let positions = parameters[Self.imagePositions], rows = positions.count
            let dPositions = Tensor(zeros: positions.shape)
            for img in 0 ..< dFeatures.count / rows {
                for i in 0 ..< rows { dPositions.pointer[i] += dFeatures.pointer[img * rows + i] }
            }
            grads.add(Self.imagePositions, dPositions)
        }
        // The image-token targets' gradient joins after the position rows' (they read the rows before those).
        if let targets = pass.imageTargets { imageTargetBackward(targets, into: dFeatures, grads: grads) }
        let p2 = LinearOp.backward(dFeatures, cache: pass.projector2, weight: parameters["multi_modal_projector.linear_2.weight"], hasBias: bias)
        grads.add("multi_modal_projector.linear_2.weight", p2.dw)
        if let db = p2.db { grads.add("multi_modal_projector.linear_2.bias", db) }
        let p1 = LinearOp.backward(p2.dx ?? dFeatures, cache: pass.projector1, weight: parameters["multi_modal_projector.linear_1.weight"],
                                   hasBias: bias, needInput: pass.vision != nil)
        grads.add("multi_modal_projector.linear_1.weight", p1.dw)
        if let db = p1.db { grads.add("multi_modal_projector.linear_1.bias", db) }
        if let vision = pass.vision, let dSelected = p1.dx {
            LlavaVisionOp.backward(dSelected, cache: vision, params: parameters, config: config, grads: grads)
        }
        return grads
    }

    /// forward + backward + optional global-norm clipping + AdamW at `learningRate`.
    public func trainStep(_ batch: LlavaTrainingBatch, optimizer: AdamW, learningRate: Float, maxGradNorm: Float? = nil) throws -> StepResult {
        let pass = try forward(batch)
        var result = optimizer.clipAndStep(parameters, backward(pass), learningRate: learningRate, maxGradNorm: maxGradNorm, loss: pass.loss)
        result.imageTargetLoss = pass.imageTargetLoss.map(Float.init)
        return result
    }

    private func validate(_ batch: LlavaTrainingBatch) throws {
        let v = config.visionConfig, t = config.textConfig, p = batch.pixels
        guard !batch.ids.isEmpty, batch.labels.count == batch.ids.count else {
            throw TrainingError.invalidBatch("\(batch.ids.count) sequences with \(batch.labels.count) label rows; a batch needs matching, non-empty rows")
        }
        guard p.rank == 4, p.shape[0] == batch.size, p.shape[1] == v.numChannels, p.shape[2] == v.imageSize, p.shape[3] == v.imageSize else {
            throw TrainingError.invalidBatch("pixels have shape \(p.shape); expected [\(batch.size), \(v.numChannels), \(v.imageSize), \(v.imageSize)]")
        }
        var scored = 0
        for (n, (seq, labels)) in zip(batch.ids, batch.labels).enumerated() {
            guard !seq.isEmpty, seq.count <= t.maxPositionEmbeddings else {
                throw TrainingError.invalidBatch("sequence \(n) has \(seq.count) tokens; 1 ... \(t.maxPositionEmbeddings) allowed")
            }
            guard labels.count == seq.count else { throw TrainingError.invalidBatch("sequence \(n): \(labels.count) labels for \(seq.count) tokens") }
            if let bad = seq.first(where: { $0 < 0 || $0 >= t.vocabSize }) {
                throw TrainingError.invalidBatch("sequence \(n) has token id \(bad) outside 0..<\(t.vocabSize)")
            }
            if let bad = labels.first(where: { $0 != LlavaTrainingBatch.ignoreIndex && ($0 < 0 || $0 >= t.vocabSize) }) {
                throw TrainingError.invalidBatch("sequence \(n) has label \(bad) outside 0..<\(t.vocabSize) (and not -100)")
            }
            let slots = seq.filter { $0 == config.imageTokenIndex }.count
            guard slots == config.imageTokensPerImage else {
                throw TrainingError.invalidBatch("sequence \(n) has \(slots) image tokens; its image needs \(config.imageTokensPerImage)")
            }
            scored += labels.dropFirst().filter { $0 != LlavaTrainingBatch.ignoreIndex }.count
        }
        guard scored > 0 else { throw TrainingError.invalidBatch("no label to score (every label is -100)") }
        if let image = batch.imageLabels {
            guard image.count == batch.size * config.imageTokensPerImage else {
                throw TrainingError.invalidBatch("\(image.count) image-token labels for \(batch.size) images of \(config.imageTokensPerImage) tokens")
            }
            if let bad = image.first(where: { $0 != LlavaTrainingBatch.ignoreIndex && ($0 < 0 || $0 >= t.vocabSize) }) {
                throw TrainingError.invalidBatch("image-token label \(bad) outside 0..<\(t.vocabSize) (and not -100)")
            }
        }
    }
}
