import Foundation
import VLMImage
import VLMLayers
import VLMScenes
import VLMTokenizers

/// `vlm eval --generative`: a generative checkpoint answering fresh scenes (greedy, through the registry as
/// `vlm ask` runs it), scored per question kind, captions by meaning, object hallucination POPE-style and
/// boxes by IoU.
public enum SceneVLMEvaluation {
    /// Exact-match accuracy of one kind ("caption" is string equality with the canonical caption).
    public struct KindScore: Codable, Sendable {
        public let kind: String
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total > 0 ? Double(correct) / Double(total) : 0 }
    }

    /// POPE's numbers for one negative sampling: "yes" is the positive class; answers that are neither yes nor
    /// no count as wrong and are reported.
    public struct ProbeScore: Codable, Sendable {
        public let sampling: String
        public var truePositive = 0, falsePositive = 0, trueNegative = 0, falseNegative = 0, other = 0
        public var total: Int { truePositive + falsePositive + trueNegative + falseNegative + other }
        public var accuracy: Double { total > 0 ? Double(truePositive + trueNegative) / Double(total) : 0 }
        public var precision: Double { truePositive + falsePositive > 0 ? Double(truePositive) / Double(truePositive + falsePositive) : 0 }
        public var recall: Double { truePositive + falseNegative > 0 ? Double(truePositive) / Double(truePositive + falseNegative) : 0 }
        public var f1: Double { precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0 }
        /// Share of "yes" answers; 0.5 on POPE's balanced sets is what an unbiased model says.
        public var yesRatio: Double { total > 0 ? Double(truePositive + falsePositive) / Double(total) : 0 }
    }

    /// "where is the ...?" answers: a box parsed from the location tokens, IoU against the object's box.
    public struct BoxScore: Codable, Sendable {
        public var total = 0
        /// IoU >= 0.5.
        public var hits = 0
        public var iouSum = 0.0
        /// The label after the box names the asked object.
        public var labelCorrect = 0
        public var hitRate: Double { total > 0 ? Double(hits) / Double(total) : 0 }
        public var meanIoU: Double { total > 0 ? iouSum / Double(total) : 0 }
    }

    /// "where are the stars?" answers: every box parsed, matched one to one (greedily, highest IoU first) with the
    /// objects at IoU >= 0.5.
    public struct EnumerationScore: Codable, Sendable {
        public var total = 0
        /// As many boxes as objects: the count the answer implies is right.
        public var countRight = 0
        /// As many boxes as objects, each matched to its own object at IoU >= 0.5.
        public var allFound = 0
        public var countRate: Double { total > 0 ? Double(countRight) / Double(total) : 0 }
        public var foundRate: Double { total > 0 ? Double(allFound) / Double(total) : 0 }
    }

    /// One wrong answer, with the scene it was about, so a run's failures can be read (`vlm eval --mistakes N`).
    public struct Mistake: Codable, Sendable {
        /// Scene index within the split (regenerate it with the same seed).
        public let scene: Int
        /// "size colour shape (x, y)" per object, centres in units of the image side.
        public let objects: [String]
        /// The question kind, "pope-random" / "pope-adversarial", "box" or "enumerate".
        public let kind: String
        public let prompt: String
        public let expected: String
        public let answer: String
    }

    public struct Report: Codable, Sendable {
        public let split: String
        public let scenes: Int
        public var kinds: [KindScore]
        /// Captions whose parsed claim is true of the scene and names every object (`SceneCaptionParser`).
        public var captionFaithful: KindScore
        public var probes: [ProbeScore]
        /// nil when the checkpoint has no location tokens.
        public var boxes: BoxScore?
        /// nil when the checkpoint has no location tokens.
        public var enumeration: EnumerationScore?
        /// Up to `mistakes` wrong answers per kind, in scene order (empty unless asked for).
        public var mistakes: [Mistake] = []
    }

    /// `count` scenes of `split` from the scenes generator seeded `scenesSeed` (use a seed the model was not
    /// trained on), every turn of each, plus POPE probes (random and adversarial) and, when the tokenizer has
    /// location tokens, one "where" question per one-of-a-kind object and one "where are the ...?" per shape and
    /// colour present. `mistakes`: how many wrong answers per kind to keep in the report.
    public static func evaluate(directory: URL, split: SceneSplit = .test, scenesSeed: UInt64 = 0, count: Int = 50,
                                maxTokens: Int = 24, precision: Precision? = nil, mistakes keep: Int = 0) throws -> Report {
        let pipeline = try GenerativePipeline.load(directory: directory, precision: precision)
        let locate = try TokenizerLoader.load(directory: directory).tokenID(for: LocationTokens.token(0)) != nil
        let generator = try SceneGenerator(seed: scenesSeed)
        var options = SamplingOptions()
        options.maxTokens = maxTokens
        var kinds: [String: KindScore] = [:]
        var faithful = KindScore(kind: "caption (faithful)", correct: 0, total: 0)
        var probes = SceneProbe.Sampling.allCases.map { ProbeScore(sampling: $0.rawValue) }
        var boxes = BoxScore(), enumeration = EnumerationScore()
        var long = options
        long.maxTokens = max(maxTokens, 32)  // four boxes of four tokens, each with a two-word label
        var mistakes: [Mistake] = [], kept: [String: Int] = [:]
        for index in 0 ..< count {
            let scene = try generator.generate(index: index, split: split)
            let image = try scene.image.rgbImage()
            func wrong(_ kind: String, _ prompt: String, _ expected: String, _ answer: String) {
                guard kept[kind, default: 0] < keep else { return }
                kept[kind, default: 0] += 1
                let objects = scene.scene.objects.map { o in
                    String(format: "%@ %@ %@ (%.2f, %.2f)", o.size.rawValue as NSString, o.colour.rawValue as NSString,
                           o.shape.rawValue as NSString, o.x, o.y)
                }
                mistakes.append(Mistake(scene: index, objects: objects, kind: kind, prompt: prompt, expected: expected, answer: answer))
            }
            func ask(_ prompt: String, _ options: SamplingOptions = options) throws -> String {
                let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(prompt)])]
                return try pipeline.generate(messages: messages, images: [image], options: options).text
            }
            for turn in SceneVLMExample.all(for: scene, locate: false) {
                let answer = try ask(turn.prompt)
                var s = kinds[turn.kind] ?? KindScore(kind: turn.kind, correct: 0, total: 0)
                s.total += 1
                if normalize(answer) == normalize(turn.answer) { s.correct += 1 } else { wrong(turn.kind, turn.prompt, turn.answer, answer) }
                kinds[turn.kind] = s
                if turn.kind == "caption" {
                    faithful.total += 1
                    if SceneCaptionParser.isFaithful(answer, objects: scene.scene.objects) { faithful.correct += 1 }
                }
            }
            for (p, sampling) in SceneProbe.Sampling.allCases.enumerated() {
                for probe in SceneGrounding.probes(scene.scene, seed: scenesSeed, sampling: sampling) {
                    let answer = try ask(probe.question), said = normalize(answer), truth = probe.present ? "yes" : "no"
                    switch said {
                    case "yes": if probe.present { probes[p].truePositive += 1 } else { probes[p].falsePositive += 1 }
                    case "no": if probe.present { probes[p].falseNegative += 1 } else { probes[p].trueNegative += 1 }
                    default: probes[p].other += 1
                    }
                    if said != truth { wrong("pope-\(sampling.rawValue)", probe.question, truth, answer) }
                }
            }
            guard locate else { continue }
            for q in SceneGrounding.locateQuestions(scene.scene) {
                let answer = try ask(q.question)
                boxes.total += 1
                let expected = describe(q.box, q.label)
                // Parsed in normalised units (a 1x1 image), compared with the object's normalised box.
                guard let box = LocationTokens.parse(answer, width: 1, height: 1).first else {
                    wrong("box", q.question, expected, answer)
                    continue
                }
                let said = SceneBox(x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2), iou = said.iou(q.box)
                boxes.iouSum += iou
                if iou >= 0.5 { boxes.hits += 1 } else {
                    wrong("box", q.question, expected, describe(said, box.label) + String(format: " (IoU %.2f)", iou))
                }
                if normalize(box.label) == normalize(q.label) { boxes.labelCorrect += 1 }
            }
            for q in SceneGrounding.enumerateQuestions(scene.scene) {
                let parsed = LocationTokens.parse(try ask(q.question, long), width: 1, height: 1)
                let found = parsed.map { SceneBox(x1: $0.x1, y1: $0.y1, x2: $0.x2, y2: $0.y2) }
                enumeration.total += 1
                if found.count == q.objects.count { enumeration.countRight += 1 }
                if matchesAll(found, q.objects.map(\.box)) { enumeration.allFound += 1 } else {
                    wrong("enumerate", q.question, q.objects.map { describe($0.box, $0.label) }.joined(separator: " "),
                          zip(found, parsed).map { describe($0, $1.label) }.joined(separator: " "))
                }
            }
        }
        return Report(split: split.rawValue, scenes: count, kinds: kinds.values.sorted { $0.kind < $1.kind },
                      captionFaithful: faithful, probes: probes, boxes: locate ? boxes : nil,
                      enumeration: locate ? enumeration : nil,
                      mistakes: mistakes.sorted { ($0.kind, $0.scene) < ($1.kind, $1.scene) })
    }

    /// Per-kind exact match only (what `vlm train vlm --eval-scenes` prints).
    public static func run(directory: URL, split: SceneSplit = .test, scenesSeed: UInt64 = 0, count: Int = 50,
                           maxTokens: Int = 24) throws -> [KindScore] {
        try evaluate(directory: directory, split: split, scenesSeed: scenesSeed, count: count, maxTokens: maxTokens).kinds
    }

    /// "x1,y1,x2,y2 label" in units of the image side, as mistakes print boxes.
    static func describe(_ box: SceneBox, _ label: String) -> String {
        String(format: "%.2f,%.2f,%.2f,%.2f %@", box.x1, box.y1, box.x2, box.y2, label as NSString)
    }

    /// Whether `found` and `truth` (same count) pair up one to one at IoU >= 0.5: the best remaining pair first.
    public static func matchesAll(_ found: [SceneBox], _ truth: [SceneBox]) -> Bool {
        var pairs: [(iou: Double, f: Int, t: Int)] = []
        for (i, f) in found.enumerated() { for (j, t) in truth.enumerated() { pairs.append((f.iou(t), i, j)) } }
        var usedF = Set<Int>(), usedT = Set<Int>()
        for p in pairs.sorted(by: { $0.iou > $1.iou }) where p.iou >= 0.5 && !usedF.contains(p.f) && !usedT.contains(p.t) {
            usedF.insert(p.f)
            usedT.insert(p.t)
        }
        return usedT.count == truth.count && found.count == truth.count
    }

    static func normalize(_ s: String) -> String {
        s.lowercased().split(whereSeparator: { $0.isWhitespace || $0 == "." }).joined(separator: " ")
    }
}

extension SceneVLMEvaluation.Report {
    /// A readable table: kinds, faithful captions, POPE per sampling, boxes.
    public func table() -> String {
        var lines = ["\(split) (\(scenes) scenes)"]
        func row(_ name: String, _ correct: Int, _ total: Int) {
            let pct = total > 0 ? 100 * Double(correct) / Double(total) : 0
            lines.append("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%5d/%5d  %5.1f%%", correct, total, pct))
        }
        for k in kinds { row(k.kind, k.correct, k.total) }
        row(captionFaithful.kind, captionFaithful.correct, captionFaithful.total)
        for p in probes {
            lines.append(String(format: "  POPE %-14@ acc %5.1f%%  precision %5.1f%%  recall %5.1f%%  F1 %5.1f%%  yes-ratio %.2f  (%d, %d unparsed)",
                                p.sampling as NSString, 100 * p.accuracy, 100 * p.precision, 100 * p.recall, 100 * p.f1, p.yesRatio,
                                p.total, p.other))
        }
        if let b = boxes {
            lines.append(String(format: "  boxes IoU>=0.5      %5d/%5d  %5.1f%%  mean IoU %.3f  label %d/%d", b.hits, b.total, 100 * b.hitRate,
                                b.meanIoU, b.labelCorrect, b.total))
        }
        if let e = enumeration {
            lines.append(String(format: "  all boxes (where are the ...?) %5d/%5d  %5.1f%% every object found, %5.1f%% count right", e.allFound, e.total,
                                100 * e.foundRate, 100 * e.countRate))
        }
        if !mistakes.isEmpty { lines.append("  mistakes (kind, scene: objects; question -> answer, expected):") }
        for m in mistakes {
            lines.append("    \(m.kind) #\(m.scene): \(m.objects.joined(separator: "; "))")
            lines.append("      \(m.prompt) -> \(m.answer)  (expected \(m.expected))")
        }
        return lines.joined(separator: "\n")
    }
}
