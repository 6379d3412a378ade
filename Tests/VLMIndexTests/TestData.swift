import Foundation
import VLMTestSupport
@testable import VLMIndex

/// Deterministic test data and scratch directories.
enum TestData {
    /// n unit vectors of `dim`, Gaussian-ish (sum of uniforms) then normalised; seeded.
    static func unitVectors(_ n: Int, dim: Int, seed: UInt64) -> [[Float]] {
        var rng = SplitMix64(state: seed)
        return (0..<n).map { _ in
            var v = (0..<dim).map { _ -> Float in
                var s: Float = 0
                for _ in 0..<4 { s += Float(rng.nextUnitOpenZero()) - 0.5 }
                return s
            }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in v.indices { v[i] /= norm }
            return v
        }
    }

    /// A fresh empty directory under the system temp dir.
    static func directory(_ name: String = #function) throws -> String {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let path = TestScratch.root.appendingPathComponent("vlmindex-\(safe)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func record(_ path: String, _ vector: [Float], size: Int64 = 100, mtime: Double = 1000, hash: String? = nil) -> FileRecord {
        FileRecord(stat: FileStat(path: path, size: size, mtime: mtime), contentHash: hash ?? "h-\(path)", metadata: "{\"w\":1}", vector: vector)
    }

    /// Reference top-k: score every vector, sort by (score desc, id asc).
    static func naiveTopK(_ query: [Float], _ ids: [Int64], _ vectors: [[Float]], k: Int, minScore: Float = -.infinity) -> [SearchHit] {
        var all: [SearchHit] = []
        for (id, v) in zip(ids, vectors) {
            var s: Float = 0
            for j in 0..<v.count { s += query[j] * v[j] }
            if s >= minScore { all.append(SearchHit(id: id, score: s)) }
        }
        all.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        return Array(all.prefix(k))
    }
}
