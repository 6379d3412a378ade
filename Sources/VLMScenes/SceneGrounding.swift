/// Grounded and hallucination-probing turns about a scene, kept apart from `SceneText` so the contrastive
/// corpora (captions, negatives, questions) and the pinned generator output stay exactly as they were.

/// An axis-aligned box in normalised canvas coordinates (0...1, origin top-left, y down).
public struct SceneBox: Codable, Equatable, Sendable {
    public var x1: Double, y1: Double, x2: Double, y2: Double

    public init(x1: Double, y1: Double, x2: Double, y2: Double) {
        (self.x1, self.y1, self.x2, self.y2) = (x1, y1, x2, y2)
    }

    /// The object's bounding square (centre ± radius), clipped to the canvas.
    public init(_ object: SceneObject) {
        self.init(x1: max(0, object.x - object.radius), y1: max(0, object.y - object.radius),
                  x2: min(1, object.x + object.radius), y2: min(1, object.y + object.radius))
    }

    public var area: Double { max(0, x2 - x1) * max(0, y2 - y1) }

    /// Intersection over union; 0 when either box is empty.
    public func iou(_ other: SceneBox) -> Double {
        let w = min(x2, other.x2) - max(x1, other.x1), h = min(y2, other.y2) - max(y1, other.y1)
        guard w > 0, h > 0 else { return 0 }
        let inter = w * h
        let union = area + other.area - inter
        return union > 0 ? inter / union : 0
    }
}

/// "where is the red star?" about an object that is the only one of its colour and shape, so the phrase names
/// exactly one box.
public struct SceneLocateQuestion: Equatable, Sendable {
    public var question: String
    /// "red star": the label a detector would print next to the box.
    public var label: String
    public var box: SceneBox
}

/// A balanced yes/no existence probe (POPE: Li et al. 2023, "Evaluating Object Hallucination in Large
/// Vision-Language Models"): as many questions about absent objects as about present ones.
public struct SceneProbe: Equatable, Sendable {
    public enum Sampling: String, CaseIterable, Sendable {
        /// Absent objects drawn uniformly from every colour-shape class not in the scene.
        case random
        /// Absent objects that share a colour or a shape with a present one: the confusable negatives.
        case adversarial
    }

    public var question: String
    public var present: Bool
    public var sampling: Sampling
}

/// Which phrases "where is the ...?" questions use (`SceneGrounding.locateQuestions`).
public enum LocateReference: String, CaseIterable, Codable, Sendable {
    /// Colour and shape: "the red star" (what `vlm eval` scores).
    case type
    /// Also shape alone ("the star") and colour alone ("the red object") when that names one object: the lookups
    /// "what colour is the star?" and "what shape is the red object?" start with.
    case any
    /// `.any` plus "where are the stars?" / "where are the red objects?" for every shape and colour present,
    /// answered with every such object's box and label, left to right (`SceneGrounding.enumerateQuestions`):
    /// counting is finding each instance, and this trains it instance by instance.
    case all
}

/// "where are the stars?": every object of one shape (or one colour), left to right, so the answer is a fixed
/// function of the scene.
public struct SceneEnumerateQuestion: Equatable, Sendable {
    public var question: String
    /// (label, box) per object, in answer order.
    public var objects: [(label: String, box: SceneBox)]

    public static func == (a: SceneEnumerateQuestion, b: SceneEnumerateQuestion) -> Bool {
        a.question == b.question && a.objects.map(\.label) == b.objects.map(\.label) && a.objects.map(\.box) == b.objects.map(\.box)
    }
}

public enum SceneGrounding {
    /// "where is the ...?" about each object a phrase names alone, in object order (no randomness: the answer is
    /// the box). `.type`: one per one-of-a-kind object ("where is the red star?"). `.any` adds the phrases the
    /// attribute questions use: "where is the star?" when it is the only star, "where is the red object?" when it
    /// is the only red one. The label is always the full "red star", so the answer also says what was found.
    public static func locateQuestions(_ scene: Scene, references: LocateReference = .type) -> [SceneLocateQuestion] {
        let objects = scene.objects
        var out: [SceneLocateQuestion] = []
        for o in objects {
            let words = "\(o.colour.rawValue) \(o.shape.rawValue)"
            func add(_ phrase: String) { out.append(SceneLocateQuestion(question: "where is the \(phrase)?", label: words, box: SceneBox(o))) }
            if objects.filter({ $0.type == o.type }).count == 1 { add(words) }
            guard references != .type else { continue }
            if objects.filter({ $0.shape == o.shape }).count == 1 { add(o.shape.rawValue) }
            if objects.filter({ $0.colour == o.colour }).count == 1 { add("\(o.colour.rawValue) object") }
        }
        return out
    }

    /// "where are the <plural>?" for each shape present, then "where are the <colour> objects?" for each colour
    /// present (both in vocabulary order), each answered with all its objects sorted by the left edge, then the
    /// top. Absent shapes and colours are not asked: "is there ...?" and "how many ...?" cover absence.
    public static func enumerateQuestions(_ scene: Scene) -> [SceneEnumerateQuestion] {
        let objects = scene.objects.sorted { ($0.x - $0.radius, $0.y - $0.radius) < ($1.x - $1.radius, $1.y - $1.radius) }
        func entries(_ chosen: [SceneObject]) -> [(label: String, box: SceneBox)] {
            chosen.map { ("\($0.colour.rawValue) \($0.shape.rawValue)", SceneBox($0)) }
        }
        var out: [SceneEnumerateQuestion] = []
        for shape in SceneShape.allCases {
            let chosen = objects.filter { $0.shape == shape }
            if !chosen.isEmpty { out.append(SceneEnumerateQuestion(question: "where are the \(shape.plural)?", objects: entries(chosen))) }
        }
        for colour in SceneColour.allCases {
            let chosen = objects.filter { $0.colour == colour }
            if !chosen.isEmpty { out.append(SceneEnumerateQuestion(question: "where are the \(colour.rawValue) objects?", objects: entries(chosen))) }
        }
        return out
    }

    /// For every present colour-shape class one "is there a ...?" (yes), and as many absent ones (no) drawn with
    /// `sampling`, from the scene's own random stream so the probe set is a pure function of (scene, seed).
    public static func probes(_ scene: Scene, seed: UInt64, sampling: SceneProbe.Sampling) -> [SceneProbe] {
        var rng = SceneRandom.forScene(seed: seed, split: scene.split, index: scene.index, stream: 7)
        var present: [ObjectType] = []
        for o in scene.objects where !present.contains(o.type) { present.append(o.type) }
        var absent = SceneVocabulary.allTypes.filter { !present.contains($0) }
        if sampling == .adversarial {
            let close = absent.filter { t in present.contains { $0.colour == t.colour || $0.shape == t.shape } }
            if close.count >= present.count { absent = close }
        }
        rng.shuffle(&absent)
        func question(_ t: ObjectType) -> String {
            "is there \(ObjectDescription(colour: t.colour, shape: t.shape).phrase)?"
        }
        return present.map { SceneProbe(question: question($0), present: true, sampling: sampling) }
            + absent.prefix(present.count).map { SceneProbe(question: question($0), present: false, sampling: sampling) }
    }
}
