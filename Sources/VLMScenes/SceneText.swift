/// A question about a scene with its one-word or one-phrase answer (for the VQA work).
public struct SceneQuestion: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case count, colour, shape, size, exists, relation
    }

    public var kind: Kind
    public var question: String
    public var answer: String
}

/// Everything said about a scene: the canonical caption, paraphrases, verified-false negatives, the
/// zero-shot label of single-object scenes, and questions. A pure function of the scene and the seed
/// (choices that need randomness, like which wrong colour a negative uses, come from the scene's text stream).
public struct SceneText: Sendable, Equatable {
    /// All true captions, canonical first. The canonical one always mentions every object (so it identifies
    /// the scene for retrieval); the others vary the template and wording.
    public let captions: [SceneCaption]
    public let negatives: [SceneNegative]
    public let questions: [SceneQuestion]
    /// "red circle" for single-object scenes.
    public let label: String?

    public var caption: String { captions.first?.text ?? "" }

    /// The negative of one kind, e.g. `.swap` for the binding test ("a blue circle left of a red square"
    /// against the canonical "a red circle left of a blue square"); nil if that edit does not apply.
    public func negative(_ kind: SceneNegative.Kind) -> String? { negatives.first { $0.kind == kind }?.caption.text }

    public init(scene: Scene, seed: UInt64) {
        var rng = SceneRandom.forScene(seed: seed, split: scene.split, index: scene.index, stream: 1)
        let objects = scene.objects
        var captions: [SceneCaption] = []
        var negatives: [SceneNegative] = []
        switch scene.structure {
        case .object:
            if let o = objects.first {
                let sized = ObjectGroup(count: 1, colour: o.colour, shape: o.shape, size: o.size)
                let plain = ObjectGroup(count: 1, colour: o.colour, shape: o.shape)
                let s = SceneClaim.exactly([sized]), p = SceneClaim.exactly([plain])
                captions = [
                    SceneCaption(s), SceneCaption(p),
                    SceneCaption("a picture of \(sized.phrase)", s),
                    SceneCaption("there is \(plain.phrase)", p),
                    SceneCaption("\(plain.phrase) that is \(o.size.rawValue)", s),
                    SceneCaption("one \(o.size.rawValue) \(o.colour.rawValue) \(o.shape.rawValue)", s),
                    SceneCaption("\(sized.phrase) on a grey background", s),
                ]
                negatives = Self.groupNegatives([sized], objects: objects, rng: &rng)
            }
        case .relation:
            if let stated = scene.statedRelation, objects.indices.contains(stated.subject), objects.indices.contains(stated.object) {
                let a = objects[stated.subject], b = objects[stated.object], r = stated.relation
                let da = ObjectDescription(a), db = ObjectDescription(b)
                let main = SceneClaim.relation(da, r, db), converse = SceneClaim.relation(db, r.converse, da)
                let sized = SceneClaim.relation(ObjectDescription(a, withSize: true), r, ObjectDescription(b, withSize: true))
                let groups = SceneClaim.exactly([ObjectGroup(count: 1, colour: a.colour, shape: a.shape),
                                            ObjectGroup(count: 1, colour: b.colour, shape: b.shape)])
                captions = [
                    SceneCaption(main),
                    SceneCaption("\(da.phrase) \(r.phrase) \(db.phrase)", main),
                    SceneCaption(converse),
                    SceneCaption("\(db.phrase) \(r.converse.phrase) \(da.phrase)", converse),
                    SceneCaption(sized),
                    SceneCaption("there is \(da.phrase) \(r.rawValue) \(db.phrase)", main),
                    SceneCaption(groups),
                ]
                negatives = Self.relationNegatives(da, r, db, objects: objects, rng: &rng)
            }
        case .count, .group:
            let groups = Self.groups(objects)
            let claim = SceneClaim.exactly(groups)
            let reversed = SceneCaption.list(groups.reversed().map(\.phrase))
            captions = [SceneCaption(claim), SceneCaption("a picture of \(claim.text)", claim)]
            if groups.count > 1 {
                captions.append(SceneCaption(reversed, claim))
                captions.append(SceneCaption("a scene with \(claim.text)", claim))
                // A relation between two one-of-a-kind objects, when one holds strictly.
                if let rel = Self.firstUniqueRelation(objects) { captions.append(SceneCaption(rel)) }
            } else if let g = groups.first {
                captions.append(SceneCaption("there are \(g.phrase)", claim))
                captions.append(SceneCaption("\(SceneVocabulary.countWord(g.count)) \(g.shape.plural), all \(g.colour.rawValue)", claim))
                captions.append(SceneCaption("\(g.phrase) on a grey background", claim))
            }
            negatives = Self.groupNegatives(groups, objects: objects, rng: &rng)
        }
        self.captions = captions
        self.negatives = negatives
        self.questions = SceneQuestions.make(objects, rng: &rng)
        self.label = scene.label?.name
    }

    /// Groups by colour and shape, ordered by each group's leftmost object (reading order).
    static func groups(_ objects: [SceneObject]) -> [ObjectGroup] {
        var keys: [ObjectType] = []
        for o in objects.sorted(by: { $0.x < $1.x }) where !keys.contains(o.type) { keys.append(o.type) }
        return keys.map { k in ObjectGroup(count: objects.filter { $0.type == k }.count, colour: k.colour, shape: k.shape) }
    }

    static func firstUniqueRelation(_ objects: [SceneObject]) -> SceneClaim? {
        let unique = objects.indices.filter { i in objects.filter { $0.type == objects[i].type }.count == 1 }
            .sorted { objects[$0].x < objects[$1].x }
        for i in unique {
            for j in unique where j != i {
                if let r = SceneGeometry.strictRelation(objects[i], objects[j]), r == .leftOf || r == .above {
                    return .relation(ObjectDescription(objects[i]), r, ObjectDescription(objects[j]))
                }
            }
        }
        return nil
    }

    // MARK: - Negatives

    /// Keeps a candidate only if it is certainly false; picks one per kind with the text stream.
    private static func choose(_ kind: SceneNegative.Kind, _ candidates: [SceneClaim], objects: [SceneObject],
                               rng: inout SceneRandom, into out: inout [SceneNegative]) {
        let valid = candidates.filter { $0.evaluate(objects) == .false }
        if let claim = rng.pick(valid) { out.append(SceneNegative(kind: kind, caption: SceneCaption(claim))) }
    }

    static func relationNegatives(_ a: ObjectDescription, _ r: SceneRelation, _ b: ObjectDescription,
                                  objects: [SceneObject], rng: inout SceneRandom) -> [SceneNegative] {
        var out: [SceneNegative] = []
        func with(_ d: ObjectDescription, colour: SceneColour? = nil, shape: SceneShape? = nil) -> ObjectDescription {
            ObjectDescription(size: d.size, colour: colour ?? d.colour, shape: shape ?? d.shape)
        }
        choose(.swap, [.relation(with(a, colour: b.colour), r, with(b, colour: a.colour))], objects: objects, rng: &rng, into: &out)
        choose(.order, [.relation(b, r, a)], objects: objects, rng: &rng, into: &out)
        choose(.relation, [.relation(a, r.opposite, b)], objects: objects, rng: &rng, into: &out)
        let colours = SceneColour.allCases.flatMap { c in [SceneClaim.relation(with(a, colour: c), r, b), .relation(a, r, with(b, colour: c))] }
        choose(.colour, colours, objects: objects, rng: &rng, into: &out)
        let shapes = SceneShape.allCases.flatMap { s in [SceneClaim.relation(with(a, shape: s), r, b), .relation(a, r, with(b, shape: s))] }
        choose(.shape, shapes, objects: objects, rng: &rng, into: &out)
        return out
    }

    static func groupNegatives(_ groups: [ObjectGroup], objects: [SceneObject], rng: inout SceneRandom) -> [SceneNegative] {
        var out: [SceneNegative] = []
        func edit(_ i: Int, _ change: (inout ObjectGroup) -> Void) -> SceneClaim {
            var g = groups
            change(&g[i])
            return .exactly(g)
        }
        var swaps: [SceneClaim] = []
        for i in groups.indices {
            for j in groups.indices where i < j && groups[i].colour != groups[j].colour && groups[i].shape != groups[j].shape {
                var g = groups
                (g[i].colour, g[j].colour) = (groups[j].colour, groups[i].colour)
                swaps.append(.exactly(g))
            }
        }
        choose(.swap, swaps, objects: objects, rng: &rng, into: &out)
        let counts = groups.indices.flatMap { i in (1...4).filter { $0 != groups[i].count }.map { n in edit(i) { $0.count = n } } }
        choose(.count, counts, objects: objects, rng: &rng, into: &out)
        let colours = groups.indices.flatMap { i in SceneColour.allCases.map { c in edit(i) { $0.colour = c } } }
        choose(.colour, colours, objects: objects, rng: &rng, into: &out)
        let shapes = groups.indices.flatMap { i in SceneShape.allCases.map { s in edit(i) { $0.shape = s } } }
        choose(.shape, shapes, objects: objects, rng: &rng, into: &out)
        let sizes = groups.indices.compactMap { i -> SceneClaim? in
            guard let s = groups[i].size else { return nil }
            return edit(i) { $0.size = s == .small ? .large : .small }
        }
        choose(.size, sizes, objects: objects, rng: &rng, into: &out)
        return out
    }
}

/// Questions with unambiguous answers only: "what colour is the circle?" is asked only if there is exactly
/// one circle, "what is left of the blue square?" only if exactly one object is strictly left of it and no
/// other is even loosely left of it.
enum SceneQuestions {
    static func make(_ objects: [SceneObject], rng: inout SceneRandom) -> [SceneQuestion] {
        var out: [SceneQuestion] = []
        func add(_ kind: SceneQuestion.Kind, _ q: String, _ a: String) { out.append(SceneQuestion(kind: kind, question: q, answer: a)) }
        let shapes = SceneShape.allCases.filter { s in objects.contains { $0.shape == s } }
        let colours = SceneColour.allCases.filter { c in objects.contains { $0.colour == c } }

        add(.count, "how many objects are there?", SceneVocabulary.countWord(objects.count))
        for s in shapes { add(.count, "how many \(s.plural) are there?", SceneVocabulary.countWord(objects.filter { $0.shape == s }.count)) }
        if let absent = rng.pick(SceneShape.allCases.filter { !shapes.contains($0) }) {
            add(.count, "how many \(absent.plural) are there?", SceneVocabulary.countWord(0))
        }
        for c in colours where objects.filter({ $0.colour == c }).count > 1 || colours.count > 1 {
            add(.count, "how many \(c.rawValue) objects are there?", SceneVocabulary.countWord(objects.filter { $0.colour == c }.count))
        }
        for s in shapes {
            let matching = objects.filter { $0.shape == s }
            guard matching.count == 1, let o = matching.first else { continue }
            add(.colour, "what colour is the \(s.rawValue)?", o.colour.rawValue)
            add(.size, "what size is the \(s.rawValue)?", o.size.rawValue)
        }
        for c in colours {
            let matching = objects.filter { $0.colour == c }
            guard matching.count == 1, let o = matching.first else { continue }
            add(.shape, "what shape is the \(c.rawValue) object?", o.shape.rawValue)
        }
        if let present = rng.pick(objects) {
            add(.exists, "is there \(ObjectDescription(present).phrase)?", "yes")
        }
        let absentTypes = SceneVocabulary.allTypes.filter { t in !objects.contains { $0.type == t } }
        if let absent = rng.pick(absentTypes) {
            add(.exists, "is there \(ObjectDescription(colour: absent.colour, shape: absent.shape).phrase)?", "no")
        }
        // Relations around one-of-a-kind objects, so "the blue square" refers to exactly one object.
        let unique = objects.indices.filter { i in objects.filter { $0.type == objects[i].type }.count == 1 }
        for b in unique {
            let target = ObjectDescription(objects[b])
            for r in SceneRelation.allCases {
                let others = objects.indices.filter { $0 != b }
                let strict = others.filter { SceneGeometry.holdsStrictly(r, objects[$0], objects[b]) }
                let loose = others.filter { SceneGeometry.holdsLoosely(r, objects[$0], objects[b]) }
                guard strict.count == 1, loose.count == 1, let a = strict.first else { continue }
                add(.relation, "what is \(r.rawValue) the \(target.words)?", ObjectDescription(objects[a]).phrase)
            }
            for a in unique where a != b {
                guard let r = SceneGeometry.strictRelation(objects[a], objects[b]) else { continue }
                let subject = ObjectDescription(objects[a]).words
                add(.relation, "is the \(subject) \(r.rawValue) the \(target.words)?", "yes")
                add(.relation, "is the \(subject) \(r.opposite.rawValue) the \(target.words)?", "no")
            }
        }
        return out
    }
}
