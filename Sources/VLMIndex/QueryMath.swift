import Foundation
import VLMTensor

/// Query arithmetic: "this image, plus 'red', minus 'blurry'".
public enum QueryMath {
    /// Sum of unit-normalised terms times their weights, renormalised to unit length.
    /// Normalising each term first makes weights mean what they say whatever the encoders' norms
    /// (CLIP text and image embeddings have very different raw norms). Negative weights subtract.
    public static func combine(_ terms: [(vector: [Float], weight: Float)]) throws -> [Float] {
        guard let dim = terms.first?.vector.count else { throw IndexError.invalidArgument("query arithmetic needs at least one term") }
        var sum = [Float](repeating: 0, count: dim)
        for (i, term) in terms.enumerated() {
            guard term.vector.count == dim else { throw IndexError.dimensionMismatch(context: "query term \(i + 1)", expected: dim, actual: term.vector.count) }
            guard term.weight.isFinite else { throw IndexError.invalidArgument("query term \(i + 1) has weight \(term.weight)") }
            let unit = try normalized(term.vector, context: "query term \(i + 1)")
            for j in 0..<dim { sum[j] += term.weight * unit[j] }
        }
        return try normalized(sum, context: "combined query")
    }

    /// `v / |v|`; throws for zero or non-finite vectors (they have no direction).
    public static func normalized(_ v: [Float], context: String = "vector") throws -> [Float] {
        var norm2: Double = 0
        for x in v { norm2 += Double(x) * Double(x) }
        guard norm2.isFinite else { throw IndexError.invalidVector(context: context, reason: "non-finite component") }
        guard norm2 > 1e-24 else { throw IndexError.invalidVector(context: context, reason: "zero vector (terms cancel out?)") }
        let inv = Float(1 / norm2.squareRoot())
        return v.map { $0 * inv }
    }
}

/// A pair of near-duplicate embeddings, `a < b`, each pair reported once.
public struct DuplicatePair: Sendable, Equatable, Codable {
    public let a: Int64
    public let b: Int64
    public let score: Float
}

/// Near-duplicate detection by blocked self-GEMM over the exact matrix: chunk i against chunk
/// j >= i, keeping only the strict upper triangle on the diagonal blocks so each pair is seen once.
public enum DuplicateFinder {
    /// Pairs with inner product >= `threshold`, best first (ties by ids). Stops collecting at
    /// `limit` pairs per block sweep to bound memory on pathological inputs (e.g. threshold 0).
    public static func pairs(in exact: ExactSearch, threshold: Float, limit: Int = 100_000) throws -> [DuplicatePair] {
        guard threshold.isFinite else { throw IndexError.invalidArgument("duplicate threshold \(threshold)") }
        guard limit > 0 else { throw IndexError.invalidArgument("duplicate limit must be positive, got \(limit)") }
        var chunks: [(tensor: Tensor, first: Int)] = []
        exact.forEachChunk { _, tensor, first in chunks.append((tensor, first)) }
        var out: [DuplicatePair] = []
        outer: for i in 0..<chunks.count {
            for j in i..<chunks.count {
                let (ti, fi) = chunks[i], (tj, fj) = chunks[j]
                let rowsI = ti.shape[0], rowsJ = tj.shape[0]
                let scores = Ops.matmul(ti, tj, transposeB: true)  // [rowsI, rowsJ]
                for r in 0..<rowsI {
                    let s = scores.pointer + r * rowsJ
                    let start = i == j ? r + 1 : 0
                    guard start < rowsJ else { continue }
                    for c in start..<rowsJ where s[c] >= threshold {
                        let x = exact.id(atSlot: fi + r), y = exact.id(atSlot: fj + c)
                        out.append(DuplicatePair(a: min(x, y), b: max(x, y), score: s[c]))
                        if out.count >= limit { break outer }
                    }
                }
            }
        }
        out.sort { $0.score > $1.score || ($0.score == $1.score && ($0.a, $0.b) < ($1.a, $1.b)) }
        return out
    }
}
