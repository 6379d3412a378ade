import Foundation
import Testing
import VLMTestSupport
@testable import VLMImage

/// Tests/Fixtures/images/exif/manifest.json, written by Scripts/fixtures/exif_fixtures.py.
private struct ExifCase: Decodable {
    let file: String
    let orientation: Int
    let pil: String
}

@Suite struct ExifTests {
    private func cases() throws -> [ExifCase] { try Fixtures.json("images/exif/manifest.json") }

    /// All eight orientations (JPEG APP1 and PNG eXIf), the XMP fallback and the hand-built hostile EXIF blobs
    /// decode to exactly transformers' load_image (ImageOps.exif_transpose(Image.open(f)).convert("RGB")).
    @Test func matchesPillowExifTranspose() throws {
        let all = try cases()
        #expect(all.count == 32)
        #expect(Set(all.filter { $0.file.hasPrefix("orient") }.map(\.orientation)) == Set(1...8))
        for c in all {
            let url = imageFixture("exif/" + c.file)
            let image = try ImageDecoder.load(url)
            let golden = try goldenImage("exif/\(c.file).npy")
            #expect(image.width == golden.width && image.height == golden.height,
                    "\(c.file): \(image.width)x\(image.height), Pillow \(golden.width)x\(golden.height)")
            let d = diff(image.pixels, golden.pixels)
            #expect(d.count == 0, "\(c.file): \(d.count) bytes differ from exif_transpose, first at \(d.first ?? -1)")
            let read = ExifOrientation.read(try Data(contentsOf: url))
            let applied = read.flatMap { (2...8).contains($0) ? $0 : nil } ?? 1
            #expect(applied == c.orientation, "\(c.file): read \(String(describing: read)), Pillow applied \(c.orientation)")
        }
    }

    /// exifTranspose: false keeps the stored grid (Pillow's plain Image.open(f).convert("RGB")).
    @Test func rawGridOnRequest() throws {
        for c in try cases() {
            let ext = c.file.hasSuffix(".png") ? "png" : "jpg"
            let image = try ImageDecoder.load(imageFixture("exif/" + c.file), exifTranspose: false)
            let raw = try goldenImage("exif/raw_\(ext).npy")
            #expect(image == raw, "\(c.file)")
            let data = try Data(contentsOf: imageFixture("exif/" + c.file))
            #expect(try ImageDecoder.decode(data, exifTranspose: false) == raw, "\(c.file)")
        }
    }

    /// The pixel limit counts the same pixels before and after a 90-degree rotation; probe reports the stored grid.
    @Test func pixelLimitAndProbe() throws {
        let data = try Data(contentsOf: imageFixture("exif/orient6.jpg"))
        let probe = try ImageDecoder.probe(data)
        #expect(probe.width == 48 && probe.height == 32)
        let image = try ImageDecoder.decode(data, maxPixels: 48 * 32)
        #expect(image.width == 32 && image.height == 48)
        #expect(throws: ImageError.self) { try ImageDecoder.decode(data, maxPixels: 48 * 32 - 1) }
    }

    /// The transposes compose as the dihedral group: 6 then 8 is the identity, 3 twice too, 5/7 are involutions.
    @Test func transposeAlgebra() throws {
        let src = try goldenImage("exif/raw_jpg.npy")
        #expect(src.exifTransposed(6).exifTransposed(8) == src)
        #expect(src.exifTransposed(3).exifTransposed(3) == src)
        for o in [2, 4, 5, 7] { #expect(src.exifTransposed(o).exifTransposed(o) == src, "\(o)") }
        for o in [nil, 0, 1, 9, -6, 65535] { #expect(src.exifTransposed(o) == src) }
        let one = try RGBImage(width: 1, height: 1, pixels: [1, 2, 3])
        for o in 1...8 { #expect(one.exifTransposed(o) == one) }
    }

    /// Hostile EXIF beyond the fixtures: every prefix of the APP1 segment, random byte flips inside it, and random
    /// TIFF blobs read without a crash, an out-of-bounds read or a hang; decoding never fails because of EXIF.
    @Test func hostileExifNeverCrashes() throws {
        let data = try Data(contentsOf: imageFixture("exif/orient6.jpg"))
        var bytes = [UInt8](data)
        // APP1 starts right after SOI (Pillow writes no JFIF APP0 when EXIF is given? find it either way).
        guard let app1 = (2..<(bytes.count - 1)).first(where: { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xE1 }) else {
            Issue.record("no APP1 in orient6.jpg")
            return
        }
        let length = Int(bytes[app1 + 2]) << 8 | Int(bytes[app1 + 3])
        let exif = Array(bytes[(app1 + 4)..<(app1 + 2 + length)])
        for cut in 0...exif.count {
            _ = exif.prefix(cut).withUnsafeBufferPointer { ExifOrientation.fromTIFF($0) }
            _ = ExifOrientation.read(Data(bytes.prefix(app1 + 4 + cut)))
        }
        var rng = SplitMix(seed: 17)
        let original = bytes
        for round in 0..<400 {
            bytes = original
            for _ in 0..<(1 + rng.next() % 4) {
                let i = app1 + 4 + Int(rng.next() % UInt64(length - 2))
                bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            let mutated = Data(bytes)
            _ = ExifOrientation.read(mutated)
            if round % 20 == 0 {  // the image data is untouched: decoding must succeed, in one of 8 shapes
                let image = try ImageDecoder.decode(mutated)
                #expect(image.width * image.height == 48 * 32)
            }
        }
        for _ in 0..<2000 {
            let n = Int(rng.next() % 64)
            var blob = Array("Exif\0\0II*\0".utf8) + (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() % 24) }
            if rng.next() % 2 == 0 { blob[6] = 0x4D; blob[7] = 0x4D; blob[8] = 0; blob[9] = 42 }
            let tag = blob.withUnsafeBufferPointer { ExifOrientation.fromTIFF($0) }
            if let v = tag.value { #expect(tag.present && v >= Int(Int32.min) && v <= Int(UInt32.max)) }
        }
        #expect(ExifOrientation.read(Data()) == nil)
        #expect(ExifOrientation.read(Data([0xFF, 0xD8, 0xFF])) == nil)
        #expect(ExifOrientation.read(Data([0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x45])) == nil)
    }
}

/// A tiny deterministic generator for the fuzz loops.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
