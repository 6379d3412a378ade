import Foundation
import Testing
@testable import VLMScenes

/// Pixels: the object's colour fills its box, the background is untouched elsewhere.
struct RenderTests {
    static func distance(_ p: (UInt8, UInt8, UInt8), _ rgb: [UInt8]) -> Int {
        abs(Int(p.0) - Int(rgb[0])) + abs(Int(p.1) - Int(rgb[1])) + abs(Int(p.2) - Int(rgb[2]))
    }

    /// Share of the bounding square a shape covers, by dense point sampling.
    static func areaFraction(_ shape: SceneShape) -> Double {
        let n = 200
        var inside = 0
        for i in 0..<n {
            for j in 0..<n where ShapeGeometry.contains(shape, (Double(i) + 0.5) / Double(n) * 2 - 1, (Double(j) + 0.5) / Double(n) * 2 - 1) {
                inside += 1
            }
        }
        return Double(inside) / Double(n * n)
    }

    @Test(arguments: [32, 64, 96])
    func objectColourDominatesItsBoxAndBackgroundElsewhere(size: Int) throws {
        var config = SceneConfig()
        config.size = size
        let generated = try SceneDataset.generate(count: 40, seed: 4, split: .train, config: config)
        for g in generated {
            let image = g.image, s = Double(size)
            #expect(image.width == size && image.height == size && image.pixels.count == size * size * 3)
            let level = g.scene.background.level
            var inAnyBox = [Bool](repeating: false, count: size * size)
            for o in g.scene.objects {
                // Pixels touching the bounding square (disjoint between objects: the margin is over one pixel).
                let x0 = max(0, Int(((o.x - o.radius) * s).rounded(.down))), x1 = min(size - 1, Int(((o.x + o.radius) * s).rounded(.up)) - 1)
                let y0 = max(0, Int(((o.y - o.radius) * s).rounded(.down))), y1 = min(size - 1, Int(((o.y + o.radius) * s).rounded(.up)) - 1)
                // Every non-background pixel of the box is a blend of background and object colour, and a good
                // share is closer to the object than to the background.
                let bg = [level, level, level]
                let axis = (0..<3).max { abs(Int(o.rgb[$0]) - Int(level)) < abs(Int(o.rgb[$1]) - Int(level)) } ?? 0
                var near = 0, total = 0, foreign = 0
                for y in y0...y1 {
                    for x in x0...x1 {
                        inAnyBox[y * size + x] = true
                        total += 1
                        let p = image[x, y]
                        if Self.distance(p, o.rgb) < Self.distance(p, bg) { near += 1 }
                        let values = [Int(p.0), Int(p.1), Int(p.2)]
                        let t = Double(values[axis] - Int(level)) / Double(Int(o.rgb[axis]) - Int(level))
                        let off = (0..<3).map { abs(Double(values[$0]) - (Double(level) + t * Double(Int(o.rgb[$0]) - Int(level)))) }
                        if off.contains(where: { $0 > 2.5 }) { foreign += 1 }
                    }
                }
                #expect(foreign == 0, "\(o.colour) \(o.shape): \(foreign) pixels are not a blend of object and background")
                #expect(Double(near) / Double(total) > 0.5 * Self.areaFraction(o.shape), "\(o.colour) \(o.shape) covers \(near)/\(total) at \(size)px")
            }
            for i in 0..<(size * size) where !inAnyBox[i] {
                let p = (image.pixels[i * 3], image.pixels[i * 3 + 1], image.pixels[i * 3 + 2])
                if p != (level, level, level) {
                    Issue.record("pixel \(i) outside every object is \(p), background \(level)")
                    break
                }
            }
        }
    }

    @Test func antiAliasingGivesIntermediateEdgeValues() throws {
        let g = try SceneGenerator(seed: 2).generate(index: 0, split: .train, kind: .single)
        let o = g.scene.objects[0], bg = Int(g.scene.background.level)
        // Along the row through the centre there are pixels strictly between background and object colour.
        let y = Int(o.y * 64), channel = o.rgb.firstIndex { abs(Int($0) - bg) > 60 } ?? 0
        let target = Int(o.rgb[channel])
        let values = (0..<64).map { Int(g.image.pixels[(y * 64 + $0) * 3 + channel]) }
        #expect(values.contains { v in v != bg && v != target && (min(bg, target) + 3...max(bg, target) - 3).contains(v) })
    }

    @Test func backgroundNoiseIsNeutralAndDeterministic() throws {
        var config = SceneConfig()
        config.backgroundNoise = 10
        let a = try SceneDataset.generate(count: 3, seed: 8, split: .test, kind: .single, config: config)
        let b = try SceneDataset.generate(count: 3, seed: 8, split: .test, kind: .single, config: config)
        #expect(a.map(\.image) == b.map(\.image))
        let p = a[0].image[0, 0]
        #expect(p.0 == p.1 && p.1 == p.2)
        let corner = (0..<8).map { a[0].image[$0, 0].0 }
        #expect(Set(corner).count > 1)
    }

    @Test func everyShapeIsDistinctAtSixtyFourPixels() {
        // Masks of the shapes at the small size must differ pairwise in a good number of pixels.
        let renderer = SceneRenderer(size: 64, supersample: 4, seed: 0)
        let masks = SceneShape.allCases.map { shape -> [Bool] in
            let o = SceneObject(shape: shape, colour: .black, size: .small, x: 0.5, y: 0.5, radius: 0.105, rgb: [0, 0, 0])
            let scene = Scene(index: 0, split: .train, kind: .single, structure: .object, objects: [o],
                              background: SceneBackground(level: 255, noise: 0), statedRelation: nil)
            return renderer.render(scene).pixels.enumerated().filter { $0.offset % 3 == 0 }.map { $0.element < 128 }
        }
        for i in masks.indices {
            for j in masks.indices where i < j {
                let differing = zip(masks[i], masks[j]).filter { $0 != $1 }.count
                #expect(differing >= 12, "\(SceneShape.allCases[i]) vs \(SceneShape.allCases[j]): \(differing) pixels")
            }
        }
    }
}
