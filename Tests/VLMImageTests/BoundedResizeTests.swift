import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

/// The windowed resize (only the pixels a crop keeps) against its reference, the full resize then the crop; the
/// processors' cost bounds on extreme shapes; config sizes refused at load.
@Suite struct BoundedResizeTests {
    private struct Random {
        var seed: UInt64
        mutating func next(_ n: Int) -> Int {  // deterministic xorshift, so a failure reproduces
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return Int(seed % UInt64(n))
        }
        mutating func image(_ w: Int, _ h: Int) throws -> RGBImage {
            var px = [UInt8](repeating: 0, count: w * h * 3)
            for i in px.indices { px[i] = UInt8(next(256)) }
            return try RGBImage(width: w, height: h, pixels: px)
        }
    }

    /// Any window of any resize (both pass orders, skipped passes, up/down, odd sizes, 1-pixel sides), every
    /// filter, SIMD and portable: bit-identical to cropping the full resize.
    @Test func anyWindowEqualsFullResizeThenCrop() throws {
        var r = Random(seed: 0x2545F4914F6CDD1D)
        for _ in 0..<50 {
            let sw = 1 + r.next(30), sh = 1 + r.next(30)
            let dw = r.next(4) == 0 ? sw : 1 + r.next(50), dh = r.next(4) == 0 ? sh : 1 + r.next(50)
            let image = try r.image(sw, sh)
            let w = 1 + r.next(dw), h = 1 + r.next(dh), x = r.next(dw - w + 1), y = r.next(dh - h + 1)
            for filter in ResampleFilter.allCases {
                let full = try resize(image, width: dw, height: dh, filter: filter)
                for portable in [false, true] {
                    let window = try resizeWindow(image, width: dw, height: dh, x: x, y: y, windowWidth: w,
                                                  windowHeight: h, filter: filter, portable: portable)
                    #expect(window == crop(full, x: x, y: y, w: w, h: h),
                            "\(sw)x\(sh) -> \(dw)x\(dh) window \(w)x\(h)@(\(x),\(y)) \(filter) portable=\(portable)")
                }
            }
        }
    }

    /// resizeAndCenterCrop == centerCrop(resize) on extreme and odd shapes in both orientations, shortest-edge
    /// targets as CLIP computes them, crops smaller and larger than the resized image (zero padding), every filter.
    @Test func resizeAndCenterCropEqualsReferenceOnExtremeShapes() throws {
        var r = Random(seed: 0x9E3779B97F4A7C15)
        let shapes = [(1, 5000), (5000, 1), (3, 2001), (2001, 3), (7, 5), (5, 7), (1, 1), (640, 480), (33, 34)]
        for (sw, sh) in shapes {
            let image = try r.image(sw, sh)
            for shortest in [7, 24] {
                let processor = ImageProcessor(config: .clip)
                var config = processor.config
                config.size = .shortestEdge(shortest)
                let (th, tw) = try ImageProcessor(config: config).resizeTarget(height: sh, width: sw)
                for (ch, cw) in [(shortest, shortest), (5, 9), (shortest + 3, shortest + 2)] {
                    for filter in ResampleFilter.allCases {
                        let reference = try centerCrop(resize(image, width: tw, height: th, filter: filter), height: ch, width: cw)
                        for portable in [false, true] {
                            let ours = try resizeAndCenterCrop(image, width: tw, height: th, filter: filter, cropHeight: ch,
                                                               cropWidth: cw, portable: portable)
                            #expect(ours == reference, "\(sw)x\(sh) -> \(tw)x\(th) crop \(cw)x\(ch) \(filter) portable=\(portable)")
                        }
                    }
                }
            }
        }
    }

    /// The shapes of issue 15 through CLIP's processor (224 shortest edge: 600000x4 is a 33,600,000 x 224 resize,
    /// 22 GB if built): 224 x 224 out in well under a second each, not tens of seconds and gigabytes.
    @Test func extremeShapesCostWhatTheCropNeeds() throws {
        let processor = ImageProcessor(config: .clip)
        for (w, h) in [(600_000, 4), (4, 600_000), (1, 1_000_000), (1_000_000, 1)] {
            let image = try RGBImage(width: w, height: h, pixels: [UInt8](repeating: 200, count: w * h * 3))
            let start = Date()
            let out = try processor.geometry(image)
            let seconds = Date().timeIntervalSince(start)
            #expect(out.width == 224 && out.height == 224)
            #expect(seconds < 20, "\(w)x\(h): \(seconds) s")
            let t = try processor.preprocess(image)
            #expect(t.shape == [3, 224, 224])
        }
    }

    /// Without a crop the resize target is the output: above the limit it is refused before allocating, and the
    /// error names the input and the target.
    @Test func uncroppedResizeAboveTheLimitIsRefused() throws {
        var config = ImageProcessorConfig.clip
        config.doCenterCrop = false
        let processor = ImageProcessor(config: config)
        let image = try RGBImage(width: 600_000, height: 4, pixels: [UInt8](repeating: 9, count: 600_000 * 4 * 3))
        #expect(throws: ImageError.resizeTooLarge(width: 600_000, height: 4, targetWidth: 33_600_000, targetHeight: 224,
                                                  limit: "16384 per side and 67108864 pixels")) {
            try processor.preprocess(image)
        }
        let error = ImageError.resizeTooLarge(width: 600_000, height: 4, targetWidth: 33_600_000, targetHeight: 224, limit: "x")
        #expect(error.description.contains("600000x4") && error.description.contains("33600000x224"))
        // A target beyond the resampler's int range, even with a crop, is refused the same way.
        #expect(throws: ImageError.self) {
            try resizeAndCenterCrop(image, width: 1 << 30, height: 224, filter: .bicubic, cropHeight: 224, cropWidth: 224)
        }
        // A small one still works.
        let small = try RGBImage(width: 60, height: 4, pixels: [UInt8](repeating: 9, count: 60 * 4 * 3))
        #expect(try processor.preprocess(small).shape == [3, 224, 3360])
    }

    /// Config sizes beyond 16384 a side or 2^26 pixels are refused at load, naming the file and the key; hostile
    /// values (2^40) do not overflow.
    @Test func hostileConfigSizesAreRefusedAtLoad() throws {
        let cases: [(String, String)] = [
            (#"{"size": {"shortest_edge": 1000000}}"#, "size"),
            (#"{"size": 1000000}"#, "size"),
            (#"{"size": {"height": 16384, "width": 16384}}"#, "size"),
            (#"{"size": {"height": 1099511627776, "width": 1099511627776}}"#, "size"),
            (#"{"size": {"shortest_edge": 224, "longest_edge": 100000}}"#, "size"),
            (#"{"size": {"max_height": 20000, "max_width": 10}}"#, "size"),
            (#"{"crop_size": 1000000}"#, "crop_size"),
            (#"{"crop_size": {"height": 16384, "width": 8192}}"#, "crop_size"),
            (#"{"crop_size": {"height": -1, "width": 8}}"#, "crop_size"),
        ]
        for (json, key) in cases {
            let source = ImageProcessors.ConfigSource(json: Data(json.utf8), file: "/m/preprocessor_config.json")
            do {
                _ = try ImageProcessor(source: source)
                Issue.record("\(json) loaded")
            } catch let ImageError.invalidConfig(file, k, reason) {
                #expect(file == "/m/preprocessor_config.json" && k == key, "\(json): \(k) \(reason)")
            }
        }
        // The largest allowed sizes load.
        let ok = #"{"size": {"shortest_edge": 16384}, "crop_size": {"height": 16384, "width": 4096}}"#
        _ = try ImageProcessor(source: .init(json: Data(ok.utf8), file: "f"))
    }

    /// The solid-colour PNG writer the extreme-shape tests use decodes to exactly its pixels, at sizes libpng's
    /// writer refuses too, and stays small.
    @Test func solidPNGDecodesToItsColour() throws {
        for (w, h, rgb) in [(1, 1, (0, 0, 0)), (7, 5, (12, 200, 255)), (3, 300, (1, 2, 3)), (70_000, 2, (9, 8, 7)),
                            (2, 70_000, (255, 0, 128))] as [(Int, Int, (UInt8, UInt8, UInt8))] {
            let png = try ImageEncoder.solidPNG(width: w, height: h, rgb: rgb)
            let image = try ImageDecoder.decode(png)
            #expect(image.width == w && image.height == h)
            #expect(image.pixels == [UInt8]((0..<(w * h)).flatMap { _ in [rgb.0, rgb.1, rgb.2] }), "\(w)x\(h)")
            #expect(png.count < 4096 + w * h / 100, "\(w)x\(h): \(png.count) bytes")
        }
        #expect(throws: ImageEncodeError.self) { try ImageEncoder.solidPNG(width: 0, height: 4) }
    }

    private func crop(_ image: RGBImage, x: Int, y: Int, w: Int, h: Int) -> RGBImage {
        var px: [UInt8] = []
        px.reserveCapacity(w * h * 3)
        for row in y..<(y + h) {
            let start = (row * image.width + x) * 3
            px += image.pixels[start..<(start + w * 3)]
        }
        return RGBImage(unchecked: w, height: h, pixels: px)
    }
}
