import Foundation
import VLMLayers
import VLMImage
import VLMModels
import VLMTensor
import VLMTokenizers

/// A checkpoint directory loaded for evaluation through the same `EmbeddingPipeline` users get (any dual
/// encoder the registry loads), with images decoded and preprocessed in parallel.
public final class EvalModel: @unchecked Sendable {
    public let pipeline: EmbeddingPipeline
    public var batchSize = 64

    /// `precision`: the towers' precision (`--precision`; nil: fp32).
    public init(directory: URL, precision: Precision? = nil) throws {
        pipeline = try EmbeddingPipeline.load(directory: directory, precision: precision)
    }

    /// L2-normalised text embeddings.
    public func embed(texts: [String]) throws -> [[Float]] {
        var out: [[Float]] = []
        var start = 0
        while start < texts.count {
            let chunk = Array(texts[start ..< min(start + batchSize, texts.count)])
            start += chunk.count
            out += try pipeline.embed(texts: chunk)
        }
        return out
    }

    /// L2-normalised image embeddings; nil for samples whose image cannot be loaded.
    public func embed(samples: [PairedSample]) throws -> [[Float]?] {
        var out: [[Float]?] = []
        var start = 0
        let processor = pipeline.processor
        while start < samples.count {
            let chunk = Array(samples[start ..< min(start + batchSize, samples.count)])
            start += chunk.count
            var inputs = [PixelInputs?](repeating: nil, count: chunk.count)
            inputs.withUnsafeMutableBufferPointer { buffer in
                let slots = buffer  // each iteration writes only its own slot
                DispatchQueue.concurrentPerform(iterations: chunk.count) { i in
                    slots[i] = try? processor.pixelInputs([chunk[i].loadImage()])
                }
            }
            let good = inputs.compactMap { $0 }
            guard !good.isEmpty else { out += Array(repeating: nil, count: chunk.count); continue }
            let features = try pipeline.model.imageFeatures(PixelInputs.stacking(good))
            var rows = EmbeddingPipeline.rows(Ops.l2Normalize(features))[...]
            for t in inputs {
                if t == nil { out.append(nil) } else { out.append(rows.removeFirst()) }
            }
        }
        return out
    }

    // MARK: Evaluation

    /// Metrics of one split. `classification`: samples with a `label` (zero-shot over `classNames`, or the
    /// labels present); prompts are `template` with "{}" replaced by the class name. `retrieval`: samples for
    /// image<->text recall (captions identical across samples count as the same text) and the negatives tests.
    public func evaluate(split: String, classification: [PairedSample], retrieval: [PairedSample], classNames: [String]? = nil,
                         template: String = "a {}") throws -> SplitEvaluation {
        var result = SplitEvaluation(split: split)
        let labelled = classification.filter { $0.label != nil }
        if !labelled.isEmpty {
            let classes = classNames ?? Array(Set(labelled.compactMap(\.label))).sorted()
            let index = Dictionary(classes.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            let prompts = classes.map { ZeroShot.prompt(label: $0, template: template) }
            let classEmb = try embed(texts: prompts)
            let images = try embed(samples: labelled)
            var imgs: [[Float]] = [], truth: [Int] = []
            for (s, e) in zip(labelled, images) {
                guard let e else { result.skipped += 1; continue }
                guard let label = s.label, let t = index[label] else {
                    throw TrainingError.dataset("\(s.origin): label '\(s.label ?? "")' is not among the \(classes.count) classes")
                }
                imgs.append(e)
                truth.append(t)
            }
            let acc = EvalMetrics.zeroShot(images: imgs, classes: classEmb, truth: truth)
            result.zeroShot = .init(top1: acc[1] ?? 0, top5: acc[5] ?? 0, images: imgs.count, classes: classes.count)
        }
        guard !retrieval.isEmpty else { return result }
        let embedded = try embed(samples: retrieval)
        var samples: [PairedSample] = [], imgs: [[Float]] = []
        for (s, e) in zip(retrieval, embedded) {
            if let e { samples.append(s); imgs.append(e) } else { result.skipped += 1 }
        }
        guard !samples.isEmpty else { return result }
        var texts: [String] = [], textIndex: [String: Int] = [:]
        for s in samples where textIndex[s.caption] == nil {
            textIndex[s.caption] = texts.count
            texts.append(s.caption)
        }
        let textEmb = try embed(texts: texts)
        let imageTruth = samples.map { Set([textIndex[$0.caption] ?? -1]) }
        var textTruth = [Set<Int>](repeating: [], count: texts.count)
        for (i, s) in samples.enumerated() { if let t = textIndex[s.caption] { textTruth[t].insert(i) } }
        let i2t = EvalMetrics.recall(queries: imgs, candidates: textEmb, correct: imageTruth)
        let t2i = EvalMetrics.recall(queries: textEmb, candidates: imgs, correct: textTruth)
        func named(_ r: [Int: Double]) -> [String: Double] { Dictionary(uniqueKeysWithValues: r.map { ("R@\($0.key)", $0.value) }) }
        result.retrieval = .init(imageToText: named(i2t), textToImage: named(t2i), images: imgs.count, texts: texts.count)

        // Negatives: each (image, true caption, false caption) triple, grouped by the negative's type.
        var byType: [String: (imgs: [[Float]], pos: [Int], neg: [String])] = [:]
        for (i, s) in samples.enumerated() {
            for n in s.negatives {
                byType[n.type, default: ([], [], [])].imgs.append(imgs[i])
                byType[n.type, default: ([], [], [])].pos.append(textIndex[s.caption] ?? 0)
                byType[n.type, default: ([], [], [])].neg.append(n.caption)
            }
        }
        for (type, group) in byType {
            let negEmb = try embed(texts: group.neg)
            let acc = EvalMetrics.pairwise(images: group.imgs, positives: group.pos.map { textEmb[$0] }, negatives: negEmb)
            result.negatives[type] = .init(accuracy: acc, pairs: group.imgs.count)
        }
        result.binding = result.negatives["swap"]
        return result
    }
}
