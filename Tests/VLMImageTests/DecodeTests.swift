import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

@Suite struct DecodeTests {
    /// Every good fixture decodes to exactly Pillow's Image.open(path).convert("RGB").
    @Test func decodeMatchesPillow() throws {
        let manifest = try ImageManifest.load()
        #expect(manifest.good.count >= 20)
        for name in manifest.good {
            let image = try ImageDecoder.load(imageFixture("good/" + name))
            let golden = try goldenImage("decode/\(name).npy")
            #expect(image.width == golden.width && image.height == golden.height, "\(name) size")
            let d = diff(image.pixels, golden.pixels)
            #expect(d.count == 0, "\(name): \(d.count) bytes differ from Pillow, first at \(d.first ?? -1)")
        }
    }

    /// With compositeOnWhite, files with transparency match transformers' convert_to_rgb; others are unchanged.
    @Test func compositeOnWhiteMatchesTransformers() throws {
        let manifest = try ImageManifest.load()
        #expect(manifest.alpha.sorted() == ["grey_alpha.png", "grey_alpha16.png", "grey_trns.png", "palette4_trns.png", "rgba.png", "rgba16.png"])
        for name in manifest.good {
            let image = try ImageDecoder.load(imageFixture("good/" + name), alpha: .compositeOnWhite)
            let golden = try goldenImage((manifest.alpha.contains(name) ? "decode_white/" : "decode/") + "\(name).npy")
            let d = diff(image.pixels, golden.pixels)
            #expect(d.count == 0, "\(name): \(d.count) bytes differ from convert_to_rgb, first at \(d.first ?? -1)")
        }
    }

    @Test func badFilesGiveTheRightError() throws {
        let manifest = try ImageManifest.load()
        #expect(manifest.bad.count == 7)
        for (name, kind) in manifest.bad where name != "gif_named.png" {  // GIF decodes since issue 17 (see below)
            let url = imageFixture("bad/" + name)
            do {
                _ = try ImageDecoder.load(url)
                Issue.record("\(name) decoded but should fail with \(kind)")
            } catch let error as ImageError {
                let got: String
                var file: String?
                switch error {
                case .empty(let f): (got, file) = ("empty", f)
                case .unknownFormat(let f, _): (got, file) = ("unknownFormat", f)
                case .corrupt(let f, _): (got, file) = ("corrupt", f)
                case .truncated(let f, _): (got, file) = ("truncated", f)
                case .tooLarge(let f, _, _, _): (got, file) = ("tooLarge", f)
                default: got = "\(error)"
                }
                #expect(got == kind, "\(name): \(error)")
                #expect(file == url.path, "\(name): error should name the file: \(error)")
                #expect(error.description.contains(name), "\(error)")
            }
        }
    }

    /// The 30000x30000 header is refused from the header: the error carries the size and the limit, and
    /// nothing near 2.7 GB is allocated (the check precedes the output buffer; see ImageDecoder.decode).
    @Test func hugeHeaderRefusedBeforeAllocation() throws {
        let data = try Data(contentsOf: imageFixture("bad/huge_30000x30000.png"))
        #expect(data.count < 100)
        let probe = try ImageDecoder.probe(data)
        #expect(probe.width == 30000 && probe.height == 30000 && probe.format == .png)
        #expect(throws: ImageError.tooLarge(file: nil, width: 30000, height: 30000, limit: ImageDecoder.defaultMaxPixels)) {
            try ImageDecoder.decode(data)
        }
        // The limit is configurable: a photo above a small limit is refused, and accepted with a larger one.
        let coffee = try Data(contentsOf: imageFixture("good/coffee.jpg"))
        #expect(throws: ImageError.tooLarge(file: nil, width: 600, height: 400, limit: 1000)) {
            try ImageDecoder.decode(coffee, maxPixels: 1000)
        }
        #expect(try ImageDecoder.decode(coffee, maxPixels: 240_000).width == 600)
    }

    @Test func magicBytesNotExtension() throws {
        // A JPEG named .png decodes (golden checked above); so does a GIF named .png (GIF is decoded since issue 17;
        // formats still not decoded are checked in FormatTests.otherFormatsNamed).
        let jpeg = try Data(contentsOf: imageFixture("good/jpeg_named.png"))
        #expect(try ImageDecoder.probe(jpeg).format == .jpeg)
        let gif = try Data(contentsOf: imageFixture("bad/gif_named.png"))
        #expect(try ImageDecoder.probe(gif).format == .gif)
        #expect(try ImageDecoder.load(imageFixture("bad/gif_named.png")).width == 4)
    }

    @Test func missingFileAndTruncationsAnywhere() throws {
        let missing = imageFixture("good/does_not_exist.jpg")
        do {
            _ = try ImageDecoder.load(missing)
            Issue.record("missing file decoded")
        } catch let error as ImageError {
            guard case .unreadable(let file, _) = error else { Issue.record("\(error)"); return }
            #expect(file == missing.path)
        }
        // Every prefix of a small JPEG and PNG fails cleanly (no crash, no exit) or, once complete, decodes.
        for name in ["progressive.jpg", "interlaced.png", "palette4_trns.png"] {
            let data = try Data(contentsOf: imageFixture("good/" + name))
            for cut in stride(from: 0, to: data.count, by: max(1, data.count / 97)) {
                do { _ = try ImageDecoder.decode(data.prefix(cut)) } catch is ImageError {} catch {
                    Issue.record("\(name)[..<\(cut)]: non-ImageError \(error)")
                }
            }
        }
    }
}
