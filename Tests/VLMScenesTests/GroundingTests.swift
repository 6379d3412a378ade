import Testing
@testable import VLMScenes

/// The caption parser, "where" questions and POPE probes against generated scenes' ground truth.
@Suite("Scene grounding and caption parsing")
struct GroundingTests {
    @Test("every canonical caption parses back to its claim and is faithful; every negative is not",
          arguments: SceneSplit.allCases)
    func captionsRoundTrip(split: SceneSplit) throws {
        for g in try SceneDataset.generate(count: 120, seed: 5, split: split) {
            let canonical = g.text.captions[0]
            #expect(SceneCaptionParser.parse(canonical.text) == canonical.claim, "\(canonical.text)")
            #expect(SceneCaptionParser.isFaithful(canonical.text, objects: g.scene.objects), "\(canonical.text)")
            for n in g.text.negatives where SceneCaptionParser.parse(n.caption.text) != nil {
                #expect(!SceneCaptionParser.isFaithful(n.caption.text, objects: g.scene.objects), "negative \(n.caption.text)")
            }
        }
    }

    @Test("unparseable and partial captions are not faithful")
    func rejectsOtherText() {
        let objects = [SceneObject(shape: .circle, colour: .red, size: .small, x: 0.3, y: 0.5, radius: 0.1, rgb: [220, 38, 38]),
                       SceneObject(shape: .square, colour: .blue, size: .large, x: 0.7, y: 0.5, radius: 0.15, rgb: [40, 80, 230])]
        #expect(SceneCaptionParser.isFaithful("a red circle and a blue square", objects: objects))
        #expect(SceneCaptionParser.isFaithful("a red circle left of a blue square", objects: objects))
        #expect(SceneCaptionParser.isFaithful("a small red circle and a large blue square.", objects: objects))
        #expect(!SceneCaptionParser.isFaithful("a red circle", objects: objects), "an object left out")
        #expect(!SceneCaptionParser.isFaithful("a red circle right of a blue square", objects: objects))
        #expect(!SceneCaptionParser.isFaithful("a red circle and a blue square and a green star", objects: objects), "an extra object")
        #expect(!SceneCaptionParser.isFaithful("a large red circle and a blue square", objects: objects), "wrong size")
        for junk in ["", "red", "a red", "two red circle", "a red circles", "a purple thing", "circle red a"] {
            #expect(SceneCaptionParser.parse(junk) == nil, "'\(junk)'")
        }
    }

    @Test("where-questions name one-of-a-kind objects and their boxes contain them")
    func locateQuestions() throws {
        var asked = 0
        for g in try SceneDataset.generate(count: 150, seed: 9, split: .train) {
            let objects = g.scene.objects
            let questions = SceneGrounding.locateQuestions(g.scene)
            #expect(questions.count == objects.filter { o in objects.filter { $0.type == o.type }.count == 1 }.count)
            for q in questions {
                let matching = objects.filter { "\($0.colour.rawValue) \($0.shape.rawValue)" == q.label }
                #expect(matching.count == 1 && q.question == "where is the \(q.label)?")
                guard let o = matching.first else { continue }
                #expect(q.box.x1 <= o.x && o.x <= q.box.x2 && q.box.y1 <= o.y && o.y <= q.box.y2)
                #expect(q.box.x1 >= 0 && q.box.y1 >= 0 && q.box.x2 <= 1 && q.box.y2 <= 1 && q.box.area > 0)
                #expect(abs(q.box.iou(SceneBox(o)) - 1) < 1e-12)
                asked += 1
            }
        }
        #expect(asked > 150)
    }

    @Test("--locate-by any: shape-only and colour-only phrases name exactly one object, labelled in full")
    func locateByAnyReference() throws {
        var byShape = 0, byColour = 0
        for g in try SceneDataset.generate(count: 150, seed: 9, split: .train) {
            let objects = g.scene.objects
            let typed = SceneGrounding.locateQuestions(g.scene)
            let all = SceneGrounding.locateQuestions(g.scene, references: .any)
            #expect(Array(all.filter { typed.contains($0) }) == typed, "the type questions are kept, in order")
            #expect(Set(all.map(\.question)).count == all.count, "no question twice")
            for q in all where !typed.contains(q) {
                let phrase = String(q.question.dropFirst("where is the ".count).dropLast())
                let matching: [SceneObject]
                if phrase.hasSuffix(" object") {
                    matching = objects.filter { "\($0.colour.rawValue) object" == phrase }
                    byColour += 1
                } else {
                    matching = objects.filter { $0.shape.rawValue == phrase }
                    byShape += 1
                }
                #expect(matching.count == 1, "'\(q.question)' names one object")
                guard let o = matching.first else { continue }
                #expect(q.label == "\(o.colour.rawValue) \(o.shape.rawValue)")
                #expect(abs(q.box.iou(SceneBox(o)) - 1) < 1e-12)
            }
            // Every unique shape and every unique colour is asked about.
            let shapes = Set(objects.map(\.shape)).filter { s in objects.filter { $0.shape == s }.count == 1 }
            let colours = Set(objects.map(\.colour)).filter { c in objects.filter { $0.colour == c }.count == 1 }
            #expect(all.count == typed.count + shapes.count + colours.count)
        }
        #expect(byShape > 100 && byColour > 100)
    }

    @Test("'where are the stars?' lists every star, left to right, once per shape and colour present")
    func enumerateQuestions() throws {
        var several = 0
        for g in try SceneDataset.generate(count: 150, seed: 9, split: .train) {
            let objects = g.scene.objects
            let questions = SceneGrounding.enumerateQuestions(g.scene)
            #expect(questions.count == Set(objects.map(\.shape)).count + Set(objects.map(\.colour)).count)
            #expect(Set(questions.map(\.question)).count == questions.count, "no question twice")
            for q in questions {
                let phrase = String(q.question.dropFirst("where are the ".count).dropLast())
                let matching = phrase.hasSuffix(" objects") ? objects.filter { "\($0.colour.rawValue) objects" == phrase }
                    : objects.filter { $0.shape.plural == phrase }
                #expect(!matching.isEmpty && q.objects.count == matching.count, "'\(q.question)': \(q.objects.count) of \(matching.count)")
                // Each object once, with its own box and full label.
                for o in matching {
                    #expect(q.objects.filter { abs($0.box.iou(SceneBox(o)) - 1) < 1e-12 && $0.label == "\(o.colour.rawValue) \(o.shape.rawValue)" }.count == 1)
                }
                let lefts = q.objects.map(\.box.x1)
                #expect(zip(lefts, lefts.dropFirst()).allSatisfy { $0 <= $1 }, "left to right: \(lefts)")
                if q.objects.count > 1 { several += 1 }
            }
        }
        #expect(several > 50, "scenes with several objects of a shape or colour: \(several)")
        // The questions are part of `.all` only; the other references ask nothing new.
        #expect(LocateReference.allCases == [.type, .any, .all])
    }

    @Test("IoU of boxes")
    func iou() {
        let a = SceneBox(x1: 0, y1: 0, x2: 0.5, y2: 0.5)
        #expect(a.iou(a) == 1)
        #expect(a.iou(SceneBox(x1: 0.5, y1: 0, x2: 1, y2: 0.5)) == 0)
        #expect(abs(a.iou(SceneBox(x1: 0.25, y1: 0, x2: 0.75, y2: 0.5)) - 1.0 / 3.0) < 1e-12)
        #expect(a.iou(SceneBox(x1: 0.3, y1: 0.3, x2: 0.3, y2: 0.9)) == 0, "empty box")
    }

    @Test("POPE probes are balanced, true and deterministic", arguments: SceneProbe.Sampling.allCases)
    func probes(sampling: SceneProbe.Sampling) throws {
        var adversarialHits = 0, absentTotal = 0
        for g in try SceneDataset.generate(count: 100, seed: 3, split: .test) {
            let probes = SceneGrounding.probes(g.scene, seed: 3, sampling: sampling)
            #expect(probes == SceneGrounding.probes(g.scene, seed: 3, sampling: sampling))
            let types = Set(g.scene.objects.map(\.type))
            #expect(probes.filter(\.present).count == types.count && probes.filter { !$0.present }.count == types.count)
            for p in probes {
                let named = SceneVocabulary.allTypes.filter { p.question == "is there \(ObjectDescription(colour: $0.colour, shape: $0.shape).phrase)?" }
                #expect(named.count == 1, "\(p.question)")
                guard let t = named.first else { continue }
                #expect(types.contains(t) == p.present, "\(p.question)")
                if !p.present {
                    absentTotal += 1
                    if types.contains(where: { $0.colour == t.colour || $0.shape == t.shape }) { adversarialHits += 1 }
                }
            }
        }
        if sampling == .adversarial { #expect(adversarialHits == absentTotal, "adversarial negatives share a colour or shape") }
        else { #expect(adversarialHits < absentTotal) }
    }
}
