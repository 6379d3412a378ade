import Foundation
import VLMModels
import VLMTensor
import VLMTokenizers

/// generation_config.json: the defaults a checkpoint ships for decoding (transformers' GenerationConfig keys).
public struct GenerationDefaults: Decodable, Sendable {
    public var maxNewTokens: Int?
    public var doSample = false
    public var temperature: Float?
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float?
    public var eosTokenIDs: [Int] = []
    public var bosTokenID: Int?
    public var padTokenID: Int?
    public var numBeams = 1
    public var lengthPenalty: Float = 1
    public var earlyStopping = EarlyStopping.heuristic
    public var noRepeatNgramSize = 0
    public var forcedBOSTokenID: Int?
    public var forcedEOSTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case maxNewTokens = "max_new_tokens", doSample = "do_sample", temperature, topK = "top_k", topP = "top_p"
        case minP = "min_p", repetitionPenalty = "repetition_penalty", eosTokenID = "eos_token_id"
        case bosTokenID = "bos_token_id", padTokenID = "pad_token_id", numBeams = "num_beams", lengthPenalty = "length_penalty"
        case earlyStopping = "early_stopping", noRepeatNgramSize = "no_repeat_ngram_size", forcedBOSTokenID = "forced_bos_token_id"
        case forcedEOSTokenID = "forced_eos_token_id"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens)
        doSample = try c.decodeIfPresent(Bool.self, forKey: .doSample) ?? doSample
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature)
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        topP = try c.decodeIfPresent(Float.self, forKey: .topP)
        minP = try c.decodeIfPresent(Float.self, forKey: .minP)
        repetitionPenalty = try c.decodeIfPresent(Float.self, forKey: .repetitionPenalty)
        if let ids = try? c.decodeIfPresent([Int].self, forKey: .eosTokenID) {
            eosTokenIDs = ids
        } else if let id = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) {
            eosTokenIDs = [id]
        }
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        numBeams = try c.decodeIfPresent(Int.self, forKey: .numBeams) ?? numBeams
        lengthPenalty = try c.decodeIfPresent(Float.self, forKey: .lengthPenalty) ?? lengthPenalty
        if let flag = try? c.decodeIfPresent(Bool.self, forKey: .earlyStopping) {
            earlyStopping = flag ? .always : .heuristic
        } else if let word = try c.decodeIfPresent(String.self, forKey: .earlyStopping) {
            guard word == "never" else { throw DecodingError.dataCorruptedError(forKey: .earlyStopping, in: c, debugDescription: "early_stopping must be true, false or \"never\"") }
            earlyStopping = .never
        }
        noRepeatNgramSize = try c.decodeIfPresent(Int.self, forKey: .noRepeatNgramSize) ?? noRepeatNgramSize
        forcedBOSTokenID = try c.decodeIfPresent(Int.self, forKey: .forcedBOSTokenID)
        forcedEOSTokenID = try c.decodeIfPresent(Int.self, forKey: .forcedEOSTokenID)
    }

    /// Reads `generation_config.json` if present; a malformed file is an error naming it.
    public static func load(directory: URL) throws -> GenerationDefaults {
        let url = directory.appendingPathComponent("generation_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return GenerationDefaults() }
        do { return try JSONDecoder().decode(GenerationDefaults.self, from: Data(contentsOf: url)) } catch {
            throw PipelineError.invalidArgument("\(url.path): invalid generation config (\(error))")
        }
    }
}

/// generate()'s early_stopping: true stops a beam search once num_beams hypotheses are finished, false (the
/// default) stops when the heuristic says no running beam can beat them, "never" only when none can.
public enum EarlyStopping: String, Sendable { case always = "true", heuristic = "false", never }

/// How to pick tokens. temperature 0 (or nil with doSample false) is greedy; numBeams > 1 is beam search.
public struct SamplingOptions: Sendable {
    public var maxTokens = 256
    public var temperature: Float = 0
    public var topK: Int?
    public var topP: Float?
    public var minP: Float?
    public var repetitionPenalty: Float = 1
    public var seed: UInt64?
    /// Generation stops when the text contains one of these; the stop string is not part of the answer.
    public var stop: [String] = []
    /// Extra end-of-sequence ids (the checkpoint's come from generation_config.json / config.json).
    public var eosTokenIDs: Set<Int> = []
    /// Stop at the checkpoint's EOS ids (off: generate exactly maxTokens, as generate(eos_token_id=None) does).
    public var stopAtEOS = true
    /// Beam search (greedy scores; 1: greedy or sampling).
    public var numBeams = 1
    public var lengthPenalty: Float = 1
    public var earlyStopping = EarlyStopping.heuristic
    /// Bans any n-gram of this size from occurring twice (0: off).
    public var noRepeatNgramSize = 0
    /// Forced as the first generated token / as the last one before the length limit (nil: not forced).
    public var forcedBOSTokenID: Int?
    public var forcedEOSTokenID: Int?

    public init() {}

    /// The checkpoint's generation_config.json defaults, as transformers' generate() would apply them.
    public init(defaults: GenerationDefaults) {
        if let n = defaults.maxNewTokens { maxTokens = n }
        if defaults.doSample {
            temperature = defaults.temperature ?? 1
            topK = defaults.topK ?? 50
            topP = defaults.topP
            minP = defaults.minP
        }
        repetitionPenalty = defaults.repetitionPenalty ?? 1
        eosTokenIDs = Set(defaults.eosTokenIDs)
        numBeams = defaults.numBeams
        lengthPenalty = defaults.lengthPenalty
        earlyStopping = defaults.earlyStopping
        noRepeatNgramSize = defaults.noRepeatNgramSize
        forcedBOSTokenID = defaults.forcedBOSTokenID
        forcedEOSTokenID = defaults.forcedEOSTokenID
    }

    public func validate() throws {
        guard maxTokens >= 0 else { throw PipelineError.invalidArgument("max tokens must be >= 0") }
        guard temperature >= 0, temperature.isFinite else { throw PipelineError.invalidArgument("temperature must be >= 0") }
        if let k = topK, k < 0 { throw PipelineError.invalidArgument("top-k must be >= 0") }
        if let p = topP, !(p > 0 && p <= 1) { throw PipelineError.invalidArgument("top-p must be in (0, 1]") }
        if let p = minP, !(p >= 0 && p <= 1) { throw PipelineError.invalidArgument("min-p must be in [0, 1]") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw PipelineError.invalidArgument("repetition penalty must be > 0") }
        guard (1 ... 64).contains(numBeams) else { throw PipelineError.invalidArgument("num beams must be 1 ... 64") }
        guard numBeams == 1 || temperature == 0 else { throw PipelineError.invalidArgument("beam search with sampling is not supported; use temperature 0 with num beams > 1") }
        guard lengthPenalty.isFinite else { throw PipelineError.invalidArgument("length penalty must be finite") }
        guard noRepeatNgramSize >= 0 else { throw PipelineError.invalidArgument("no-repeat n-gram size must be >= 0") }
    }
}

/// Picks the next token from logits, applying transformers' processors in their order: repetition penalty,
/// then (when sampling) temperature, top-k, top-p, min-p, then a draw from the softmax.
public struct Sampler {
    public let options: SamplingOptions
    private var rng: SplitMix64

    public init(options: SamplingOptions) {
        self.options = options
        rng = SplitMix64(seed: options.seed ?? UInt64(UInt32.random(in: 0 ... UInt32.max)))
    }

    /// logits: [vocab] (modified in place); history: prompt + generated ids (for the repetition penalty).
    public mutating func next(_ logits: UnsafeMutablePointer<Float>, count: Int, history: [Int]) -> Int {
        let penalty = options.repetitionPenalty
        if penalty != 1 {
            // RepetitionPenaltyLogitsProcessor: each seen token's logit divided (if > 0) or multiplied by the penalty.
            for id in Set(history) where id >= 0 && id < count {
                logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty
            }
        }
        if options.temperature == 0 {
            var best = 0
            for i in 1 ..< count where logits[i] > logits[best] { best = i }
            return best
        }
        var candidates = (0 ..< count).map { (id: $0, logit: logits[$0] / options.temperature) }
        candidates.sort { $0.logit > $1.logit }
        if let k = options.topK, k > 0, k < candidates.count { candidates.removeLast(candidates.count - k) }
        let maxLogit = candidates.first?.logit ?? 0
        var probs = candidates.map { exp($0.logit - maxLogit) }
        var total = probs.reduce(0, +)
        if let p = options.topP, p < 1 {
            // TopPLogitsWarper keeps the smallest prefix whose mass reaches p (at least one token).
            var cumulative: Float = 0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                cumulative += q / total
                if cumulative >= p { keep = i + 1; break }
            }
            probs.removeLast(probs.count - keep)
            candidates.removeLast(candidates.count - keep)
            total = probs.reduce(0, +)
        }
        if let minP = options.minP, minP > 0, let top = probs.first {
            // MinPLogitsWarper: drop tokens whose probability is below min_p x the top probability.
            let keep = probs.prefix { $0 >= minP * top }.count
            probs.removeLast(probs.count - max(keep, 1))
            candidates.removeLast(candidates.count - max(keep, 1))
            total = probs.reduce(0, +)
        }
        var r = rng.nextUniform() * total
        for (i, q) in probs.enumerated() {
            r -= q
            if r <= 0 { return candidates[i].id }
        }
        return candidates.last?.id ?? 0
    }
}

/// Turns a growing list of token ids into text deltas that never need retracting:
/// - text ending in U+FFFD (an incomplete UTF-8 character) waits for the tokens that complete it
///   (transformers' TextStreamer rule);
/// - a trailing run of byte-fallback tokens (`<0xXX>`) waits for the next ordinary token, because tokenizers'
///   ByteFallback decoder turns the whole run into U+FFFDs if it is not valid UTF-8 as a whole (so "2" followed
///   by a stray continuation byte becomes "��", not "2�").
public struct StreamingDecoder {
    private let tokenizer: any Tokenizer
    private(set) var ids: [Int] = []
    private var emitted = ""

    public init(tokenizer: any Tokenizer) { self.tokenizer = tokenizer }

    /// The full decode of every token so far: the answer.
    public var text: String { tokenizer.decode(ids, skipSpecialTokens: true) }

    /// Adds a token; returns the new printable text (possibly empty).
    public mutating func add(_ id: Int) -> String {
        ids.append(id)
        var stable = ids.count
        while stable > 0, Self.isByteToken(tokenizer.token(for: ids[stable - 1])) { stable -= 1 }
        let prefix = tokenizer.decode(Array(ids[..<stable]), skipSpecialTokens: true)
        if prefix.hasSuffix("\u{FFFD}") { return "" }
        return take(prefix)
    }

    /// Whatever is left at the end (including a trailing replacement character, as transformers prints it).
    public mutating func finish() -> String { take(text) }

    private mutating func take(_ full: String) -> String {
        guard full.hasPrefix(emitted), full.count > emitted.count else { return "" }
        let delta = String(full.dropFirst(emitted.count))
        emitted = full
        return delta
    }

    static func isByteToken(_ token: String?) -> Bool {
        guard let u = token?.utf8, u.count == 6 else { return false }
        let a = Array(u)
        return a[0] == UInt8(ascii: "<") && a[1] == UInt8(ascii: "0") && a[2] == UInt8(ascii: "x") && a[5] == UInt8(ascii: ">")
    }
}

/// What one generation produced.
public struct GenerationResult: Sendable {
    public let text: String
    public let tokens: [Int]
    public let promptTokens: Int
    public let finishReason: String   // "stop" (EOS or stop string), "length", "cancelled"
    public let prefillSeconds: Double
    public let decodeSeconds: Double
    /// Prompt tokens taken from a kept state (a previous turn) instead of being run again.
    public var reusedTokens: Int = 0
    /// Prompt tokens run through the model for this answer (promptTokens - reusedTokens).
    public var prefilledTokens: Int = 0
    public var decodeTokensPerSecond: Double { decodeSeconds > 0 ? Double(max(tokens.count - 1, 0)) / decodeSeconds : 0 }
    /// Prompt tokens actually run per second of prefill.
    public var prefillTokensPerSecond: Double { prefillSeconds > 0 ? Double(prefilledTokens) / prefillSeconds : 0 }
}
