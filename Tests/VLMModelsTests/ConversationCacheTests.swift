import Foundation
import SwiftVLM
import Testing
import VLMLayers
import VLMTestSupport

/// The KV cache kept across chat turns: greedy answers identical to fresh runs, only new tokens prefilled,
/// images kept only whole and only when they are the same picture.
@Suite struct ConversationCacheTests {
    let image: RGBImage
    let other: RGBImage

    init() throws {
        image = try ImageDecoder.load(Fixtures.url("clip/images/chelsea.jpg"), alpha: .compositeOnWhite)
        other = try ImageDecoder.load(Fixtures.url("clip/images/astronaut.jpg"), alpha: .compositeOnWhite)
    }

    func options(_ n: Int = 8) -> SamplingOptions {
        var o = SamplingOptions()
        o.maxTokens = n
        o.stopAtEOS = false
        return o
    }

    /// Three turns, the second image arriving in the third: with a kept session every turn after the first
    /// reuses the previous turns' tokens, and every answer equals a fresh run's token for token.
    @Test func threeTurnsWithImagesMatchFreshRuns() throws {
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let session = ChatSession()
        var messages: [ChatMessage] = []
        var images: [RGBImage] = []
        let turns: [([RGBImage], String)] = [([image], "What is in the picture?"), ([], "And its colour?"), ([other], "Compare both.")]
        for (i, (newImages, text)) in turns.enumerated() {
            let turn = messages + [ChatMessage(role: "user", parts: newImages.map { _ in ChatContentPart.image } + [.text(text)])]
            images += newImages
            let fresh = try p.generate(messages: turn, images: images, options: options())
            let kept = try p.generate(messages: turn, images: images, options: options(), session: session)
            #expect(kept.tokens == fresh.tokens, "turn \(i)")
            #expect(kept.text == fresh.text)
            #expect(fresh.reusedTokens == 0 && fresh.prefilledTokens == fresh.promptTokens)
            #expect(kept.reusedTokens + kept.prefilledTokens == kept.promptTokens)
            if i == 0 { #expect(kept.reusedTokens == 0) } else {
                // Everything up to the previous answer is reused (the answer's re-tokenised text may differ at its end).
                #expect(kept.reusedTokens > 16, "turn \(i): reused \(kept.reusedTokens)")
                #expect(kept.prefilledTokens < kept.promptTokens / 2, "turn \(i): prefilled \(kept.prefilledTokens)")
            }
            messages = turn + [ChatMessage(role: "assistant", text: kept.text)]
        }
    }

    /// The same conversation with a different picture: the cut falls at the image's start, never inside it.
    @Test func aDifferentImageIsNotReused() throws {
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let session = ChatSession()
        let messages = [ChatMessage(role: "user", parts: [.image, .text("What is this?")])]
        _ = try p.generate(messages: messages, images: [image], options: options(4), session: session)
        let input = try p.prepare(messages: messages, images: [other])
        let start = try #require(input.imageSpans.first).lowerBound
        #expect(session.reusable(input, model: p.model) == start)
        let swapped = try p.generate(input, options: options(4), session: session)
        let fresh = try p.generate(input, options: options(4))
        #expect(swapped.reusedTokens == start && swapped.tokens == fresh.tokens)
        // The identical prompt again: all but the last row is reused.
        let again = try p.generate(input, options: options(4), session: session)
        #expect(again.reusedTokens == input.ids.count - 1 && again.tokens == fresh.tokens)
    }

    /// The server's bounded set: a resent conversation finds its state; unrelated prompts get fresh ones, and
    /// at most `maxSessions` are kept.
    @Test func boundedCachePicksTheLongestPrefix() throws {
        let p = try GenerativePipeline.load(directory: GenerativeFixtures.llava)
        let cache = ConversationCache(maxSessions: 2)
        let first = [ChatMessage(role: "user", text: "Tell me about cats.")]
        let a = try cache.generate(p, input: try p.prepare(messages: first, images: []), options: options())
        _ = try cache.generate(p, input: try p.prepare(messages: [ChatMessage(role: "user", text: "Dogs?")], images: []), options: options())
        let follow = first + [ChatMessage(role: "assistant", text: a.text), ChatMessage(role: "user", text: "More.")]
        let b = try cache.generate(p, input: try p.prepare(messages: follow, images: []), options: options())
        #expect(b.reusedTokens > 5)
        let fresh = try p.generate(messages: follow, options: options())
        #expect(b.tokens == fresh.tokens)
        _ = try cache.generate(p, input: try p.prepare(messages: [ChatMessage(role: "user", text: "Birds!")], images: []), options: options())
        let stats = cache.statistics
        #expect(stats.sessions == 2 && stats.reusedTokens == UInt64(b.reusedTokens) && stats.bytes > 0)
    }

    /// Mask descriptions -> the key ranges the kernel gets.
    @Test func maskKeyRanges() {
        let causal = AttentionMask.causal.keyRanges(queryStart: 3, queryCount: 2, keyCount: 5)
        #expect(causal.begin == [0, 0] && causal.end == [4, 5])
        // Window 3 includes the query itself: keys q-2 ... q.
        let window = AttentionMask.slidingWindow(3).keyRanges(queryStart: 0, queryCount: 5, keyCount: 5)
        #expect(window.begin == [0, 0, 0, 1, 2] && window.end == [1, 2, 3, 4, 5])
        let prefix = AttentionMask.prefixLM(prefixLength: 3).keyRanges(queryStart: 0, queryCount: 5, keyCount: 5)
        #expect(prefix.begin == [0, 0, 0, 0, 0] && prefix.end == [3, 3, 3, 4, 5])
        let both = AttentionMask.bidirectional().keyRanges(queryStart: 0, queryCount: 2, keyCount: 4)
        #expect(both.end == [4, 4])
        #expect(AttentionMask.causal.windowed(2) == .slidingWindow(2))
    }
}
