import Foundation

/// Locates the committed reference fixtures (Tests/Fixtures) from any test file.
public enum Fixtures {
    public static var root: URL {
        // Sources/VLMTestSupport/Fixtures.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures")
    }

    public static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// Reads a JSON fixture into a Decodable type.
    public static func json<T: Decodable>(_ relative: String, as type: T.Type = T.self) throws -> T {
        let data = try Data(contentsOf: url(relative))
        return try JSONDecoder().decode(T.self, from: data)
    }
}

/// This test process's scratch directory, `$TMPDIR/vlm-tests-<pid>`: every test's temporary files go under it, and it
/// is removed when the process exits, so a test that forgets to clean up (or fails before it does) leaves nothing
/// behind. Roots of test processes that died without exiting (a crash, a kill) are removed by the next run.
public enum TestScratch {
    public static let root: URL = {
        let base = FileManager.default.temporaryDirectory
        if let names = try? FileManager.default.contentsOfDirectory(atPath: base.path) {
            for name in names where name.hasPrefix("vlm-tests-") {
                // kill(pid, 0) fails with ESRCH when no such process exists any more.
                if let pid = Int32(name.dropFirst("vlm-tests-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                    try? FileManager.default.removeItem(at: base.appendingPathComponent(name))
                }
            }
        }
        let root = base.appendingPathComponent("vlm-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestScratch.root) }
        return root
    }()
}

/// A fresh directory under the test process's scratch directory, removed when the value goes away.
public final class TemporaryDirectory {
    public let url: URL

    public init(prefix: String = "vlm-test") throws {
        url = TestScratch.root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
