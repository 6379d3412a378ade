import Foundation
import SwiftVLM
import Testing

/// `--draw`: a parsed task result's shapes outlined with their labels written (VLMImage's 5x7 font) in white on
/// the label's colour, above the shape or inside it at the top edge of the image; text answers draw nothing.
@Suite struct TaskDrawingTests {
    static func white(_ w: Int, _ h: Int) throws -> RGBImage { try RGBImage(width: w, height: h, pixels: [UInt8](repeating: 255, count: w * h * 3)) }

    static func pixel(_ image: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        let i = (y * image.width + x) * 3
        return Array(image.pixels[i ..< i + 3])
    }

    @Test func boxesGetTheirLabelsAboveOrInsideAtTheTopEdge() throws {
        let image = try Self.white(100, 80)
        let parsed: [String: Any] = ["<OD>": ["bboxes": [[10, 30, 60, 70], [70, 0, 98, 40]], "labels": ["cat", "dog"]]]
        let drawn = TaskDrawing.draw(parsed, on: image)
        let red: [UInt8] = [230, 25, 75], green: [UInt8] = [60, 180, 75], white: [UInt8] = [255, 255, 255]
        #expect(TaskDrawing.labelScale(width: 100, height: 80) == 1)
        // "cat": a 19x9 label whose bottom touches the box's top edge: (10, 21) ..< (29, 30).
        let cat = Canvas.labelSize("cat")
        #expect(cat == (19, 9))
        #expect(Self.pixel(drawn, 10, 21) == red && Self.pixel(drawn, 28, 29) == red)
        for row in 0 ..< 7 {
            for column in 0 ..< 17 {
                let c: Character = Array("cat")[column / 6]
                let ink = BitmapFont.isSet(c, x: column % 6, y: row)
                #expect(Self.pixel(drawn, 11 + column, 22 + row) == (ink ? white : red), "cat (\(column), \(row))")
            }
        }
        #expect(Self.pixel(drawn, 10, 20) == white && Self.pixel(drawn, 29, 21) == white)
        // The outline: the left edge of the box.
        #expect(Self.pixel(drawn, 10, 50) == red && Self.pixel(drawn, 11, 50) == red && Self.pixel(drawn, 12, 50) == white)
        // "dog" at the top edge: no room above, so just inside the box's top, moved left to fit the image.
        let dog = Canvas.labelSize("dog")
        let x = min(70, 100 - dog.width)
        #expect(Self.pixel(drawn, x, 0) == green && Self.pixel(drawn, x + dog.width - 1, dog.height - 1) == green)
        #expect(TaskDrawing.labelOrigin(top: (70, 0), size: dog, imageWidth: 100) == (x, 0))
    }

    /// More labels than palette colours, then a label seen before: colours cycle and a repeated label keeps its
    /// colour (found by the `tasks` fuzzer: the 7th label's second box indexed past the 6-colour palette).
    @Test func moreLabelsThanColoursCycleAndRepeatsKeepTheirColour() throws {
        let image = try Self.white(200, 40)
        let names = ["a", "b", "c", "d", "e", "f", "g", "a", "g"]
        let boxes = names.indices.map { i -> [Int] in [2 + i * 22, 12, 20 + i * 22, 38] }
        let drawn = TaskDrawing.draw(["<OD>": ["bboxes": boxes, "labels": names]], on: image)
        let red: [UInt8] = [230, 25, 75]
        // Left edges (row 30): "a" red, "g" (7th label) red again, the second "a" and "g" as their first boxes.
        #expect(Self.pixel(drawn, 2, 30) == red && Self.pixel(drawn, 2 + 6 * 22, 30) == red)
        #expect(Self.pixel(drawn, 2 + 7 * 22, 30) == red && Self.pixel(drawn, 2 + 8 * 22, 30) == red)
        #expect(Self.pixel(drawn, 2 + 22, 30) == [60, 180, 75])
    }

    @Test func quadBoxesAndPolygonsAreLabelledAndTextAnswersDrawNothing() throws {
        let image = try Self.white(60, 60)
        let ocr: [String: Any] = ["<OCR_WITH_REGION>": ["quad_boxes": [[5, 20, 50, 20, 50, 40, 5, 40]], "labels": ["Çafé"]]]
        let drawn = TaskDrawing.draw(ocr, on: image)
        #expect(Self.pixel(drawn, 5, 11) == [230, 25, 75])  // label box (4 chars -> 25x9) above y = 20
        // Non-ASCII characters are drawn as '?': the first glyph (Ç) is a '?' (its top row checked).
        let q = BitmapFont.rows("?")[0]
        for column in 0 ..< 5 { #expect((Self.pixel(drawn, 6 + 0 * 6 + column, 12) == [255, 255, 255]) == (q >> (4 - column) & 1 == 1)) }
        let polygons: [String: Any] = ["<REFERRING_EXPRESSION_SEGMENTATION>": ["polygons": [[[10, 30, 40, 30, 25, 55]]], "labels": [""]]]
        let poly = TaskDrawing.draw(polygons, on: image)
        #expect(Self.pixel(poly, 25, 30) == [230, 25, 75] && Self.pixel(poly, 25, 29) == [255, 255, 255])  // no label for ""
        #expect(TaskDrawing.draw(["<CAPTION>": "a cat"], on: image) == image)
    }
}
