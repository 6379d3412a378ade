import ArgumentParser
import Foundation
import SwiftVLM
import VLMLayers

extension Precision: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}

/// Sampling flags shared by caption, ask and chat.
struct SamplingFlags: ParsableArguments {
    @Option(help: "Maximum new tokens (default: the checkpoint's max_new_tokens, else 256).") var maxTokens: Int?
    @Option(help: "Temperature; 0 means greedy.") var temperature: Float?
    @Option(help: "Sample from the K most likely tokens.") var topK: Int?
    @Option(help: "Nucleus sampling mass.") var topP: Float?
    @Option(help: "Drop tokens below min-p x the top probability.") var minP: Float?
    @Option(help: "Repetition penalty (1 = none).") var repetitionPenalty: Float?
    @Option(help: "Random seed for sampling.") var seed: UInt64?
    @Option(name: .customLong("stop"), help: "Stop string; repeatable.") var stops: [String] = []

    func options(defaults: GenerationDefaults) -> SamplingOptions {
        var o = SamplingOptions(defaults: defaults)
        if let maxTokens { o.maxTokens = maxTokens }
        if let temperature { o.temperature = temperature }
        if let topK { o.topK = topK }
        if let topP { o.topP = topP }
        if let minP { o.minP = minP }
        if let repetitionPenalty { o.repetitionPenalty = repetitionPenalty }
        o.seed = seed
        o.stop = stops
        return o
    }
}

struct GenerativeOptions: ParsableArguments {
    @Option(name: .long, help: "Generative checkpoint directory (LLaVA, SmolVLM/Idefics3, Florence-2, or a Llama-family LM for text-only chat; default: the embedded scenes model).")
    var model: String?
    @Option(name: .long, help: "Kernel threads (default: all cores).") var threads: Int?
    @Flag(name: .customLong("no-exif-transpose"), help: "Keep images' stored pixel grid instead of applying their EXIF orientation.")
    var noExifTranspose = false
    @Option(name: .customLong("max-image-edge"), help: ArgumentHelp(
        "SmolVLM/Idefics3: resize images so their longest edge is at most N pixels before tiling (never upscaling past their own size), instead of the checkpoint's size.longest_edge.",
        discussion: "SmolVLM upscales every image to a 2048-pixel longest edge: a 512x384 photo becomes 13 tiles (832 image tokens). --max-image-edge 512 keeps it at 2 tiles + the global image: several times faster to the first token, but no longer the input transformers builds."))
    var maxImageEdge: Int?
    @Option(help: ArgumentHelp(Precision.helpText, valueName: "fp32|bf16|int8|int4")) var precision: Precision?
    @Option(help: "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) applied to --model at load.")
    var adapter: String?

    func pipeline() throws -> GenerativePipeline {
        if let threads, threads > 0 { Kernels.threads = threads }
        if noExifTranspose { ImageDecoder.appliesExifOrientation = false }
        if let maxImageEdge, maxImageEdge < 1 || maxImageEdge > 1 << 14 {
            throw PipelineError.invalidArgument("--max-image-edge must be between 1 and 16384 pixels")
        }
        let directory = try DefaultModel.resolve(model, generative: true)
        if let adapter {
            return try GenerativePipeline.load(directory: directory, adapter: URL(fileURLWithPath: (adapter as NSString).expandingTildeInPath),
                                               precision: precision, options: InputProcessingOptions(maxImageEdge: maxImageEdge))
        }
        return try GenerativePipeline.load(directory: directory, precision: precision, options: InputProcessingOptions(maxImageEdge: maxImageEdge))
    }
}

/// Streams an answer to stdout and statistics to stderr. With a `session` (chat), the previous turns' state
/// is reused: only the new part of the prompt is prefilled.
func answer(_ pipeline: GenerativePipeline, messages: [ChatMessage], images: [RGBImage], options: SamplingOptions,
            session: ChatSession? = nil) throws -> GenerationResult {
    let result = try pipeline.generate(messages: messages, images: images, options: options, session: session) { piece in
        FileHandle.standardOutput.write(Data(piece.utf8))
        return true
    }
    print("")
    // PaliGemma-style location tokens in the answer ("where is the red star?"): the boxes in image pixels.
    if let image = images.last {
        for box in LocationTokens.parse(result.text, width: image.width, height: image.height) {
            print(String(format: "box %.1f,%.1f,%.1f,%.1f %@", box.x1, box.y1, box.x2, box.y2, box.label))
        }
    }
    let reuse = result.reusedTokens > 0 ? String(format: " (%d reused from the previous turn)", result.reusedTokens) : ""
    let stats = String(format: "[%d prompt tokens%@, %.1f tokens/s prefill; %d tokens, %.1f tokens/s decode; %@]",
                       result.promptTokens, reuse, result.prefillTokensPerSecond, result.tokens.count,
                       result.decodeTokensPerSecond, result.finishReason)
    FileHandle.standardError.write(Data((stats + "\n").utf8))
    return result
}

func loadImage(_ path: String) throws -> RGBImage {
    try ImageDecoder.load(URL(fileURLWithPath: (path as NSString).expandingTildeInPath), alpha: .compositeOnWhite)
}

struct Caption: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe an image with a generative VLM (LLaVA, SmolVLM/Idefics3).")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Option(help: "The instruction used as the user turn.") var prompt = "Describe this image in one sentence."
    @OptionGroup var sampling: SamplingFlags

    func run() throws {
        try guarded {
            let pipeline = try model.pipeline()
            let picture = try loadImage(image)
            let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(prompt)])]
            _ = try answer(pipeline, messages: messages, images: [picture], options: sampling.options(defaults: pipeline.defaults))
        }
    }
}

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Answer a question about an image (visual question answering).")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Argument(help: "The question.") var question: String
    @OptionGroup var sampling: SamplingFlags

    func run() throws {
        try guarded {
            let pipeline = try model.pipeline()
            let picture = try loadImage(image)
            let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(question)])]
            _ = try answer(pipeline, messages: messages, images: [picture], options: sampling.options(defaults: pipeline.defaults))
        }
    }
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Multi-turn chat on stdin. Commands: /image PATH (attach to the next turn), /reset, /quit.",
        discussion: "The model's state is kept between turns: each turn prefills only what the previous ones did not hold.")
    @OptionGroup var model: GenerativeOptions
    @Option(name: .customLong("image"), help: "Image attached to the first turn; repeatable (several images in one turn).")
    var images: [String] = []
    @Option(help: "System prompt.") var system: String?
    @OptionGroup var sampling: SamplingFlags

    func run() throws {
        try guarded {
            let pipeline = try model.pipeline()
            let options = sampling.options(defaults: pipeline.defaults)
            var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", text: $0)] } ?? []
            var held: [RGBImage] = []
            var pending: [RGBImage] = try images.map { try loadImage($0) }
            let interactive = isatty(STDIN_FILENO) != 0
            let session = ChatSession()
            while true {
                if interactive { FileHandle.standardError.write(Data("> ".utf8)) }
                guard let line = readLine() else { break }
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                if text == "/quit" || text == "/exit" { break }
                if text == "/reset" {
                    messages = system.map { [ChatMessage(role: "system", text: $0)] } ?? []
                    held = []
                    pending = []
                    session.reset()
                    continue
                }
                if text.hasPrefix("/image ") {
                    do { pending.append(try loadImage(String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces))) } catch {
                        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                    }
                    continue
                }
                var parts = pending.map { _ in ChatContentPart(type: "image") }
                parts.append(.text(text))
                let turn = messages + [ChatMessage(role: "user", parts: parts)]
                do {
                    let result = try answer(pipeline, messages: turn, images: held + pending, options: options, session: session)
                    messages = turn + [ChatMessage(role: "assistant", text: result.text)]
                    held += pending
                    pending = []
                } catch {
                    // A failed turn (e.g. the context is full) is reported; the conversation so far is kept.
                    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                }
            }
        }
    }
}
