import Foundation
import VLMImage

/// The per-file checks of `IndexIngestion.ingest`: what a file that cannot be ingested is called in its warning
/// line, and the first bytes of each file to embed (its real format, and whether its extension says another).
enum IngestFileCheck {
    /// The content hash given to `plan` for a file that cannot be read: never a stored digest, so the file is
    /// planned as changed, and then skipped with its warning.
    static let unreadableHash = "unreadable"

    struct Problem: Error {
        let reason: SkipReason
        let message: String
    }

    /// The format's summary name from the file's first bytes (nil when no decoder claims them: the decoder's
    /// own error names the file then), and a warning when the extension says another format.
    static func header(_ path: String) -> Result<(format: String?, warning: String?), Problem> {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failure(problem(path, errno, while: "before it could be read")) }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: ImageFormat.sniffLength)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(problem(path, errno, while: "while it was read")) }
            if n == 0 { break }
            count += n
        }
        guard count > 0 else { return .failure(Problem(reason: .undecodable, message: "\(path): empty file (0 bytes)")) }
        let header = Data(bytes[..<count])
        guard let format = ImageFormat.sniff(header) else { return .success((nil, nil)) }
        let ext = (path as NSString).pathExtension.lowercased()
        let name = ImageFormat.displayName(format, header: header, fileExtension: ext)
        guard let claimed = ImageFormat(fileExtension: ext), claimed != format else { return .success((name, nil)) }
        return .success((name, "\(path): the content is \(name.uppercased()) although the extension says .\(ext); indexed as \(name.uppercased())"))
    }

    /// A file whose stat or hashing failed: vanished, or unreadable with the system's reason.
    static func gone(_ path: String) -> (SkipReason, String) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            return (.unreadable, "\(path): cannot read")
        }
        let p = problem(path, errno, while: "before it could be read")
        return (p.reason, p.message)
    }

    /// A file the pipeline could not embed: vanished meanwhile, or the decoder's error (which usually names it).
    static func failed(_ path: String, _ error: Error) -> (SkipReason, String) {
        if !FileManager.default.fileExists(atPath: path) { return (.vanished, "\(path): vanished while it was being indexed") }
        let message = "\(error)"
        return (.undecodable, message.contains(path) ? message : "\(path): \(message)")
    }

    private static func problem(_ path: String, _ code: Int32, while when: String) -> Problem {
        if code == ENOENT { return Problem(reason: .vanished, message: "\(path): vanished \(when)") }
        return Problem(reason: .unreadable, message: "\(path): cannot read (\(String(cString: strerror(code))))")
    }
}
