import Foundation

/// A photo library as people have them, for `vlm index add` tests: good photos (JPEG, PNG, BMP) next to hidden
/// files and folders, symlink loops, a second link to a folder, a broken link, a FIFO, a name that is not valid
/// UTF-8, a PNG named .jpg, text named .jpg, a non-image, and (with `unreadable`) a file and a folder with mode 000.
///
///     photos/a.jpg  b.png  fake.jpg (PNG bytes)  text.jpg (text)  notes.txt  fifo.jpg (FIFO)
///     photos/bad\xFF\xFE.jpg (not UTF-8)  broken.jpg -> nowhere.jpg  self.jpg -> self.jpg  loop -> .
///     photos/.DS_Store  .hidden/x.jpg  zz_alias -> sub  [locked.jpg (000)  lockeddir/ (000) with e.jpg]
///     photos/sub/c.jpg  sub/d.bmp  sub/up -> ..
public struct PhotoTree {
    public let base: URL
    public let root: URL
    public var index: String { base.appendingPathComponent("index.sqlite").path }

    /// Files that decode and are indexed (paths relative to root), and their formats by content.
    public static let good = ["a.jpg", "b.png", "fake.jpg", "sub/c.jpg", "sub/d.bmp"]
    public static let goodFormats = ["bmp": 1, "jpeg": 2, "png": 2]

    public init(unreadable: Bool) throws {
        let fm = FileManager.default
        base = TestScratch.root.appendingPathComponent("vlm-tree-\(UUID().uuidString)")
        root = base.appendingPathComponent("photos")
        try fm.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: root.appendingPathComponent(".hidden"), withIntermediateDirectories: true)
        func copy(_ fixture: String, _ to: String) throws {
            try fm.copyItem(at: Fixtures.url(fixture), to: root.appendingPathComponent(to))
        }
        try copy("clip/images/chelsea.jpg", "a.jpg")
        try copy("clip/images/coffee.png", "b.png")
        try copy("clip/images/coffee.png", "fake.jpg")
        try copy("clip/images/astronaut.jpg", "sub/c.jpg")
        try copy("images/formats/photo24.bmp", "sub/d.bmp")
        try copy("clip/images/chelsea.jpg", ".hidden/x.jpg")
        try Data("just text, named like a photo\n".utf8).write(to: root.appendingPathComponent("text.jpg"))
        try Data("notes\n".utf8).write(to: root.appendingPathComponent("notes.txt"))
        try Data([0, 0, 0, 1]).write(to: root.appendingPathComponent(".DS_Store"))
        let links = [("loop", "."), ("sub/up", ".."), ("zz_alias", "sub"), ("broken.jpg", "nowhere.jpg"), ("self.jpg", "self.jpg")]
        for (link, target) in links {
            try fm.createSymbolicLink(atPath: root.appendingPathComponent(link).path, withDestinationPath: target)
        }
        guard mkfifo(root.appendingPathComponent("fifo.jpg").path, 0o644) == 0 else { throw CocoaError(.fileWriteUnknown) }
        // A name with bytes that are not UTF-8 (as copied from an old Latin-1 file system): written with open(2).
        let bad = Array(root.path.utf8) + Array("/bad".utf8) + [0xFF, 0xFE] + Array(".jpg".utf8) + [0]
        let jpeg = try Data(contentsOf: Fixtures.url("clip/images/chelsea.jpg"))
        let fd = bad.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o644) } }
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        _ = jpeg.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if unreadable {
            try copy("clip/images/chelsea.jpg", "locked.jpg")
            try fm.createDirectory(at: root.appendingPathComponent("lockeddir"), withIntermediateDirectories: true)
            try copy("clip/images/chelsea.jpg", "lockeddir/e.jpg")
            chmod(root.appendingPathComponent("locked.jpg").path, 0)
            chmod(root.appendingPathComponent("lockeddir").path, 0)
        }
    }

    /// Makes everything removable again and removes the tree.
    public func remove() {
        chmod(root.appendingPathComponent("lockeddir").path, 0o755)
        chmod(root.appendingPathComponent("locked.jpg").path, 0o644)
        let bad = Array(root.path.utf8) + Array("/bad".utf8) + [0xFF, 0xFE] + Array(".jpg".utf8) + [0]
        _ = bad.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { unlink($0.baseAddress!) } }
        try? FileManager.default.removeItem(at: base)
    }
}
