import Foundation
import VLMModels
import VLMTensor

// MARK: - Constraints shared by every decoding strategy

/// transformers' logits processors that constrain the next token, in generate()'s order after the repetition
/// penalty: NoRepeatNGramLogitsProcessor, ForcedBOSTokenLogitsProcessor, ForcedEOSTokenLogitsProcessor.
/// `sequence` is what transformers calls input_ids: the decoder's ids so far (the prompt for decoder-only models,
/// decoder_start_token_id for encoder-decoders, then the generated ids); `maxLength` its length limit.
public enum LogitsConstraints {
    public static func apply(_ scores: UnsafeMutablePointer<Float>, count: Int, sequence: [Int], maxLength: Int, options: SamplingOptions) {
        let n = options.noRepeatNgramSize, len = sequence.count
        if n > 0, len >= n {
            // Every earlier n-gram whose first n-1 ids equal the last n-1 ids bans its last id.
            let prefix = sequence[(len - n + 1)...]
            for start in 0 ... (len - n) where sequence[start ..< start + n - 1].elementsEqual(prefix) {
                let banned = sequence[start + n - 1]
                if banned >= 0 && banned < count { scores[banned] = -.infinity }
            }
        }
        if let bos = options.forcedBOSTokenID, len == 1, bos >= 0, bos < count { force(bos, scores, count) }
        if let eos = options.forcedEOSTokenID, len == maxLength - 1, eos >= 0, eos < count { force(eos, scores, count) }
    }

    private static func force(_ id: Int, _ scores: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0 ..< count { scores[i] = -.infinity }
        scores[id] = 0
    }
}

// MARK: - Beam search

/// transformers 5.25's _beam_search for one prompt, over any GenerativeModel whose state can be forked: the
/// top 2 x num_beams (more with several EOS ids) continuations of all beams by accumulated log-probability,
/// finished hypotheses scored by sum / generated_length^length_penalty, early_stopping true / false (heuristic)
/// / "never", the logits processors applied to the log-probabilities, and the best finished hypothesis returned.
public struct BeamSearch {
    public let model: any GenerativeModel
    public let options: SamplingOptions
    public let eos: Set<Int>

    public init(model: any GenerativeModel, options: SamplingOptions, eos: Set<Int>) {
        self.model = model
        self.options = options
        self.eos = eos
    }

    struct Hypothesis {
        var tokens: [Int]
        var score: Float
        var state: (any GenerationState)?
    }

    /// `prompt`: the decoder's ids before generation; `state`/`logits`: after prefill; `budget`: max new tokens.
    /// Returns the best hypothesis's generated ids (the EOS that ended it included) and whether it ended by EOS.
    public func run(prompt: [Int], state: any GenerationState, logits first: Tensor, budget: Int,
                    shouldStop: (() -> Bool)? = nil) throws -> (tokens: [Int], stoppedByEOS: Bool) {
        let beams = options.numBeams, vocab = model.vocabularySize
        let keep = max(2, 1 + eos.count) * beams
        let maxLength = prompt.count + budget
        guard budget > 0 else { return ([], false) }
        // running beams: beam 0 scores 0, the copies -1e9 (transformers expands the prompt num_beams times).
        var running = (0 ..< beams).map { Hypothesis(tokens: [], score: $0 == 0 ? 0 : -1e9, state: $0 == 0 ? state : nil) }
        var runningLogits: [Tensor] = Array(repeating: first, count: beams)
        var finished = (0 ..< beams).map { _ in Hypothesis(tokens: [], score: -1e9, state: nil) }
        var finishedFlags = [Bool](repeating: false, count: beams)
        var heuristicUnsatisfied = true
        var curLen = prompt.count
        while true {
            // Accumulated log-probabilities of every (beam, token).
            var accumulated = [Float](repeating: -.infinity, count: beams * vocab)
            for b in 0 ..< beams {
                var logp = Self.logSoftmax(runningLogits[b].pointer, count: vocab)
                logp.withUnsafeMutableBufferPointer { buf in
                    let p = buf.baseAddress!  // safe: vocab > 0
                    let seq = prompt + running[b].tokens
                    if options.repetitionPenalty != 1 {
                        for id in Set(seq) where id >= 0 && id < vocab { p[id] = p[id] > 0 ? p[id] / options.repetitionPenalty : p[id] * options.repetitionPenalty }
                    }
                    LogitsConstraints.apply(p, count: vocab, sequence: seq, maxLength: maxLength, options: options)
                }
                for v in 0 ..< vocab { accumulated[b * vocab + v] = logp[v] + running[b].score }
            }
            let top = Self.topK(accumulated, k: keep)
            let candidates = top.map { (beam: $0 / vocab, token: $0 % vocab, score: accumulated[$0]) }
            // Stopping criteria of each candidate: EOS, or the length limit reached with it.
            let hits = candidates.map { eos.contains($0.token) || curLen + 1 >= maxLength }

            // Next running beams: the best candidates that did not stop.
            let runningScores = zip(candidates, hits).map { $0.score + ($1 ? -1e9 : 0) }
            let chosen = Self.topK(runningScores, k: beams)

            // Finished hypotheses: merge the top num_beams candidates that stopped with the kept ones.
            let full = finishedFlags.allSatisfy { $0 } && options.earlyStopping == .always
            let penalty = Float(pow(Double(curLen + 1 - prompt.count), Double(options.lengthPenalty)))
            var merged = finished.enumerated().map { (hyp: $0.element, flag: finishedFlags[$0.offset]) }
            for (i, c) in candidates.enumerated() {
                var s = c.score / penalty
                if full { s += -1e9 }
                if !heuristicUnsatisfied { s += -1e9 }
                let justFinished = hits[i] && i < beams
                if !justFinished { s += -1e9 }
                merged.append((Hypothesis(tokens: running[c.beam].tokens + [c.token], score: s, state: nil), justFinished))
            }
            let best = Self.topK(merged.map(\.hyp.score), k: beams)
            finished = best.map { merged[$0].hyp }
            finishedFlags = best.map { merged[$0].flag }

            // Running beams take their parent's state (forked when a parent continues more than once).
            var parentUsed = Set<Int>()
            var next: [Hypothesis] = []
            for j in chosen {
                let c = candidates[j]
                var st = running[c.beam].state
                if parentUsed.contains(c.beam) { st = try st?.fork() } else { parentUsed.insert(c.beam) }
                next.append(Hypothesis(tokens: running[c.beam].tokens + [c.token], score: runningScores[j], state: st))
            }
            running = next
            curLen += 1

            // _check_early_stop_heuristic and _beam_search_has_unfinished_sequences.
            let bestLength = options.earlyStopping == .never && options.lengthPenalty > 0 ? maxLength - prompt.count : curLen - prompt.count
            let bestRunning = running[0].score / Float(pow(Double(bestLength), Double(options.lengthPenalty)))
            // Per finished slot j the bar is min(finished scores) if j holds a finished hypothesis, else -1e9.
            let minFinished = finished.map(\.score).min() ?? -1e9
            let improvable = (finishedFlags.contains { !$0 } && bestRunning > -1e9) || (finishedFlags.contains { $0 } && bestRunning > minFinished)
            heuristicUnsatisfied = heuristicUnsatisfied && improvable
            let openBeam = !(finishedFlags.allSatisfy { $0 } && options.earlyStopping == .always)
            if !(heuristicUnsatisfied && openBeam && !hits.allSatisfy { $0 }) { break }
            if let shouldStop, shouldStop() { break }

            // Feed each running beam its new token (a beam seeded with -1e9 and no state yet forks beam 0's).
            for b in 0 ..< beams where running[b].state == nil { running[b].state = try state.fork() }
            try stepBeams(running, into: &runningLogits)
        }
        let best = finished[0]
        let ended = best.tokens.last.map { eos.contains($0) } ?? false
        return (best.tokens, ended)
    }

    /// Feeds every running beam its last token: in one pass when the model batches steps (its weights streamed
    /// once for all beams, as transformers runs the beams as one batch), else beam by beam.
    private func stepBeams(_ running: [Hypothesis], into logits: inout [Tensor]) throws {
        let fed = running.indices.compactMap { b -> (beam: Int, token: Int, state: any GenerationState)? in
            guard let token = running[b].tokens.last, let st = running[b].state else { return nil }
            return (b, token, st)
        }
        if let batched = model as? any BatchedStepModel, fed.count > 1 {
            let all = try batched.step(tokens: fed.map(\.token), states: fed.map(\.state))
            let vocab = all.shape[1]
            for (r, f) in fed.enumerated() {
                let row = Tensor(uninitialized: [1, vocab])
                row.pointer.update(from: all.pointer + r * vocab, count: vocab)
                logits[f.beam] = row
            }
        } else {
            for f in fed { logits[f.beam] = try model.step(token: f.token, state: f.state) }
        }
    }

    /// log_softmax over one row, in float32 as torch computes it.
    static func logSoftmax(_ x: UnsafePointer<Float>, count: Int) -> [Float] {
        var m = -Float.infinity
        for i in 0 ..< count where x[i] > m { m = x[i] }
        var sum: Float = 0
        for i in 0 ..< count { sum += exp(x[i] - m) }
        let logSum = log(sum)
        return (0 ..< count).map { (x[$0] - m) - logSum }  // torch's order: x - max - log(sum)
    }

    /// Indices of the k largest values, largest first (ties: lower index first, as torch.topk on CPU).
    /// One pass keeping a sorted list of the best k (a full sort of beams x vocab scores cost more than a decode
    /// step's arithmetic).
    static func topK(_ values: [Float], k: Int) -> [Int] {
        guard k > 0 else { return [] }
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in values.indices {
            let v = values[i]
            // A value equal to the k-th best comes later in index order, so it ranks below it.
            if best.count == k, let last = best.last, !(v > values[last]) { continue }
            var at = best.count
            while at > 0, v > values[best[at - 1]] { at -= 1 }
            best.insert(i, at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
