import Foundation
import Testing
@testable import VLMIndex

@Suite struct ExactSearchTests {
    @Test func matchesNaiveOnRandomData() throws {
        let dim = 24
        let vectors = TestData.unitVectors(1500, dim: dim, seed: 1)
        let ids = (0..<Int64(vectors.count)).map { $0 * 3 + 7 }
        let exact = try ExactSearch(dim: dim, chunkRows: 256)  // several chunks, last one partial
        exact.queryBlock = 5  // several query blocks, last one partial
        for (id, v) in zip(ids, vectors) { try exact.add(id: id, vector: v) }
        let queries = TestData.unitVectors(13, dim: dim, seed: 2)
        let batched = try exact.search(queries: queries.flatMap { $0 }, k: 10)
        for (q, got) in zip(queries, batched) {
            let want = TestData.naiveTopK(q, ids, vectors, k: 10)
            #expect(got.map(\.id) == want.map(\.id))
            for (g, w) in zip(got, want) { #expect(abs(g.score - w.score) < 1e-4) }
        }
    }

    @Test func tiesKLargerThanNAndMinScore() throws {
        let exact = try ExactSearch(dim: 4, chunkRows: 2)
        // Three identical vectors (a three-way tie) and two others.
        try exact.add(id: 30, vector: [1, 0, 0, 0])
        try exact.add(id: 10, vector: [1, 0, 0, 0])
        try exact.add(id: 20, vector: [1, 0, 0, 0])
        try exact.add(id: 40, vector: [0.6, 0.8, 0, 0])
        try exact.add(id: 50, vector: [0, 0, 1, 0])
        let q: [Float] = [1, 0, 0, 0]
        #expect(try exact.search(query: q, k: 2).map(\.id) == [10, 20])  // ties: lower id first
        let all = try exact.search(query: q, k: 100)
        #expect(all.map(\.id) == [10, 20, 30, 40, 50])  // k > n returns n
        #expect(try exact.search(query: q, k: 100, minScore: 0.5).map(\.id) == [10, 20, 30, 40])
        #expect(try exact.search(query: q, k: 100, minScore: 1.5).isEmpty)
        #expect(throws: IndexError.self) { try exact.search(query: q, k: 0) }
        #expect(throws: IndexError.dimensionMismatch(context: "exact search query", expected: 4, actual: 3)) {
            try exact.search(query: [1, 0, 0], k: 1)
        }
    }

    @Test func removeAndReplaceKeepMatrixConsistent() throws {
        let dim = 8
        let vectors = TestData.unitVectors(40, dim: dim, seed: 3)
        let exact = try ExactSearch(dim: dim, chunkRows: 8)
        for (i, v) in vectors.enumerated() { try exact.add(id: Int64(i), vector: v) }
        #expect(exact.remove([0, 5, 39, 12, 999]) == 4)
        try exact.add(id: 7, vector: vectors[0])  // replace in place
        var ids: [Int64] = [], vs: [[Float]] = []
        for i in 0..<40 where ![0, 5, 39, 12].contains(i) {
            ids.append(Int64(i))
            vs.append(i == 7 ? vectors[0] : vectors[i])
        }
        #expect(exact.count == ids.count)
        for q in TestData.unitVectors(5, dim: dim, seed: 4) {
            #expect(try exact.search(query: q, k: 7).map(\.id) == TestData.naiveTopK(q, ids, vs, k: 7).map(\.id))
        }
        #expect(exact.remove(ids) == ids.count)
        #expect(try exact.search(query: vectors[1], k: 3).isEmpty)
    }

    @Test func duplicatesEachPairOnce() throws {
        let dim = 16
        var vectors = TestData.unitVectors(300, dim: dim, seed: 5)
        // Plant near-duplicates across and within chunks.
        let planted = [(3, 250), (10, 11), (100, 101), (299, 0)]
        for (a, b) in planted {
            var v = vectors[a]
            v[0] += 0.01
            vectors[b] = try QueryMath.normalized(v)
        }
        let exact = try ExactSearch(dim: dim, chunkRows: 64)
        for (i, v) in vectors.enumerated() { try exact.add(id: Int64(i), vector: v) }
        let pairs = try DuplicateFinder.pairs(in: exact, threshold: 0.995)
        var naive: [(Int64, Int64)] = []
        for i in 0..<vectors.count {
            for j in (i + 1)..<vectors.count {
                let s = zip(vectors[i], vectors[j]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                if s >= 0.995 { naive.append((Int64(i), Int64(j))) }
            }
        }
        #expect(Set(pairs.map { "\($0.a)-\($0.b)" }) == Set(naive.map { "\($0.0)-\($0.1)" }))
        #expect(pairs.count == naive.count)
        #expect(pairs.count >= planted.count)
        #expect(pairs.allSatisfy { $0.a < $0.b })
    }

    @Test func queryArithmetic() throws {
        let combined = try QueryMath.combine([(vector: [2, 0, 0], weight: 1), (vector: [0, 0.5, 0], weight: 1)])
        #expect(abs(combined[0] - 0.70710677) < 1e-6 && abs(combined[1] - 0.70710677) < 1e-6)
        let weighted = try QueryMath.combine([(vector: [1, 0, 0], weight: 3), (vector: [0, 10, 0], weight: 1)])
        #expect(weighted[0] > weighted[1] * 2.9)
        #expect(throws: IndexError.self) { try QueryMath.combine([(vector: [1, 0], weight: 1), (vector: [1, 0], weight: -1)]) }
        #expect(throws: IndexError.self) { try QueryMath.combine([]) }
        #expect(throws: IndexError.self) { try QueryMath.combine([(vector: [1, 0], weight: 1), (vector: [1, 0, 0], weight: 1)]) }
    }
}
