import Foundation
import VLMImage
import VLMModels
import VLMTensor
import VLMServer
import VLMTokenizers

/// What the fuzzers feed with arbitrary bytes: every parser of outside input that does not need a network.
/// Each must return or throw, within bounded time and memory, for any input; a crash, a sanitizer report, a
/// timeout or an out-of-memory is a bug. Run by Scripts/fuzz.sh (libFuzzer) and replayed by `vlm-fuzz` over
/// the committed corpus (Fuzz/corpus/<target>) in the normal build.
enum FuzzTargets {
    static let names = ["image", "npy", "template", "safetensors", "config", "tokenizer", "spiece"] + RequestFuzzing.targets

    /// Runs `target` on `data`; errors are the expected outcome for most inputs and are ignored.
    static func run(_ target: String, _ data: Data) {
        switch target {
        case "image": image(data)
        case "npy": _ = try? Npy.parse(data, name: "fuzz")
        case "template": template(data)
        case "safetensors": safetensors(data)
        case "config": config(data)
        case "tokenizer": tokenizer(data, file: "tokenizer.json")
        case "spiece": tokenizer(data, file: "spiece.model")
        // The server's request bodies and data URLs (dataurl embeddings chat index search classify tasks).
        case _ where RequestFuzzing.targets.contains(target): RequestFuzzing.run(target, data)
        default: break
        }
    }

    /// Decode (every format, EXIF orientation, alpha) under a 4-megapixel limit, then CLIP's preprocessing.
    static func image(_ data: Data) {
        guard let decoded = try? ImageDecoder.decode(data, maxPixels: 1 << 22, alpha: .compositeOnWhite) else { return }
        _ = try? ImageProcessor(config: .clip).preprocess(decoded)
    }

    /// A chat template from untrusted bytes (a checkpoint's tokenizer_config.json) parsed and applied.
    static func template(_ data: Data) {
        guard let template = try? ChatTemplate(String(decoding: data, as: UTF8.self)) else { return }
        let messages = [ChatMessage(role: "system", text: "be brief"), ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text("hi")]),
                        ChatMessage(role: "assistant", text: "hello")]
        _ = try? template.apply(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
    }

    /// A safetensors file: header parse and every tensor read.
    static func safetensors(_ data: Data) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-fuzz-\(getpid()).safetensors")
        guard (try? data.write(to: url)) != nil else { return }
        defer { try? FileManager.default.removeItem(at: url) }
        guard let file = try? SafeTensorsFile(path: url.path) else { return }
        for key in file.keys { _ = try? file.tensor(key) }
    }

    /// A tokenizer directory holding `data` as `file` (tokenizer.json, or SentencePiece's spiece.model): loaded,
    /// then used to encode and decode a text with special tokens, bytes and spaces.
    static func tokenizer(_ data: Data, file: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-fuzz-tok-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        guard (try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)) != nil,
              (try? data.write(to: dir.appendingPathComponent(file))) != nil else { return }
        defer { try? FileManager.default.removeItem(at: dir) }
        guard let tokenizer = try? TokenizerLoader.load(directory: dir) else { return }
        guard let ids = try? tokenizer.encode("Hello <s> wörld ☃  12 345\n\tend</s>", addSpecialTokens: true) else { return }
        _ = tokenizer.decode(ids, skipSpecialTokens: false)
    }

    /// config.json / preprocessor_config.json of every family and processor.
    static func config(_ data: Data) {
        let decoder = JSONDecoder()
        _ = try? decoder.decode(LlamaConfig.self, from: data)
        _ = try? decoder.decode(Idefics3Config.self, from: data)
        _ = try? decoder.decode(LlavaConfig.self, from: data)
        _ = try? decoder.decode(ImageProcessorConfig.self, from: data)
        _ = try? ImageProcessors.make(ImageProcessors.ConfigSource(json: data, file: "fuzz.json"))
    }
}
