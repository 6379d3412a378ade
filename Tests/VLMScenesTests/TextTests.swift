import Testing
@testable import VLMScenes

/// Wording, negatives and questions on hand-built scenes, where the right answer is known.
struct TextTests {
    static func object(_ colour: SceneColour, _ shape: SceneShape, _ size: ObjectSize = .small, x: Double, y: Double) -> SceneObject {
        SceneObject(shape: shape, colour: colour, size: size, x: x, y: y, radius: size == .small ? 0.1 : 0.16,
                    rgb: [colour.rgb.0, colour.rgb.1, colour.rgb.2])
    }

    static func scene(_ objects: [SceneObject], _ structure: SceneStructure, stated: Scene.StatedRelation? = nil) -> Scene {
        Scene(index: 0, split: .train, kind: objects.count == 1 ? .single : .multi, structure: structure, objects: objects,
              background: SceneBackground(level: 128, noise: 0), statedRelation: stated)
    }

    @Test func relationSceneWording() {
        let s = Self.scene([Self.object(.red, .circle, x: 0.2, y: 0.5), Self.object(.blue, .square, .large, x: 0.7, y: 0.55)],
                           .relation, stated: .init(subject: 0, relation: .leftOf, object: 1))
        let text = SceneText(scene: s, seed: 0)
        #expect(text.caption == "a red circle left of a blue square")
        let all = text.captions.map(\.text)
        #expect(all.contains("a blue square to the right of a red circle"))
        #expect(all.contains("a small red circle left of a large blue square"))
        let negatives = Dictionary(uniqueKeysWithValues: text.negatives.map { ($0.kind, $0.caption.text) })
        #expect(negatives[.swap] == "a blue circle left of a red square")
        #expect(negatives[.relation] == "a red circle right of a blue square")
        #expect(negatives[.order] == "a blue square left of a red circle")
        #expect(text.negative(.swap) == negatives[.swap] && text.negative(.count) == nil)
        let qa = Dictionary(text.questions.map { ($0.question, $0.answer) }, uniquingKeysWith: { a, _ in a })
        #expect(qa["what is left of the blue square?"] == "a red circle")
        #expect(qa["what colour is the circle?"] == "red")
        #expect(qa["what shape is the blue object?"] == "square")
        #expect(qa["what size is the square?"] == "large")
        #expect(qa["is the red circle left of the blue square?"] == "yes")
        #expect(qa["is the red circle right of the blue square?"] == "no")
        #expect(qa["how many objects are there?"] == "two")
    }

    @Test func countAndGroupWording() {
        let stars = Self.scene([0.2, 0.5, 0.8].map { Self.object(.yellow, .star, x: $0, y: 0.3) }, .count)
        let t = SceneText(scene: stars, seed: 0)
        #expect(t.caption == "three yellow stars")
        #expect(t.questions.contains { $0.question == "how many stars are there?" && $0.answer == "three" })
        #expect(t.negatives.contains { $0.kind == .count })
        let group = Self.scene([Self.object(.orange, .cross, x: 0.8, y: 0.2), Self.object(.red, .circle, x: 0.15, y: 0.2),
                                Self.object(.red, .circle, x: 0.4, y: 0.7)], .group)
        let g = SceneText(scene: group, seed: 0)
        #expect(g.caption == "two red circles and an orange cross")  // leftmost group first
        #expect(g.captions.map(\.text).contains("an orange cross and two red circles"))
        #expect(g.negatives.first { $0.kind == .swap }?.caption.text == "two orange circles and a red cross")
    }

    @Test func ambiguousLayoutsAreNotStatedOrDenied() {
        // Diagonal: b is right of and below a by the same amount; neither left-of nor above holds strictly.
        let a = Self.object(.red, .circle, x: 0.25, y: 0.25), b = Self.object(.blue, .square, x: 0.7, y: 0.7)
        #expect(SceneGeometry.strictRelation(a, b) == nil)
        let claim = SceneClaim.relation(ObjectDescription(a), .above, ObjectDescription(b))
        #expect(claim.evaluate([a, b]) == .unknown)
        let text = SceneText(scene: Self.scene([a, b, Self.object(.green, .star, x: 0.8, y: 0.2)], .group), seed: 0)
        let questions = text.questions.map(\.question)
        // The star is strictly above the square but the circle is loosely above it too: no "what is" question.
        #expect(!questions.contains("what is above the blue square?"))
        #expect(!questions.contains { $0.hasPrefix("is the red circle") && $0.hasSuffix("the blue square?") })
        #expect(questions.contains("is the green star above the blue square?"))
    }

    @Test func singleObjectLabelAndArticle() {
        let s = Self.scene([Self.object(.orange, .heart, .large, x: 0.5, y: 0.5)], .object)
        let t = SceneText(scene: s, seed: 0)
        #expect(t.caption == "a large orange heart")
        #expect(t.captions.map(\.text).contains("an orange heart"))
        #expect(t.label == "orange heart")
        #expect(SceneVocabulary.allTypes.count == SceneShape.allCases.count * SceneColour.allCases.count)
        #expect(SceneVocabulary.seenTypes.count == SceneVocabulary.allTypes.count - SceneVocabulary.heldoutPairs.count)
    }

    /// Answers checked against the objects for every generated scene.
    @Test func questionAnswersMatchObjects() throws {
        for g in try SceneDataset.generate(count: 150, seed: 11, split: .train) {
            let objects = g.scene.objects
            for q in g.text.questions {
                switch q.kind {
                case .count:
                    if q.question == "how many objects are there?" {
                        #expect(q.answer == SceneVocabulary.countWord(objects.count))
                    } else if let s = SceneShape.allCases.first(where: { q.question == "how many \($0.plural) are there?" }) {
                        #expect(q.answer == SceneVocabulary.countWord(objects.filter { $0.shape == s }.count))
                    } else if let c = SceneColour.allCases.first(where: { q.question == "how many \($0.rawValue) objects are there?" }) {
                        #expect(q.answer == SceneVocabulary.countWord(objects.filter { $0.colour == c }.count))
                    } else {
                        Issue.record("unrecognised question \(q.question)")
                    }
                case .colour:
                    let s = SceneShape.allCases.first { q.question == "what colour is the \($0.rawValue)?" }
                    let matching = objects.filter { $0.shape == s }
                    #expect(matching.count == 1 && matching.first?.colour.rawValue == q.answer)
                case .shape:
                    let c = SceneColour.allCases.first { q.question == "what shape is the \($0.rawValue) object?" }
                    let matching = objects.filter { $0.colour == c }
                    #expect(matching.count == 1 && matching.first?.shape.rawValue == q.answer)
                case .size:
                    let s = SceneShape.allCases.first { q.question == "what size is the \($0.rawValue)?" }
                    let matching = objects.filter { $0.shape == s }
                    #expect(matching.count == 1 && matching.first?.size.rawValue == q.answer)
                case .exists:
                    let present = objects.contains { q.question == "is there \(ObjectDescription($0).phrase)?" }
                    #expect(q.answer == (present ? "yes" : "no"), "\(q.question)")
                case .relation:
                    #expect(Self.relationAnswerIsRight(q, objects), "\(q.question) -> \(q.answer)")
                }
            }
        }
    }

    /// "what is left of the blue square?" -> the one object strictly left of it; "is the A left of the B?" ->
    /// yes iff strictly so.
    static func relationAnswerIsRight(_ q: SceneQuestion, _ objects: [SceneObject]) -> Bool {
        for b in objects {
            let target = ObjectDescription(b).words
            for r in SceneRelation.allCases {
                if q.question == "what is \(r.rawValue) the \(target)?" {
                    let strict = objects.filter { SceneGeometry.holdsStrictly(r, $0, b) }
                    return strict.count == 1 && strict.first.map { ObjectDescription($0).phrase } == q.answer
                }
                for a in objects where q.question == "is the \(ObjectDescription(a).words) \(r.rawValue) the \(target)?" {
                    return q.answer == (SceneGeometry.holdsStrictly(r, a, b) ? "yes" : "no")
                }
            }
        }
        return false
    }
}
