/// Knobs of the generator. Defaults are tuned for learnability at 64x64: objects large enough to read
/// (small ~13 px, large ~21 px across), never touching, on a neutral grey.
public struct SceneConfig: Codable, Equatable, Sendable {
    /// Output side in pixels (square images).
    public var size: Int = 64
    /// Point samples per pixel side for anti-aliasing (4 = 16 samples per pixel).
    public var supersample: Int = 4
    /// Half-side of an object's bounding square as a fraction of the canvas, per size class.
    public var smallRadius: Double = 0.105
    public var largeRadius: Double = 0.165
    /// Relative random change of an object's radius (0.04 = +-4%), small enough that sizes never overlap.
    public var sizeJitter: Double = 0.04
    /// Minimum gap between two objects' bounding squares, as a fraction of the canvas.
    public var margin: Double = 0.04
    /// Minimum gap between an object and the image edge.
    public var border: Double = 0.02
    /// Background grey level range (inclusive).
    public var backgroundMin: Int = 112
    public var backgroundMax: Int = 144
    /// Amplitude of per-pixel grey noise on the background (0 = plain).
    public var backgroundNoise: Int = 0
    /// Per-channel random offset of an object's colour (+-), so colours are categories, not single values.
    public var colourJitter: Int = 6
    /// Share of single-object scenes when the kind is `mixed`.
    public var singleFraction: Double = 0.25
    /// Relative weights of the multi-object structures.
    public var relationWeight: Double = 0.4
    public var countWeight: Double = 0.25
    public var groupWeight: Double = 0.35

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ field: String, _ reason: String) throws {
            if !ok { throw SceneError.invalidConfig(field: field, reason: reason) }
        }
        try check((16...1024).contains(size), "size", "must be 16...1024, got \(size)")
        try check((1...8).contains(supersample), "supersample", "must be 1...8, got \(supersample)")
        try check(smallRadius > 0 && smallRadius < largeRadius, "smallRadius", "must be > 0 and < largeRadius")
        try check(largeRadius <= 0.2, "largeRadius", "must be <= 0.2 so four large objects fit")
        try check((0...0.2).contains(sizeJitter) && smallRadius * (1 + sizeJitter) < largeRadius * (1 - sizeJitter),
                  "sizeJitter", "must be 0...0.2 and keep small and large apart")
        try check((0...0.1).contains(margin), "margin", "must be 0...0.1")
        try check((0...0.1).contains(border), "border", "must be 0...0.1")
        try check(0 <= backgroundMin && backgroundMin <= backgroundMax && backgroundMax <= 255,
                  "backgroundMin", "need 0 <= backgroundMin <= backgroundMax <= 255")
        try check((0...64).contains(backgroundNoise), "backgroundNoise", "must be 0...64")
        try check((0...40).contains(colourJitter), "colourJitter", "must be 0...40")
        try check((0...1).contains(singleFraction), "singleFraction", "must be 0...1")
        try check(relationWeight >= 0 && countWeight >= 0 && groupWeight >= 0
                  && relationWeight + countWeight + groupWeight > 0, "relationWeight", "weights must be >= 0 with a positive sum")
    }
}

/// Samples scenes. Scene `index` of `split` depends only on (seed, split, index, config), never on which
/// other scenes were generated, so any scene can be regenerated alone (`vlm scenes show --index`).
public struct SceneGenerator: Sendable {
    /// Bumped whenever the same (seed, split, index, config) would give different bytes or text.
    public static let version = "swiftvlm-scenes-1"

    public let seed: UInt64
    public let config: SceneConfig

    public init(seed: UInt64, config: SceneConfig = SceneConfig()) throws {
        try config.validate()
        self.seed = seed
        self.config = config
    }

    public var renderer: SceneRenderer { SceneRenderer(size: config.size, supersample: config.supersample, seed: seed) }

    /// Scene, image and text for one index.
    public func generate(index: Int, split: SceneSplit, kind: KindSelection = .mixed) throws -> GeneratedScene {
        let scene = try self.scene(index: index, split: split, kind: kind)
        return GeneratedScene(scene: scene, image: renderer.render(scene), text: SceneText(scene: scene, seed: seed))
    }

    /// Scenes `start ..< start + count`.
    public func generate(count: Int, split: SceneSplit, kind: KindSelection = .mixed, start: Int = 0) throws -> [GeneratedScene] {
        guard count >= 0, start >= 0 else { throw SceneError.invalidArgument("count and start must be >= 0") }
        return try (start..<(start + count)).map { try generate(index: $0, split: split, kind: kind) }
    }

    /// The layout of one scene (no pixels).
    public func scene(index: Int, split: SceneSplit, kind: KindSelection = .mixed) throws -> Scene {
        guard index >= 0 else { throw SceneError.invalidArgument("scene index must be >= 0, got \(index)") }
        var rng = SceneRandom.forScene(seed: seed, split: split, index: index, stream: 0)
        let sceneKind: SceneKind
        switch kind {
        case .single: sceneKind = .single
        case .multi: sceneKind = .multi
        case .mixed: sceneKind = rng.bool(config.singleFraction) ? .single : .multi
        }
        let structure = sceneKind == .single ? SceneStructure.object : pickStructure(&rng)
        let background = SceneBackground(level: UInt8(clamping: rng.int(in: config.backgroundMin...config.backgroundMax)),
                                         noise: config.backgroundNoise)
        // Rejection sampling: draw a whole candidate, keep it if it meets the split's rules. All draws come
        // from the scene's own stream, so the accepted candidate is still a pure function of the index.
        for _ in 0..<500 {
            guard let (objects, stated) = sample(structure, split: split, rng: &rng) else { continue }
            let scene = Scene(index: index, split: split, kind: sceneKind, structure: structure, objects: objects,
                              background: background, statedRelation: stated)
            if Self.satisfiesSplit(scene) { return scene }
        }
        throw SceneError.samplingFailed(seed: seed, split: split.rawValue, index: index, reason: "no valid \(structure.rawValue) layout in 500 attempts")
    }

    /// The split rules: train/test never show a held-out pair or (strictly) a held-out relation triple;
    /// every held-out scene shows at least one of them.
    public static func satisfiesSplit(_ scene: Scene) -> Bool {
        let heldout = !scene.heldoutPairs.isEmpty || !scene.heldoutTriples.isEmpty
        return scene.split == .heldout ? heldout : !heldout
    }

    private func pickStructure(_ rng: inout SceneRandom) -> SceneStructure {
        let total = config.relationWeight + config.countWeight + config.groupWeight
        let u = rng.unit() * total
        if u < config.relationWeight { return .relation }
        if u < config.relationWeight + config.countWeight { return .count }
        return .group
    }

    // MARK: - Sampling

    private typealias Sample = ([SceneObject], Scene.StatedRelation?)

    private func sample(_ structure: SceneStructure, split: SceneSplit, rng: inout SceneRandom) -> Sample? {
        let heldout = split == .heldout
        // In train/test only seen pairs are drawn; a held-out scene anchors on one held-out pair (or triple).
        let pool = heldout ? SceneVocabulary.allTypes : SceneVocabulary.seenTypes
        func anchor(_ rng: inout SceneRandom) -> ObjectType? { rng.pick(heldout ? SceneVocabulary.heldoutPairs : pool) }
        switch structure {
        case .object:
            guard let type = anchor(&rng) else { return nil }
            return place([makeObject(type, &rng)], rng: &rng).map { ($0, nil) }
        case .count:
            guard let type = anchor(&rng) else { return nil }
            let n = rng.int(in: 2...4)
            return place((0..<n).map { _ in makeObject(type, &rng) }, rng: &rng).map { ($0, nil) }
        case .group:
            let n = rng.int(in: 3...4)
            let partitions: [[Int]] = n == 3 ? [[2, 1], [1, 1, 1]] : [[2, 2], [3, 1], [2, 1, 1], [1, 1, 1, 1]]
            guard let counts = rng.pick(partitions), let first = anchor(&rng) else { return nil }
            var types = [first]
            while types.count < counts.count {
                guard let t = rng.pick(pool), !types.contains(t) else { continue }
                types.append(t)
            }
            var objects: [SceneObject] = []
            for (t, c) in zip(types, counts) { for _ in 0..<c { objects.append(makeObject(t, &rng)) } }
            rng.shuffle(&objects)
            return place(objects, rng: &rng).map { ($0, nil) }
        case .relation:
            return sampleRelation(heldout: heldout, pool: pool, rng: &rng)
        }
    }

    /// Two objects differing in both colour and shape (so an attribute swap yields a different, false caption)
    /// placed so that the chosen relation holds strictly.
    private func sampleRelation(heldout: Bool, pool: [ObjectType], rng: inout SceneRandom) -> Sample? {
        var a: ObjectType, b: ObjectType, relation: SceneRelation
        if heldout && rng.bool() {
            guard var triple = rng.pick(SceneVocabulary.heldoutTriples), let ca = rng.pick(SceneColour.allCases) else { return nil }
            if rng.bool() { triple = triple.converse }
            guard let cb = rng.pick(SceneColour.allCases.filter { $0 != ca }) else { return nil }
            a = ObjectType(ca, triple.subject)
            b = ObjectType(cb, triple.object)
            relation = triple.relation
        } else {
            guard let first = rng.pick(heldout ? SceneVocabulary.heldoutPairs : pool),
                  let second = rng.pick(pool.filter { $0.colour != first.colour && $0.shape != first.shape }),
                  let r = rng.pick(SceneRelation.allCases) else { return nil }
            (a, b) = rng.bool() ? (first, second) : (second, first)
            relation = r
        }
        var objects = [makeObject(a, &rng), makeObject(b, &rng)]
        for _ in 0..<200 {
            for i in objects.indices { position(&objects[i], &rng) }
            if SceneGeometry.separated(objects[0], objects[1], margin: config.margin),
               SceneGeometry.holdsStrictly(relation, objects[0], objects[1]) {
                return (objects, Scene.StatedRelation(subject: 0, relation: relation, object: 1))
            }
        }
        return nil
    }

    private func makeObject(_ type: ObjectType, _ rng: inout SceneRandom) -> SceneObject {
        let size: ObjectSize = rng.bool() ? .small : .large
        let base = size == .small ? config.smallRadius : config.largeRadius
        let radius = base * (1 + config.sizeJitter * (2 * rng.unit() - 1))
        let nominal = type.colour.rgb
        let j = config.colourJitter
        let rgb = [nominal.0, nominal.1, nominal.2].map { UInt8(clamping: Int($0) + rng.int(in: -j...j)) }
        return SceneObject(shape: type.shape, colour: type.colour, size: size, x: 0.5, y: 0.5, radius: radius, rgb: rgb)
    }

    private func position(_ object: inout SceneObject, _ rng: inout SceneRandom) {
        let lo = config.border + object.radius, hi = 1 - config.border - object.radius
        object.x = rng.double(lo, hi)
        object.y = rng.double(lo, hi)
    }

    /// Places objects one by one at random free spots; nil if one finds no room (the caller redraws).
    private func place(_ objects: [SceneObject], rng: inout SceneRandom) -> [SceneObject]? {
        var placed: [SceneObject] = []
        for var object in objects {
            var ok = false
            for _ in 0..<100 {
                position(&object, &rng)
                if placed.allSatisfy({ SceneGeometry.separated($0, object, margin: config.margin) }) {
                    ok = true
                    break
                }
            }
            guard ok else { return nil }
            placed.append(object)
        }
        return placed
    }
}

/// A scene with its pixels and text: what training streams without touching the disk.
public struct GeneratedScene: Sendable {
    public let scene: Scene
    public let image: SceneImage
    public let text: SceneText
}
