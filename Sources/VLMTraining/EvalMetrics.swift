import Foundation

/// The metrics of `vlm eval`, as pure functions of embeddings (L2-normalised rows), so they are checked on
/// hand-built cases. Ties are resolved against the model: a wrong candidate scoring *equal* to the best right
/// one ranks ahead of it, so a collapsed model (all scores equal) scores 0, never 100%.
public enum EvalMetrics {
    public static func dot(_ a: [Float], _ b: [Float]) -> Float {
        var s: Float = 0
        for i in 0 ..< min(a.count, b.count) { s += a[i] * b[i] }
        return s
    }

    /// 0-based rank of the best correct candidate among `scores`: how many wrong candidates score >= it.
    /// nil when no candidate is correct.
    public static func rank(scores: [Float], correct: Set<Int>) -> Int? {
        guard let best = correct.compactMap({ scores.indices.contains($0) ? scores[$0] : nil }).max() else { return nil }
        var r = 0
        for (i, s) in scores.enumerated() where !correct.contains(i) && s >= best { r += 1 }
        return r
    }

    /// Recall@K for each K: the share of queries whose best correct candidate ranks below K.
    /// queries[i] against candidates; correct[i]: indices of candidates that match query i.
    public static func recall(queries: [[Float]], candidates: [[Float]], correct: [Set<Int>], ks: [Int] = [1, 5, 10]) -> [Int: Double] {
        var hits = [Int: Int](uniqueKeysWithValues: ks.map { ($0, 0) })
        var n = 0
        for (q, query) in queries.enumerated() {
            let scores = candidates.map { dot(query, $0) }
            guard let r = rank(scores: scores, correct: correct[q]) else { continue }
            n += 1
            for k in ks where r < k { hits[k, default: 0] += 1 }
        }
        return hits.mapValues { n == 0 ? 0 : Double($0) / Double(n) }
    }

    /// Top-K accuracy of zero-shot classification: images against class prompt embeddings; truth[i] is the class
    /// index of image i.
    public static func zeroShot(images: [[Float]], classes: [[Float]], truth: [Int], ks: [Int] = [1, 5]) -> [Int: Double] {
        recall(queries: images, candidates: classes, correct: truth.map { [$0] }, ks: ks)
    }

    /// Share of pairs where the image scores its true caption strictly above the false one.
    public static func pairwise(images: [[Float]], positives: [[Float]], negatives: [[Float]]) -> Double {
        guard !images.isEmpty else { return 0 }
        var wins = 0
        for i in images.indices where dot(images[i], positives[i]) > dot(images[i], negatives[i]) { wins += 1 }
        return Double(wins) / Double(images.count)
    }
}

/// One split's results.
public struct SplitEvaluation: Codable, Sendable {
    public struct ZeroShot: Codable, Sendable {
        public var top1: Double
        public var top5: Double
        public var images: Int
        public var classes: Int
    }

    public struct Retrieval: Codable, Sendable {
        public var imageToText: [String: Double]
        public var textToImage: [String: Double]
        public var images: Int
        public var texts: Int
    }

    public struct Pairwise: Codable, Sendable {
        public var accuracy: Double
        public var pairs: Int
    }

    public var split: String
    public var zeroShot: ZeroShot?
    public var retrieval: Retrieval?
    /// The binding test: true caption vs its attribute-swapped twin (negatives of type "swap").
    public var binding: Pairwise?
    /// Every negative type (swap, order, relation, count, colour, shape, size, negative...).
    public var negatives: [String: Pairwise]
    /// Samples whose image could not be decoded.
    public var skipped: Int

    public init(split: String) {
        self.split = split
        negatives = [:]
        skipped = 0
    }
}

public struct EvaluationReport: Codable, Sendable {
    public var model: String
    public var data: String
    public var splits: [SplitEvaluation]
    public var seconds: Double
    /// The precision the model ran in (`--precision`; "fp32" when not given) and what that computes with.
    public var precision: String?
    public var engine: String?

    public init(model: String, data: String, splits: [SplitEvaluation], seconds: Double, precision: String? = nil, engine: String? = nil) {
        self.model = model
        self.data = data
        self.splits = splits
        self.seconds = seconds
        self.precision = precision
        self.engine = engine
    }

    /// A fixed-width table, one row per split.
    public func table() -> String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%5.1f%%", $0 * 100) } ?? "     -" }
        var lines = ["split     | zero-shot top1 top5 (n)     | img->txt R@1  R@5   R@10  | txt->img R@1  R@5   R@10  (n)  | binding (n)"]
        lines.append(String(repeating: "-", count: lines[0].count))
        for s in splits {
            let z = s.zeroShot, r = s.retrieval, b = s.binding
            let zs = "\(pct(z?.top1)) \(pct(z?.top5)) (\(z?.images ?? 0))".padding(toLength: 27, withPad: " ", startingAt: 0)
            let i2t = "\(pct(r?.imageToText["R@1"])) \(pct(r?.imageToText["R@5"])) \(pct(r?.imageToText["R@10"]))"
            let t2i = "\(pct(r?.textToImage["R@1"])) \(pct(r?.textToImage["R@5"])) \(pct(r?.textToImage["R@10"])) (\(r?.texts ?? 0))"
            lines.append("\(s.split.padding(toLength: 9, withPad: " ", startingAt: 0)) | \(zs) | \(i2t.padding(toLength: 25, withPad: " ", startingAt: 0)) | \(t2i.padding(toLength: 30, withPad: " ", startingAt: 0)) | \(pct(b?.accuracy)) (\(b?.pairs ?? 0))")
        }
        var extra: [String] = []
        for s in splits where !s.negatives.isEmpty {
            let parts = s.negatives.keys.sorted().map { "\($0) \(pct(s.negatives[$0]?.accuracy).trimmingCharacters(in: .whitespaces)) (\(s.negatives[$0]?.pairs ?? 0))" }
            extra.append("\(s.split) negatives: " + parts.joined(separator: ", "))
            if s.skipped > 0 { extra.append("\(s.split): \(s.skipped) images skipped (undecodable)") }
        }
        return (lines + extra).joined(separator: "\n")
    }
}
