import Foundation
import VLMImage
import VLMLayers
import VLMModels
import VLMTensor

/// What each weight precision costs a model, measured against its fp32 load (`vlm quant-report`).
///
/// Generators: greedy continuations of a fixed prompt set (token agreement with fp32, position by position),
/// and over a text set run teacher-forced, the top-1 agreement and mean KL(fp32 || precision) of next-token
/// distributions and the perplexity of each precision; then the same texts' prefixes of 16+ tokens as single
/// prefills (where bf16 and int8 compute apply): top-1 agreement and mean KL. Dual encoders: the cosine of each embedding to its
/// fp32 embedding and zero-shot top-1 agreement on the given images; a precision the family cannot run is
/// reported with the family's reason, not skipped silently.
public enum QuantReport {
    /// One precision's row.
    public struct Row: Codable, Sendable {
        public var precision: String
        /// Why this precision could not be measured (nil when it was).
        public var unavailable: String?
        /// Bytes of linear weights a decode step streams (generators).
        public var weightBytes: Int?
        public var greedyAgreement: Double?
        public var top1Agreement: Double?
        public var meanKL: Double?
        public var perplexity: Double?
        /// Perplexity relative to fp32's, in percent.
        public var perplexityChange: Double?
        /// Embedding cosine to fp32 (dual encoders): min, mean, 1st/5th/50th percentiles, over images and texts.
        public var cosineMin: Double?
        public var cosineMean: Double?
        public var cosineP1: Double?
        public var cosineP5: Double?
        public var cosineP50: Double?
        public var zeroShotAgreement: Double?
        /// Generators, prompts as one prefill of 16+ tokens (where bf16/int8 compute applies; the teacher-forced
        /// figures above run token by token, i.e. the decode kernels): next-token top-1 agreement and mean KL.
        public var prefillTop1Agreement: Double?
        public var prefillMeanKL: Double?

        init(precision: String) { self.precision = precision }
    }

    public struct Report: Codable, Sendable {
        public var model: String
        public var kind: String
        /// What the rows were measured on.
        public var inputs: String
        public var rows: [Row]
    }

    /// Fixed English text for perplexity and teacher-forced agreement (tokenized by the checkpoint).
    public static let texts = [
        "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
        "A photograph of a mountain lake at sunrise, with mist drifting over the still water.",
        "To make bread, mix flour, water, salt and yeast, knead the dough and let it rise for an hour.",
        "The city council met on Tuesday to discuss the new budget for schools and public transport.",
    ]
    /// Prompts for greedy continuations.
    public static let prompts = ["Once upon a time", "The capital of France is", "Here is a list of fruits:", "In the morning, I"]

    // MARK: - Generators

    /// Measures `precisions` of the generative checkpoint in `directory` against its fp32 load. Without a
    /// tokenizer (random-weight fixtures), prompts and texts are seeded random token ids (stated in `inputs`).
    public static func generator(directory: URL, precisions: [Precision], newTokens: Int = 16) throws -> Report {
        let family = try ModelRegistry.family(directory: directory)
        func load(_ p: Precision) throws -> any GenerativeModel {
            guard case .generative(let m) = try family.load(directory, precision: p) else {
                throw PipelineError.invalidArgument("\(directory.path) is not a generative checkpoint")
            }
            return m
        }
        let reference = try load(.fp32)
        let (prompts, texts, inputs) = tokenized(reference, directory: directory)
        let refGreedy = try prompts.map { try greedy(reference, $0, newTokens: newTokens) }
        let refDists = try texts.map { try teacherForced(reference, $0) }
        let refPrefill = try texts.map { try prefilled(reference, $0) }
        var rows: [Row] = []
        var refPerplexity = 1.0
        for p in [Precision.fp32] + precisions.filter({ $0 != .fp32 }) {
            var row = Row(precision: p.rawValue)
            let model: any GenerativeModel
            do { model = p == .fp32 ? reference : try load(p) } catch {
                row.unavailable = "\(error)"
                rows.append(row)
                continue
            }
            row.weightBytes = model.decodeWeightBytes
            var same = 0, total = 0
            for (prompt, want) in zip(prompts, refGreedy) {
                let got = try greedy(model, prompt, newTokens: newTokens)
                same += zip(got, want).filter { $0 == $1 }.count
                total += want.count
            }
            row.greedyAgreement = Double(same) / Double(max(total, 1))
            var agree = 0, positions = 0, kl = 0.0, nll = 0.0
            for (text, ref) in zip(texts, refDists) {
                let dists = try teacherForced(model, text)
                for (t, (q, r)) in zip(dists, ref).enumerated() {
                    if argmax(q) == argmax(r) { agree += 1 }
                    for v in 0 ..< r.count where r[v] > 0 { kl += r[v] * (log(r[v]) - log(max(q[v], 1e-300))) }
                    nll -= log(max(q[text[t + 1]], 1e-300))
                    positions += 1
                }
            }
            var prefillAgree = 0, prefills = 0, prefillKL = 0.0
            for (text, ref) in zip(texts, refPrefill) {
                for (q, r) in zip(try prefilled(model, text), ref) {
                    if argmax(q) == argmax(r) { prefillAgree += 1 }
                    for v in 0 ..< r.count where r[v] > 0 { prefillKL += r[v] * (log(r[v]) - log(max(q[v], 1e-300))) }
                    prefills += 1
                }
            }
            if prefills > 0 {
                row.prefillTop1Agreement = Double(prefillAgree) / Double(prefills)
                row.prefillMeanKL = prefillKL / Double(prefills)
            }
            row.top1Agreement = Double(agree) / Double(max(positions, 1))
            row.meanKL = kl / Double(max(positions, 1))
            row.perplexity = exp(nll / Double(max(positions, 1)))
            if p == .fp32 { refPerplexity = row.perplexity ?? 1 }
            row.perplexityChange = ((row.perplexity ?? 0) / refPerplexity - 1) * 100
            rows.append(row)
        }
        return Report(model: directory.lastPathComponent, kind: "generator", inputs: inputs, rows: rows)
    }

    /// The prompt and text sets as ids: the checkpoint's tokenizer when it has one, else seeded random ids.
    static func tokenized(_ model: any GenerativeModel, directory: URL) -> (prompts: [[Int]], texts: [[Int]], inputs: String) {
        if let processor = try? model.makeInputProcessor(directory: directory, options: InputProcessingOptions()),
           let p = try? prompts.map({ try processor.tokenizer.encode($0, addSpecialTokens: true) }),
           let t = try? texts.map({ try processor.tokenizer.encode($0, addSpecialTokens: true) }),
           (p + t).allSatisfy({ $0.count >= 2 && $0.allSatisfy { $0 < model.vocabularySize } }) {
            return (p, t, "\(prompts.count) prompts x \(16) greedy tokens, \(texts.count) English sentences (\(t.reduce(0) { $0 + $1.count }) tokens)")
        }
        var rng = SplitMix64(seed: 13)
        let vocab = max(model.vocabularySize, 2)
        func ids(_ n: Int) -> [Int] { (0 ..< n).map { _ in Int(rng.next() % UInt64(vocab)) } }
        return ((0 ..< 4).map { _ in ids(8) }, (0 ..< 4).map { _ in ids(24) },
                "no tokenizer: 4 prompts of 8 and 4 texts of 24 seeded random token ids")
    }

    static func greedy(_ model: any GenerativeModel, _ prompt: [Int], newTokens: Int) throws -> [Int] {
        let state = model.makeState(capacity: prompt.count + newTokens + 1)
        var logits = try model.prefill(PreparedInput(ids: prompt), state: state)
        var out: [Int] = []
        for _ in 0 ..< newTokens {
            let next = argmax(Array(UnsafeBufferPointer(start: logits.pointer, count: model.vocabularySize)))
            out.append(next)
            logits = try model.step(token: next, state: state)
        }
        return out
    }

    /// Next-token distributions (float64 softmax) after each prefix text[0...t], t < count - 1.
    static func teacherForced(_ model: any GenerativeModel, _ text: [Int]) throws -> [[Double]] {
        let state = model.makeState(capacity: text.count + 1)
        var logits = try model.prefill(PreparedInput(ids: [text[0]]), state: state)
        var out: [[Double]] = []
        for t in 0 ..< text.count - 1 {
            out.append(softmax(UnsafeBufferPointer(start: logits.pointer, count: model.vocabularySize)))
            if t + 1 < text.count - 1 { logits = try model.step(token: text[t + 1], state: state) }
        }
        return out
    }

    /// Next-token distributions after prefilling text[0..<L] in one call, for up to 9 prefix lengths L from
    /// PackedLinearWeight.bf16ComputeMinRows (16, as int8's) to the whole text: what a prompt of that length sees.
    static func prefilled(_ model: any GenerativeModel, _ text: [Int]) throws -> [[Double]] {
        let lo = PackedLinearWeight.bf16ComputeMinRows
        guard text.count >= lo else { return [] }
        let lengths = Array(stride(from: lo, through: text.count, by: max(1, (text.count - lo) / 8)).prefix(9))
        return try lengths.map { length in
            let state = model.makeState(capacity: length + 1)
            let logits = try model.prefill(PreparedInput(ids: Array(text[0 ..< length])), state: state)
            return softmax(UnsafeBufferPointer(start: logits.pointer, count: model.vocabularySize))
        }
    }

    // MARK: - Dual encoders

    /// Measures `precisions` of the dual encoder in `directory` against fp32 on `images` (decoded RGB) and
    /// zero-shot `labels`.
    public static func dualEncoder(directory: URL, precisions: [Precision], images: [RGBImage], imageSource: String,
                                   labels: [String]) throws -> Report {
        let family = try ModelRegistry.family(directory: directory)
        let reference = try EmbeddingPipeline.load(directory: directory)
        let refImages = try reference.embed(images: images), refTexts = try reference.embed(texts: labels)
        let refTop1 = top1(reference.similarity(imageEmbeddings: refImages, textEmbeddings: refTexts))
        var rows: [Row] = []
        for p in [Precision.fp32] + precisions.filter({ $0 != .fp32 }) {
            var row = Row(precision: p.rawValue)
            do {
                try family.check(precision: p)
            } catch {
                row.unavailable = "\(error)"
                rows.append(row)
                continue
            }
            let pipeline: EmbeddingPipeline
            if p == .fp32 {
                pipeline = reference
            } else {
                // The family's own load at this precision (never the fp32 model under another name).
                guard case .dualEncoder(let model) = try family.load(directory, precision: p) else {
                    throw PipelineError.invalidArgument("\(directory.path) is not a dual encoder")
                }
                pipeline = EmbeddingPipeline(directory: directory, model: model, tokenizer: reference.tokenizer, processor: reference.processor,
                                             precision: p)
            }
            let imgs = try pipeline.embed(images: images), txts = try pipeline.embed(texts: labels)
            var cos = zip(imgs + txts, refImages + refTexts).map { a, b in Double(zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }) }
            cos.sort()
            func pct(_ q: Double) -> Double { cos[min(cos.count - 1, Int(q * Double(cos.count - 1)))] }
            row.cosineMin = cos.first
            row.cosineMean = cos.reduce(0, +) / Double(max(cos.count, 1))
            row.cosineP1 = pct(0.01)
            row.cosineP5 = pct(0.05)
            row.cosineP50 = pct(0.5)
            let got = top1(pipeline.similarity(imageEmbeddings: imgs, textEmbeddings: txts))
            row.zeroShotAgreement = Double(zip(got, refTop1).filter { $0 == $1 }.count) / Double(max(got.count, 1))
            rows.append(row)
        }
        return Report(model: directory.lastPathComponent, kind: "dual encoder",
                      inputs: "\(images.count) images (\(imageSource)), \(labels.count) zero-shot labels", rows: rows)
    }

    static func top1(_ sims: [[Float]]) -> [Int] { sims.map { argmax($0) } }

    // MARK: - Output

    /// The report as a fixed-width table.
    public static func table(_ report: Report) -> String {
        func f(_ v: Double?, _ digits: Int) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        var lines = ["\(report.model) (\(report.kind)); inputs: \(report.inputs)"]
        if report.kind == "generator" {
            lines.append("precision  weight MB  greedy agree  top-1 agree  mean KL     perplexity  change %  prefill top-1  prefill KL")
            for r in report.rows {
                if let u = r.unavailable { lines.append("\(r.precision.padding(toLength: 9, withPad: " ", startingAt: 0))  unavailable: \(u)"); continue }
                lines.append([r.precision.padding(toLength: 9, withPad: " ", startingAt: 0), f(r.weightBytes.map { Double($0) / 1e6 }, 2).leftPad(9),
                              f(r.greedyAgreement, 4).leftPad(12), f(r.top1Agreement, 4).leftPad(11), f(r.meanKL, 6).leftPad(10),
                              f(r.perplexity, 3).leftPad(11), f(r.perplexityChange, 3).leftPad(9), f(r.prefillTop1Agreement, 4).leftPad(13),
                              f(r.prefillMeanKL, 6).leftPad(10)].joined(separator: "  "))
            }
        } else {
            lines.append("precision  cos min    cos mean   cos p1     cos p5     cos p50    zero-shot agree")
            for r in report.rows {
                if let u = r.unavailable { lines.append("\(r.precision.padding(toLength: 9, withPad: " ", startingAt: 0))  unavailable: \(u)"); continue }
                lines.append([r.precision.padding(toLength: 9, withPad: " ", startingAt: 0), f(r.cosineMin, 6).leftPad(9), f(r.cosineMean, 6).leftPad(9),
                              f(r.cosineP1, 6).leftPad(9), f(r.cosineP5, 6).leftPad(9), f(r.cosineP50, 6).leftPad(9),
                              f(r.zeroShotAgreement, 4).leftPad(15)].joined(separator: "  "))
            }
        }
        return lines.joined(separator: "\n")
    }
}

private func argmax<C: Collection>(_ v: C) -> Int where C.Element: Comparable, C.Index == Int {
    var best = v.startIndex
    for i in v.indices where v[i] > v[best] { best = i }
    return best
}

private func softmax(_ logits: UnsafeBufferPointer<Float>) -> [Double] {
    let m = Double(logits.max() ?? 0)
    var e = logits.map { exp(Double($0) - m) }
    let s = e.reduce(0, +)
    for i in e.indices { e[i] /= s }
    return e
}

private extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
