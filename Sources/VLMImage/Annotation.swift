/// Drawing annotations (outlines, filled boxes, text labels) on an RGB image. A `Canvas` is a value: take an
/// image, draw, read `image` back; the input image is never changed. Everything is clipped to the image, so
/// shapes and labels partly or wholly outside it (or absurd coordinates) draw what falls inside and nothing else.
public struct Canvas: Sendable {
    public struct Colour: Sendable, Equatable {
        public var r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
        public static let white = Colour(255, 255, 255)
    }

    public private(set) var image: RGBImage
    /// False when the image's pixel buffer does not match its size (then nothing is drawn).
    private let drawable: Bool

    public init(_ image: RGBImage) {
        self.image = image
        drawable = image.pixels.count == image.width * image.height * 3
    }

    public var width: Int { image.width }
    public var height: Int { image.height }

    /// Coordinates are kept within ±2^30 so sums and products below never overflow.
    static func clamp(_ v: Int) -> Int { min(max(v, -(1 << 30)), 1 << 30) }

    /// The rectangle [x, x + w) x [y, y + h) filled, clipped to the image.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, colour: Colour) {
        guard drawable, w > 0, h > 0 else { return }
        let (x, y, w, h) = (Self.clamp(x), Self.clamp(y), Self.clamp(w), Self.clamp(h))
        let x0 = max(x, 0), x1 = min(x + w, width), y0 = max(y, 0), y1 = min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        for py in y0 ..< y1 {
            var i = (py * width + x0) * 3
            for _ in x0 ..< x1 {
                image.pixels[i] = colour.r; image.pixels[i + 1] = colour.g; image.pixels[i + 2] = colour.b
                i += 3
            }
        }
    }

    /// Line segments between consecutive `points` (and back to the first when `closed`), `thickness` pixels
    /// wide (each point of the line is a thickness x thickness square to its lower right). Non-finite points
    /// are skipped; points far outside the image are pulled in to a few image sizes away (the visible part of
    /// a line is unchanged unless an endpoint is more than that away).
    public mutating func outline(_ points: [(x: Double, y: Double)], closed: Bool = true, colour: Colour, thickness: Int = 2) {
        let limit = Double(4 * max(width, height))
        let p = points.filter { $0.x.isFinite && $0.y.isFinite }.map { (min(max($0.x, -limit), limit), min(max($0.y, -limit), limit)) }
        guard !p.isEmpty else { return }
        let t = max(1, min(thickness, 64))
        let segments = p.count == 1 ? 1 : (closed ? p.count : p.count - 1)
        for k in 0 ..< segments {
            let (a, b) = (p[k], p[(k + 1) % p.count])
            let steps = max(1, Int(max(abs(b.0 - a.0), abs(b.1 - a.1)).rounded(.up)))
            for s in 0 ... steps {
                let u = Double(s) / Double(steps)
                fill(x: Int((a.0 + (b.0 - a.0) * u).rounded()), y: Int((a.1 + (b.1 - a.1) * u).rounded()), width: t, height: t, colour: colour)
            }
        }
    }

    /// The size of a label: `text` at `scale` (BitmapFont) inside `padding` pixels of background on every side.
    /// An empty text has no label (0 x 0).
    public static func labelSize(_ text: String, scale: Int = 1, padding: Int = 1) -> (width: Int, height: Int) {
        guard !text.isEmpty else { return (0, 0) }
        let s = max(1, min(scale, 64)), pad = max(0, min(padding, 64)) * s, size = BitmapFont.size(of: text, scale: s)
        return (size.width + 2 * pad, size.height + 2 * pad)
    }

    /// `text` on a filled `background` box whose top-left corner is (x, y), glyphs in `foreground`, each font
    /// pixel a scale x scale square. Characters outside printable ASCII are drawn as '?'. An empty text draws
    /// nothing.
    public mutating func label(_ text: String, x: Int, y: Int, scale: Int = 1, padding: Int = 1,
                               foreground: Colour = .white, background: Colour) {
        let (w, h) = Self.labelSize(text, scale: scale, padding: padding)
        guard w > 0 else { return }
        let (x, y) = (Self.clamp(x), Self.clamp(y))
        fill(x: x, y: y, width: w, height: h, colour: background)
        let s = max(1, min(scale, 64)), pad = max(0, min(padding, 64)) * s
        guard y + pad < height, y + pad + BitmapFont.glyphHeight * s > 0 else { return }
        var gx = x + pad
        for character in text {
            if gx >= width { break }
            if gx + BitmapFont.glyphWidth * s > 0 {
                let rows = BitmapFont.rows(character)
                for (row, bits) in rows.enumerated() where bits != 0 {
                    for column in 0 ..< BitmapFont.glyphWidth where bits >> (BitmapFont.glyphWidth - 1 - column) & 1 == 1 {
                        fill(x: gx + column * s, y: y + pad + row * s, width: s, height: s, colour: foreground)
                    }
                }
            }
            gx += BitmapFont.advance * s
        }
    }
}
