import Foundation
import SwiftVLM
import Testing
import VLMScenes
import VLMTokenizers
import VLMTestSupport
import VLMTensor
import VLMTraining

/// PaliGemma location tokens, the scene VLM's tokenizer carrying them, and `vlm eval --generative`'s report.
@Suite("Scene VLM grounding and evaluation")
struct SceneVLMGroundingTests {
    @Test("location tokens: encode order (y1 x1 y2 x2), bins, parse with spaces, labels and several boxes")
    func locationTokens() {
        #expect(LocationTokens.token(7) == "<loc0007>" && LocationTokens.token(1023) == "<loc1023>")
        #expect(LocationTokens.all.count == 1024 && Set(LocationTokens.all).count == 1024)
        #expect(LocationTokens.bin(0) == 0 && LocationTokens.bin(1) == 1023 && LocationTokens.bin(-0.5) == 0 && LocationTokens.bin(0.5) == 512)
        let text = LocationTokens.encode(x1: 0.25, y1: 0.125, x2: 0.75, y2: 0.5)
        #expect(text == "<loc0128><loc0256><loc0512><loc0768>")
        let boxes = LocationTokens.parse(text + " red star ; <loc0000> <loc0000> <loc1023> <loc1023> blue circle", width: 640, height: 480)
        #expect(boxes == [LocationTokens.Box(x1: 160, y1: 60, x2: 480, y2: 240, label: "red star"),
                          LocationTokens.Box(x1: 0, y1: 0, x2: 639.375, y2: 479.53125, label: "blue circle")])
        #expect(LocationTokens.parse("no boxes here", width: 10, height: 10).isEmpty)
        #expect(LocationTokens.parse("<loc0001><loc0002><loc0003> three only", width: 10, height: 10).isEmpty)
        #expect(LocationTokens.parse("<loc9999><loc0002><loc0003><loc0004>", width: 10, height: 10).isEmpty, "bin out of range")
        #expect(LocationTokens.stripped("<loc0001> <loc0002><loc0003> <loc0004> red  star") == "red star")
    }

    @Test("the scene tokenizer keeps location tokens whole and decodes them back; locate turns are drawn")
    func tokenizerCarriesLocations() throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-loc")
        let root = scratch.url
        var args = SceneVLMArguments(scenes: 20, steps: 1)
        args.preset = "micro"
        args.batch = 4
        let trainer = try SceneVLMTrainer(args: args)
        for (name, data) in trainer.assets { try data.write(to: root.appendingPathComponent(name)) }
        let tokenizer = try TokenizerLoader.load(directory: root)
        let image = try #require(tokenizer.tokenID(for: SceneVLM.imageToken))
        #expect(tokenizer.tokenID(for: "<loc0000>") == image + 1 && tokenizer.tokenID(for: "<loc1023>") == image + 1024)
        #expect(trainer.model.config.textConfig.vocabSize == image + 1025)
        let answer = LocationTokens.encode(x1: 0.1, y1: 0.2, x2: 0.3, y2: 0.4) + " red star"
        let ids = try tokenizer.encode(answer, addSpecialTokens: false)
        #expect(ids.count == 6 && ids.prefix(4).allSatisfy { $0 > image }, "\(ids)")
        let decoded = tokenizer.decode(ids, skipSpecialTokens: true)
        #expect(LocationTokens.parse(decoded, width: 1, height: 1).first?.label == "red star", "\(decoded)")
        let batches = try SceneVLMBatches(directory: root, seed: 0, scenesSeed: 0, count: 20, batchSize: 4, config: trainer.model.config)
        #expect(batches.locate)
        var kinds = Set<String>()
        for step in 0 ..< 40 { for slot in 0 ..< 4 { kinds.insert(try batches.draw(step: step, slot: slot).1.kind) } }
        #expect(kinds.contains("locate") && kinds.contains("caption") && kinds.contains("exists"), "\(kinds)")

        // --locate-share: that share of draws are "where" turns when the scene has a one-of-a-kind object.
        var shared = batches
        shared.locateShare = 0.5
        var locate = 0, locatable = 0
        for step in 0 ..< 100 {
            for slot in 0 ..< 4 {
                let (scene, turn) = try shared.draw(step: step, slot: slot)
                guard !SceneGrounding.locateQuestions(scene.scene).isEmpty else { continue }
                locatable += 1
                if turn.kind == "locate" { locate += 1 }
            }
        }
        // 0.5 + 0.5/8 expected (the uniform draw picks "locate" too); ±5 standard deviations of 400 draws.
        let rate = Double(locate) / Double(locatable)
        #expect(locatable > 300 && abs(rate - 0.5625) < 0.13, "\(locate) of \(locatable)")
        shared.locateShare = 0
        var plain = 0
        for step in 0 ..< 100 { for slot in 0 ..< 4 where try shared.draw(step: step, slot: slot).1.kind == "locate" { plain += 1 } }
        #expect(plain < 100, "share 0 leaves the uniform draw: \(plain) of 400")

        // --count-share: that share of the draws not forced to "where" are "how many ...?"; a locate share still
        // comes first.
        var counting = shared
        counting.locateShare = 0.35
        counting.countShare = 0.5
        var counts = 0, locates = 0, drawn = 0
        for step in 0 ..< 100 { for slot in 0 ..< 4 {
            let kind = try counting.draw(step: step, slot: slot).1.kind
            drawn += 1
            if kind == "count" { counts += 1 }
            if kind == "locate" { locates += 1 }
        } }
        // Expected count share about 0.65 · (0.5 + 0.5/8) = 0.37 (scenes without a locate turn a little more).
        let countRate = Double(counts) / Double(drawn)
        #expect(countRate > 0.28 && countRate < 0.5, "\(counts) count turns of \(drawn)")
        #expect(locates > 100, "the locate share holds: \(locates) of \(drawn)")
        var always = counting
        always.countShare = 1
        for step in 0 ..< 20 { for slot in 0 ..< 4 {
            let kind = try always.draw(step: step, slot: slot).1.kind
            #expect(kind == "count" || kind == "locate", "step \(step) slot \(slot): \(kind)")
        } }

        // --locate-share-from: the share applies from that step on; earlier steps draw as without it.
        var late = batches
        late.locateShare = 1
        late.locateShareFrom = 50
        for step in [0, 49] { for slot in 0 ..< 4 {
            #expect(try late.draw(step: step, slot: slot).1.kind == batches.draw(step: step, slot: slot).1.kind)
        } }
        for step in 50 ..< 60 { for slot in 0 ..< 4 {
            let (scene, turn) = try late.draw(step: step, slot: slot)
            if !SceneGrounding.locateQuestions(scene.scene).isEmpty { #expect(turn.kind == "locate", "step \(step) slot \(slot)") }
        } }

        // --locate-by any: the "where" turns also use shape-only and colour-only phrases, and the box and full label
        // answer them.
        var any = batches
        any.locateShare = 1
        any.locateReferences = .any
        var phrases = Set<String>()
        for step in 0 ..< 40 { for slot in 0 ..< 4 {
            let (scene, turn) = try any.draw(step: step, slot: slot)
            guard turn.kind == "locate" else { continue }
            let q = try #require(SceneGrounding.locateQuestions(scene.scene, references: .any).first { $0.question == turn.prompt })
            #expect(turn.answer == LocationTokens.encode(x1: q.box.x1, y1: q.box.y1, x2: q.box.x2, y2: q.box.y2) + " " + q.label)
            phrases.insert(turn.prompt.hasSuffix(" object?") ? "colour" : turn.prompt.split(separator: " ").count == 4 ? "shape" : "type")
        } }
        #expect(phrases == ["colour", "shape", "type"], "\(phrases)")

        // --locate-by all: "where are the stars?" turns too, answered with every star's box and label in order,
        // which the parser reads back as the scene's boxes.
        var all = batches
        all.locateReferences = .all
        var enumerated = 0
        for step in 0 ..< 60 { for slot in 0 ..< 4 {
            let (scene, turn) = try all.draw(step: step, slot: slot)
            guard turn.kind == "enumerate" else { continue }
            enumerated += 1
            let q = try #require(SceneGrounding.enumerateQuestions(scene.scene).first { $0.question == turn.prompt })
            let parsed = LocationTokens.parse(turn.answer, width: 1, height: 1)
            #expect(parsed.map(\.label) == q.objects.map(\.label))
            for (p, o) in zip(parsed, q.objects) {
                #expect(SceneBox(x1: p.x1, y1: p.y1, x2: p.x2, y2: p.y2).iou(o.box) > 0.95, "\(turn.answer)")
            }
        } }
        #expect(enumerated > 5, "\(enumerated) enumerate turns of 240")
        // Only .all asks them.
        for step in 0 ..< 60 { for slot in 0 ..< 4 {
            #expect(try any.draw(step: step, slot: slot).1.kind != "enumerate" && batches.draw(step: step, slot: slot).1.kind != "enumerate")
        } }
    }

    @Test("--kind-weights: a kind's share follows its weight, weight 0 removes it, bad specs name the culprit")
    func kindWeights() throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-kinds")
        var args = SceneVLMArguments(scenes: 40, steps: 1)
        args.preset = "micro"
        let trainer = try SceneVLMTrainer(args: args)
        for (name, data) in trainer.assets { try data.write(to: scratch.url.appendingPathComponent(name)) }
        let uniform = try SceneVLMBatches(directory: scratch.url, seed: 3, scenesSeed: 0, count: 40, batchSize: 4, config: trainer.model.config)
        func shares(_ b: SceneVLMBatches) throws -> [String: Double] {
            var n: [String: Int] = [:]
            for step in 0 ..< 150 { for slot in 0 ..< 4 { n[try b.draw(step: step, slot: slot).1.kind, default: 0] += 1 } }
            return n.mapValues { Double($0) / 600 }
        }
        // Weights of 1 everywhere draw the kinds in the uniform proportions (by another mapping of the same numbers).
        var ones = uniform
        ones.kindWeights = Dictionary(uniqueKeysWithValues: SceneVLMBatches.kindNames.map { ($0, 1.0) })
        let base = try shares(uniform), onesShares = try shares(ones)
        for kind in ["colour", "shape", "relation"] {
            #expect(abs((base[kind] ?? 0) - (onesShares[kind] ?? 0)) < 0.06, "\(kind): \(base) vs \(onesShares)")
        }
        // colour 3: about three times the uniform share (±5 sd of 600 draws); relation 0: never drawn.
        var weighted = uniform
        weighted.kindWeights = ["colour": 3, "relation": 0]
        let w = try shares(weighted)
        #expect((w["relation"] ?? 0) == 0, "\(w)")
        let expected = 3 * (base["colour"] ?? 0) * 8 / 9  // seven other kinds at 1 beside colour's 3 (of ~8 offered)
        #expect(abs((w["colour"] ?? 0) - expected) < 0.1 && (w["colour"] ?? 0) > 2 * (base["colour"] ?? 0), "\(w) vs \(base)")
        // Every offered kind at 0: the turn is drawn uniformly instead of failing.
        var none = uniform
        none.kindWeights = Dictionary(uniqueKeysWithValues: SceneVLMBatches.kindNames.map { ($0, 0.0) })
        #expect(try shares(none).count >= 5)

        #expect(try SceneVLMArguments.parseKindWeights("colour=2, shape=2.5,relation=0") == ["colour": 2, "shape": 2.5, "relation": 0])
        for (bad, culprit) in [("color=2", "color"), ("colour=-1", "colour"), ("colour", "colour"), ("colour=2,colour=3", "twice"),
                               ("shape=nan", "shape"), ("", "kind=weight")] {
            do {
                _ = try SceneVLMArguments.parseKindWeights(bad)
                Issue.record("'\(bad)' was accepted")
            } catch { #expect("\(error)".contains(culprit), "'\(bad)': \(error)") }
        }
        var badArgs = SceneVLMArguments(scenes: 4, steps: 1)
        badArgs.preset = "micro"
        badArgs.kindWeights = ["colour": .infinity]
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: badArgs) }
    }

    @Test("all-boxes scoring: one-to-one matches at IoU >= 0.5, the count must agree")
    func enumerationMatching() {
        let a = SceneBox(x1: 0, y1: 0, x2: 0.2, y2: 0.2), b = SceneBox(x1: 0.5, y1: 0.5, x2: 0.7, y2: 0.7)
        let nearA = SceneBox(x1: 0.01, y1: 0, x2: 0.21, y2: 0.2)
        #expect(SceneVLMEvaluation.matchesAll([b, nearA], [a, b]), "order does not matter")
        #expect(!SceneVLMEvaluation.matchesAll([nearA, nearA], [a, b]), "one box cannot stand for two objects")
        #expect(!SceneVLMEvaluation.matchesAll([a], [a, b]) && !SceneVLMEvaluation.matchesAll([a, b, b], [a, b]))
        #expect(!SceneVLMEvaluation.matchesAll([SceneBox(x1: 0.1, y1: 0.1, x2: 0.3, y2: 0.3), b], [a, b]), "IoU 0.14 is a miss")
        #expect(SceneVLMEvaluation.matchesAll([], []))
    }

    @Test("--location-init fourier: location rows smooth over bins, at the random rows' norm; other rows untouched")
    func fourierLocationInit() throws {
        var args = SceneVLMArguments(scenes: 20, steps: 1)
        args.preset = "tiny"
        let random = try SceneVLMTrainer(args: args)
        args.locationInit = "fourier"
        let fourier = try SceneVLMTrainer(args: args)
        let name = TrainableLlava.embeddingName
        let e = fourier.model.parameters[name], r = random.model.parameters[name]
        let c = e.shape[1], first = fourier.model.config.imageTokenIndex + 1
        func row(_ t: Tensor, _ id: Int) -> [Float] { (0 ..< c).map { t[id * c + $0] } }
        func cosine(_ a: [Float], _ b: [Float]) -> Float {
            zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
        }
        let norm = row(e, first + 300).map { $0 * $0 }.reduce(0, +).squareRoot()
        #expect(abs(norm - 0.02 * Float(c).squareRoot()) < 1e-4, "row norm \(norm)")
        // Neighbours are alike, a pixel apart (16 bins) still close, a quarter of the range apart nearly orthogonal.
        #expect(cosine(row(e, first + 500), row(e, first + 501)) > 0.99)
        #expect(cosine(row(e, first + 500), row(e, first + 516)) > 0.5)
        #expect(abs(cosine(row(e, first + 500), row(e, first + 756))) < 0.2)
        #expect(cosine(row(r, first + 500), row(r, first + 501)) < 0.5, "random rows share nothing")
        // Word rows are the seeded random ones in both.
        #expect(row(e, first - 2) == row(r, first - 2))
        args.locationInit = "sinusoid"
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
    }

    @Test("--vision-position-init sincos: patch positions become their mean plus a row/column code; CLS untouched")
    func gridPositions() throws {
        let grid = 8, c = 128
        let table = Tensor(uninitialized: [1 + grid * grid, c])
        for i in 0 ..< table.count { table.pointer[i] = 0.3 + 0.05 * Float(sin(Double(i) * 12.9898)) }
        let before = table.copy()
        SceneVLM.addGridPositions(table, grid: grid)
        func row(_ t: Tensor, _ i: Int) -> [Double] { (0 ..< c).map { Double(t[i * c + $0]) } }
        #expect(row(table, 0) == row(before, 0), "the CLS position is kept")
        var mean = [Double](repeating: 0, count: c)
        for p in 1 ... grid * grid { for j in 0 ..< c { mean[j] += row(before, p)[j] / Double(grid * grid) } }
        func code(_ r: Int, _ col: Int) -> [Double] { zip(row(table, 1 + r * grid + col), mean).map { $0 - $1 } }
        func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }
        func distance(_ a: [Double], _ b: [Double]) -> Double { norm(zip(a, b).map { $0 - $1 }) }
        // Norm a·sqrt(C/2) = 0.25·8 for every patch.
        for (r, col) in [(0, 0), (3, 5), (7, 7)] { #expect(abs(norm(code(r, col)) - 2) < 1e-5) }
        // The first half codes the row, the second the column.
        #expect(code(2, 1)[0 ..< 64] == code(2, 6)[0 ..< 64] && code(2, 6)[64...] == code(5, 6)[64...])
        // Every patch is told apart from every other (codes at least 1.7 apart, next to norms of 2), and the
        // lowest frequency's cosine falls monotonically along a row and down a column (a linear read-out of place).
        var closest = Double.infinity
        for a in 0 ..< grid * grid { for b in 0 ..< a { closest = min(closest, distance(code(a / grid, a % grid), code(b / grid, b % grid))) } }
        #expect(closest > 1.7, "closest codes \(closest) apart")
        let rowCos = (0 ..< grid).map { code($0, 3)[1] }, colCos = (0 ..< grid).map { code(3, $0)[65] }
        #expect(zip(rowCos, rowCos.dropFirst()).allSatisfy { $0 > $1 } && zip(colCos, colCos.dropFirst()).allSatisfy { $0 > $1 })
        // --vision-position-amplitude scales the code (norm a·8), and needs sincos and a sane value.
        let small = before.copy()
        SceneVLM.addGridPositions(small, grid: grid, amplitude: 0.05)
        let smallCode = zip(row(small, 1 + 3 * grid + 5), mean).map { $0 - $1 }
        #expect(abs(norm(smallCode) - 0.4) < 1e-5)
        var args = SceneVLMArguments(scenes: 20, steps: 1)
        args.visionPositionInit = "learned"
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
        args.visionPositionInit = nil
        args.visionPositionAmplitude = 0.1
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
        args.visionPositionInit = "sincos"
        args.visionPositionAmplitude = 0
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
    }

    @Test("--image-positions: sincos rows after the projector (CLS row zero), gained by --init-from, bad values refused")
    func imagePositions() throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-positions")
        var args = SceneVLMArguments(scenes: 20, steps: 1)
        args.preset = "micro"
        args.batch = 2
        // The plain checkpoint --init-from continues: no position rows.
        let plain = try SceneVLMTrainer(args: args)
        #expect(!plain.model.config.imagePositionEmbedding && plain.model.parameters.tensor(TrainableLlava.imagePositions) == nil)
        let source = scratch.url.appendingPathComponent("plain")
        try plain.saveCheckpoint(to: source)
        args.imagePositions = "sincos"
        args.imagePositionAmplitude = 3
        args.initFrom = source.path
        let grown = try SceneVLMTrainer(args: args)
        let rows = try #require(grown.model.parameters.tensor(TrainableLlava.imagePositions))
        let tokens = grown.model.config.imageTokensPerImage, c = grown.model.config.textConfig.hiddenSize
        #expect(rows.shape == [tokens, c] && grown.model.config.imagePositionEmbedding)
        let grid = grown.model.config.visionConfig.patchesPerSide, first = tokens - grid * grid
        func norm(_ r: Int) -> Float { (0 ..< c).map { rows[r * c + $0] * rows[r * c + $0] }.reduce(0, +).squareRoot() }
        // Each patch row is the 2-D code (norm a·sqrt(C/2) for C >= 4 channels per axis pair), a CLS row is zero.
        #expect(abs(norm(first + 5) - 3 * Float(c / 2).squareRoot()) < 1e-3, "patch row norm \(norm(first + 5))")
        if first == 1 { #expect(norm(0) == 0) }
        // Every other tensor is the checkpoint's.
        let embed = TrainableLlava.embeddingName
        #expect(grown.model.parameters[embed].scalars == plain.model.parameters[embed].scalars)
        // The trained step runs with the rows, and the saved checkpoint declares them.
        let out = scratch.url.appendingPathComponent("grown")
        _ = try grown.run(out: out)
        let config = try String(contentsOf: out.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(config.contains("\"image_position_embedding\" : true"))
        // Continuing a checkpoint that has rows keeps them, trained values included, without --image-positions.
        var again = SceneVLMArguments(scenes: 20, steps: 1)
        again.preset = "micro"
        again.initFrom = out.path
        let kept = try SceneVLMTrainer(args: again)
        let trained = try TrainableLlava.load(directory: out).parameters[TrainableLlava.imagePositions]
        #expect(kept.model.parameters.tensor(TrainableLlava.imagePositions)?.scalars == trained.scalars)
        args.initFrom = nil
        args.imagePositions = "learned"
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
        args.imagePositions = "random"
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }  // an amplitude needs sincos
        args.imagePositions = "sincos"
        args.imagePositionAmplitude = 100
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: args) }
    }

    @Test("vlm eval --generative's report: every turn, balanced POPE probes, one box per one-of-a-kind object")
    func evaluationReport() throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-eval")
        let root = scratch.url
        var args = SceneVLMArguments(scenes: 10, steps: 1)
        args.preset = "micro"
        args.batch = 2
        let trainer = try SceneVLMTrainer(args: args)
        let out = root.appendingPathComponent("run")
        _ = try trainer.run(out: out)
        let report = try SceneVLMEvaluation.evaluate(directory: out, split: .test, scenesSeed: 4, count: 3, maxTokens: 6, mistakes: 2)
        let generator = try SceneGenerator(seed: 4)
        var turns = 0, types = 0, unique = 0, enumerable = 0
        for i in 0 ..< 3 {
            let g = try generator.generate(index: i, split: .test)
            turns += SceneVLMExample.all(for: g, locate: false).count
            types += Set(g.scene.objects.map(\.type)).count
            unique += SceneGrounding.locateQuestions(g.scene).count
            enumerable += SceneGrounding.enumerateQuestions(g.scene).count
        }
        #expect(report.kinds.map(\.total).reduce(0, +) == turns)
        #expect(report.captionFaithful.total == 3)
        #expect(report.probes.map(\.sampling) == ["random", "adversarial"])
        #expect(report.probes.allSatisfy { $0.total == 2 * types })
        #expect(report.boxes?.total == unique)
        #expect(report.enumeration?.total == enumerable && report.table().contains("all boxes"))
        #expect(report.table().contains("POPE random"))
        // A one-step micro model gets most answers wrong: each kind keeps at most two, and each kept one is wrong.
        let wrongTurns = report.kinds.map { $0.total - $0.correct }
        #expect(report.mistakes.count >= min(2, wrongTurns.max() ?? 0))
        for kind in Set(report.mistakes.map(\.kind)) { #expect(report.mistakes.filter { $0.kind == kind }.count <= 2) }
        for m in report.mistakes {
            #expect(m.answer.lowercased() != m.expected.lowercased())
            #expect(!m.objects.isEmpty && m.scene < 3)
        }
    }
}
