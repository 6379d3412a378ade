import Dispatch
import Foundation
import VLMImage
import VLMLayers
import VLMModels
import VLMTensor
import VLMTokenizers

/// A generative checkpoint directory ready to chat: LLaVA (images + text) or a Llama-family LM (text), with
/// its tokenizer, chat template, image processor and generation_config.json, as transformers'
/// AutoProcessor + generate() use them.
public final class GenerativePipeline: @unchecked Sendable {
    public enum Backbone: @unchecked Sendable {
        case llava(LlavaModel)
        case llama(LlamaModel)
    }

    public let directory: URL
    public let backbone: Backbone
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate
    public let processor: ImageProcessor?
    public let defaults: GenerationDefaults
    private let bosToken: String?
    private let eosToken: String?

    public static func load(directory: URL) throws -> GenerativePipeline {
        let type = try ConfigFile.modelType(in: directory)
        let backbone: Backbone
        var processor: ImageProcessor?
        switch type {
        case "llava":
            backbone = .llava(try LlavaModel.load(directory: directory))
            processor = try ImageProcessor.load(directory: directory)
        case let t? where LlamaModel.supportedModelTypes.contains(t):
            backbone = .llama(try LlamaModel.load(directory: directory))
        default:
            throw ModelError.unsupportedModelType(path: ConfigFile.url(in: directory).path, modelType: type ?? "(none)",
                                                  supported: ["llava"] + LlamaModel.supportedModelTypes)
        }
        let tokenizer = try TokenizerLoader.load(directory: directory)
        let template = try ChatTemplateLoader.load(from: directory)
        let special = try ChatTemplateLoader.specialTokens(in: directory)
        return GenerativePipeline(directory: directory, backbone: backbone, tokenizer: tokenizer, template: template,
                                  processor: processor, defaults: try GenerationDefaults.load(directory: directory),
                                  bosToken: special.bos, eosToken: special.eos)
    }

    /// True when `directory`'s config.json names a model type this pipeline loads (llava or a Llama family).
    public static func isGenerative(directory: URL) -> Bool {
        guard let type = try? ConfigFile.modelType(in: directory) else { return false }
        return type == "llava" || LlamaModel.supportedModelTypes.contains(type)
    }

    init(directory: URL, backbone: Backbone, tokenizer: any Tokenizer, template: ChatTemplate, processor: ImageProcessor?,
         defaults: GenerationDefaults, bosToken: String?, eosToken: String?) {
        self.directory = directory
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.template = template
        self.processor = processor
        self.defaults = defaults
        self.bosToken = bosToken
        self.eosToken = eosToken
    }

    public var supportsImages: Bool { if case .llava = backbone { return true } else { return false } }

    var language: LlamaModel {
        switch backbone {
        case .llava(let m): return m.language
        case .llama(let m): return m
        }
    }

    /// The model's context length in tokens (prompt, image tokens and answer together).
    public var contextLength: Int { language.config.maxPositionEmbeddings }

    /// The checkpoint's model_type ("llava", "llama", "qwen2", ...).
    public var modelType: String {
        switch backbone {
        case .llava: return "llava"
        case .llama(let m): return m.config.modelType
        }
    }

    /// Roles a message may have.
    public static let roles: Set<String> = ["system", "user", "assistant"]

    /// Messages in the form the checkpoint's template reads: LLaVA templates iterate content parts, so a
    /// string becomes one text part; Llama-family templates print `message['content']`, so a list of text parts
    /// becomes one string (joined with newlines, as vLLM does for string-content templates).
    public func templateMessages(_ messages: [ChatMessage]) -> [ChatMessage] {
        messages.map { message in
            var m = message
            switch (message.content, supportsImages) {
            case (.text(let s), true): m.content = .parts([.text(s)])
            case (.parts(let parts), false) where parts.allSatisfy({ $0.type == "text" }):
                m.content = .text(parts.compactMap(\.text).joined(separator: "\n"))
            default: break
            }
            return m
        }
    }

    /// The prompt string the checkpoint's chat template renders (generation prompt added). An empty list or an
    /// unknown role is refused here; a template that refuses the order (`raise_exception`) is reported with its
    /// own message.
    public func prompt(for messages: [ChatMessage]) throws -> String {
        guard !messages.isEmpty else { throw PipelineError.invalidConversation("the message list is empty") }
        for (i, m) in messages.enumerated() where !Self.roles.contains(m.role) {
            throw PipelineError.invalidConversation("message \(i) has role '\(m.role)'; expected system, user or assistant")
        }
        do {
            return try template.apply(messages: templateMessages(messages), addGenerationPrompt: true,
                                      bosToken: bosToken, eosToken: eosToken)
        } catch ChatTemplateError.raised(let message) {
            throw PipelineError.invalidConversation(message)
        }
    }

    /// Prompt token ids with each image placeholder expanded to the model's image token count (LlavaProcessor's
    /// rule), and the pixel values of the images.
    public func inputs(messages: [ChatMessage], images: [RGBImage]) throws -> (ids: [Int], pixels: Tensor?) {
        let p = try prepare(messages: messages, images: images)
        return (p.ids, p.pixels)
    }

    /// Everything the model needs for one answer, checked: images only for LLaVA, a tokenizer that has the image
    /// token, one image per image token in the prompt, and a prompt that leaves room in the context.
    public func prepare(messages: [ChatMessage], images: [RGBImage]) throws -> PreparedPrompt {
        let name = directory.lastPathComponent
        guard images.isEmpty || supportsImages else { throw PipelineError.imagesNotSupported(model: name) }
        let text = try prompt(for: messages)
        var ids = try tokenizer.encode(text, addSpecialTokens: true)
        var pixels: Tensor?
        var imageTokens = 0
        if case .llava(let model) = backbone {
            let imageToken = model.config.imageTokenIndex
            let placeholders = ids.filter { $0 == imageToken }.count
            let tokenText = tokenizer.token(for: imageToken)
            if !images.isEmpty && tokenText == nil { throw PipelineError.imageTokenMissing(id: imageToken, model: name) }
            guard placeholders == images.count else {
                throw PipelineError.imageCountMismatch(placeholders: placeholders, images: images.count,
                                                       token: "'\(tokenText ?? "?")' (id \(imageToken))")
            }
            let per = model.config.imageTokensPerImage
            ids = ids.flatMap { $0 == imageToken ? Array(repeating: imageToken, count: per) : [$0] }
            imageTokens = per * images.count
            if let processor, !images.isEmpty { pixels = try processor.preprocess(images) }
        }
        guard ids.count < contextLength else {
            throw PipelineError.promptTooLong(tokens: ids.count, imageTokens: imageTokens, context: contextLength)
        }
        return PreparedPrompt(ids: ids, pixels: pixels, imageCount: images.count)
    }

    /// Generates an answer. `onText` receives printable text as it is produced; returning false cancels.
    public func generate(messages: [ChatMessage], images: [RGBImage] = [], options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        try options.validate()
        let prepared = try prepare(messages: messages, images: images)
        return try generate(ids: prepared.ids, pixels: prepared.pixels, options: options, onText: onText)
    }

    /// Generation from prepared ids (prompt already expanded) and pixel values.
    ///
    /// `onText` receives the answer in pieces whose concatenation is exactly `GenerationResult.text`: with stop
    /// strings, text that could be the start of one is held back until it is known not to be. Returning false
    /// cancels; so does `shouldStop` (checked before every decoding step, for callers without text to react to).
    public func generate(ids: [Int], pixels: Tensor?, options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil, shouldStop: (() -> Bool)? = nil) throws -> GenerationResult {
        let lm = language
        let context = lm.config.maxPositionEmbeddings
        guard ids.count < context else {
            throw PipelineError.promptTooLong(tokens: ids.count, imageTokens: 0, context: context)
        }
        let budget = min(options.maxTokens, context - ids.count)
        let cache = lm.makeCache(capacity: ids.count + max(budget, 1))
        var eos = options.eosTokenIDs
        if options.stopAtEOS { eos.formUnion(defaults.eosTokenIDs); eos.formUnion(lm.config.eosTokenIDs) }
        let stops = options.stop.filter { !$0.isEmpty }
        var sampler = Sampler(options: options)
        var history = ids
        var generated: [Int] = []
        var stream = StreamingDecoder(tokenizer: tokenizer)
        var finish = "length"
        let t0 = DispatchTime.now().uptimeNanoseconds
        var logits: Tensor
        switch backbone {
        case .llava(let model): logits = try model.forward(ids: ids, pixelValues: pixels, cache: cache)
        case .llama(let model): logits = try model.forward(ids: ids, cache: cache)
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        var stable = ""        // text the stream decoder has released (never retracted)
        var shown = ""         // what onText has been given: a prefix of stable
        var answer: String?
        func emit(upTo text: String) -> Bool {
            guard let onText, text.unicodeScalars.count > shown.unicodeScalars.count else { return true }
            let piece = String(String.UnicodeScalarView(text.unicodeScalars.dropFirst(shown.unicodeScalars.count)))
            shown = text
            return onText(piece)
        }
        while generated.count < budget {
            if let shouldStop, shouldStop() { finish = "cancelled"; break }
            let next = sampler.next(logits.pointer, count: lm.vocabularySize, history: history)
            if eos.contains(next) { finish = "stop"; break }
            generated.append(next)
            history.append(next)
            stable += stream.add(next)
            if !stops.isEmpty, let cut = Self.firstStop(in: stream.text, stops: stops) {
                // The answer ends before the stop string.
                let full = stream.text
                answer = String(full[..<cut])
                finish = "stop"
                break
            }
            if !emit(upTo: stops.isEmpty ? stable : Self.withoutStopPrefix(stable, stops: stops)) { finish = "cancelled"; break }
            if generated.count == budget { break }
            logits = try lm.forward(ids: [next], cache: cache)
        }
        let text = answer ?? stream.text
        if finish != "cancelled" {
            // Release what was held back (and, at the end, a trailing replacement character as transformers prints it).
            if text.unicodeScalars.starts(with: shown.unicodeScalars) { _ = emit(upTo: text) }
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: text, tokens: generated, promptTokens: ids.count, finishReason: finish,
                                prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9)
    }

    /// `text` minus its longest suffix that is a proper prefix of a stop string (it may yet become one).
    static func withoutStopPrefix(_ text: String, stops: [String]) -> String {
        var held = 0
        for stop in stops {
            let s = Array(stop.unicodeScalars)
            let t = text.unicodeScalars
            var k = min(s.count - 1, t.count)
            while k > held {
                if t.suffix(k).elementsEqual(s.prefix(k)) { held = k; break }
                k -= 1
            }
        }
        return held == 0 ? text : String(String.UnicodeScalarView(text.unicodeScalars.dropLast(held)))
    }

    static func firstStop(in text: String, stops: [String]) -> String.Index? {
        stops.filter { !$0.isEmpty }.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}

/// A prompt ready for the model: ids with image placeholders expanded, pixel values, and the image count.
public struct PreparedPrompt: @unchecked Sendable {
    public let ids: [Int]
    public let pixels: Tensor?
    public let imageCount: Int

    public init(ids: [Int], pixels: Tensor?, imageCount: Int) {
        self.ids = ids
        self.pixels = pixels
        self.imageCount = imageCount
    }
}
