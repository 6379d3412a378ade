/// Dataset splits. `train` and `test` share one distribution but use different random streams;
/// `heldout` shows only compositions (colour-shape pairs, relation triples) that train/test never contain.
public enum SceneSplit: String, CaseIterable, Codable, Sendable {
    case train, test, heldout

    /// Mixed into every scene's seed so the same user seed gives unrelated scenes in each split.
    var streamTag: UInt64 {
        switch self {
        case .train: return 0x7472_6169_6E00_0001  // "train"
        case .test: return 0x7465_7374_0000_0002  // "test"
        case .heldout: return 0x6865_6C64_6F75_7403  // "heldout"
        }
    }
}

/// Number of objects in a scene: `single` (exactly one, the zero-shot classification setting) or `multi`
/// (2-4 objects).
public enum SceneKind: String, CaseIterable, Codable, Sendable {
    case single, multi
}

/// Which kinds a generator call produces; `mixed` draws single with `SceneConfig.singleFraction`.
public enum KindSelection: String, CaseIterable, Codable, Sendable {
    case single, multi, mixed
}

/// What the canonical caption of a scene talks about.
public enum SceneStructure: String, Codable, Sendable {
    /// One object: "a small red circle".
    case object
    /// Two objects of different colour and shape in a strict spatial relation: "a red circle left of a blue square".
    case relation
    /// 2-4 objects of one colour-shape type: "three yellow stars".
    case count
    /// 3-4 objects of at least two types: "two red circles and a blue square".
    case group
}

/// One drawn object. Coordinates are normalised to the canvas (0...1, origin top-left, y down) so a scene
/// is the same composition at any output size.
public struct SceneObject: Codable, Equatable, Sendable {
    public var shape: SceneShape
    public var colour: SceneColour
    public var size: ObjectSize
    /// Centre.
    public var x: Double
    public var y: Double
    /// Half-side of the object's bounding square.
    public var radius: Double
    /// The drawn colour: the nominal colour plus this object's jitter.
    public var rgb: [UInt8]

    public var type: ObjectType { ObjectType(colour, shape) }
}

/// The background: a neutral grey level plus optional per-pixel noise.
public struct SceneBackground: Codable, Equatable, Sendable {
    public var level: UInt8
    /// Amplitude of uniform per-pixel noise (0 = plain).
    public var noise: Int
}

/// A sampled scene: objects plus what the canonical caption is about. Text (captions, negatives, questions)
/// is derived from it deterministically by `SceneText`.
public struct Scene: Codable, Equatable, Sendable {
    public var index: Int
    public var split: SceneSplit
    public var kind: SceneKind
    public var structure: SceneStructure
    public var objects: [SceneObject]
    public var background: SceneBackground
    /// For `.relation` scenes: the stated relation (subject index, relation, object index).
    public var statedRelation: StatedRelation?

    public struct StatedRelation: Codable, Equatable, Sendable {
        public var subject: Int
        public var relation: SceneRelation
        public var object: Int
    }
}

/// Geometry of relations. Two tiers, so that no statement is ever made about an ambiguous layout:
/// - strict (used to assert a relation): for "a left of b", b's centre is right of a's by at least
///   ra + rb (their bounding boxes do not overlap horizontally) and the vertical offset is at most half the
///   horizontal one (within ~27 degrees of horizontal). Strict left-of and strict above exclude each other.
/// - loose (used to deny one): "a left of b" is certainly false only if a's centre is not left of b's.
/// A relation is true if it holds strictly, false if it does not hold even loosely, and otherwise unknown.
public enum SceneGeometry {
    public static func holdsStrictly(_ relation: SceneRelation, _ a: SceneObject, _ b: SceneObject) -> Bool {
        let gap = a.radius + b.radius
        switch relation {
        case .leftOf:
            let dx = b.x - a.x
            return dx >= gap && abs(b.y - a.y) * 2 <= dx
        case .rightOf:
            return holdsStrictly(.leftOf, b, a)
        case .above:
            let dy = b.y - a.y
            return dy >= gap && abs(b.x - a.x) * 2 <= dy
        case .below:
            return holdsStrictly(.above, b, a)
        }
    }

    public static func holdsLoosely(_ relation: SceneRelation, _ a: SceneObject, _ b: SceneObject) -> Bool {
        switch relation {
        case .leftOf: return a.x < b.x
        case .rightOf: return a.x > b.x
        case .above: return a.y < b.y
        case .below: return a.y > b.y
        }
    }

    /// The strict relation from a to b, if any (at most one holds strictly).
    public static func strictRelation(_ a: SceneObject, _ b: SceneObject) -> SceneRelation? {
        SceneRelation.allCases.first { holdsStrictly($0, a, b) }
    }

    /// Bounding boxes separated by at least `margin` on some axis (Chebyshev distance), so shapes never
    /// touch even at the corners of two squares.
    public static func separated(_ a: SceneObject, _ b: SceneObject, margin: Double) -> Bool {
        max(abs(a.x - b.x), abs(a.y - b.y)) >= a.radius + b.radius + margin
    }

    /// Held-out relation triples that hold strictly between some pair of objects.
    public static func heldoutTriples(in objects: [SceneObject]) -> [RelationTriple] {
        var found: [RelationTriple] = []
        for i in objects.indices {
            for j in objects.indices where i != j {
                guard let r = strictRelation(objects[i], objects[j]) else { continue }
                let t = RelationTriple(objects[i].shape, r, objects[j].shape)
                if let h = SceneVocabulary.heldoutTriples.first(where: { $0.matches(t) }), !found.contains(h) { found.append(h) }
            }
        }
        return found
    }
}

extension Scene {
    /// Held-out colour-shape pairs drawn in this scene.
    public var heldoutPairs: [ObjectType] {
        var seen: [ObjectType] = []
        for o in objects where SceneVocabulary.isHeldout(o.type) && !seen.contains(o.type) { seen.append(o.type) }
        return seen
    }

    /// Held-out relation triples that hold strictly in this scene.
    public var heldoutTriples: [RelationTriple] { SceneGeometry.heldoutTriples(in: objects) }

    /// Every strict pairwise relation, for evaluation code that wants ground truth without re-deriving it.
    public var strictRelations: [StatedRelation] {
        var out: [StatedRelation] = []
        for i in objects.indices {
            for j in objects.indices where i != j {
                if let r = SceneGeometry.strictRelation(objects[i], objects[j]) {
                    out.append(StatedRelation(subject: i, relation: r, object: j))
                }
            }
        }
        return out
    }

    /// The zero-shot class of a single-object scene ("red circle"); nil for multi-object scenes.
    public var label: ObjectType? { kind == .single ? objects.first?.type : nil }
}
