import Dispatch
import Foundation
import VLMImage
import VLMLayers
import VLMModels
import VLMTensor
import VLMTokenizers

/// A generative checkpoint directory ready to chat: any `GenerativeModel` the registry loads (LLaVA, the Llama
/// family, ...) with its family's input processor and generation_config.json, as transformers' AutoProcessor +
/// generate() use them. Nothing here knows a model family.
public final class GenerativePipeline: @unchecked Sendable {
    public let directory: URL
    public let model: any GenerativeModel
    public let processor: any GenerativeInputProcessor
    public let defaults: GenerationDefaults

    // MARK: - Loading

    /// Loads through `ModelRegistry`; an embedding checkpoint is refused naming its model_type and the generative ones.
    /// `precision` sets the language model's weights (nil: as stored; see Precision); `options` the input
    /// processing choices the checkpoint does not fix (SmolVLM's image edge cap).
    public static func load(directory: URL, precision: Precision? = nil,
                            options: InputProcessingOptions = InputProcessingOptions()) throws -> GenerativePipeline {
        let family = try ModelRegistry.family(directory: directory)
        let supported = ModelRegistry.families.filter { $0.kind == .chat }.flatMap(\.modelTypes).sorted()
        func refuse() throws -> Never {
            throw ModelError.unsupportedModelType(path: ConfigFile.url(in: directory).path,
                                                  modelType: try ConfigFile.modelType(in: directory) ?? family.name, supported: supported)
        }
        guard family.kind == .chat else { try refuse() }  // an embedding checkpoint: named before loading weights
        guard case .generative(let model) = try family.load(directory, precision: precision) else { try refuse() }
        return GenerativePipeline(directory: directory, model: model, processor: try model.makeInputProcessor(directory: directory, options: options),
                                  defaults: try GenerationDefaults.load(directory: directory))
    }

    /// True when `directory`'s config.json names a generative family of the registry.
    public static func isGenerative(directory: URL) -> Bool { (try? ModelRegistry.kind(directory: directory)) == .chat }

    public init(directory: URL, model: any GenerativeModel, processor: any GenerativeInputProcessor, defaults: GenerationDefaults) {
        self.directory = directory
        self.model = model
        self.processor = processor
        self.defaults = defaults
    }

    public var tokenizer: any Tokenizer { processor.tokenizer }
    public var supportsImages: Bool { model.supportsImages && processor.supportsImages }
    /// The model's context length in tokens (prompt, image tokens and answer together).
    public var contextLength: Int { model.contextLength }
    /// The checkpoint's model_type ("llava", "llama", "qwen2", ...).
    public var modelType: String { model.modelType }
    /// Image tokens each image takes, when that is fixed for the family (nil for text-only or variable).
    public var imageTokensPerImage: Int? { (processor as? ImageTokenInputProcessor)?.tokensPerImage }

    // MARK: - Inputs

    /// The prompt string the family's processor renders (generation prompt added).
    public func prompt(for messages: [ChatMessage]) throws -> String { try processor.prompt(for: messages) }

    /// Prompt token ids with each image placeholder expanded, and the images' pixel values.
    public func inputs(messages: [ChatMessage], images: [RGBImage]) throws -> (ids: [Int], pixels: Tensor?) {
        let p = try prepare(messages: messages, images: images)
        return (p.ids, p.pixels?.pixelValues)
    }

    /// Everything the model needs for one answer, checked by the family's processor.
    public func prepare(messages: [ChatMessage], images: [RGBImage]) throws -> PreparedInput {
        try processor.prepare(messages: messages, images: images)
    }

    // MARK: - Generation

    /// Generates an answer from a fresh state. `onText` receives printable text as it is produced; returning
    /// false cancels.
    public func generate(messages: [ChatMessage], images: [RGBImage] = [], options: SamplingOptions, session: ChatSession? = nil,
                         onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        try options.validate()
        let prepared = try prepare(messages: messages, images: images)
        return try generate(prepared, options: options, session: session, onText: onText)
    }

    /// Generation from prepared ids (prompt already expanded) and pixel values, from a fresh state.
    public func generate(ids: [Int], pixels: Tensor?, options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil, shouldStop: (() -> Bool)? = nil) throws -> GenerationResult {
        try generate(PreparedInput(ids: ids, pixels: pixels.map { PixelInputs(pixelValues: $0) }), options: options,
                     onText: onText, shouldStop: shouldStop)
    }

    /// Generation from a prepared input. With a `session`, its state is reused up to the longest common prefix
    /// of what it holds and `input` (only the rest is prefilled) and keeps the answer for the next turn.
    ///
    /// `onText` receives the answer in pieces whose concatenation is exactly `GenerationResult.text`: with stop
    /// strings, text that could be the start of one is held back until it is known not to be. Returning false
    /// cancels; so does `shouldStop` (checked before every decoding step, for callers without text to react to).
    public func generate(_ input: PreparedInput, options: SamplingOptions, session: ChatSession? = nil,
                         onText: ((String) -> Bool)? = nil, shouldStop: (() -> Bool)? = nil) throws -> GenerationResult {
        try options.validate()
        let context = model.contextLength
        guard input.ids.count < context, !input.ids.isEmpty else {
            throw ModelError.promptTooLong(tokens: input.ids.count, imageTokens: input.imageTokenCount, context: context)
        }
        // Encoder-decoders: the prompt goes to the encoder; the decoder starts from decoder_start_token_id.
        let decoderPrompt = model.decoderStartTokenID.map { [$0] } ?? input.ids
        let budget = min(options.maxTokens, context - decoderPrompt.count)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let session = session ?? ChatSession()
        let (state, reused) = session.begin(input, model: model)
        var logits: Tensor
        do { logits = try model.prefill(input.suffix(from: reused), state: state) } catch { session.reset(); throw error }
        session.held = input.ids
        session.heldImages = input.imageSpans
        session.heldFingerprints = session.pendingFingerprints
        let t1 = DispatchTime.now().uptimeNanoseconds

        var eos = options.eosTokenIDs
        if options.stopAtEOS { eos.formUnion(defaults.eosTokenIDs); eos.formUnion(model.eosTokenIDs) }
        let stops = options.stop.filter { !$0.isEmpty }
        if options.numBeams > 1 {
            let search = BeamSearch(model: model, options: options, eos: options.stopAtEOS ? eos : [])
            let found: (tokens: [Int], stoppedByEOS: Bool)
            do { found = try search.run(prompt: decoderPrompt, state: state, logits: logits, budget: budget, shouldStop: shouldStop) } catch {
                session.reset()
                throw error
            }
            session.reset()  // the beams' states are not the session's any more
            let tokens = found.stoppedByEOS ? Array(found.tokens.dropLast()) : found.tokens
            var stream = StreamingDecoder(tokenizer: tokenizer)
            for t in tokens { _ = stream.add(t) }
            let text = stream.text
            if let onText, !text.isEmpty { _ = onText(text) }
            let t2 = DispatchTime.now().uptimeNanoseconds
            return GenerationResult(text: text, tokens: tokens, promptTokens: input.ids.count, finishReason: found.stoppedByEOS ? "stop" : "length",
                                    prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9,
                                    reusedTokens: reused, prefilledTokens: input.ids.count - reused)
        }
        var sampler = Sampler(options: options)
        var history = decoderPrompt
        let maxLength = decoderPrompt.count + options.maxTokens
        var generated: [Int] = []
        var stream = StreamingDecoder(tokenizer: tokenizer)
        var finish = "length"
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
            LogitsConstraints.apply(logits.pointer, count: model.vocabularySize, sequence: history, maxLength: maxLength, options: options)
            let next = sampler.next(logits.pointer, count: model.vocabularySize, history: history)
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
            do { logits = try model.step(token: next, state: state) } catch { session.reset(); throw error }
            session.held.append(next)
        }
        let text = answer ?? stream.text
        if finish != "cancelled" {
            // Release what was held back (and, at the end, a trailing replacement character as transformers prints it).
            if text.unicodeScalars.starts(with: shown.unicodeScalars) { _ = emit(upTo: text) }
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        return GenerationResult(text: text, tokens: generated, promptTokens: input.ids.count, finishReason: finish,
                                prefillSeconds: Double(t1 - t0) / 1e9, decodeSeconds: Double(t2 - t1) / 1e9,
                                reusedTokens: reused, prefilledTokens: input.ids.count - reused)
    }

    // MARK: - Stop strings

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

/// The prepared prompt the server and CLI pass around (token ids, pixels, image runs).
public typealias PreparedPrompt = PreparedInput
