import Foundation
import SwiftVLM
import Testing
import VLMScenes
import VLMTestSupport
import VLMTokenizers
import VLMTraining

/// `--patch-labels`: the image token of each object patch is scored with the object's shape word.
@Suite("Scene VLM patch labels")
struct SceneVLMPatchLabelTests {
    /// A generated scene's first object, moved and reshaped (the types have no public memberwise init).
    static func object(_ shape: SceneShape, x: Double, y: Double, radius: Double) throws -> SceneObject {
        var o = try #require(try SceneGenerator(seed: 0).scene(index: 0, split: .train).objects.first)
        (o.shape, o.x, o.y, o.radius) = (shape, x, y, radius)
        return o
    }

    static func scene(_ objects: [SceneObject]) throws -> Scene {
        var s = try SceneGenerator(seed: 0).scene(index: 0, split: .train)
        s.objects = objects
        return s
    }

    @Test("a patch belongs to the object covering a quarter of it, by the renderer's point test; nothing elsewhere")
    func coverage() throws {
        // A square of half-side 0.25 centred on the image covers |u|, |v| <= 0.84, i.e. 0.29 ... 0.71 of the canvas.
        // On a 4x4 grid (cells of 0.25) the four centre cells are 84% x 84% covered; the outer ring of cells not at all.
        let square = try Self.scene([try Self.object(.square, x: 0.5, y: 0.5, radius: 0.25)])
        let grid4 = SceneVLMBatches.patchObjects(square, grid: 4)
        #expect(grid4.count == 16)
        for row in 0 ..< 4 {
            for col in 0 ..< 4 {
                let inside = (1 ... 2).contains(row) && (1 ... 2).contains(col)
                #expect(grid4[row * 4 + col] == (inside ? 0 : nil), "cell \(row),\(col): \(String(describing: grid4[row * 4 + col]))")
            }
        }
        // Two objects: each patch names the object over it (index in scene order); a ring's hole is not the ring.
        let two = try Self.scene([try Self.object(.circle, x: 0.125, y: 0.125, radius: 0.12),
                              try Self.object(.ring, x: 0.625, y: 0.625, radius: 0.3)])
        let grid8 = SceneVLMBatches.patchObjects(two, grid: 8)
        #expect(grid8[0] == 0 && grid8[1] == 0 && grid8[8] == 0 && grid8[9] == 0)
        #expect(grid8[5 * 8 + 5] == nil, "the ring's hole (centre cell 0.625-0.75 is inside the inner radius)")
        #expect(grid8[5 * 8 + 3] == 1 && grid8[7 * 8 + 5] == 1, "the ring's band")
        #expect(grid8[7] == nil && grid8[56] == nil, "empty corners")
        #expect(SceneVLMBatches.patchObjects(two, grid: 0).isEmpty)
    }

    @Test("batches: each object patch's next label is its shape word, the rest of the sequence unchanged; share thins them",
          arguments: ["default", "full"])
    func batchLabels(strategy: String) throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-patches")
        var args = SceneVLMArguments(scenes: 20, steps: 1)
        args.preset = "micro"
        args.patchLabels = 1
        args.visionFeatureStrategy = strategy
        let trainer = try SceneVLMTrainer(args: args)
        for (name, data) in trainer.assets { try data.write(to: scratch.url.appendingPathComponent(name)) }
        let config = trainer.model.config
        let plain = try SceneVLMBatches(directory: scratch.url, seed: 5, scenesSeed: 0, count: 20, batchSize: 6, config: config, turns: 2)
        var all = plain, half = plain, projector = plain, both = plain
        all.patchLabelShare = 1
        half.patchLabelShare = 0.5
        (projector.patchLabelShare, projector.patchLabelPlace) = (1, .projector)
        (both.patchLabelShare, both.patchLabelPlace) = (1, .both)
        let tokenizer = try TokenizerLoader.load(directory: scratch.url)
        let words = Dictionary(uniqueKeysWithValues: SceneShape.allCases.compactMap { s in tokenizer.tokenID(for: s.rawValue).map { ($0, s) } })
        let run = config.imageTokensPerImage, grid = 4, cls = strategy == "full" ? 1 : 0
        #expect(run == grid * grid + cls, "micro: 4x4 patches, plus the CLS state first with 'full': \(run) tokens")
        var labelled = 0, halfLabelled = 0
        for step in 0 ..< 4 {
            let a = try plain.batch(step: step), b = try all.batch(step: step), c = try half.batch(step: step)
            #expect(a.ids == b.ids && a.ids == c.ids && a.pixels.count == b.pixels.count)
            // The projector place scores the same tokens through imageLabels, leaving the sequence labels alone.
            let p = try projector.batch(step: step), d = try both.batch(step: step)
            #expect(a.imageLabels == nil && b.imageLabels == nil && p.labels == a.labels && d.labels == b.labels)
            let image = try #require(p.imageLabels)
            #expect(image.count == a.size * run && d.imageLabels == image)
            for slot in 0 ..< a.size {
                let scene = try plain.draw(step: step, slot: slot, turns: 2).0.scene
                let owners = SceneVLMBatches.patchObjects(scene, grid: grid)
                let start = try #require(a.ids[slot].firstIndex(of: config.imageTokenIndex))
                for pos in 0 ..< a.labels[slot].count {
                    let patch = pos - 1 - start - cls
                    if (0 ..< grid * grid).contains(patch), let owner = owners[patch] {
                        #expect(words[b.labels[slot][pos]] == scene.objects[owner].shape, "step \(step) slot \(slot) patch \(patch)")
                        #expect(a.labels[slot][pos] == LlavaTrainingBatch.ignoreIndex)
                        #expect(image[slot * run + cls + patch] == b.labels[slot][pos])
                        labelled += 1
                        if c.labels[slot][pos] != LlavaTrainingBatch.ignoreIndex {
                            #expect(c.labels[slot][pos] == b.labels[slot][pos])
                            halfLabelled += 1
                        }
                    } else {
                        #expect(b.labels[slot][pos] == a.labels[slot][pos] && c.labels[slot][pos] == a.labels[slot][pos])
                        if (0 ..< grid * grid).contains(patch) { #expect(image[slot * run + cls + patch] == LlavaTrainingBatch.ignoreIndex) }
                    }
                }
            }
        }
        #expect(labelled > 24, "\(labelled) object patches over 24 sequences")
        #expect(halfLabelled > labelled / 4 && halfLabelled < labelled * 3 / 4, "\(halfLabelled) of \(labelled) kept at share 0.5")
        // The batches train: one step with patch labels runs and its loss is finite.
        for batches in [all, both] {
            let step = try trainer.model.trainStep(try batches.batch(step: 0), optimizer: AdamW(learningRate: 1e-3), learningRate: 1e-3)
            #expect(step.loss.isFinite && step.loss > 0)
        }
    }

    @Test("a run with projector patch labels logs their loss apart (training_log.json auxiliaryLoss), and it falls")
    func loggedAndFalling() throws {
        let scratch = try TemporaryDirectory(prefix: "scene-vlm-patch-run")
        var args = SceneVLMArguments(scenes: 200, steps: 40)
        args.preset = "micro"
        args.batch = 8
        args.lr = 5e-3
        args.patchLabels = 1
        args.patchLabelPlace = .projector
        let trainer = try SceneVLMTrainer(args: args)
        _ = try trainer.run(out: scratch.url)
        let patch = trainer.patchLabelLossHistory
        #expect(patch.count == 40 && trainer.lossHistory.count == 40)
        let first = patch.prefix(5).reduce(0, +) / 5, last = patch.suffix(5).reduce(0, +) / 5
        #expect(last < 0.8 * first, "patch-label loss \(first) -> \(last) over 40 steps")
        let log = try JSONDecoder().decode(TrainingLog.self, from: Data(contentsOf: scratch.url.appendingPathComponent("training_log.json")))
        #expect(log.auxiliaryLoss == patch && log.loss == trainer.lossHistory)
    }

    @Test("--patch-labels outside (0, 1] is refused by name")
    func badShare() {
        for bad in [0, -0.5, 1.5, .nan] as [Double] {
            var args = SceneVLMArguments(scenes: 4, steps: 1)
            args.preset = "micro"
            args.patchLabels = bad
            do {
                _ = try SceneVLMTrainer(args: args)
                Issue.record("--patch-labels \(bad) was accepted")
            } catch { #expect("\(error)".contains("--patch-labels"), "\(error)") }
        }
        var orphan = SceneVLMArguments(scenes: 4, steps: 1)
        orphan.preset = "micro"
        orphan.patchLabelPlace = .projector
        #expect(throws: PipelineError.self) { _ = try SceneVLMTrainer(args: orphan) }
        orphan.patchLabels = 1
        orphan.patchLabelWeight = 0
        do {
            _ = try SceneVLMTrainer(args: orphan)
            Issue.record("--patch-label-weight 0 was accepted")
        } catch { #expect("\(error)".contains("--patch-label-weight"), "\(error)") }
    }
}
