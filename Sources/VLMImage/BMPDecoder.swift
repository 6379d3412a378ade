import Foundation

/// Windows/OS2 bitmaps, decoded as Pillow 13's BmpImagePlugin + convert("RGB") decodes them:
///  * headers of 12 (OS/2 1.x: 16-bit sizes, 3-byte palette entries) and 40/52/56/64/108/124 bytes (4-byte
///    entries); a negative height (top byte 0xFF) means top-down rows, otherwise bottom-up; rows padded to 4 bytes;
///  * pixel data at the file header's offset, except that an offset of 14 + header size with 1/4/8 bits is taken
///    to mean "right after the palette", as Pillow does;
///  * 1, 4 and 8 bits through the palette (`colors` entries, 0 meaning 2^bits); an 8-bit file whose palette is
///    the grey ramp 0...colors-1 is Pillow's mode "L" (index = grey level, also past the palette's end); a
///    colour palette looks indices past its end up as black (Pillow's padded palette);
///  * 24 bits BGR; 32 bits BGRX (alpha ignored, as Pillow without USE_RAW_ALPHA); BI_BITFIELDS with the byte-
///    aligned masks Pillow supports — with an alpha mask the image is RGBA, so `.compositeOnWhite` composites;
///  * RLE4/RLE8, 16-bit, JPEG/PNG-in-BMP and 4-bit grey ramps (where Pillow misreads the rows) are refused with
///    `ImageError.unsupported`.
enum BMPDecoder {
    static func isBMP(_ b: UnsafeBufferPointer<UInt8>) -> Bool { b.count >= 2 && b[0] == 0x42 && b[1] == 0x4D }

    struct Header {
        var width = 0, height = 0, bits = 0, compression = 0, colors = 0
        var topDown = false
        var paletteEntry = 4, paletteStart = 0, dataOffset = 0
        var masks: (r: UInt32, g: UInt32, b: UInt32, a: UInt32)?
    }

    private static func u16(_ b: UnsafeBufferPointer<UInt8>, _ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
    private static func u32(_ b: UnsafeBufferPointer<UInt8>, _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    static func header(_ b: UnsafeBufferPointer<UInt8>) throws -> Header {
        guard b.count >= 18 else { throw ImageError.truncated(file: nil, detail: "BMP ends inside its file header (\(b.count) bytes)") }
        var h = Header()
        let size = Int(u32(b, 14))
        h.dataOffset = Int(u32(b, 10))
        guard [12, 40, 52, 56, 64, 108, 124].contains(size) else {
            throw ImageError.unsupported(file: nil, detail: "BMP header of \(size) bytes")
        }
        guard b.count >= 14 + size else { throw ImageError.truncated(file: nil, detail: "BMP ends inside its info header") }
        let p = 18  // after the 4-byte header size
        if size == 12 {
            h.width = u16(b, p)
            h.height = u16(b, p + 2)
            h.bits = u16(b, p + 6)
            h.paletteEntry = 3
        } else {
            h.width = Int(u32(b, p))
            let rawHeight = u32(b, p + 4)
            h.topDown = b[p + 7] == 0xFF
            h.height = h.topDown ? Int(UInt32(0) &- rawHeight) : Int(rawHeight)
            h.bits = u16(b, p + 10)
            h.compression = Int(u32(b, p + 12))
            h.colors = Int(u32(b, p + 28))
            if h.compression == 3 {
                if size >= 52 {
                    h.masks = (u32(b, p + 36), u32(b, p + 40), u32(b, p + 44), size >= 56 ? u32(b, p + 48) : 0)
                } else {
                    guard b.count >= 14 + size + 12 else { throw ImageError.truncated(file: nil, detail: "BMP ends inside its bit masks") }
                    h.masks = (u32(b, 14 + size), u32(b, 18 + size), u32(b, 22 + size), 0)
                }
            }
        }
        h.paletteStart = 14 + size + (size == 40 && h.compression == 3 ? 12 : 0)
        if h.colors == 0 { h.colors = h.bits < 31 ? 1 << h.bits : 0 }
        if h.dataOffset == 14 + size && h.bits <= 8 { h.dataOffset += h.paletteEntry * h.colors }
        guard h.width > 0, h.height > 0, h.width < 1 << 31, h.height < 1 << 31 else {
            throw ImageError.corrupt(file: nil, detail: "BMP header has invalid dimensions \(h.width)x\(h.height)")
        }
        switch h.compression {
        case 0: break
        case 1, 2: throw ImageError.unsupported(file: nil, detail: "run-length encoded BMP (RLE\(h.compression == 1 ? 8 : 4))")
        case 3:
            guard h.bits == 24 || h.bits == 32, let m = h.masks, bitfieldsSupported(h.bits, m) else {
                throw ImageError.unsupported(file: nil, detail: "BMP bit-field layout for \(h.bits) bits")
            }
        default: throw ImageError.unsupported(file: nil, detail: "BMP compression \(h.compression)")
        }
        guard [1, 4, 8, 24, 32].contains(h.bits) else { throw ImageError.unsupported(file: nil, detail: "BMP with \(h.bits) bits per pixel") }
        if h.bits <= 8, !(1...65536).contains(h.colors) {
            throw ImageError.corrupt(file: nil, detail: "BMP palette of \(h.colors) colours")
        }
        return h
    }

    /// Pillow's SUPPORTED table: every accepted mask set is byte-aligned, so a shift extracts each channel.
    private static func bitfieldsSupported(_ bits: Int, _ m: (r: UInt32, g: UInt32, b: UInt32, a: UInt32)) -> Bool {
        if bits == 24 { return m.r == 0xFF0000 && m.g == 0xFF00 && m.b == 0xFF }
        let ok: [(UInt32, UInt32, UInt32, UInt32)] = [
            (0xFF0000, 0xFF00, 0xFF, 0), (0xFF00_0000, 0xFF0000, 0xFF00, 0), (0xFF00_0000, 0xFF00, 0xFF, 0),
            (0xFF00_0000, 0xFF0000, 0xFF00, 0xFF), (0xFF, 0xFF00, 0xFF0000, 0xFF00_0000),
            (0xFF0000, 0xFF00, 0xFF, 0xFF00_0000), (0xFF00_0000, 0xFF00, 0xFF, 0xFF0000), (0, 0, 0, 0),
        ]
        return ok.contains { $0 == m }
    }

    /// Decodes into `out` (width * height * 3 bytes, the caller checked the pixel limit).
    static func decode(_ b: UnsafeBufferPointer<UInt8>, _ h: Header, alpha: AlphaHandling, into out: UnsafeMutableBufferPointer<UInt8>) throws {
        let (w, ht) = (h.width, h.height)
        let stride = ((w * h.bits + 31) >> 3) & ~3
        guard h.dataOffset <= b.count, stride <= (b.count - h.dataOffset) / ht,
              stride * ht <= b.count - h.dataOffset else {
            throw ImageError.truncated(file: nil, detail: "BMP pixel data ends early (\(b.count) bytes for \(w)x\(ht) at \(h.bits) bits)")
        }
        // Palette as RGB triples, 256 entries (enough for every 8-bit index; grey ramp for mode "L").
        var palette = [UInt8](repeating: 0, count: 256 * 3)
        if h.bits <= 8 {
            let n = h.colors
            guard h.paletteStart <= b.count, n <= (b.count - h.paletteStart) / h.paletteEntry else {
                throw ImageError.truncated(file: nil, detail: "BMP ends inside its palette of \(n) colours")
            }
            var grey = true
            for i in 0..<n {
                let e = h.paletteStart + i * h.paletteEntry
                let v = UInt8(truncatingIfNeeded: n == 2 ? i * 255 : i)
                if b[e] != v || b[e + 1] != v || b[e + 2] != v { grey = false }
                if i < 256 { (palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]) = (b[e + 2], b[e + 1], b[e]) }
            }
            // Pillow reads grey-ramp palettes as raw "1"/"L" rows, right only for 1 bit x 2 colours and 8 bits.
            if grey, !(h.bits == 8 && n != 2), !(h.bits == 1 && n == 2) {
                throw ImageError.unsupported(file: nil, detail: "\(h.bits)-bit BMP with a \(n)-entry grey-ramp palette")
            }
            if grey, h.bits == 8 { for i in 0..<256 { palette[3 * i] = UInt8(i); palette[3 * i + 1] = UInt8(i); palette[3 * i + 2] = UInt8(i) } }
        }
        var shifts: (r: UInt32, g: UInt32, b: UInt32, a: UInt32?) = (16, 8, 0, nil)  // BGRX
        if h.bits == 32, let m = h.masks {
            if m == (0, 0, 0, 0) {
                shifts = (16, 8, 0, 24)
            } else {
                shifts = (UInt32(m.r.trailingZeroBitCount), UInt32(m.g.trailingZeroBitCount), UInt32(m.b.trailingZeroBitCount),
                          m.a == 0 ? nil : UInt32(m.a.trailingZeroBitCount))
            }
        }
        let composite = alpha == .compositeOnWhite && shifts.a != nil
        for y in 0..<ht {
            let row = h.dataOffset + (h.topDown ? y : ht - 1 - y) * stride
            var d = y * w * 3
            switch h.bits {
            case 24:
                for x in 0..<w {
                    let s = row + 3 * x
                    out[d] = b[s + 2]; out[d + 1] = b[s + 1]; out[d + 2] = b[s]
                    d += 3
                }
            case 32:
                for x in 0..<w {
                    let v = u32(b, row + 4 * x)
                    var r = UInt8(truncatingIfNeeded: v >> shifts.r), g = UInt8(truncatingIfNeeded: v >> shifts.g)
                    var bl = UInt8(truncatingIfNeeded: v >> shifts.b)
                    if composite, let sa = shifts.a {
                        let a = UInt32(UInt8(truncatingIfNeeded: v >> sa))
                        (r, g, bl) = (overWhite(UInt32(r), a), overWhite(UInt32(g), a), overWhite(UInt32(bl), a))
                    }
                    out[d] = r; out[d + 1] = g; out[d + 2] = bl
                    d += 3
                }
            default:  // 1, 4, 8 bits through the palette, most significant bits first
                let perByte = 8 / h.bits, mask = (1 << h.bits) - 1
                for x in 0..<w {
                    let byte = Int(b[row + x / perByte])
                    let index = (byte >> ((perByte - 1 - x % perByte) * h.bits)) & mask
                    out[d] = palette[3 * index]; out[d + 1] = palette[3 * index + 1]; out[d + 2] = palette[3 * index + 2]
                    d += 3
                }
            }
        }
    }

    /// Pillow's alpha_composite onto opaque white (the arithmetic of vlm_img_over_white in image_internal.h).
    static func overWhite(_ c: UInt32, _ a: UInt32) -> UInt8 {
        if a == 0 { return 255 }
        let t = (c * (a << 7) + 255 * ((255 - a) << 7)) + (0x80 << 7)
        return UInt8(truncatingIfNeeded: (((t >> 8) + t) >> 8) >> 7)
    }
}
