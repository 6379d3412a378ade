import Foundation

extension ImageEncoder {
    /// A valid 8-bit RGB PNG of `width` x `height` pixels all of colour `rgb`, at any size PNG allows (1...2^31-1 per
    /// side), written in a few KB without building the pixels: rows are Sub/Up-filtered so the filtered stream is
    /// almost all zeros and repeats with the row's period, and one fixed-Huffman deflate block of 258-byte matches
    /// (distance 1, or one row back when a row fits deflate's 32 KB window) codes it. libpng's writer (`png`) is
    /// capped at 65500 per side; this is what tests and probes use to make images of extreme shape (600000x4 is
    /// ~15 KB, 4x600000 ~60 KB). Time: O(width x height) byte comparisons, no allocation beyond the output.
    public static func solidPNG(width: Int, height: Int, rgb: (UInt8, UInt8, UInt8) = (0, 0, 0)) throws -> Data {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max), width * 3 < Int(Int32.max) else {
            throw ImageEncodeError.invalidImage(width: width, height: height, bytes: 0)
        }
        let rowLength = 1 + 3 * width, total = rowLength * height
        // The filtered stream: row 0 is Sub (filter 1: the first pixel, then zero differences), every later row
        // Up (filter 2: all zero differences from the row above).
        func byte(_ i: Int) -> UInt8 {
            let (row, column) = i.quotientAndRemainder(dividingBy: rowLength)
            if column == 0 { return row == 0 ? 1 : 2 }
            guard row == 0 else { return 0 }
            switch column {
            case 1: return rgb.0
            case 2: return rgb.1
            case 3: return rgb.2
            default: return 0
            }
        }
        var bits = BitWriter()
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE = 01, fixed Huffman codes
        var i = 0
        while i < total {
            var best = (length: 0, distance: 0)
            for distance in [rowLength, 1] where distance <= 32768 && i >= distance {
                var n = 0
                while n < 258, i + n < total, byte(i + n) == byte(i + n - distance) { n += 1 }
                if n > best.length { best = (n, distance) }
            }
            if best.length >= 3 {
                bits.match(length: best.length, distance: best.distance)
                i += best.length
            } else {
                bits.symbol(Int(byte(i)))
                i += 1
            }
        }
        bits.symbol(256)  // end of block
        var a: UInt32 = 1, b: UInt32 = 0  // Adler-32 of the filtered stream
        for j in 0..<total {
            a = (a + UInt32(byte(j))) % 65521
            b = (b + a) % 65521
        }
        var idat: [UInt8] = [0x78, 0x01] + bits.finish()
        idat += bigEndian(b << 16 | a)
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
        png += chunk("IDAT", idat)
        png += chunk("IEND", [])
        return Data(png)
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in body {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return bigEndian(UInt32(data.count)) + body + bigEndian(~crc)
    }
}

/// Deflate's bit order: fields least significant bit first, Huffman codes most significant bit first.
private struct BitWriter {
    private var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var count = 0

    mutating func write(_ value: Int, count n: Int) {
        buffer |= UInt64(value) << UInt64(count)
        count += n
        while count >= 8 {
            bytes.append(UInt8(buffer & 0xFF))
            buffer >>= 8
            count -= 8
        }
    }

    /// A Huffman code of `length` bits, sent from its most significant bit.
    mutating func code(_ code: Int, length: Int) {
        var reversed = 0
        for k in 0..<length where code >> k & 1 != 0 { reversed |= 1 << (length - 1 - k) }
        write(reversed, count: length)
    }

    /// A literal/length symbol 0...287 with deflate's fixed code (RFC 1951 3.2.6).
    mutating func symbol(_ v: Int) {
        switch v {
        case 0...143: code(0x30 + v, length: 8)
        case 144...255: code(0x190 + v - 144, length: 9)
        case 256...279: code(v - 256, length: 7)
        default: code(0xC0 + v - 280, length: 8)
        }
    }

    private static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99,
                                     115, 131, 163, 195, 227, 258]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                       1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]

    /// A match of 3...258 bytes at distance 1...32768.
    mutating func match(length: Int, distance: Int) {
        let l = Self.lengthBase.lastIndex { $0 <= length } ?? 0
        symbol(257 + l)
        write(length - Self.lengthBase[l], count: Self.lengthExtra[l])
        let d = Self.distanceBase.lastIndex { $0 <= distance } ?? 0
        code(d, length: 5)
        write(distance - Self.distanceBase[d], count: d < 4 ? 0 : d / 2 - 1)
    }

    mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
        buffer = 0
        count = 0
        return bytes
    }
}
