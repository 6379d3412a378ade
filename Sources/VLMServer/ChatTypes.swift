import Foundation
import SwiftVLM

// Request and response bodies of `POST /v1/chat/completions` (OpenAI's shapes). Decoding is strict where a
// silent guess would change the answer (unknown roles and part types, n != 1, unsupported penalties) and
// lenient where clients differ (optional `model`, `max_tokens` or `max_completion_tokens`, `stop` as a
// string or a list).

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable, Sendable {
    let model: String?
    let messages: [ChatRequestMessage]
    let maxTokens: Int?
    let maxCompletionTokens: Int?
    let temperature: Float?
    let topP: Float?
    /// Extensions (vLLM's names): top_k (-1 or 0: off), min_p, repetition_penalty (transformers' multiplicative one).
    let topK: Int?
    let minP: Float?
    let repetitionPenalty: Float?
    /// OpenAI's additive penalties: only 0 is accepted (see `samplingOptions`).
    let frequencyPenalty: Float?
    let presencePenalty: Float?
    let seed: Int64?
    let stop: StopList?
    let n: Int?
    let stream: Bool?
    let streamOptions: StreamOptions?
    let logprobs: Bool?

    struct StreamOptions: Decodable, Sendable {
        let includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, seed, stop, n, stream, logprobs
        case maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", topP = "top_p", topK = "top_k"
        case minP = "min_p", repetitionPenalty = "repetition_penalty", frequencyPenalty = "frequency_penalty"
        case presencePenalty = "presence_penalty", streamOptions = "stream_options"
    }

    /// Most stop strings in one request (OpenAI allows 4; a few more cost nothing).
    static let maxStops = 16

    /// The checkpoint's generation defaults (as the CLI starts from them) overridden by the request.
    ///
    /// - `temperature` 0 is greedy; when the request leaves it out, the checkpoint's generation_config.json
    ///   decides (greedy unless it sets do_sample), as `vlm ask` and transformers' generate() do.
    /// - `max_tokens`/`max_completion_tokens` (the smaller if both) bound the answer; the context bounds it too.
    /// - `frequency_penalty`/`presence_penalty` are OpenAI's additive per-count penalties; transformers'
    ///   repetition penalty is multiplicative and count-free, so no mapping between them is faithful: any value
    ///   but 0 is refused (400) with a pointer to `repetition_penalty`.
    func samplingOptions(defaults: GenerationDefaults) throws -> SamplingOptions {
        var o = SamplingOptions(defaults: defaults)
        if let n, n != 1 { throw ServerError.invalidRequest("'n' must be 1 (one choice per request), not \(n)") }
        if logprobs == true { throw ServerError.invalidRequest("'logprobs' is not supported") }
        for (name, value) in [("frequency_penalty", frequencyPenalty), ("presence_penalty", presencePenalty)] {
            if let value, value != 0 {
                throw ServerError.invalidRequest("'\(name)' is not supported (OpenAI's additive penalty has no faithful equivalent here); use 'repetition_penalty' (transformers' multiplicative penalty, e.g. 1.1)")
            }
        }
        let limits = [maxTokens, maxCompletionTokens].compactMap { $0 }
        if let limit = limits.min() {
            guard limit >= 1 else { throw ServerError.invalidRequest("'max_tokens' must be >= 1, not \(limit)") }
            o.maxTokens = limit
        }
        if let temperature { o.temperature = temperature }
        if let topP { o.topP = topP }
        if let topK { o.topK = topK <= 0 ? nil : topK }
        if let minP { o.minP = minP }
        if let repetitionPenalty { o.repetitionPenalty = repetitionPenalty }
        if let seed { o.seed = UInt64(bitPattern: seed) }
        let stops = stop?.values ?? []
        guard stops.count <= Self.maxStops else {
            throw ServerError.invalidRequest("'stop' has \(stops.count) strings; the limit is \(Self.maxStops)")
        }
        o.stop = stops.filter { !$0.isEmpty }
        do { try o.validate() } catch { throw ServerError.invalidRequest(String(describing: error)) }
        return o
    }
}

/// `stop`: a string or a list of strings.
struct StopList: Decodable, Sendable {
    let values: [String]

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { values = [] } else if let s = try? c.decode(String.self) { values = [s] } else {
            values = try c.decode([String].self)
        }
    }
}

/// One message: `content` is a string or a list of parts (`{"type": "text", "text": ...}` or
/// `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`); null only for an assistant turn.
struct ChatRequestMessage: Decodable, Sendable {
    let role: String
    let content: Content

    enum Content: Sendable {
        case text(String)
        case parts([InputPart])
        case none
    }

    enum CodingKeys: String, CodingKey { case role, content }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        if try !c.contains(.content) || c.decodeNil(forKey: .content) {
            content = .none
        } else if let s = try? c.decode(String.self, forKey: .content) {
            content = .text(s)
        } else {
            // Not `try?`: a bad part's error names its index and field. Parts are the embeddings endpoint's
            // (text, image_url as an object or a string, image).
            content = .parts(try c.decode([PartObject].self, forKey: .content).map(\.part))
        }
    }
}

struct ChatCompletionResponse: Encodable, Sendable {
    let id: String
    let object = "chat.completion"
    let created: Int
    let model: String
    let choices: [Choice]
    let usage: ChatUsage

    struct Choice: Encodable, Sendable {
        let index: Int
        let message: Message
        let finishReason: String

        enum CodingKeys: String, CodingKey { case index, message, finishReason = "finish_reason" }
    }

    struct Message: Encodable, Sendable {
        let role: String
        let content: String
    }
}

/// Prompt tokens include the image tokens the placeholders expand to (what the model actually reads);
/// completion tokens are the generated ids, an ending EOS not included. `prompt_tokens_details.cached_tokens`
/// (OpenAI's name) counts the prompt tokens taken from a kept conversation state instead of being run again.
struct ChatUsage: Encodable, Sendable {
    let promptTokens: Int
    let completionTokens: Int
    var cachedTokens = 0
    var totalTokens: Int { promptTokens + completionTokens }

    init(promptTokens: Int, completionTokens: Int, cachedTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
    }

    init(_ result: GenerationResult) {
        self.init(promptTokens: result.promptTokens, completionTokens: result.tokens.count, cachedTokens: result.reusedTokens)
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }

    enum DetailKeys: String, CodingKey { case cachedTokens = "cached_tokens" }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
        var details = c.nestedContainer(keyedBy: DetailKeys.self, forKey: .promptTokensDetails)
        try details.encode(cachedTokens, forKey: .cachedTokens)
    }
}

/// One server-sent event of a streamed answer.
struct ChatCompletionChunk: Encodable, Sendable {
    let id: String
    let object = "chat.completion.chunk"
    let created: Int
    let model: String
    let choices: [Choice]
    /// With `stream_options.include_usage`: null on every chunk but the last, which has no choices.
    let usage: ChatUsage?
    let includeUsage: Bool

    struct Choice: Encodable, Sendable {
        let index: Int
        let delta: Delta
        let finishReason: String?

        enum CodingKeys: String, CodingKey { case index, delta, finishReason = "finish_reason" }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(delta, forKey: .delta)
            try c.encode(finishReason, forKey: .finishReason)  // explicit null until the last chunk
        }
    }

    struct Delta: Encodable, Sendable {
        var role: String?
        var content: String?
    }

    enum CodingKeys: String, CodingKey { case id, object, created, model, choices, usage }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(object, forKey: .object)
        try c.encode(created, forKey: .created)
        try c.encode(model, forKey: .model)
        try c.encode(choices, forKey: .choices)
        if includeUsage { try c.encode(usage, forKey: .usage) }
    }
}

// MARK: Models, health (generative)

/// `/v1/models` entry of a generative checkpoint.
struct ChatModelObject: Encodable, Sendable {
    let id: String
    let object = "model"
    let created: Int
    let ownedBy = "swiftvlm"
    /// model_type: llava, llama, mistral, qwen2.
    let type: String
    let kind = "chat"
    let contextLength: Int
    let acceptsImages: Bool
    let imageTokensPerImage: Int?
    /// Weight precision of the language model as loaded (fp32, bf16, fp16, int8, int4, mixed).
    let precision: String
    /// What its KV cache stores: fp32, or bf16 under a reduced precision.
    let kvCache: String

    enum CodingKeys: String, CodingKey {
        case id, object, created, type, kind, precision
        case kvCache = "kv_cache"
        case ownedBy = "owned_by", contextLength = "context_length", acceptsImages = "accepts_images"
        case imageTokensPerImage = "image_tokens_per_image"
    }
}


