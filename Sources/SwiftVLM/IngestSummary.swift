import Foundation

/// Why a file or folder of a photo library was left out of an ingest run.
public enum SkipReason: String, CaseIterable, Sendable, Comparable {
    case hidden = "hidden"
    case nonImage = "not an image"
    case unreadable = "unreadable"
    case badName = "name not UTF-8"
    case symlinkLoop = "symlink loop"
    case repeatedFolder = "folder seen twice"
    case brokenLink = "broken symlink"
    case notRegular = "not a regular file"
    case vanished = "vanished"
    case changed = "changed during ingest"
    case undecodable = "not decodable"

    public static func < (a: SkipReason, b: SkipReason) -> Bool {
        (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
    }
}

/// What one `index add|sync` run saw: files per format (the format read from the file's first bytes for files
/// read this run, from the extension for unchanged ones) and what was skipped, by reason.
public struct IngestSummary: Sendable, Equatable {
    public var formats: [String: Int] = [:]
    public var skipped: [SkipReason: Int] = [:]

    public init() {}

    public mutating func count(format: String, _ n: Int = 1) { formats[format, default: 0] += n }
    public mutating func skip(_ reason: SkipReason, _ n: Int = 1) { if n > 0 { skipped[reason, default: 0] += n } }

    public mutating func merge(_ other: IngestSummary) {
        for (k, v) in other.formats { count(format: k, v) }
        for (k, v) in other.skipped { skip(k, v) }
    }

    /// Two lines for the end of a run, e.g. "by format: heic 2, jpeg 10, png 1" and
    /// "skipped: 3 hidden, 1 not an image, 1 symlink loop" (a line is left out when it has nothing to say).
    public var lines: [String] {
        var out: [String] = []
        if !formats.isEmpty {
            out.append("by format: " + formats.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if !skipped.isEmpty {
            out.append("skipped: " + skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }.joined(separator: ", "))
        }
        return out
    }
}
