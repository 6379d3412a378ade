import ArgumentParser
import Foundation
import SwiftVLM
import VLMTraining

/// `vlm train vlm`: a generative LLaVA-layout model trained from scratch on the scenes generator's captions and
/// questions (logic in SwiftVLM's SceneVLMTrainer).
struct TrainVLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "Train a generative VLM (LLaVA layout: CLIP tower, projector, Llama decoder) from scratch on synthetic scenes, or fine-tune one (--from, full or LoRA).",
        discussion: """
        Each step draws --batch conversations about train-split scenes 0..<N, each --turns turns long: captions \
        ("Describe this image in one sentence.") and questions (count, colour, shape, size, exists, relation, \
        where); the loss is the cross-entropy of the answer tokens. Writes --out: a checkpoint `vlm caption/ask --model` load (config.json, model.safetensors, \
        tokenizer, chat template, processor config), optimizer state, train_args.json, training_log.json, \
        loss_curve.svg. --resume CKPT continues a run; --export DIR writes an fp16 inference copy.

        \(TrainVLM.fineTuneDiscussion)
        """)

    @Option(help: "Train on turns about N synthetic scenes.") var scenes: Int?
    @Option(name: .customLong("scenes-seed"), help: "Seed of the scenes generator.") var scenesSeed: UInt64 = 0
    @Option(help: "Architecture preset: \(SceneVLM.presets.joined(separator: ", ")).") var config = "tiny"
    @Option(help: "Optimizer steps.") var steps: Int?
    @Option(help: "Sequences per batch (default 32; fine-tuning: 4 conversations).") var batch: Int?
    @Option(help: "Question-answer turns about the sequence's image, as a multi-turn conversation (as many as fit the context).") var turns = 4
    @Option(help: "Peak learning rate (default 2e-3; fine-tuning: 2e-4 with LoRA, 2e-5 in full).") var lr: Float?
    @Option(help: "Linear warmup steps (default: 5% of the steps).") var warmup: Int?
    @Option(help: "AdamW weight decay, not on 1-D tensors (default 0.05; fine-tuning: 0).") var wd: Float?
    @OptionGroup var fineTune: FineTuneOptions
    @Option(name: .customLong("clip-grad"), help: "Global gradient-norm clipping (0: off).") var clipGrad: Float = 1
    @Flag(name: .customLong("freeze-vision"), help: "Keep the vision tower at its initialisation (projector and decoder train).") var freezeVision = false
    @Option(name: .customLong("vision-lr-scale"), help: "Learning rate of the vision tower as a fraction of --lr, when it trains (e.g. 0.1 for a pretrained tower).") var visionLRScale: Float?
    @Option(name: .customLong("vision-from"), help: "Start the vision tower from this CLIP checkpoint (64-pixel images), e.g. the embedded Models/scenes-clip.") var visionFrom: String?
    @Option(name: .customLong("vision-feature-layers"), help: "Tower layers feeding the projector, comma-separated, e.g. --vision-feature-layers=-2,-1 (LLaVA's vision_feature_layer; default -1; LLaVA uses -2).") var visionFeatureLayers: String?
    @Option(name: .customLong("vision-feature-strategy"), help: "default: the projector reads the patch states only; full: the CLS state too (default: full with --vision-from, else default).") var visionFeatureStrategy: String?
    @Flag(name: .customLong("question-first"), help: "Chat template with each question before its image, so the image tokens can attend to the question.") var questionFirst = false
    @Option(name: .customLong("location-init"), help: "Start the <locNNNN> embeddings random (default) or fourier: sines and cosines of the bin, so neighbouring bins start out alike.") var locationInit: String?
    @Option(name: .customLong("location-sigma"), help: "Score <locNNNN> labels against a Gaussian over neighbouring bins with this standard deviation in bins (e.g. 16: one pixel of a 64-pixel scene; default 0: one-hot).") var locationSigma: Float?
    @Option(name: .customLong("vision-position-init"), help: "Patch position embeddings of the tower: as-trained (default: as --vision-from has them) or sincos (2-D sines and cosines of row and column added to their mean, so the decoder can tell where things are).") var visionPositionInit: String?
    @Option(name: .customLong("vision-position-amplitude"), help: "Amplitude of each sine and cosine of --vision-position-init sincos (default 0.25: a code of norm 2 at width 128).") var visionPositionAmplitude: Double?
    @Option(name: .customLong("image-positions"), help: "A learned position row per image token, added after the projector (a SwiftVLM extension of the LLaVA layout that transformers ignores): none (default), random or sincos (2-D sines and cosines of the patch's row and column).") var imagePositions: String?
    @Option(name: .customLong("image-position-amplitude"), help: "Amplitude of each sine and cosine of --image-positions sincos (default 0.25: a row of norm 2 at width 128; the projector's outputs of a trained model are ~200, so continuing one needs ~8).") var imagePositionAmplitude: Double?
    @Option(help: "Precision of the linear layers' products: fp32 (default, exact) or bf16 (operands rounded to bf16, fp32 sums: twice the multiply-add rate on CPUs with AVX512_BF16).") var compute: TrainingCompute?
    @Option(name: .customLong("locate-share"), help: "Share of turns drawn as 'where is the ...?' when the scene has a one-of-a-kind object (default: uniform over the kinds).") var locateShare: Double?
    @Option(name: .customLong("locate-by"), help: "Phrases of the 'where is the ...?' turns: type ('the red star', default) or any (also 'the star' and 'the red object' when that names one object: the lookups the colour and shape questions need) or all (any, plus 'where are the stars?' answered with every star's box, left to right).") var locateBy: LocateReference?
    @Option(name: .customLong("count-share"), help: "Share of the turns not drawn as 'where' that are 'how many ...?' (default: uniform over the kinds, 1/8).") var countShare: Double?
    @Option(name: .customLong("patch-labels"), help: "Share of the object patches whose image token is also trained to name the object's shape (default: none).") var patchLabels: Double?
    @Option(name: .customLong("patch-labels-at"), help: "Where patch labels score an image token: decoder (its output, next-token), projector (its row, through the LM head) or both (default: decoder).") var patchLabelsAt: PatchLabelPlace?
    @Option(name: .customLong("patch-label-weight"), help: "Weight of the projector-row patch labels' loss (default: 1).") var patchLabelWeight: Float?
    @Option(name: .customLong("kind-weights"), help: "Relative weight of each kind when a turn's kind is drawn, e.g. colour=2,shape=2,relation=0.5 (kinds: caption, count, colour, shape, size, exists, relation, locate, enumerate; unnamed kinds weigh 1; default: uniform).") var kindWeights: String?
    @Option(name: .customLong("locate-share-from"), help: "The step from which --locate-share applies (default 0); before it, turns are drawn uniformly over kinds.") var locateShareFrom: Int?
    @Option(name: .customLong("init-from"), help: "Start from this checkpoint's weights (same preset, vocabulary and feature layers), e.g. Models/scenes-vlm, instead of a seeded initialisation.") var initFrom: String?
    @Option(help: "Keep an exponential moving average of the weights with this decay (e.g. 0.999) and --export it instead of the last step's weights (checkpoints keep both).") var ema: Float?
    @Option(name: .customLong("ema-from"), help: "Start the --ema average after this step (default 0).") var emaFrom: Int?
    @Flag(name: .customLong("no-location-tokens"), help: "Leave PaliGemma's 1024 <locNNNN> tokens and the 'where is the ...?' turns out of the vocabulary and the data.") var noLocationTokens = false
    @Option(help: "Seed for initialisation and batch sampling.") var seed: UInt64 = 0
    @Option(name: .customLong("save-every"), help: "Also write a checkpoint every N steps under OUT/checkpoints.") var saveEvery: Int?
    @Option(help: "Continue from a checkpoint written by this command (with --steps: the new total).") var resume: String?
    @Option(help: "Output directory (the final checkpoint).") var out: String?
    @Option(help: "Only evaluate this checkpoint on --eval-scenes test scenes (no training).") var evaluate: String?
    @Option(help: "Also write an inference-only copy (fp16 weights) to this directory.") var export: String?
    @Option(name: .customLong("eval-scenes"), help: "After training, answer every turn of N test-split scenes and print exact-match accuracy per kind.") var evalScenes = 0
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Flag(help: "No progress bar.") var quiet = false

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            if let evaluate { return try report(expand(evaluate), scenes: max(evalScenes, 1)) }
            guard let out else { throw ValidationError("--out DIR is required") }
            if fineTune.from != nil || resume.map({ VLMFineTuner.isFineTuneCheckpoint(expand($0)) }) == true { return try runFineTune(out: out) }
            let trainer: SceneVLMTrainer
            if let resume {
                trainer = try SceneVLMTrainer(resume: expand(resume), steps: steps)
            } else {
                guard let scenes, let steps else { throw ValidationError("give --scenes N and --steps N (or --resume CKPT)") }
                var args = SceneVLMArguments(scenes: scenes, steps: steps)
                args.scenesSeed = scenesSeed
                args.preset = config
                args.batch = batch ?? 32
                args.lr = lr ?? 2e-3
                args.warmup = warmup
                args.wd = wd ?? 0.05
                args.clipGrad = clipGrad
                args.freezeVision = freezeVision
                args.visionFrom = visionFrom
                args.locationTokens = !noLocationTokens
                args.turns = turns
                if let visionFeatureLayers {
                    let layers = visionFeatureLayers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
                    guard !layers.isEmpty, layers.allSatisfy({ $0 != nil }) else {
                        throw ValidationError("--vision-feature-layers: expected comma-separated integers, got '\(visionFeatureLayers)'")
                    }
                    args.visionFeatureLayers = layers.compactMap { $0 }
                }
                args.visionFeatureStrategy = visionFeatureStrategy
                args.questionFirst = questionFirst
                args.visionLRScale = visionLRScale
                args.locationInit = locationInit
                args.locationSigma = locationSigma
                args.visionPositionInit = visionPositionInit
                args.visionPositionAmplitude = visionPositionAmplitude
                args.imagePositions = imagePositions
                args.compute = compute
                args.imagePositionAmplitude = imagePositionAmplitude
                args.locateShare = locateShare
                args.locateShareFrom = locateShareFrom
                args.countShare = countShare
                args.patchLabels = patchLabels
                args.patchLabelPlace = patchLabelsAt
                args.patchLabelWeight = patchLabelWeight
                args.kindWeights = try kindWeights.map(SceneVLMArguments.parseKindWeights)
                args.locateReferences = locateBy
                args.initFrom = initFrom
                args.ema = ema
                args.emaFrom = emaFrom
                args.seed = seed
                args.saveEvery = saveEvery
                trainer = try SceneVLMTrainer(args: args)
            }
            warn("training \(trainer.model.parameters.scalarCount) parameters on turns about \(trainer.args.scenes) scenes, batch \(trainer.args.batch), \(trainer.args.steps) steps\(trainer.step > 0 ? ", resuming at step \(trainer.step)" : "")")
            let progress = ProgressBar(total: trainer.args.steps, startStep: trainer.step, enabled: !quiet)
            trainer.onProgress = { progress.update($0) }
            let summary = try trainer.run(out: expand(out))
            progress.finish()
            let lossText = summary.finalLoss.map { String(format: "%.4f", Double($0)) } ?? "-"
            print("trained \(summary.steps) steps in \(formatDuration(summary.seconds)), final loss \(lossText)")
            print("checkpoint: \(expand(out).path)")
            if let export {
                try trainer.export(to: expand(export))
                print("exported: \(expand(export).path) (fp16\(trainer.average.map { ", moving average of the weights, decay \($0.decay)" } ?? ""))")
            }
            if evalScenes > 0 { try report(expand(out), scenes: evalScenes) }
        }
    }

    func report(_ directory: URL, scenes: Int) throws {
        let started = Date()
        for s in try SceneVLMEvaluation.run(directory: directory, count: scenes) {
            print(s.kind.padding(toLength: 9, withPad: " ", startingAt: 0) + String(format: " %4d/%4d  %5.1f%%", s.correct, s.total, 100 * s.accuracy))
        }
        print("evaluated \(scenes) test scenes in \(formatDuration(Date().timeIntervalSince(started)))")
    }
}
