/// The controlled vocabulary of the scenes world. Every caption and answer is built from these words only,
/// so a tokenizer sees a small closed set and a model's errors can be attributed to a specific word.

/// Object shapes. All are drawn upright (no rotation) inside a square of half-side `radius`, filling it
/// similarly, so at 64x64 the silhouettes stay distinguishable. A hexagon was left out on purpose: at the
/// small size it differs from a circle by under one pixel at the corners.
public enum SceneShape: String, CaseIterable, Codable, Sendable, Comparable {
    case circle, square, triangle, star, cross, diamond, heart, ring

    public var plural: String { self == .cross ? "crosses" : rawValue + "s" }

    public static func < (a: SceneShape, b: SceneShape) -> Bool { a.order < b.order }
    var order: Int { SceneShape.allCases.firstIndex(of: self) ?? 0 }
}

/// Object colours: saturated, well apart in hue/lightness, and all clearly different from the neutral grey
/// background (white and black sit at the ends of the lightness scale, the background in the middle).
public enum SceneColour: String, CaseIterable, Codable, Sendable, Comparable {
    case red, orange, yellow, green, cyan, blue, purple, white, black

    /// Nominal sRGB value; each object gets this plus a small per-object jitter (`SceneConfig.colourJitter`).
    public var rgb: (UInt8, UInt8, UInt8) {
        switch self {
        case .red: return (220, 38, 38)
        case .orange: return (245, 140, 20)
        case .yellow: return (245, 225, 40)
        case .green: return (34, 170, 60)
        case .cyan: return (40, 210, 225)
        case .blue: return (40, 80, 230)
        case .purple: return (150, 60, 200)
        case .white: return (246, 246, 246)
        case .black: return (24, 24, 24)
        }
    }

    public static func < (a: SceneColour, b: SceneColour) -> Bool { a.order < b.order }
    var order: Int { SceneColour.allCases.firstIndex(of: self) ?? 0 }
}

/// Two sizes only, far apart (radius ratio ~1.6), so "small"/"large" is decidable from one object alone.
public enum ObjectSize: String, CaseIterable, Codable, Sendable {
    case small, large
}

/// Spatial relations, read as "subject <relation> object" in image coordinates (y grows downwards).
public enum SceneRelation: String, CaseIterable, Codable, Sendable {
    case leftOf = "left of"
    case rightOf = "right of"
    case above
    case below

    /// "A left of B" says the same as "B right of A".
    public var converse: SceneRelation {
        switch self {
        case .leftOf: return .rightOf
        case .rightOf: return .leftOf
        case .above: return .below
        case .below: return .above
        }
    }

    /// The relation that is certainly false when this one holds strictly (used for relation-flip negatives).
    public var opposite: SceneRelation { converse }

    /// Longer paraphrase: "to the left of", "to the right of", "above", "below".
    public var phrase: String {
        switch self {
        case .leftOf: return "to the left of"
        case .rightOf: return "to the right of"
        case .above: return "above"
        case .below: return "below"
        }
    }
}

/// A colour-shape combination, e.g. "red circle": the class of a single-object scene.
public struct ObjectType: Hashable, Codable, Sendable, Comparable, CustomStringConvertible {
    public var colour: SceneColour
    public var shape: SceneShape

    public init(_ colour: SceneColour, _ shape: SceneShape) {
        self.colour = colour
        self.shape = shape
    }

    /// "red circle"
    public var name: String { "\(colour.rawValue) \(shape.rawValue)" }
    public var description: String { name }

    public static func < (a: ObjectType, b: ObjectType) -> Bool {
        (a.shape.order, a.colour.order) < (b.shape.order, b.colour.order)
    }
}

/// A shape-level relation triple ("circle left of square"). Held-out triples are excluded in both
/// directions: a scene with a square right of a circle also shows a circle left of a square.
public struct RelationTriple: Hashable, Codable, Sendable, CustomStringConvertible {
    public var subject: SceneShape
    public var relation: SceneRelation
    public var object: SceneShape

    public init(_ subject: SceneShape, _ relation: SceneRelation, _ object: SceneShape) {
        self.subject = subject
        self.relation = relation
        self.object = object
    }

    public var converse: RelationTriple { RelationTriple(object, relation.converse, subject) }
    public var description: String { "\(subject.rawValue) \(relation.rawValue) \(object.rawValue)" }

    /// Same triple up to direction.
    public func matches(_ other: RelationTriple) -> Bool { self == other || self == other.converse }
}

public enum SceneVocabulary {
    /// "zero" appears only in answers ("how many hearts are there?"); captions use one...four.
    public static let countWords = ["zero", "one", "two", "three", "four"]

    public static func countWord(_ n: Int) -> String { n >= 0 && n < countWords.count ? countWords[n] : String(n) }

    /// All colour-shape classes in a fixed order (shape-major), e.g. for zero-shot labels. Includes held-out
    /// pairs; use `seenTypes` for the classes that occur in train/test.
    public static let allTypes: [ObjectType] = SceneShape.allCases.flatMap { s in SceneColour.allCases.map { ObjectType($0, s) } }

    /// Colour-shape pairs that never occur in the train and test splits (anywhere in a scene) and that every
    /// held-out scene built around a pair shows. One per shape and at most one per colour, so every shape and
    /// every colour is still seen in training with other partners: only the combination is new.
    public static let heldoutPairs: [ObjectType] = [
        ObjectType(.purple, .circle),
        ObjectType(.cyan, .square),
        ObjectType(.red, .triangle),
        ObjectType(.blue, .star),
        ObjectType(.yellow, .cross),
        ObjectType(.green, .diamond),
        ObjectType(.white, .heart),
        ObjectType(.orange, .ring),
    ]

    /// Shape-level relation triples (with their converses) that never hold strictly between two objects of
    /// a train/test scene. Each of the four relations and each shape appears once.
    public static let heldoutTriples: [RelationTriple] = [
        RelationTriple(.circle, .leftOf, .square),
        RelationTriple(.star, .above, .triangle),
        RelationTriple(.cross, .rightOf, .diamond),
        RelationTriple(.heart, .below, .ring),
    ]

    public static let heldoutPairSet = Set(heldoutPairs)

    public static func isHeldout(_ type: ObjectType) -> Bool { heldoutPairSet.contains(type) }

    public static func isHeldout(_ triple: RelationTriple) -> Bool { heldoutTriples.contains { $0.matches(triple) } }

    /// Colour-shape classes of train/test (all minus the held-out pairs).
    public static let seenTypes: [ObjectType] = allTypes.filter { !heldoutPairSet.contains($0) }
}
