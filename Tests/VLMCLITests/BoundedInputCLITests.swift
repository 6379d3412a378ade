import Foundation
import Testing
import VLMImage
import VLMTestSupport

/// Issue 15 from the outside: tiny files of extreme shape and hostile processor configs through the built `vlm`,
/// asserting exit status, wall time and the child's peak memory. The thresholds are generous (they catch the
/// regression — 52 s and 14.7 GB, or an abort — not noise).
@Suite(.serialized) struct BoundedInputCLITests {
    let model = Fixtures.url("clip/tiny-a")

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-bounded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Largest resident set of any waited-for child so far, in bytes (Linux reports KB). Monotone: after a run it
    /// is at least that child's peak.
    func childrenPeakRSS() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    /// A one-colour PNG of 600000x4 or 4x600000 (tens of KB) embeds with status 0 in seconds and well under 1 GB,
    /// although tiny-a's shortest-edge resize of it is 4,800,000 x 32 (only the 32 x 32 crop is computed).
    @Test(arguments: [(600_000, 4), (4, 600_000)])
    func extremeShapeEmbedsInBoundedTimeAndMemory(width: Int, height: Int) throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("extreme-\(width)x\(height).png")
        let data = try ImageEncoder.solidPNG(width: width, height: height, rgb: (40, 120, 200))
        #expect(data.count < 100_000)
        try data.write(to: png)
        let start = Date()
        let r = try Executables.run(["embed", "--model", model.path, "--image", png.path, "--format", "json"])
        let seconds = Date().timeIntervalSince(start)
        let peak = childrenPeakRSS()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\"embedding\""))
        #expect(seconds < 30, "\(width)x\(height): \(seconds) s")
        #expect(peak < 1 << 30, "\(width)x\(height): peak RSS of a child \(peak >> 20) MB")
    }

    /// A checkpoint whose preprocessor config asks for a resize to 1,000,000 pixels a side: exit status 1 and a
    /// message naming the file and the key, not an abort on a terabyte allocation.
    @Test(arguments: [(#"{"shortest_edge": 1000000}"#, "size"), (#"1000000"#, "crop_size")])
    func hostileProcessorConfigNamesTheKey(value: String, key: String) throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoint = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: checkpoint, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: model.path) {  // contents: the fixture links tokenizer files relatively
            try Data(contentsOf: model.appendingPathComponent(name)).write(to: checkpoint.appendingPathComponent(name))
        }
        let config = checkpoint.appendingPathComponent("preprocessor_config.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: config)) as? [String: Any])
        json[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
        try JSONSerialization.data(withJSONObject: json).write(to: config)
        let start = Date()
        let r = try Executables.run(["embed", "--model", checkpoint.path, "--image",
                                     Fixtures.url("clip/images/chelsea.jpg").path])
        #expect(r.status == 1, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("preprocessor_config.json") && r.stderr.contains("'\(key)'"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 10)
    }
}
