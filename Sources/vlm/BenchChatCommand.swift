import ArgumentParser
import Dispatch
import Foundation
import SwiftVLM
import VLMLayers

/// `vlm bench-chat`: the cost of a follow-up chat turn with the conversation's state kept (only the new tokens
/// are prefilled) against re-running the whole conversation (image encode + every token), on a LLaVA of real
/// architectures with random weights: a CLIP vision tower and a SmolLM2 decoder.
struct BenchChat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-chat",
        abstract: "Follow-up chat turn: kept KV cache vs re-running the conversation (random-weight LLaVA).")

    @Option(help: "Vision tower: \(CLIPConfig.presetNames.joined(separator: ", ")) (CLIP ViT architectures).") var vision = "b16"
    @Option(help: "Vision input size in pixels (a multiple of the patch size).") var imageSize = 336
    @Option(help: "Decoder: \(LlamaConfig.presetNames.joined(separator: ", ")).") var decoder = "smollm2-135m"
    @Option(help: "Tokens of the conversation before the follow-up (image tokens included).") var conversation = 600
    @Option(help: "New tokens of the follow-up question.") var question = 24
    @Option(help: "Tokens to generate per answer.") var tokens = 16
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    struct Result: Encodable {
        let config: String
        let threads: Int
        let image_tokens: Int
        let conversation_tokens: Int
        let followup_prompt_tokens: Int
        let generated_tokens: Int
        let kept_reused_tokens: Int
        let kept_prefilled_tokens: Int
        let kept_prefill_s: Double
        let kept_total_s: Double
        let rerun_prefill_s: Double
        let rerun_total_s: Double
        let prefill_speedup: Double
        let turn_speedup: Double
        let identical_tokens: Bool
        let kept_state_mib: Double
    }

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            guard var clip = CLIPConfig.preset(vision) else {
                throw PipelineError.invalidArgument("unknown --vision '\(vision)' (known: \(CLIPConfig.presetNames.joined(separator: ", ")))")
            }
            guard let lm = LlamaConfig.preset(decoder) else {
                throw PipelineError.invalidArgument("unknown --decoder '\(decoder)' (known: \(LlamaConfig.presetNames.joined(separator: ", ")))")
            }
            guard imageSize > 0, imageSize % clip.visionConfig.patchSize == 0 else {
                throw PipelineError.invalidArgument("--image-size \(imageSize) is not a multiple of the patch size \(clip.visionConfig.patchSize)")
            }
            clip.visionConfig.imageSize = imageSize
            var config = LlavaConfig()
            config.visionConfig = clip.visionConfig
            config.textConfig = lm
            config.imageTokenIndex = lm.vocabSize - 1
            let perImage = config.imageTokensPerImage
            guard question >= 1, tokens >= 1, conversation > perImage + 2,
                  conversation + 2 * tokens + question < lm.maxPositionEmbeddings else {
                throw PipelineError.invalidArgument("--conversation must exceed the \(perImage) image tokens and everything fit the context")
            }
            let model = try LlavaModel.random(config: config, seed: 3)
            let pipeline = GenerativePipeline(directory: URL(fileURLWithPath: "/dev/null"), model: model,
                                              processor: IDProcessor(vocabulary: lm.vocabSize), defaults: GenerationDefaults())
            var rng = SplitMix64(seed: 11)
            func text(_ n: Int) -> [Int] { (0 ..< n).map { _ in 3 + Int(rng.next() % UInt64(lm.vocabSize - 4)) } }
            let s = imageSize
            let pixels = Tensor(uninitialized: [1, 3, s, s])
            for i in 0 ..< pixels.count { pixels.pointer[i] = Float(rng.nextUniform()) * 4 - 2 }
            // BOS, a short system/user head, the image, then text up to the conversation's length.
            let head = [1] + text(8)
            let ids = head + Array(repeating: config.imageTokenIndex, count: perImage) + text(conversation - perImage - head.count)
            let first = PreparedInput(ids: ids, pixels: PixelInputs(pixelValues: pixels),
                                      imageSpans: [head.count ..< head.count + perImage])
            var options = SamplingOptions()
            options.maxTokens = tokens
            options.stopAtEOS = false

            // Warm-up (pages in weights, spins up threads), then the conversation so far, kept in a session.
            _ = try pipeline.generate(PreparedInput(ids: Array(text(16))), options: options)
            let session = ChatSession()
            let answer = try pipeline.generate(first, options: options, session: session)
            var followup = first
            followup.ids = ids + answer.tokens + text(question)

            let kept = try pipeline.generate(followup, options: options, session: session)
            let rerun = try pipeline.generate(followup, options: options)
            let keptTotal = kept.prefillSeconds + kept.decodeSeconds, rerunTotal = rerun.prefillSeconds + rerun.decodeSeconds
            let result = Result(
                config: "LLaVA: CLIP ViT-\(vision.uppercased()) at \(s) px + \(decoder), random fp32 weights", threads: Kernels.threads,
                image_tokens: perImage, conversation_tokens: ids.count + answer.tokens.count, followup_prompt_tokens: followup.ids.count,
                generated_tokens: tokens, kept_reused_tokens: kept.reusedTokens, kept_prefilled_tokens: kept.prefilledTokens,
                kept_prefill_s: kept.prefillSeconds, kept_total_s: keptTotal, rerun_prefill_s: rerun.prefillSeconds,
                rerun_total_s: rerunTotal, prefill_speedup: rerun.prefillSeconds / max(kept.prefillSeconds, 1e-9),
                turn_speedup: rerunTotal / max(keptTotal, 1e-9), identical_tokens: kept.tokens == rerun.tokens,
                kept_state_mib: Double(session.bytes) / Double(1 << 20))
            switch format {
            case .json: try printJSON(result)
            case .text:
                print("\(result.config), \(result.threads) threads")
                print("follow-up turn: \(followup.ids.count) prompt tokens (\(perImage) image tokens), \(tokens) generated")
                print(String(format: "kept cache:  prefill %7.3f s (%d tokens reused, %d prefilled), turn %7.3f s",
                             kept.prefillSeconds, kept.reusedTokens, kept.prefilledTokens, keptTotal))
                print(String(format: "re-run:      prefill %7.3f s (image encode + %d tokens), turn %7.3f s",
                             rerun.prefillSeconds, rerun.prefilledTokens, rerunTotal))
                print(String(format: "speed-up:    prefill %.1fx, whole turn %.1fx; same tokens: %@; kept state %.1f MiB",
                             result.prefill_speedup, result.turn_speedup, result.identical_tokens ? "yes" : "NO", result.kept_state_mib))
            }
        }
    }
}

/// Token ids in, ids as text out: the benchmark feeds prepared ids (random weights have no tokenizer).
private struct IDProcessor: GenerativeInputProcessor {
    struct IDTokenizer: Tokenizer {
        let vocabularySize: Int
        func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int] {
            throw PipelineError.invalidArgument("the benchmark's model has no tokenizer")
        }
        func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String { ids.map(String.init).joined(separator: " ") }
        var bosTokenID: Int? { 1 }
        var eosTokenID: Int? { nil }
        var padTokenID: Int? { nil }
        func tokenID(for token: String) -> Int? { Int(token) }
    }

    let tokenizer: any Tokenizer
    var supportsImages: Bool { true }

    init(vocabulary: Int) { tokenizer = IDTokenizer(vocabularySize: vocabulary) }

    func prompt(for messages: [ChatMessage]) throws -> String {
        throw PipelineError.invalidArgument("the benchmark's model has no chat template")
    }

    func prepare(messages: [ChatMessage], images: [RGBImage]) throws -> PreparedInput {
        throw PipelineError.invalidArgument("the benchmark feeds prepared ids")
    }
}
