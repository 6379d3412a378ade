import Foundation
import VLMScenes

/// PaliGemma's location tokens: a box is four tokens `<locYYYY><locXXXX><locYYYY><locXXXX>` (y_min, x_min,
/// y_max, x_max, in that order as big_vision writes them), each coordinate divided by the image side and
/// quantised into 1024 bins, optionally followed by its label ("<loc0128><loc0256><loc0512><loc0640> red star").
/// Several boxes are separated by " ; ".
public enum LocationTokens {
    public static let bins = 1024

    /// Every token, `<loc0000>` ... `<loc1023>`, in id order.
    public static var all: [String] { (0 ..< bins).map(token) }

    public static func token(_ bin: Int) -> String {
        "<loc" + String(repeating: "0", count: max(0, 4 - String(bin).count)) + String(bin) + ">"
    }

    /// The bin of a normalised coordinate (0...1): floor(v · 1024), clamped to 0...1023.
    public static func bin(_ v: Double) -> Int { min(bins - 1, max(0, Int((v * Double(bins)).rounded(.down)))) }

    /// A normalised box (x1, y1, x2, y2 in 0...1) as four tokens in PaliGemma's order.
    public static func encode(x1: Double, y1: Double, x2: Double, y2: Double) -> String {
        token(bin(y1)) + token(bin(x1)) + token(bin(y2)) + token(bin(x2))
    }

    /// A scene box (normalised) as four tokens.
    public static func encode(_ box: SceneBox) -> String { encode(x1: box.x1, y1: box.y1, x2: box.x2, y2: box.y2) }

    /// One decoded box: pixels of a `width` x `height` image (a bin maps to bin / 1024 of the side, as
    /// big_vision decodes) and the label text that followed the four tokens, trimmed.
    public struct Box: Codable, Equatable, Sendable {
        public var x1: Double, y1: Double, x2: Double, y2: Double
        public var label: String

        public init(x1: Double, y1: Double, x2: Double, y2: Double, label: String) {
            (self.x1, self.y1, self.x2, self.y2, self.label) = (x1, y1, x2, y2, label)
        }
    }

    /// Every group of four consecutive location tokens in `text` (spaces between the tokens allowed, as
    /// word-level decoders put them); the label is the text up to the next box or ";". Text without location
    /// tokens gives no boxes.
    public static func parse(_ text: String, width: Int, height: Int) -> [Box] {
        let scalars = Array(text.unicodeScalars)
        var boxes: [Box] = []
        var i = 0
        /// `<locNNNN>` at `j` (after optional spaces): its bin and the index after it.
        func loc(at j: Int) -> (Int, Int)? {
            var k = j
            while k < scalars.count, scalars[k] == " " { k += 1 }
            guard k + 9 <= scalars.count, String(String.UnicodeScalarView(scalars[k ..< k + 4])) == "<loc",
                  scalars[k + 8] == ">", let n = Int(String(String.UnicodeScalarView(scalars[k + 4 ..< k + 8]))), n >= 0, n < bins
            else { return nil }
            return (n, k + 9)
        }
        while i < scalars.count {
            var values: [Int] = []
            var j = i
            while values.count < 4, let (n, next) = loc(at: j) {
                values.append(n)
                j = next
            }
            guard values.count == 4 else {
                i = values.isEmpty ? i + 1 : j
                continue
            }
            var end = j
            while end < scalars.count, scalars[end] != ";", loc(at: end) == nil { end += 1 }
            let label = String(String.UnicodeScalarView(scalars[j ..< end])).trimmingCharacters(in: .whitespaces)
            let w = Double(width), h = Double(height), b = Double(bins)
            boxes.append(Box(x1: Double(values[1]) / b * w, y1: Double(values[0]) / b * h,
                             x2: Double(values[3]) / b * w, y2: Double(values[2]) / b * h, label: label))
            i = end
        }
        return boxes
    }

    /// The text with every location token removed and spaces collapsed: what a reader sees.
    public static func stripped(_ text: String) -> String {
        var out = text
        while let r = out.range(of: "<loc[0-9]{4}>", options: .regularExpression) { out.removeSubrange(r) }
        return out.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
