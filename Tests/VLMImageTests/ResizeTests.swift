import Foundation
import Testing
import VLMTensor
import VLMTestSupport
@testable import VLMImage

@Suite struct ResizeTests {
    /// Image.resize for all six Pillow filters, down / up / one axis / odd sizes: bit-exact, on both the SIMD and
    /// the portable C paths.
    @Test func everyFilterMatchesPillowExactly() throws {
        let manifest = try ImageManifest.load()
        #expect(manifest.resize.count == 6 * 16)
        var sources: [String: RGBImage] = [:]
        for entry in manifest.resize {
            let source = try sources[entry.source] ?? goldenImage("decode/\(entry.source).npy")
            sources[entry.source] = source
            let filter = try #require(ResampleFilter(rawValue: entry.filter))
            let golden = try goldenImage("resize/" + entry.file)
            for portable in [false, true] {
                let out = try resize(source, width: entry.width, height: entry.height, filter: filter, portable: portable)
                #expect(out.width == entry.width && out.height == entry.height)
                let d = diff(out.pixels, golden.pixels)
                #expect(d.count == 0, "\(entry.file) portable=\(portable): \(d.count) bytes differ, first at \(d.first ?? -1)")
            }
        }
    }

    /// The AVX2 horizontal pass (pairs of output pixels, pairs of rows, widened rows) equals the portable one on
    /// many random shapes, both pass orders, odd widths and heights, and 1-pixel sides.
    @Test func simdPathEqualsPortablePath() throws {
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func next(_ n: Int) -> Int {  // deterministic xorshift, so a failure reproduces
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return Int(seed % UInt64(n))
        }
        for _ in 0..<60 {
            let sw = 1 + next(40), sh = 1 + next(40), dw = 1 + next(60), dh = 1 + next(60)
            let px = (0..<(sw * sh * 3)).map { _ in UInt8(next(256)) }
            let image = try RGBImage(width: sw, height: sh, pixels: px)
            for filter in ResampleFilter.allCases {
                let a = try resize(image, width: dw, height: dh, filter: filter, portable: false)
                let b = try resize(image, width: dw, height: dh, filter: filter, portable: true)
                #expect(a == b, "\(sw)x\(sh) -> \(dw)x\(dh) \(filter)")
            }
        }
    }

    @Test func sameSizeIsACopyAndBadSizesThrow() throws {
        let image = try goldenImage("decode/tiny_3x3.png.npy")
        for filter in ResampleFilter.allCases {
            #expect(try resize(image, width: 3, height: 3, filter: filter) == image)
        }
        #expect(throws: ImageError.self) { try resize(image, width: 0, height: 3, filter: .bicubic) }
        #expect(throws: ImageError.self) { try resize(image, width: 3, height: -1, filter: .bicubic) }
        // pixels is a var: a buffer that no longer matches width x height is refused, never read out of bounds.
        var broken = image
        broken.pixels.removeLast(3)
        #expect(throws: ImageError.self) { try resize(broken, width: 300, height: 300, filter: .lanczos) }
        #expect(throws: ImageError.self) { try centerCrop(broken, height: 2, width: 2) }
        #expect(throws: ImageError.self) { try ImageProcessor(config: .clip).preprocess(broken) }
    }

    @Test func centerCropCropsAndPadsLikeTransformers() throws {
        // 4 wide x 3 high, pixel value = 10 * y + x in every channel.
        var px: [UInt8] = []
        for y in 0..<3 { for x in 0..<4 { px += Array(repeating: UInt8(10 * y + x), count: 3) } }
        let image = try RGBImage(width: 4, height: 3, pixels: px)
        func values(_ img: RGBImage) -> [UInt8] { stride(from: 0, to: img.pixels.count, by: 3).map { img.pixels[$0] } }
        // Smaller: top = (3-1)//2 = 1, left = (4-2)//2 = 1.
        #expect(values(try centerCrop(image, height: 1, width: 2)) == [11, 12])
        // Larger in both: top = (3-6)//2 = -2 (floor), left = (4-5)//2 = -1: two zero rows above, one zero column left.
        let big = try centerCrop(image, height: 6, width: 5)
        #expect(values(big) == [0, 0, 0, 0, 0,
                                0, 0, 0, 0, 0,
                                0, 0, 1, 2, 3,
                                0, 10, 11, 12, 13,
                                0, 20, 21, 22, 23,
                                0, 0, 0, 0, 0])
        // Mixed: taller crop, narrower crop.
        #expect(values(try centerCrop(image, height: 4, width: 1)) == [0, 1, 11, 21])
    }

    @Test func pixelValuesAreChannelsFirst() throws {
        let image = try RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 10, 20, 30])
        let t = try pixelValues(image, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        #expect(t.shape == [3, 1, 2])
        let expected: [Float] = [0, 10, 128, 20, 255, 30].map { (Float(Double($0) / 255) - 0.5) / 0.5 }
        #expect(t.scalars == expected)
        #expect(throws: ImageError.self) { try pixelValues(image, mean: [0.5], std: [0.5]) }
    }
}
