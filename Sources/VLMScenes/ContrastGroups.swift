import Foundation

/// Minimal-pair groups for contrastive training.
///
/// Why: in a batch of independent scenes, colour and object count alone tell almost every pair apart, so the
/// contrastive loss is nearly solved by those easy features and the gradient that would teach shape, relations
/// and attribute binding stays tiny: the "feature suppression" of contrastive losses (Chen, Luo & Li 2021,
/// "Intriguing properties of contrastive losses"). A group is one base scene plus variants that differ from it
/// by one or two edits (another shape, swapped colours between two objects, a mirrored layout, ...). Inside a
/// batch made of whole groups, the only way to match a caption to its image is to read exactly what the edits
/// changed, in both directions (image->text and text->image), which is what NegCLIP's text-only hard negatives
/// cannot give the image tower.
///
/// Groups are pure functions of (seed, split, group index, size, kind): member `m` can be generated alone.

/// One change that turns a scene into a minimally different one.
public enum SceneEdit: String, CaseIterable, Codable, Sendable {
    /// Exchange the colours of two object types ("red circle, blue square" -> "blue circle, red square").
    case swapColours
    /// Exchange the shapes of two object types.
    case swapShapes
    /// Give every object of one type another shape.
    case newShape
    /// Give every object of one type another colour.
    case newColour
    /// Mirror the layout left-right (left of <-> right of).
    case mirrorX
    /// Mirror the layout top-bottom (above <-> below).
    case mirrorY
    /// Small <-> large for a single object.
    case flipSize
}

extension SceneGenerator {
    /// The scenes of contrast group `group`: member 0 is the generator's scene `group` itself; members 1..<size
    /// are edited copies whose canonical captions all differ. A member that no edit could make new (a tiny
    /// caption space) is an independent scene instead, so a group always has `size` distinct captions.
    public func contrastGroup(group: Int, size: Int, split: SceneSplit, kind: KindSelection = .mixed) throws -> [Scene] {
        guard size >= 1 else { throw SceneError.invalidArgument("group size must be >= 1, got \(size)") }
        let base = try scene(index: group, split: split, kind: kind)
        var members = [base]
        var captions: Set<String> = [SceneText(scene: base, seed: seed).caption]
        var rng = SceneRandom.forScene(seed: seed, split: split, index: group, stream: 2)
        while members.count < size {
            var found: Scene? = nil
            for _ in 0 ..< 40 {
                // Edit the base or an earlier member, so variants differ from each other, not only from the base.
                guard var candidate = rng.pick(members) else { break }
                let edits = rng.bool(0.3) ? 2 : 1
                var ok = true
                for _ in 0 ..< edits where ok { ok = apply(randomEdit(for: candidate, &rng), to: &candidate, &rng) }
                guard ok, Self.isValid(candidate), Self.satisfiesSplit(candidate) else { continue }
                if captions.insert(SceneText(scene: candidate, seed: seed).caption).inserted {
                    found = candidate
                    break
                }
            }
            if let found {
                members.append(found)
            } else {
                // Fallback: an unrelated scene from a far-away index stream of the same split.
                let filler = try scene(index: Int.max / 2 - group * size - members.count, split: split, kind: kind)
                captions.insert(SceneText(scene: filler, seed: seed).caption)
                members.append(filler)
            }
        }
        return members
    }

    /// Member `member` of group `group`, rendered with its text (only this member's pixels are drawn).
    public func contrastMember(group: Int, member: Int, size: Int, split: SceneSplit, kind: KindSelection = .mixed) throws -> GeneratedScene {
        guard (0 ..< size).contains(member) else { throw SceneError.invalidArgument("member \(member) outside a group of \(size)") }
        let scene = try contrastGroup(group: group, size: size, split: split, kind: kind)[member]
        return GeneratedScene(scene: scene, image: renderer.render(scene), text: SceneText(scene: scene, seed: seed))
    }
}

/// Memoised contrast groups of one (generator, group size, split, kind).
///
/// Why: a training batch asks for every member of a group, and `contrastMember` rebuilds the whole group
/// (edits plus a caption per candidate) for each one: 8x the layout and text work per sample, ~4% of a
/// training step. The cache hands out the same scenes `contrastGroup` returns, so training is unchanged.
/// Thread-safe (the data pipeline renders members in parallel); keeps the most recent `capacity` groups.
public final class ContrastGroupCache: @unchecked Sendable {
    public let generator: SceneGenerator
    public let size: Int, split: SceneSplit, kind: KindSelection
    private let capacity: Int
    private let lock = NSLock()
    private var groups: [Int: [Scene]] = [:]
    private var order: [Int] = []

    public init(generator: SceneGenerator, size: Int, split: SceneSplit, kind: KindSelection = .mixed, capacity: Int = 256) {
        self.generator = generator
        (self.size, self.split, self.kind, self.capacity) = (size, split, kind, max(1, capacity))
    }

    /// Same result as `generator.contrastMember(group:member:size:split:kind:)`.
    public func member(group: Int, member: Int) throws -> GeneratedScene {
        guard (0 ..< size).contains(member) else { throw SceneError.invalidArgument("member \(member) outside a group of \(size)") }
        let scene = try scenes(group: group)[member]
        return GeneratedScene(scene: scene, image: generator.renderer.render(scene), text: SceneText(scene: scene, seed: generator.seed))
    }

    private func scenes(group: Int) throws -> [Scene] {
        lock.lock()
        let hit = groups[group]
        lock.unlock()
        if let hit { return hit }
        // Built outside the lock (two threads may both build a missing group; they get equal scenes).
        let built = try generator.contrastGroup(group: group, size: size, split: split, kind: kind)
        lock.lock()
        defer { lock.unlock() }
        if groups[group] == nil {
            groups[group] = built
            order.append(group)
            if order.count > capacity { groups[order.removeFirst()] = nil }
        }
        return built
    }
}

extension SceneGenerator {
    // MARK: - Edits

    /// Edits that can change this scene's canonical caption, weighted towards what is hard to learn: shape for
    /// single objects; binding (swaps) and relations (mirrors) for two-object scenes.
    private func randomEdit(for scene: Scene, _ rng: inout SceneRandom) -> SceneEdit {
        let options: [(SceneEdit, Double)]
        switch scene.structure {
        case .object: options = [(.newShape, 0.7), (.newColour, 0.15), (.flipSize, 0.15)]
        case .relation: options = [(.swapColours, 0.3), (.swapShapes, 0.15), (.mirrorX, 0.15), (.mirrorY, 0.15), (.newShape, 0.15), (.newColour, 0.1)]
        case .count: options = [(.newShape, 0.6), (.newColour, 0.4)]
        case .group: options = [(.swapColours, 0.35), (.swapShapes, 0.25), (.newShape, 0.25), (.newColour, 0.15)]
        }
        let total = options.reduce(0) { $0 + $1.1 }
        var u = rng.unit() * total
        for (edit, weight) in options {
            if u < weight { return edit }
            u -= weight
        }
        return options[options.count - 1].0
    }

    /// Applies `edit` in place; false when it does not apply (e.g. a swap in a one-type scene).
    private func apply(_ edit: SceneEdit, to scene: inout Scene, _ rng: inout SceneRandom) -> Bool {
        // Objects of one type change together, so counts and groups keep their structure.
        var types: [ObjectType] = []
        for o in scene.objects where !types.contains(o.type) { types.append(o.type) }
        func twoTypes(_ differ: (ObjectType, ObjectType) -> Bool) -> (ObjectType, ObjectType)? {
            var pairs: [(ObjectType, ObjectType)] = []
            for i in types.indices { for j in types.indices where i < j && differ(types[i], types[j]) { pairs.append((types[i], types[j])) } }
            return rng.pick(pairs)
        }
        switch edit {
        case .swapColours:
            guard let (a, b) = twoTypes({ $0.colour != $1.colour }) else { return false }
            recolour(&scene) { $0 == a ? b.colour : $0 == b ? a.colour : nil }
        case .swapShapes:
            guard let (a, b) = twoTypes({ $0.shape != $1.shape }) else { return false }
            for i in scene.objects.indices {
                if scene.objects[i].type == a { scene.objects[i].shape = b.shape } else if scene.objects[i].type == b { scene.objects[i].shape = a.shape }
            }
        case .newShape:
            guard let t = rng.pick(types), let s = rng.pick(SceneShape.allCases.filter { $0 != t.shape }) else { return false }
            for i in scene.objects.indices where scene.objects[i].type == t { scene.objects[i].shape = s }
        case .newColour:
            guard let t = rng.pick(types), let c = rng.pick(SceneColour.allCases.filter { $0 != t.colour }) else { return false }
            recolour(&scene) { $0 == t ? c : nil }
        case .mirrorX, .mirrorY:
            guard scene.objects.count > 1 else { return false }
            for i in scene.objects.indices {
                if edit == .mirrorX { scene.objects[i].x = 1 - scene.objects[i].x } else { scene.objects[i].y = 1 - scene.objects[i].y }
            }
            // Mirroring keeps distances, so a strict relation stays strict, in the mirrored direction.
            if var stated = scene.statedRelation {
                let r = stated.relation
                let flips = edit == .mirrorX ? (r == .leftOf || r == .rightOf) : (r == .above || r == .below)
                if flips { stated.relation = r.converse }
                scene.statedRelation = stated
            }
        case .flipSize:
            guard scene.objects.count == 1 else { return false }
            var o = scene.objects[0]
            let grow = o.size == .small
            let ratio = grow ? config.largeRadius / config.smallRadius : config.smallRadius / config.largeRadius
            o.size = grow ? .large : .small
            o.radius *= ratio
            // Keep the object inside the border; a grown object near an edge moves inwards.
            let lo = config.border + o.radius, hi = 1 - config.border - o.radius
            guard lo <= hi else { return false }
            o.x = min(max(o.x, lo), hi)
            o.y = min(max(o.y, lo), hi)
            scene.objects[0] = o
        }
        return true
    }

    /// Sets new nominal colours (keeping each object's jitter offset, so the edit changes only the category).
    private func recolour(_ scene: inout Scene, _ newColour: (ObjectType) -> SceneColour?) {
        for i in scene.objects.indices {
            let o = scene.objects[i]
            guard let c = newColour(o.type) else { continue }
            let old = o.colour.rgb, new = c.rgb
            let offsets = zip([old.0, old.1, old.2], o.rgb).map { Int($1) - Int($0) }
            scene.objects[i].rgb = zip([new.0, new.1, new.2], offsets).map { UInt8(clamping: Int($0) + $1) }
            scene.objects[i].colour = c
        }
    }

    /// The structural rules the sampler guarantees: relation scenes relate two objects that differ in colour
    /// and shape (so an attribute swap is a different, false caption) and hold their relation strictly; count
    /// scenes show one type; group scenes at least two.
    static func isValid(_ scene: Scene) -> Bool {
        var types = Set<ObjectType>()
        for o in scene.objects { types.insert(o.type) }
        switch scene.structure {
        case .object: return scene.objects.count == 1
        case .count: return types.count == 1
        case .group: return types.count >= 2
        case .relation:
            guard let s = scene.statedRelation, scene.objects.indices.contains(s.subject), scene.objects.indices.contains(s.object) else { return false }
            let a = scene.objects[s.subject], b = scene.objects[s.object]
            return a.colour != b.colour && a.shape != b.shape && SceneGeometry.holdsStrictly(s.relation, a, b)
        }
    }
}
