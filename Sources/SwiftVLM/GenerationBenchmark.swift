import Dispatch
import Foundation
import VLMImage
import VLMModels
import VLMTensor
import VLMTokenizers

/// Timings of one answer through a generative model, as a user runs it: the input processor (chat template,
/// image processing, tokenization), the image encode (vision tower + projector), time to first token (prefill
/// of the prepared input, image encode included) and greedy decode. Any `GenerativeModel`; nothing here knows a
/// family. Measured after a warm-up run of the same prefill.
public struct GenerationTiming: Encodable, Sendable {
    public var promptTokens: Int
    public var imageTokens: Int
    /// Vision tower inputs (images, or tiles of images).
    public var tiles: Int
    public var processorSeconds: Double
    public var imageEncodeSeconds: Double?
    public var timeToFirstTokenSeconds: Double
    public var decodeTokens: Int
    public var decodeTokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", imageTokens = "image_tokens", tiles
        case processorSeconds = "processor_s", imageEncodeSeconds = "image_encode_s"
        case timeToFirstTokenSeconds = "time_to_first_token_s", decodeTokens = "decode_tokens"
        case decodeTokensPerSecond = "decode_tokens_per_s"
    }
}

extension GenerativePipeline {
    /// One user turn (the images, then `question`) timed end to end; `tokens` greedy tokens decoded (EOS ignored).
    public func benchmark(question: String, images: [RGBImage], tokens: Int) throws -> GenerationTiming {
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        func seconds(_ a: UInt64, _ b: UInt64) -> Double { Double(b - a) / 1e9 }
        let parts = images.map { _ in ChatContentPart(type: "image") } + [.text(question)]
        let messages = [ChatMessage(role: "user", parts: parts)]
        _ = try model.prefill(prepare(messages: messages, images: images), state: model.makeState(capacity: contextLength))  // warm-up

        let t0 = now()
        let input = try prepare(messages: messages, images: images)
        let t1 = now()
        var encode: Double?
        if let pixels = input.pixels {
            let e0 = now()
            _ = try model.encodeImages(pixels)
            encode = seconds(e0, now())
        }
        let budget = min(tokens, contextLength - input.ids.count)
        let state = model.makeState(capacity: input.ids.count + budget)
        let t2 = now()
        var logits = try model.prefill(input, state: state)
        let t3 = now()
        let vocab = model.vocabularySize
        for _ in 0 ..< budget {
            var best = 0
            for i in 1 ..< vocab where logits[i] > logits[best] { best = i }
            logits = try model.step(token: best, state: state)
        }
        let t4 = now()
        return GenerationTiming(promptTokens: input.ids.count, imageTokens: input.imageTokenCount, tiles: input.pixels?.count ?? 0,
                                processorSeconds: seconds(t0, t1), imageEncodeSeconds: encode,
                                timeToFirstTokenSeconds: seconds(t2, t3), decodeTokens: budget,
                                decodeTokensPerSecond: Double(budget) / max(seconds(t3, t4), 1e-9))
    }
}
