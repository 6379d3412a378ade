import Foundation
import Testing
@testable import VLMTraining

@Suite struct EvalMetricsTests {
    func unit(_ i: Int, _ d: Int = 4) -> [Float] { (0 ..< d).map { $0 == i ? 1 : 0 } }

    @Test func perfectEmbeddingsGiveFullRecall() {
        let images = (0 ..< 4).map { unit($0) }
        let r = EvalMetrics.recall(queries: images, candidates: images, correct: (0 ..< 4).map { [$0] })
        #expect(r[1] == 1 && r[5] == 1 && r[10] == 1)
    }

    @Test func recallCountsRanks() {
        // Query 0: correct candidate ranks 2nd; query 1: 1st; query 2: no correct candidate (ignored).
        let queries: [[Float]] = [[1, 0], [0, 1], [1, 1]]
        let candidates: [[Float]] = [[0.9, 0], [1, 0], [0, 1]]
        let r = EvalMetrics.recall(queries: queries, candidates: candidates, correct: [[0], [2], []], ks: [1, 2])
        #expect(r[1] == 0.5)
        #expect(r[2] == 1)
    }

    @Test func tiesCountAgainstTheModel() {
        let same: [Float] = [1, 0]
        let r = EvalMetrics.recall(queries: [same], candidates: [same, same, same], correct: [[1]], ks: [1, 3])
        #expect(r[1] == 0)
        #expect(r[3] == 1)
        #expect(EvalMetrics.pairwise(images: [same], positives: [same], negatives: [same]) == 0)
    }

    @Test func zeroShotAndBinding() {
        let classes = (0 ..< 3).map { unit($0, 3) }
        let images: [[Float]] = [[0.9, 0.1, 0], [0.2, 0.1, 0.9], [0.6, 0.5, 0]]
        let acc = EvalMetrics.zeroShot(images: images, classes: classes, truth: [0, 2, 1], ks: [1, 2])
        #expect(abs((acc[1] ?? 0) - 2.0 / 3) < 1e-9)
        #expect(acc[2] == 1)
        // Binding: image 0 prefers its caption, image 1 the swapped twin.
        let b = EvalMetrics.pairwise(images: [[1, 0], [0, 1]], positives: [[0.8, 0.6], [0.6, 0.8]], negatives: [[0.6, 0.8], [0, 1]])
        #expect(b == 0.5)
    }

    @Test func reportTableHasOneRowPerSplit() {
        var s = SplitEvaluation(split: "test")
        s.zeroShot = .init(top1: 0.97, top5: 1, images: 100, classes: 72)
        s.binding = .init(accuracy: 0.8, pairs: 10)
        s.negatives = ["swap": .init(accuracy: 0.8, pairs: 10)]
        let table = EvaluationReport(model: "m", data: "d", splits: [s, SplitEvaluation(split: "heldout")], seconds: 1).table()
        #expect(table.contains("test") && table.contains("heldout") && table.contains("97.0%") && table.contains("swap 80.0% (10)"))
    }
}
