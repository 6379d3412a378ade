import VLMImage

/// An 8-bit RGB image, row-major HWC with no padding: the same layout as VLMImage's `RGBImage`
/// (`RGBImage(width:height:pixels:)`), so the two convert without copying pixel order.
public struct SceneImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The image front end's type (same layout, so no pixel reordering). Throws only for an inconsistent
    /// buffer, which the renderer never produces.
    public func rgbImage() throws -> RGBImage {
        do { return try RGBImage(width: width, height: height, pixels: pixels) } catch {
            throw SceneError.invalidArgument("scene image \(width)x\(height) with \(pixels.count) bytes: \(error)")
        }
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// Point-in-shape tests in an object's local frame: u, v in -1...1 across its bounding square, v down.
/// Only +, -, *, / and comparisons on doubles (no libm trigonometry), so the same inputs give the same
/// coverage on every platform; the star's vertices are written out as literals for the same reason.
public enum ShapeGeometry {
    public static func contains(_ shape: SceneShape, _ u: Double, _ v: Double) -> Bool {
        switch shape {
        case .circle:
            return u * u + v * v <= 1
        case .ring:
            let d = u * u + v * v
            return d <= 1 && d >= 0.3  // inner radius ~0.55: the hole stays >= 3 px wide at the small size
        case .square:
            return abs(u) <= 0.84 && abs(v) <= 0.84  // a bit inside the box so its area is close to the circle's
        case .diamond:
            return abs(u) + abs(v) <= 1
        case .cross:
            let arm = 0.34, reach = 0.96
            return (abs(u) <= arm && abs(v) <= reach) || (abs(v) <= arm && abs(u) <= reach)
        case .triangle:
            return insidePolygon(triangle, u, v)
        case .star:
            // Scale and shift so the star's extent (-1...0.809 tall) is centred in the box.
            return insidePolygon(star, u * 0.96, v * 0.96 - 0.0955)
        case .heart:
            // (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 (y up) spans x in +-1.139, y in -1...1.236; map it onto the box.
            let x = u * 1.16, y = 0.118 - v * 1.16
            let q = x * x + y * y - 1
            return q * q * q - x * x * y * y * y <= 0
        }
    }

    /// Upward-pointing, roughly equilateral.
    static let triangle: [(Double, Double)] = [(0, -0.92), (1, 0.82), (-1, 0.82)]

    /// Five-pointed star: outer radius 1, inner 0.5 (fatter than the classic 0.382 so the arms survive
    /// downsampling), vertices every 36 degrees from the top: (sin, -cos) of 0, 36, ..., 324 degrees.
    static let star: [(Double, Double)] = {
        let s36 = 0.5877852522924731, c36 = 0.8090169943749475
        let s72 = 0.9510565162951535, c72 = 0.30901699437494745
        let unit: [(Double, Double)] = [
            (0, -1), (s36, -c36), (s72, -c72), (s72, c72), (s36, c36),
            (0, 1), (-s36, c36), (-s72, c72), (-s72, -c72), (-s36, -c36),
        ]
        return unit.enumerated().map { i, p in i % 2 == 0 ? p : (p.0 * 0.5, p.1 * 0.5) }
    }()

    /// Even-odd ray casting.
    static func insidePolygon(_ points: [(Double, Double)], _ x: Double, _ y: Double) -> Bool {
        var inside = false
        var j = points.count - 1
        for i in points.indices {
            let (xi, yi) = points[i], (xj, yj) = points[j]
            if (yi > y) != (yj > y), x < (xj - xi) * (y - yi) / (yj - yi) + xi { inside.toggle() }
            j = i
        }
        return inside
    }
}

/// Rasterises scenes: each output pixel is the box-filtered average of supersample x supersample point
/// samples (anti-aliasing without any resampling library). Coverage blending is integer arithmetic, so the
/// bytes are identical everywhere.
public struct SceneRenderer: Sendable {
    public let size: Int
    public let supersample: Int
    let seed: UInt64

    public init(size: Int, supersample: Int, seed: UInt64) {
        self.size = size
        self.supersample = supersample
        self.seed = seed
    }

    public func render(_ scene: Scene) -> SceneImage {
        let level = Int(scene.background.level)
        var pixels = [UInt8](repeating: UInt8(level), count: size * size * 3)
        if scene.background.noise > 0 {
            // Grey noise (equal on all channels) keeps the background neutral, so colour stays the cue.
            var rng = SceneRandom.forScene(seed: seed, split: scene.split, index: scene.index, stream: 2)
            let a = scene.background.noise
            for p in 0..<(size * size) {
                let value = UInt8(clamping: level + rng.int(in: -a...a))
                pixels[p * 3] = value
                pixels[p * 3 + 1] = value
                pixels[p * 3 + 2] = value
            }
        }
        for object in scene.objects { draw(object, into: &pixels) }
        return SceneImage(width: size, height: size, pixels: pixels)
    }

    private func draw(_ object: SceneObject, into pixels: inout [UInt8]) {
        let s = Double(size)
        let cx = object.x * s, cy = object.y * s, r = object.radius * s
        guard r > 0 else { return }
        let x0 = max(0, Int((cx - r).rounded(.down)) - 1), x1 = min(size - 1, Int((cx + r).rounded(.up)))
        let y0 = max(0, Int((cy - r).rounded(.down)) - 1), y1 = min(size - 1, Int((cy + r).rounded(.up)))
        guard x0 <= x1, y0 <= y1, object.rgb.count == 3 else { return }
        let n = supersample * supersample
        let offsets = (0..<supersample).map { (Double($0) + 0.5) / Double(supersample) }
        let colour = object.rgb.map { Int($0) }
        for py in y0...y1 {
            for px in x0...x1 {
                var covered = 0
                for oy in offsets {
                    let v = (Double(py) + oy - cy) / r
                    for ox in offsets where ShapeGeometry.contains(object.shape, (Double(px) + ox - cx) / r, v) {
                        covered += 1
                    }
                }
                guard covered > 0 else { continue }
                let i = (py * size + px) * 3
                for c in 0..<3 {
                    // Rounded integer mix of background and object colour by coverage.
                    let mixed = (Int(pixels[i + c]) * (n - covered) + colour[c] * covered + n / 2) / n
                    pixels[i + c] = UInt8(clamping: mixed)
                }
            }
        }
    }
}
