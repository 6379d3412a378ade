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

    /// The prompt string the checkpoint's chat template renders (generation prompt added).
    public func prompt(for messages: [ChatMessage]) throws -> String {
        try template.apply(messages: messages, addGenerationPrompt: true, bosToken: bosToken, eosToken: eosToken)
    }

    /// Prompt token ids with each image placeholder expanded to the model's image token count (LlavaProcessor's
    /// rule), and the pixel values of the images.
    public func inputs(messages: [ChatMessage], images: [RGBImage]) throws -> (ids: [Int], pixels: Tensor?) {
        let text = try prompt(for: messages)
        var ids = try tokenizer.encode(text, addSpecialTokens: true)
        guard case .llava(let model) = backbone else {
            guard images.isEmpty else { throw PipelineError.invalidArgument("this model (\(directory.lastPathComponent)) does not take images") }
            return (ids, nil)
        }
        let imageToken = model.config.imageTokenIndex
        let placeholders = ids.filter { $0 == imageToken }.count
        if !images.isEmpty && placeholders == 0 && tokenizer.decode([imageToken], skipSpecialTokens: false).isEmpty {
            throw PipelineError.invalidArgument("the tokenizer has no token for image_token_index \(imageToken); this checkpoint cannot take images")
        }
        guard placeholders == images.count else {
            throw PipelineError.invalidArgument("the prompt has \(placeholders) image placeholder(s) but \(images.count) image(s) were given")
        }
        let per = model.config.imageTokensPerImage
        ids = ids.flatMap { $0 == imageToken ? Array(repeating: imageToken, count: per) : [$0] }
        guard let processor, !images.isEmpty else { return (ids, nil) }
        return (ids, try processor.preprocess(images))
    }

    /// Generates an answer. `onText` receives printable text as it is produced; returning false cancels.
    public func generate(messages: [ChatMessage], images: [RGBImage] = [], options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        try options.validate()
        let (ids, pixels) = try inputs(messages: messages, images: images)
        return try generate(ids: ids, pixels: pixels, options: options, onText: onText)
    }

    /// Generation from prepared ids (prompt already expanded) and pixel values.
    public func generate(ids: [Int], pixels: Tensor?, options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        let lm = language
        let context = lm.config.maxPositionEmbeddings
        guard ids.count < context else {
            throw PipelineError.invalidArgument("the prompt has \(ids.count) tokens; the model's context is \(context)")
        }
        let budget = min(options.maxTokens, context - ids.count)
        let cache = lm.makeCache(capacity: ids.count + max(budget, 1))
        var eos = options.eosTokenIDs
        if options.stopAtEOS { eos.formUnion(defaults.eosTokenIDs); eos.formUnion(lm.config.eosTokenIDs) }
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
        var answer = ""
        var shown = 0  // characters already handed to onText
        var cutAtStop = false
        while generated.count < budget {
            let next = sampler.next(logits.pointer, count: lm.vocabularySize, history: history)
            if eos.contains(next) { finish = "stop"; break }
            generated.append(next)
            history.append(next)
            let delta = stream.add(next)
            if !options.stop.isEmpty, let cut = Self.firstStop(in: stream.text, stops: options.stop) {
                // The answer ends before the stop string; print what the stream has not shown yet.
                let full = stream.text
                answer = String(full[..<cut])
                if answer.count > shown, let onText { _ = onText(String(answer.dropFirst(shown))) }
                shown = answer.count
                finish = "stop"
                cutAtStop = true
                break
            }
            shown += delta.count
            if !delta.isEmpty, let onText, !onText(delta) { finish = "cancelled"; break }
            if generated.count == budget { break }
            logits = try lm.forward(ids: [next], cache: cache)
        }
        if !cutAtStop {
            answer = stream.text
            let rest = stream.finish()
            if !rest.isEmpty, finish != "cancelled" { _ = onText?(rest) }
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: answer, tokens: generated, promptTokens: ids.count, finishReason: finish,
                                prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9)
    }

    static func firstStop(in text: String, stops: [String]) -> String.Index? {
        stops.filter { !$0.isEmpty }.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}
