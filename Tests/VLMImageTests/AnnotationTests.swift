import Foundation
import Testing
@testable import VLMImage

/// Canvas drawing (labels with the built-in 5x7 font, filled boxes, outlines): exact pixels where the font and
/// the geometry say, clipping at every edge without a crash, nothing drawn for an empty label.
@Suite struct AnnotationTests {
    static let black = Canvas.Colour(0, 0, 0)
    static let background = Canvas.Colour(10, 20, 30)

    static func blank(_ w: Int, _ h: Int, _ c: Canvas.Colour = black) throws -> RGBImage {
        try RGBImage(width: w, height: h, pixels: (0 ..< w * h).flatMap { _ in [c.r, c.g, c.b] })
    }

    static func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> Canvas.Colour {
        let i = (y * image.width + x) * 3
        return Canvas.Colour(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
    }

    @Test func fontCoversPrintableASCIIAndFallsBackToQuestionMark() {
        #expect(BitmapFont.glyphs.count == 95)
        #expect(BitmapFont.glyphs.allSatisfy { $0.count == 7 && $0.allSatisfy { $0 < 32 } })
        #expect(BitmapFont.rows(" ").allSatisfy { $0 == 0 })
        // Every visible character has ink; distinct characters have distinct glyphs.
        let visible = (0x21 ... 0x7E).map { Character(UnicodeScalar(UInt8($0))) }
        #expect(visible.allSatisfy { c in BitmapFont.rows(c).contains { $0 != 0 } })
        #expect(Set(visible.map { BitmapFont.rows($0) }).count == visible.count)
        let question = BitmapFont.rows("?")
        for c: Character in ["é", "猫", "\u{1E}", "\n", "🐱"] { #expect(BitmapFont.rows(c) == question, "\(c.unicodeScalars.map(\.value))") }
        // 'A': a 3-wide top bar, full-width crossbar on row 4.
        #expect((0 ..< 5).map { BitmapFont.isSet("A", x: $0, y: 0) } == [false, true, true, true, false])
        #expect((0 ..< 5).allSatisfy { BitmapFont.isSet("A", x: $0, y: 4) })
        #expect(!BitmapFont.isSet("A", x: 5, y: 0) && !BitmapFont.isSet("A", x: -1, y: 0) && !BitmapFont.isSet("A", x: 0, y: 7))
    }

    @Test func labelSizes() {
        #expect(Canvas.labelSize("") == (0, 0))
        #expect(Canvas.labelSize("A") == (7, 9))                       // 5x7 + 1 pixel padding each side
        #expect(Canvas.labelSize("cat") == (3 * 6 - 1 + 2, 9))
        #expect(Canvas.labelSize("cat", scale: 2, padding: 1) == ((3 * 6 - 1) * 2 + 4, 14 + 4))
    }

    /// Every pixel of a rendered label: background inside the label box, white where the font sets a pixel
    /// (scaled), untouched outside.
    @Test(arguments: [1, 2, 3]) func labelPixelsAreExactlyTheFont(scale: Int) throws {
        let text = "Hi, cat_9 é"
        let (x0, y0) = (3, 4)
        let size = Canvas.labelSize(text, scale: scale)
        var canvas = Canvas(try Self.blank(size.width + 10, size.height + 10))
        canvas.label(text, x: x0, y: y0, scale: scale, background: Self.background)
        let image = canvas.image
        let chars: [Character] = text.map { c in c.asciiValue == nil ? "?" : c }
        for y in 0 ..< image.height {
            for x in 0 ..< image.width {
                let (lx, ly) = (x - x0, y - y0)
                let expected: Canvas.Colour
                if lx < 0 || ly < 0 || lx >= size.width || ly >= size.height {
                    expected = Self.black
                } else {
                    let (gx, gy) = (lx - scale, ly - scale)  // inside the padding
                    let index = gx >= 0 ? gx / (BitmapFont.advance * scale) : -1
                    let column = gx >= 0 ? (gx % (BitmapFont.advance * scale)) / scale : -1
                    let ink = index >= 0 && index < chars.count && gy >= 0 && BitmapFont.isSet(chars[index], x: column, y: gy / scale)
                    expected = ink ? .white : Self.background
                }
                #expect(Self.pixel(image, x, y) == expected, "(\(x), \(y)) scale \(scale)")
                if Self.pixel(image, x, y) != expected { return }
            }
        }
    }

    /// A label partly outside the image shows exactly the part of it that falls inside; wholly outside, huge
    /// coordinates, huge scales and long texts draw nothing outside and do not crash.
    @Test func labelsClipAtEveryEdge() throws {
        let text = "Clipped label?"
        let size = Canvas.labelSize(text, scale: 2)
        let pad = 40
        var big = Canvas(try Self.blank(size.width + 2 * pad, size.height + 2 * pad))
        big.label(text, x: pad, y: pad, scale: 2, background: Self.background)
        let (w, h) = (30, 12)
        for (dx, dy) in [(-7, -5), (-size.width + 3, 2), (w - 5, h - 4), (5, -size.height + 1), (w - 10, -3), (-2, h - 2)] {
            var small = Canvas(try Self.blank(w, h))
            small.label(text, x: dx, y: dy, scale: 2, background: Self.background)
            for y in 0 ..< h {
                for x in 0 ..< w {
                    let (bx, by) = (x - dx + pad, y - dy + pad)
                    let inBig = bx >= 0 && by >= 0 && bx < big.width && by < big.height
                    let expected = inBig ? Self.pixel(big.image, bx, by) : Self.black
                    #expect(Self.pixel(small.image, x, y) == expected, "offset (\(dx), \(dy)) pixel (\(x), \(y))")
                }
            }
        }
        let blank = try Self.blank(w, h)
        var far = Canvas(blank)
        for (x, y) in [(w, 0), (0, h), (-1000, 0), (Int.max, Int.max), (Int.min, Int.min), (1 << 40, -(1 << 40))] {
            far.label(text, x: x, y: y, scale: 2, background: Self.background)
        }
        far.label(String(repeating: "long ", count: 20_000), x: -5, y: 0, scale: 64, padding: 1000, background: Self.background)
        far.label("x", x: 0, y: 0, scale: Int.max, padding: Int.max, background: Self.background)
        #expect(far.image.pixels.count == blank.pixels.count)
    }

    @Test func emptyLabelDrawsNothing() throws {
        let image = try Self.blank(8, 8)
        var canvas = Canvas(image)
        canvas.label("", x: 1, y: 1, background: Self.background)
        #expect(canvas.image == image)
    }

    @Test func fillAndOutlineClip() throws {
        var canvas = Canvas(try Self.blank(10, 10))
        canvas.fill(x: -5, y: 8, width: 7, height: 100, colour: .white)
        #expect(Self.pixel(canvas.image, 0, 8) == .white && Self.pixel(canvas.image, 1, 9) == .white)
        #expect(Self.pixel(canvas.image, 2, 9) == Self.black && Self.pixel(canvas.image, 0, 7) == Self.black)
        // A box outline: its corners and edges set (thickness 2 to the lower right), its inside untouched.
        var box = Canvas(try Self.blank(20, 20))
        box.outline([(2, 3), (12, 3), (12, 15), (2, 15)], colour: .white)
        for (x, y) in [(2, 3), (3, 4), (12, 3), (13, 16), (2, 15), (7, 3), (12, 9), (2, 9)] { #expect(Self.pixel(box.image, x, y) == .white, "(\(x), \(y))") }
        for (x, y) in [(7, 9), (1, 3), (14, 3), (5, 6)] { #expect(Self.pixel(box.image, x, y) == Self.black, "(\(x), \(y))") }
        // Non-finite and absurd points neither crash nor hang.
        var odd = Canvas(try Self.blank(6, 6))
        odd.outline([(.nan, 1), (.infinity, 2), (-1e300, 3), (1e300, 1e300), (2, 2)], colour: .white)
        odd.outline([], colour: .white)
        #expect(odd.image.pixels.count == 6 * 6 * 3)
    }
}
