/// The meaning behind every caption and negative. Text is rendered from claims, and claims are checked
/// against object coordinates, so "every caption is true, every negative is false" is testable rather
/// than a property of hand-written templates.

/// "a small red circle" / "red circle" / "circle": unset attributes match anything.
public struct ObjectDescription: Equatable, Sendable {
    public var size: ObjectSize?
    public var colour: SceneColour?
    public var shape: SceneShape

    public init(size: ObjectSize? = nil, colour: SceneColour?, shape: SceneShape) {
        self.size = size
        self.colour = colour
        self.shape = shape
    }

    public init(_ object: SceneObject, withSize: Bool = false) {
        self.init(size: withSize ? object.size : nil, colour: object.colour, shape: object.shape)
    }

    public func matches(_ object: SceneObject) -> Bool {
        object.shape == shape && (colour.map { $0 == object.colour } ?? true) && (size.map { $0 == object.size } ?? true)
    }

    /// "small red circle" (no article).
    var words: String { [size?.rawValue, colour?.rawValue, shape.rawValue].compactMap { $0 }.joined(separator: " ") }

    /// "a small red circle", "an orange star".
    public var phrase: String { SceneCaption.article(words) + " " + words }
}

/// `count` objects of one colour and shape ("two red circles"), optionally all of one size.
public struct ObjectGroup: Equatable, Sendable {
    public var count: Int
    public var colour: SceneColour
    public var shape: SceneShape
    public var size: ObjectSize?

    public init(count: Int, colour: SceneColour, shape: SceneShape, size: ObjectSize? = nil) {
        self.count = count
        self.colour = colour
        self.shape = shape
        self.size = size
    }

    func matches(_ object: SceneObject) -> Bool {
        object.colour == colour && object.shape == shape && (size.map { $0 == object.size } ?? true)
    }

    /// "a small red circle", "two red circles".
    public var phrase: String {
        let attrs = [size?.rawValue, colour.rawValue].compactMap { $0 }.joined(separator: " ")
        if count == 1 { return SceneCaption.article(attrs) + " " + attrs + " " + shape.rawValue }
        return SceneVocabulary.countWord(count) + " " + attrs + " " + shape.plural
    }
}

public enum ClaimTruth: String, Sendable {
    case `true`, `false`, unknown
}

public enum SceneClaim: Equatable, Sendable {
    /// The scene consists of exactly these groups: nothing more, nothing less ("two red circles and a blue square").
    case exactly([ObjectGroup])
    /// Some object matching the subject stands in the relation to some other object matching the object.
    case relation(ObjectDescription, SceneRelation, ObjectDescription)

    /// True/false against the objects; `unknown` only for relations in an ambiguous (diagonal) layout,
    /// which is never asserted and never used as a negative.
    public func evaluate(_ objects: [SceneObject]) -> ClaimTruth {
        switch self {
        case let .exactly(groups):
            var total = 0
            for g in groups {
                let n = objects.filter { g.matches($0) }.count
                // A sized group must also account for every object of its colour and shape.
                let all = objects.filter { $0.colour == g.colour && $0.shape == g.shape }.count
                guard n == g.count, all == g.count else { return .false }
                total += n
            }
            return total == objects.count ? .true : .false
        case let .relation(subject, relation, object):
            var loose = false
            for i in objects.indices where subject.matches(objects[i]) {
                for j in objects.indices where j != i && object.matches(objects[j]) {
                    if SceneGeometry.holdsStrictly(relation, objects[i], objects[j]) { return .true }
                    if SceneGeometry.holdsLoosely(relation, objects[i], objects[j]) { loose = true }
                }
            }
            return loose ? .unknown : .false
        }
    }

    /// The default wording: "two red circles and a blue square", "a red circle left of a blue square".
    public var text: String {
        switch self {
        case let .exactly(groups): return SceneCaption.list(groups.map(\.phrase))
        case let .relation(s, r, o): return "\(s.phrase) \(r.rawValue) \(o.phrase)"
        }
    }
}

/// A caption: its words and the claim they make.
public struct SceneCaption: Equatable, Sendable {
    public var text: String
    public var claim: SceneClaim

    public init(_ text: String, _ claim: SceneClaim) {
        self.text = text
        self.claim = claim
    }

    public init(_ claim: SceneClaim) { self.init(claim.text, claim) }

    /// "an" before a vowel sound (only "orange" in this vocabulary), else "a".
    static func article(_ next: String) -> String {
        guard let first = next.first else { return "a" }
        return "aeiou".contains(first) ? "an" : "a"
    }

    /// "A", "A and B", "A, B and C".
    static func list(_ items: [String]) -> String {
        guard items.count > 1, let last = items.last else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + last
    }
}

/// A false caption built by a controlled edit of a true one, for contrastive and binding evaluation.
public struct SceneNegative: Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Colours exchanged between two objects/groups: "a blue circle left of a red square".
        case swap
        /// Subject and object exchanged: "a blue square left of a red circle".
        case order
        /// Relation replaced by its opposite: "a red circle right of a blue square".
        case relation
        /// A count changed: "two yellow stars" for three.
        case count
        /// A colour replaced by one the scene does not have in that place.
        case colour
        /// A shape replaced.
        case shape
        /// small <-> large.
        case size
    }

    public var kind: Kind
    public var caption: SceneCaption
}
