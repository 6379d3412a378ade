import Foundation

/// The EXIF Orientation tag (0x0112) and PIL's `ImageOps.exif_transpose`, which transformers' `load_image`
/// applies to every file it opens.
///
/// The reader follows what Pillow 13 does for the same bytes:
///  * JPEG: every APP1 segment starting "Exif\0\0" before the first scan; the first is kept whole and later
///    ones are appended without their 6-byte prefix (JpegImagePlugin.APP). If the EXIF holds no Orientation
///    tag, an XMP packet (APP1 "http://ns.adobe.com/xap/1.0/\0", the last one) with `tiff:Orientation="N"` or
///    `<tiff:Orientation>N` is used (Image.getexif).
///  * TIFF: the Orientation tag of the file's own first IFD;
///  * PNG: the first eXIf chunk (PngImagePlugin.chunk_eXIf); XMP and "Raw profile type exif" text chunks are
///    not read.
///  * the TIFF structure: up to two leading "Exif\0\0", an 8-byte header ("II*\0" or "MM\0*"), then IFD0 only
///    (Image.Exif.load). Entries are read while complete; the first entry of a tag wins; the value counts only
///    as SHORT, LONG, SSHORT or SLONG with count 1 (anything else is present but not 1...8: no transform).
/// Only IFD0 is read and no offset other than IFD0's is followed, so there are no loops; every read is
/// bounds-checked and the work is linear in the size of the data.
public enum ExifOrientation {
    /// The orientation stored in `data` (JPEG, PNG or TIFF; other formats: nil), nil when absent or unreadable.
    /// Values outside 1...8 are returned as stored; `RGBImage.exifTransposed` leaves those alone, as PIL does.
    public static func read(_ data: Data) -> Int? {
        data.withUnsafeBytes { raw -> Int? in
            let bytes = raw.bindMemory(to: UInt8.self)
            if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return fromJPEG(bytes) }
            if bytes.count >= 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] {
                return fromPNG(bytes)
            }
            if bytes.count >= 8, (bytes[0] == 0x49 && bytes[1] == 0x49) || (bytes[0] == 0x4D && bytes[1] == 0x4D) {
                let tag = fromTIFF(bytes)  // a TIFF file's own IFD0 (Pillow's getexif for TIFF reads it)
                return tag.present ? tag.value : nil
            }
            return nil
        }
    }

    /// The IFD0 Orientation of a TIFF/EXIF blob (with or without "Exif\0\0" prefixes).
    /// `present` is true when the tag exists with a supported type, even if its value is unusable.
    static func fromTIFF(_ b: UnsafeBufferPointer<UInt8>) -> (present: Bool, value: Int?) {
        var start = 0
        for _ in 0..<2 where hasPrefix(b, at: start, Array("Exif\0\0".utf8)) { start += 6 }
        guard b.count - start >= 8 else { return (false, nil) }
        let little: Bool
        if b[start] == 0x49, b[start + 1] == 0x49, b[start + 2] == 42, b[start + 3] == 0 {
            little = true
        } else if b[start] == 0x4D, b[start + 1] == 0x4D, b[start + 2] == 0, b[start + 3] == 42 {
            little = false
        } else {
            return (false, nil)
        }
        let count = b.count - start  // offsets are relative to the TIFF header
        func u16(_ o: Int) -> Int {
            let p = start + o
            return little ? Int(b[p]) | Int(b[p + 1]) << 8 : Int(b[p]) << 8 | Int(b[p + 1])
        }
        func u32(_ o: Int) -> Int { little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2) }
        let ifd = u32(4)
        guard ifd <= count - 2 else { return (false, nil) }
        let entries = u16(ifd)
        // Tags before the Orientation entry only matter through "first entry of a tag wins": Orientation is
        // the only tag looked at, so the first complete Orientation entry of a supported type decides.
        var entry = ifd + 2
        for _ in 0..<entries {
            guard entry <= count - 12 else { break }  // truncated IFD: keep what was read
            defer { entry += 12 }
            guard u16(entry) == 0x0112 else { continue }
            let type = u16(entry + 2), n = u32(entry + 4)
            let unit: Int
            switch type {
            case 3, 8: unit = 2  // SHORT, SSHORT
            case 4, 9: unit = 4  // LONG, SLONG
            case 1, 2, 6, 7: unit = 1  // types Pillow loads but that never give an orientation 1...8
            case 5, 10, 11, 12, 13, 16, 17, 18: unit = 8  // rationals, float/double, IFD, LONG8: same
            default: continue  // unsupported type: Pillow skips the entry
            }
            if n != 1 {
                // Out-of-line data that is not all there is skipped by Pillow (the tag stays absent).
                let size = n.multipliedReportingOverflow(by: unit)
                if size.overflow { continue }
                if size.partialValue > 4 {
                    let offset = u32(entry + 8)
                    if size.partialValue > count || offset > count - size.partialValue { continue }
                }
                return (true, nil)
            }
            switch type {
            case 3: return (true, u16(entry + 8))
            case 8: return (true, Int(Int16(truncatingIfNeeded: u16(entry + 8))))
            case 4: return (true, u32(entry + 8))
            case 9: return (true, Int(Int32(truncatingIfNeeded: u32(entry + 8))))
            default:
                if unit > 4 {  // one rational/double: out of line
                    let offset = u32(entry + 8)
                    if unit > count || offset > count - unit { continue }
                }
                return (true, nil)
            }
        }
        return (false, nil)
    }

    private static func hasPrefix(_ b: UnsafeBufferPointer<UInt8>, at: Int, _ p: [UInt8]) -> Bool {
        guard b.count - at >= p.count else { return false }
        for i in 0..<p.count where b[at + i] != p[i] { return false }
        return true
    }

    private static func fromJPEG(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        var exif: [UInt8]?
        var xmp: Range<Int>?
        let exifMagic = Array("Exif\0\0".utf8), xmpMagic = Array("http://ns.adobe.com/xap/1.0/\0".utf8)
        var pos = 2
        while true {
            while pos < b.count, b[pos] != 0xFF { pos += 1 }
            while pos < b.count, b[pos] == 0xFF { pos += 1 }
            guard pos < b.count else { break }
            let marker = b[pos]
            pos += 1
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { continue }
            if marker == 0xD9 || marker == 0xDA { break }
            guard b.count - pos >= 2 else { break }
            let length = Int(b[pos]) << 8 | Int(b[pos + 1])
            guard length >= 2, b.count - pos >= length else { break }  // Pillow fails to open such a file
            let body = (pos + 2)..<(pos + length)
            if marker == 0xE1, hasPrefix(b, at: body.lowerBound, exifMagic), body.count >= 6 {
                if exif == nil { exif = Array(b[body]) } else { exif?.append(contentsOf: b[(body.lowerBound + 6)..<body.upperBound]) }
            } else if marker == 0xE1, body.count >= xmpMagic.count, hasPrefix(b, at: body.lowerBound, xmpMagic) {
                xmp = (body.lowerBound + xmpMagic.count)..<body.upperBound
            }
            pos += length
        }
        if let exif {
            let tag = exif.withUnsafeBufferPointer { fromTIFF($0) }
            if tag.present { return tag.value }
        }
        guard let xmp else { return nil }
        return xmpOrientation(UnsafeBufferPointer(rebasing: b[xmp]))
    }

    /// First `tiff:Orientation="D` or `tiff:Orientation>D` (Pillow's regex `tiff:Orientation(="|>)([0-9])`).
    private static func xmpOrientation(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        var i = 0
        while b.count - i >= key.count + 2 {
            if hasPrefix(b, at: i, key) {
                let j = i + key.count
                if b[j] == UInt8(ascii: "="), b[j + 1] == UInt8(ascii: "\""), b.count - j >= 3,
                   (48...57).contains(b[j + 2]) {
                    return Int(b[j + 2] - 48)
                }
                if b[j] == UInt8(ascii: ">"), (48...57).contains(b[j + 1]) { return Int(b[j + 1] - 48) }
            }
            i += 1
        }
        return nil
    }

    private static func fromPNG(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        var pos = 8
        while b.count - pos >= 12 {
            let length = Int(b[pos]) << 24 | Int(b[pos + 1]) << 16 | Int(b[pos + 2]) << 8 | Int(b[pos + 3])
            guard length <= b.count - pos - 12 else { return nil }
            let type = (b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7])
            if type == (0x65, 0x58, 0x49, 0x66) {  // "eXIf"
                let tag = fromTIFF(UnsafeBufferPointer(rebasing: b[(pos + 8)..<(pos + 8 + length)]))
                return tag.present ? tag.value : nil
            }
            if type == (0x49, 0x45, 0x4E, 0x44) { return nil }  // IEND
            pos += 12 + length
        }
        return nil
    }
}

extension RGBImage {
    /// PIL's `ImageOps.exif_transpose` for an orientation value: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
    /// 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise; any other value (1, 0, 9, ...,
    /// nil) leaves the image as it is. The pixel count never changes.
    public func exifTransposed(_ orientation: Int?) -> RGBImage {
        guard let o = orientation, (2...8).contains(o) else { return self }
        let w = width, h = height
        let swaps = o >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // Source pixel of output (x, y).
                        let sx: Int, sy: Int
                        switch o {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)  // 8
                        }
                        let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]
                        dst[d + 1] = src[s + 1]
                        dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(unchecked: ow, height: oh, pixels: out)
    }
}
