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

/// A fresh directory under the system's temporary directory, removed when the value goes away.
public final class TemporaryDirectory {
    public let url: URL

    public init(prefix: String = "vlm-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
