import Foundation
import VLMTensor

// MARK: - Attention masks

/// Which keys each query of a forward may attend, described rather than materialised. Indices are sequence
/// indices (rows of the KV cache: the cached tokens first, then the new ones), not rotary positions, so the
/// same description holds for 1-D and multi-axis (M-RoPE) position ids.
///
/// The kernel receives one key range per query (`keyRanges`); a key padding mask is applied on top.
public struct AttentionMask: Sendable, Equatable {
    public enum Pattern: Sendable, Equatable {
        /// Key s is visible to the query at sequence index q when s <= q.
        case causal
        /// Every key is visible (encoders; bidirectional decoders with padding).
        case bidirectional
        /// Keys before `prefixLength` are visible to everyone (PaliGemma's image + prompt prefix, attended
        /// bidirectionally); after it, causal.
        case prefix(length: Int)
        /// Every key of a fixed memory (encoder outputs of an encoder-decoder), independent of the query.
        case crossAttention
    }

    public var pattern: Pattern
    /// Sliding window (transformers' sliding_window_overlay): with a window W, the query at q sees keys
    /// s > q - W, i.e. the W most recent keys including itself. nil: unbounded.
    public var window: Int?
    /// [keys] 0 for padded keys that must not be attended (for one sequence), or nil.
    public var keyPadding: [UInt8]?

    public init(_ pattern: Pattern, window: Int? = nil, keyPadding: [UInt8]? = nil) {
        self.pattern = pattern
        self.window = window
        self.keyPadding = keyPadding
    }

    public static let causal = AttentionMask(.causal)
    public static func slidingWindow(_ window: Int) -> AttentionMask { AttentionMask(.causal, window: window) }
    public static func bidirectional(keyPadding: [UInt8]? = nil) -> AttentionMask { AttentionMask(.bidirectional, keyPadding: keyPadding) }
    public static func prefixLM(prefixLength: Int) -> AttentionMask { AttentionMask(.prefix(length: prefixLength)) }
    public static func crossAttention(keyPadding: [UInt8]? = nil) -> AttentionMask { AttentionMask(.crossAttention, keyPadding: keyPadding) }

    /// The same mask restricted to a sliding window (a layer's own `sliding_window`); nil keeps it unbounded.
    public func windowed(_ w: Int?) -> AttentionMask {
        guard let w else { return self }
        var m = self
        m.window = min(window ?? w, w)
        return m
    }

    /// Per query, the keys [begin, end) it may attend: `queryCount` queries at sequence indices
    /// `queryStart ..< queryStart + queryCount` over `keyCount` keys (cache included).
    public func keyRanges(queryStart: Int, queryCount: Int, keyCount: Int) -> (begin: [Int64], end: [Int64]) {
        var begin = [Int64](repeating: 0, count: queryCount), end = [Int64](repeating: Int64(keyCount), count: queryCount)
        for r in 0 ..< queryCount {
            let q = queryStart + r
            var lo = 0, hi = keyCount
            switch pattern {
            case .causal: hi = q + 1
            case .bidirectional, .crossAttention: break
            case .prefix(let length): hi = max(q + 1, length)
            }
            if let window, pattern != .crossAttention { lo = max(lo, q - window + 1) }
            begin[r] = Int64(max(lo, 0))
            end[r] = Int64(min(max(hi, 0), keyCount))
        }
        return (begin, end)
    }
}

// MARK: - Position ids

/// Rotary position ids of the rows of one forward. One axis for ordinary RoPE; several (temporal, height,
/// width) for multi-axis RoPE (Qwen2-VL's M-RoPE), where `RotaryEmbedding.sections` says which frequencies
/// read which axis.
public struct PositionIDs: Sendable, Equatable {
    /// [axes][rows]
    public let axes: [[Int]]

    public init(axes: [[Int]]) {
        precondition(!axes.isEmpty && axes.allSatisfy { $0.count == axes[0].count }, "PositionIDs: ragged axes")
        self.axes = axes
    }

    /// 1-D ids.
    public init(_ ids: [Int]) { self.init(axes: [ids]) }

    /// start, start + 1, ... (count rows), on every one of `axes` axes.
    public static func range(from start: Int, count: Int, axes: Int = 1) -> PositionIDs {
        let ids = Array(start ..< start + max(count, 0))
        return PositionIDs(axes: Array(repeating: ids, count: max(axes, 1)))
    }

    public var count: Int { axes[0].count }
    public var dimensions: Int { axes.count }
    /// The position following these ids (a text token after them): max over all axes + 1, or `start` if empty.
    public func next(after start: Int) -> Int { (axes.compactMap { $0.max() }.max()).map { $0 + 1 } ?? start }

    /// Rows [range].
    public func rows(_ range: Range<Int>) -> PositionIDs { PositionIDs(axes: axes.map { Array($0[range]) }) }
}

// MARK: - Rotary tables

/// cos/sin of one forward's positions, computed once and shared by every layer (each layer only rotates).
public struct RotaryTables: @unchecked Sendable {
    /// [rows, rotaryDim / 2] each, already multiplied by the attention scaling.
    public let cos: [Float]
    public let sin: [Float]
    public let rows: Int
    public let half: Int

    /// Rotates `heads` heads of size `headDim` in each of `rows` rows of x (row stride `ld`, first head at
    /// `offset`), row r by this table's row r. Only the first rotaryDim dims of a head rotate (partial rotary);
    /// the pair is (i, i + rotaryDim / 2) (transformers' rotate_half layout).
    /// x: [rows, ld] (modified in place)
    public func apply(_ x: Tensor, offset: Int, ld: Int, heads: Int, headDim: Int) {
        precondition(x.count >= (rows - 1) * ld + offset + heads * headDim || rows == 0, "RotaryTables.apply: x \(x.shape) too small")
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                guard let cosBase = cosTable.baseAddress, let sinBase = sinTable.baseAddress else { return }
                for r in 0 ..< rows {
                    let c = cosBase + r * half, s = sinBase + r * half
                    for h in 0 ..< heads {
                        let p = x.pointer + r * ld + offset + h * headDim
                        for i in 0 ..< half {
                            let a = p[i], b = p[i + half]
                            p[i] = a * c[i] - b * s[i]
                            p[i + half] = b * c[i] + a * s[i]
                        }
                    }
                }
            }
        }
    }
}

extension RotaryEmbedding {
    /// The tables for `positions`. 1-D ids: angle = position * inv_freq[i] in float32, as transformers. With
    /// several axes, frequency i reads the axis its `sections` entry assigns (M-RoPE); without sections, axis 0.
    public func tables(for positions: PositionIDs) -> RotaryTables {
        let half = inverseFrequencies.count, rows = positions.count
        var axisOf = [Int](repeating: 0, count: half)
        if positions.dimensions > 1, let sections {
            var i = 0
            for (axis, width) in sections.enumerated() {
                for _ in 0 ..< width where i < half { axisOf[i] = min(axis, positions.dimensions - 1); i += 1 }
            }
        }
        var c = [Float](repeating: 0, count: rows * half), s = [Float](repeating: 0, count: rows * half)
        for r in 0 ..< rows {
            for i in 0 ..< half {
                let angle = Float(positions.axes[axisOf[i]][r]) * inverseFrequencies[i]
                c[r * half + i] = cos(angle) * attentionScaling
                s[r * half + i] = sin(angle) * attentionScaling
            }
        }
        return RotaryTables(cos: c, sin: s, rows: rows, half: half)
    }
}
