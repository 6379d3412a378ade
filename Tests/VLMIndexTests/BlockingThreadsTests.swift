import Foundation
import Testing
import VLMIndex
import VLMTensor

/// The index's dedicated threads: every job runs once, in order per single-thread pool, jobs queued before the
/// owner goes still run, and threads come and go by the hundred without disturbing the process (the Foundation
/// `Thread`s they replaced corrupted the heap at thread exit under the server suites).
@Suite struct BlockingThreadsTests {
    @Test func everyJobRunsOnceAndASingleThreadKeepsOrder() async throws {
        let pool = BlockingThreads(count: 1, name: "test-order")
        let log = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0 ..< 64 { group.addTask { try await pool.run { log.append(i) } } }
            try await group.waitForAll()
        }
        #expect(log.values.sorted() == Array(0 ..< 64))
        // Submitted one after the other from one task: FIFO.
        let ordered = Log()
        for i in 0 ..< 32 { try await pool.run { ordered.append(i) } }
        #expect(ordered.values == Array(0 ..< 32))
    }

    @Test func errorsReachTheCaller() async {
        let pool = BlockingThreads(count: 2, name: "test-error")
        await #expect(throws: IndexError.self) { try await pool.run { throw IndexError.invalidArgument("boom") } }
    }

    /// 300 pools of 3 threads each started, used and released (900 thread exits) while other pools work.
    @Test func poolsComeAndGoByTheHundred() async throws {
        let total = Log()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0 ..< 4 {
                group.addTask {
                    for round in 0 ..< 75 {
                        let pool = BlockingThreads(count: 3, name: "test-churn")
                        let sums = try await withThrowingTaskGroup(of: Int.self) { inner in
                            for j in 0 ..< 6 { inner.addTask { try await pool.run { (0 ... j).reduce(0, +) + worker + round } } }
                            return try await inner.reduce(0, +)
                        }
                        total.append(sums)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(total.values.count == 300)
        // Each round: sum over j of (0+...+j) = 35, plus 6 * (worker + round).
        let expected = (0 ..< 4).flatMap { w in (0 ..< 75).map { r in 35 + 6 * (w + r) } }.sorted()
        #expect(total.values.sorted() == expected)
    }
}

private final class Log: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func append(_ v: Int) { lock.withLock { items.append(v) } }
    var values: [Int] { lock.withLock { items } }
}
