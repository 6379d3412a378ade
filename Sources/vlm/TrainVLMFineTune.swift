import ArgumentParser
import Foundation
import SwiftVLM
import VLMTraining

/// `vlm train vlm --from BASE --data chats.jsonl`: fine-tuning options (logic in SwiftVLM's VLMFineTuner).
struct FineTuneOptions: ParsableArguments {
    @Option(help: "Fine-tune this LLaVA-layout checkpoint instead of training from scratch.") var from: String?
    @Option(help: "JSONL conversations with images (schema: README, `vlm train vlm --help`).") var data: String?
    @Option(help: "LoRA rank r on the language model's linear layers (default: full fine-tuning).") var lora: Int?
    @Option(name: .customLong("lora-alpha"), help: "LoRA alpha; the update is scaled by alpha / r (default 2 r).") var loraAlpha: Float?
    @Option(name: .customLong("lora-targets"), help: "Comma-separated decoder layers LoRA adapts: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj.")
    var loraTargets = "q_proj,v_proj"
    @Flag(name: .customLong("train-projector"), inversion: .prefixedNo,
          help: "Train the projector too (default: frozen with LoRA, trained in full fine-tuning; with LoRA it is saved whole in the adapter).")
    var projector: Bool?
}

extension TrainVLM {
    static let fineTuneDiscussion = """
    Fine-tuning: --from BASE --data chats.jsonl [--lora R [--lora-alpha A] [--lora-targets q_proj,v_proj]]. Each \
    JSONL line is {"images": ["a.jpg"], "messages": [{"role": "user", "content": [{"type": "image"}, {"type": \
    "text", "text": "..."}]}, {"role": "assistant", "content": "..."}]} (paths relative to the JSONL file, one \
    image per conversation); prompts go through BASE's chat template and processor, and the loss covers the \
    assistant messages' tokens only. The vision tower stays frozen. With --lora, --out is a PEFT adapter \
    (adapter_config.json + adapter_model.safetensors, loadable by peft and by `vlm ask --adapter`); without, a \
    full checkpoint. --export DIR writes a merged float32 checkpoint.
    """

    func runFineTune(out: String) throws {
        let trainer: VLMFineTuner
        if let resume {
            trainer = try VLMFineTuner(resume: expand(resume), steps: steps)
        } else {
            guard let from = fineTune.from, let data = fineTune.data, let steps else {
                throw ValidationError("fine-tuning needs --from BASE, --data FILE.jsonl and --steps N (or --resume CKPT)")
            }
            var args = VLMFineTuneArguments(from: expand(from).standardizedFileURL.path, data: expand(data).standardizedFileURL.path, steps: steps)
            args.batch = batch ?? 4
            args.lr = lr
            args.warmup = warmup
            args.wd = wd ?? 0
            args.clipGrad = clipGrad
            args.loraRank = fineTune.lora
            args.loraAlpha = fineTune.loraAlpha
            args.loraTargets = fineTune.loraTargets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            args.trainProjector = fineTune.projector
            args.seed = seed
            args.saveEvery = saveEvery
            trainer = try VLMFineTuner(args: args)
        }
        let mode = trainer.lora.map { "LoRA r=\($0.config.r) alpha=\($0.config.loraAlpha)" } ?? "full"
        warn("fine-tuning \(trainer.args.from) (\(mode), \(trainer.trainableParameters) trainable parameters) on \(trainer.conversations) conversations, batch \(trainer.args.batch), \(trainer.args.steps) steps\(trainer.step > 0 ? ", resuming at step \(trainer.step)" : "")")
        let progress = ProgressBar(total: trainer.args.steps, startStep: trainer.step, enabled: !quiet)
        trainer.onProgress = { progress.update($0) }
        let summary = try trainer.run(out: expand(out))
        progress.finish()
        let lossText = summary.finalLoss.map { String(format: "%.4f", Double($0)) } ?? "-"
        print("trained \(summary.steps) steps in \(formatDuration(summary.seconds)), final loss \(lossText)")
        print("\(trainer.lora != nil ? "adapter" : "checkpoint"): \(expand(out).path)")
        if let export {
            try trainer.export(out: expand(out), to: expand(export))
            print("exported: \(expand(export).path) (merged, float32)")
        }
    }
}
