import Foundation
import VLMImage
import VLMModels
import VLMTensor

// MARK: - One kept conversation

/// A model state kept across chat turns, with the token ids it holds (prompt + the answer tokens fed back)
/// and the identity of the images in it. The next turn's prompt is compared with those ids: the state is cut
/// to the longest common prefix (never inside an image's run, and an image is kept only if its pixels are the
/// same) and only the rest is prefilled. Greedy answers are the same as from a fresh state.
///
/// Not thread-safe: one generation uses a session at a time (the CLI's loop, the server's single generator).
public final class ChatSession: @unchecked Sendable {
    private(set) var model: (any GenerativeModel)?
    private(set) var state: (any GenerationState)?
    /// Ids the state holds, in order.
    var held: [Int] = []
    /// Image runs within `held` and each image's pixel fingerprint.
    var heldImages: [Range<Int>] = []
    var heldFingerprints: [UInt64] = []
    var pendingFingerprints: [UInt64] = []
    /// Monotonic use stamp (least recently used goes first).
    var lastUse: UInt64 = 0

    public init() {}

    /// Tokens the state holds.
    public var heldTokens: Int { held.count }
    /// Bytes of the kept state.
    public var bytes: Int { state?.bytes ?? 0 }

    /// Drops the kept state.
    public func reset() {
        state = nil
        model = nil
        held = []
        heldImages = []
        heldFingerprints = []
    }

    /// Rows of `input` this session's state can keep for `model` (0 for another model or nothing held).
    public func reusable(_ input: PreparedInput, model: any GenerativeModel, fingerprints: [UInt64]? = nil) -> Int {
        // An encoder-decoder's state holds decoder rows only: its prompt is always encoded whole.
        guard state != nil, let mine = self.model, mine === model, !model.isEncoderDecoder else { return 0 }
        var n = input.reusablePrefix(held: held, heldImageSpans: heldImages)
        let prints = fingerprints ?? Self.fingerprints(input)
        // An image before the cut is kept only if it is the same image at the same rows.
        for (i, span) in input.imageSpans.enumerated() where span.lowerBound < n {
            let same = i < heldImages.count && heldImages[i] == span && i < heldFingerprints.count && i < prints.count
                && heldFingerprints[i] == prints[i]
            if !same { n = span.lowerBound; break }
        }
        // At least the last row is run again: its logits start the answer.
        n = min(n, input.ids.count - 1)
        for span in input.imageSpans where span.lowerBound < n && n < span.upperBound { n = span.lowerBound }
        return max(n, 0)
    }

    /// The state to prefill `input` into and how many of its rows it already holds (the state is cut there).
    func begin(_ input: PreparedInput, model: any GenerativeModel) -> (any GenerationState, Int) {
        pendingFingerprints = Self.fingerprints(input)
        let n = reusable(input, model: model, fingerprints: pendingFingerprints)
        if n > 0, let state {
            state.truncate(to: n)
            held.removeLast(held.count - n)
            return (state, n)
        }
        let fresh = model.makeState(capacity: model.contextLength)
        self.model = model
        state = fresh
        held = []
        heldImages = []
        heldFingerprints = []
        return (fresh, 0)
    }

    /// FNV-1a over each image's pixel values: whether a kept image is the same picture.
    static func fingerprints(_ input: PreparedInput) -> [UInt64] {
        guard let pixels = input.pixels, pixels.count > 0 else { return [] }
        let per = pixels.pixelValues.count / pixels.count
        return (0 ..< pixels.imageCount).map { i in
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            let rows = pixels.entries(ofImages: i ..< i + 1)  // all of an image's tiles
            let p = pixels.pixelValues.pointer + rows.lowerBound * per
            for j in 0 ..< rows.count * per {
                h = (h ^ UInt64(p[j].bitPattern)) &* 0x0000_0100_0000_01b3
            }
            return h
        }
    }
}

// MARK: - A bounded set of conversations (the server)

/// The last few conversations' states, for clients that resend the whole conversation each turn (OpenAI's
/// API): a request takes the kept state with the longest reusable prefix if it continues that conversation
/// (keeps at least half of its tokens), else a fresh one. At most
/// `maxSessions` states are kept and at most `maxBytes` of them in total (least recently used dropped first;
/// the state in use is never dropped).
public final class ConversationCache: @unchecked Sendable {
    public let maxSessions: Int
    public let maxBytes: Int
    private let lock = NSLock()
    private var sessions: [ChatSession] = []
    private var clock: UInt64 = 0
    private var reused: UInt64 = 0
    private var prefilled: UInt64 = 0

    /// Defaults: 4 conversations, 1 GiB of caches.
    public init(maxSessions: Int = 4, maxBytes: Int = 1 << 30) {
        self.maxSessions = max(1, maxSessions)
        self.maxBytes = max(0, maxBytes)
    }

    /// The session for `input`: the kept one sharing the longest reusable prefix with it, or a new one (the
    /// least recently used is dropped when the set is full).
    public func session(for input: PreparedInput, model: any GenerativeModel) -> ChatSession {
        lock.withLock {
            clock += 1
            let prints = ChatSession.fingerprints(input)
            let best = sessions.map { ($0, $0.reusable(input, model: model, fingerprints: prints)) }.max { $0.1 < $1.1 }
            let chosen: ChatSession
            // A kept conversation is taken only when the request continues it (keeps at least half of what it
            // holds): an unrelated prompt sharing just the template's first tokens must not cut it down.
            if let (s, n) = best, n > 0, 2 * n >= s.heldTokens {
                chosen = s
            } else {
                if sessions.count >= maxSessions, let oldest = sessions.min(by: { $0.lastUse < $1.lastUse }) {
                    sessions.removeAll { $0 === oldest }
                }
                chosen = ChatSession()
                sessions.append(chosen)
            }
            chosen.lastUse = clock
            return chosen
        }
    }

    /// After a generation with `session`: counts its tokens and enforces the memory bound.
    public func finished(_ session: ChatSession, result: GenerationResult?) {
        lock.withLock {
            if let result {
                reused += UInt64(result.reusedTokens)
                prefilled += UInt64(result.prefilledTokens)
            } else {
                session.reset()  // a failed generation leaves no usable state
            }
            var total = sessions.reduce(0) { $0 + $1.bytes }
            while total > maxBytes, let victim = sessions.filter({ $0 !== session }).min(by: { $0.lastUse < $1.lastUse }) {
                total -= victim.bytes
                sessions.removeAll { $0 === victim }
            }
        }
    }

    /// Conversations kept, bytes of their states, and prompt tokens reused vs prefilled so far.
    public var statistics: (sessions: Int, bytes: Int, reusedTokens: UInt64, prefilledTokens: UInt64) {
        lock.withLock { (sessions.count, sessions.reduce(0) { $0 + $1.bytes }, reused, prefilled) }
    }

    /// Runs one generation through the best kept state.
    public func generate(_ pipeline: GenerativePipeline, input: PreparedInput, options: SamplingOptions,
                         onText: ((String) -> Bool)? = nil, shouldStop: (() -> Bool)? = nil) throws -> GenerationResult {
        let session = session(for: input, model: pipeline.model)
        do {
            let result = try pipeline.generate(input, options: options, session: session, onText: onText, shouldStop: shouldStop)
            finished(session, result: result)
            return result
        } catch {
            finished(session, result: nil)
            throw error
        }
    }
}
