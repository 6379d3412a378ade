import Foundation

/// The walk of `IndexIngestion.collect` over one directory of a real photo library (readdir/stat, not
/// FileManager's enumerator, so every odd entry is seen and named):
///  * hidden files and folders (a leading dot) are skipped without descending, and counted;
///  * symlinks are followed; a folder reached again (a symlink loop back to an ancestor, or a second link to a
///    folder already walked) is skipped with a warning, as are broken links;
///  * a folder that cannot be listed, a name that is not valid UTF-8 (a path we could not store or reopen) and
///    a FIFO/socket/device with an image extension each get one warning line;
///  * other non-image files are counted; the counts make one line per directory given.
struct LibraryWalk {
    let root: String
    let imageExtensions: Set<String>
    let warn: (String) -> Void
    private(set) var files: [CollectedFile] = []
    private(set) var summary = IngestSummary()
    private var visited: [FolderID: String] = [:]

    private struct FolderID: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    init(root: String, imageExtensions: Set<String>, warn: @escaping (String) -> Void) {
        (self.root, self.imageExtensions, self.warn) = (root, imageExtensions, warn)
    }

    mutating func run() {
        var st = stat()
        guard stat(root, &st) == 0 else {
            skip(.unreadable, "\(root): cannot read (\(Self.errorText(errno)))")
            return
        }
        let id = FolderID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        visited[id] = root
        walk(directory: root, relative: "", ancestors: [id])
        let hidden = summary.skipped[.hidden] ?? 0, others = summary.skipped[.nonImage] ?? 0
        var parts: [String] = []
        if hidden > 0 { parts.append("\(hidden) hidden file(s)/folder(s)") }
        if others > 0 { parts.append("\(others) non-image file(s)") }
        if !parts.isEmpty { warn("\(root): skipped " + parts.joined(separator: " and ")) }
    }

    private mutating func skip(_ reason: SkipReason, _ message: String) {
        warn("\(message), skipped")
        summary.skip(reason)
    }

    private mutating func walk(directory: String, relative: String, ancestors: Set<FolderID>) {
        guard let handle = opendir(directory) else {
            skip(.unreadable, "\(directory): cannot list the folder (\(Self.errorText(errno)))")
            return
        }
        var names: [[UInt8]] = []  // read them all first: one open folder at a time, however deep the tree
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(while: { $0 != 0 })) }
            if name != [0x2E] && name != [0x2E, 0x2E] { names.append(name) }
        }
        closedir(handle)
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        for bytes in names.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            if bytes.first == 0x2E {  // ".DS_Store", ".thumbnails", ".git": never descended into
                summary.skip(.hidden)
                continue
            }
            guard let name = String(validating: bytes, as: UTF8.self) else {
                skip(.badName, "\(prefix)\(Self.escaped(bytes)): the name is not valid UTF-8 (rename the file to index it)")
                continue
            }
            let path = prefix + name, rel = relative.isEmpty ? name : relative + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else {
                let code = errno
                var link = stat()
                let isLink = lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
                switch code {
                case ELOOP: skip(.symlinkLoop, "\(path): symlink loop")
                case ENOENT where isLink: skip(.brokenLink, "\(path): broken symlink (its target does not exist)")
                case ENOENT: skip(.vanished, "\(path): vanished while the folder was read")
                default: skip(.unreadable, "\(path): cannot read (\(Self.errorText(code)))")
                }
                continue
            }
            let ext = (name as NSString).pathExtension.lowercased()
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let id = FolderID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
                if ancestors.contains(id) {
                    skip(.symlinkLoop, "\(path): symlink loop (leads back to \(visited[id] ?? "an enclosing folder"))")
                } else if let first = visited[id] {
                    skip(.repeatedFolder, "\(path): the same folder as \(first), already walked")
                } else {
                    visited[id] = path
                    walk(directory: path, relative: rel, ancestors: ancestors.union([id]))
                }
            case S_IFREG:
                if imageExtensions.contains(ext) { files.append(CollectedFile(path: path, relative: rel)) } else { summary.skip(.nonImage) }
            default:
                if imageExtensions.contains(ext) { skip(.notRegular, "\(path): not a regular file (a FIFO, socket or device)") } else { summary.skip(.nonImage) }
            }
        }
    }

    /// A name with its bytes outside printable ASCII written as \xNN, so a warning line stays one valid line.
    static func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C ? String(UnicodeScalar($0)) : String(format: "\\x%02X", $0) }.joined()
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}
