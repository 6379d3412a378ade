import Foundation
import Testing
import VLMTestSupport
@testable import VLMImage

/// Tests/Fixtures/images/formats/manifest.json, written by Scripts/fixtures/format_fixtures.py.
private struct FormatManifest: Decodable {
    let good: [String]
    let alpha: [String]
    let bad: [String: String]
    /// Lossy files: the largest |difference| allowed per channel value (libwebp versions may round differently).
    let lossy: [String: Int]
}

/// Largest per-byte |a - b| (Int.max when the sizes differ).
private func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    guard a.count == b.count else { return Int.max }
    return zip(a, b).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
}

@Suite struct FormatTests {
    private func manifest() throws -> FormatManifest { try Fixtures.json("images/formats/manifest.json") }

    /// Every BMP, WebP, GIF, TIFF, HEIC and AVIF fixture decodes to Pillow's Image.open(f).convert("RGB") (exactly, or for lossy files
    /// within the manifest's tolerance), and with compositeOnWhite to transformers' convert_to_rgb; probe
    /// reports the format and size from the header.
    @Test func formatsMatchPillow() throws {
        let m = try manifest()
        #expect(m.good.count >= 50)
        for name in m.good {
            let url = imageFixture("formats/" + name)
            let golden = try goldenImage("formats/\(name).npy")
            let image = try ImageDecoder.load(url)
            #expect(image.width == golden.width && image.height == golden.height, "\(name) size")
            let tolerance = m.lossy[name] ?? 0
            let d = diff(image.pixels, golden.pixels), worst = maxDifference(image.pixels, golden.pixels)
            #expect(worst <= tolerance, "\(name): \(d.count) bytes differ from Pillow (max \(worst)), first at \(d.first ?? -1)")
            let white = try ImageDecoder.load(url, alpha: .compositeOnWhite)
            let whiteGolden = m.alpha.contains(name) ? try goldenImage("formats/\(name).white.npy") : golden
            let dw = diff(white.pixels, whiteGolden.pixels)
            #expect(maxDifference(white.pixels, whiteGolden.pixels) <= tolerance, "\(name): \(dw.count) bytes differ from convert_to_rgb, first at \(dw.first ?? -1)")
            let probe = try ImageDecoder.probe(try Data(contentsOf: url))
            let formats: [String: ImageFormat] = ["bmp": .bmp, "gif": .gif, "tif": .tiff, "webp": .webp, "heic": .heif, "avif": .heif]
            let format = formats[String(name.split(separator: ".").last ?? "")]
            let stored = try ImageDecoder.load(url, exifTranspose: false)  // probe reports the stored grid
            #expect(probe.format == format && probe.width == stored.width && probe.height == stored.height, "\(name)")
            #expect(stored.width * stored.height == golden.width * golden.height, "\(name)")
        }
        #expect(Set(m.alpha) == ["bgra32_v4.bmp", "rgba32_v5.bmp", "alpha_lossless.webp", "alpha_lossy.webp",
                                 "transparent.gif", "offset_frame.gif", "alpha.heic", "alpha.avif", "rgba.tif", "rgba16.tif",
                                 "animated_alpha.webp", "animated_offset.webp"])
    }

    @Test func badBMPsGiveTheRightError() throws {
        let m = try manifest()
        #expect(m.bad.count == 14)
        for (name, kind) in m.bad {
            let url = imageFixture("formats/bad/" + name)
            do {
                _ = try ImageDecoder.load(url)
                Issue.record("\(name) decoded but should fail with \(kind)")
            } catch let error as ImageError {
                let got: String
                switch error {
                case .truncated(let f, _): got = f == url.path ? "truncated" : "\(error)"
                case .corrupt(let f, _): got = f == url.path ? "corrupt" : "\(error)"
                case .unsupported(let f, _): got = f == url.path ? "unsupported" : "\(error)"
                case .tooLarge(let f, _, _, _): got = f == url.path ? "tooLarge" : "\(error)"
                default: got = "\(error)"
                }
                #expect(got == kind, "\(name): \(error)")
                #expect(error.description.contains(name), "\(error)")
            }
        }
    }

    /// Every prefix of every BMP, and random byte flips in the headers, fail with an ImageError or decode: no
    /// crash, no out-of-bounds read, no allocation beyond the pixel limit.
    @Test func hostileFilesNeverCrash() throws {
        var state: UInt64 = 99
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        for name in try manifest().good {
            let data = try Data(contentsOf: imageFixture("formats/" + name))
            for cut in stride(from: 0, to: data.count, by: max(1, data.count / 61)) {
                do { _ = try ImageDecoder.decode(data.prefix(cut)) } catch is ImageError {}
            }
            var bytes = [UInt8](data)
            for _ in 0..<60 {
                let saved = bytes
                for _ in 0..<3 { bytes[Int(next() % UInt64(min(bytes.count, 140)))] = UInt8(truncatingIfNeeded: next()) }
                do { _ = try ImageDecoder.decode(Data(bytes), maxPixels: 1 << 20) } catch is ImageError {}
                bytes = saved
            }
        }
    }

    /// Formats still not decoded keep a clear error naming the format and what is supported.
    @Test func otherFormatsNamed() throws {
        for (magic, name) in [("\0\0\0\u{18}ftypqt  ", "ISO-BMFF without a HEIF/AVIF brand"), ("8BPS", "not a JPEG")] {
            do {
                _ = try ImageDecoder.decode(Data(magic.utf8) + Data(count: 64))
                Issue.record("\(name) decoded")
            } catch let error as ImageError {
                #expect(error.description.contains(name) && error.description.contains("GIF"), "\(error)")
            }
        }
    }
}
