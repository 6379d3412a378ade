import Foundation
import Testing
import VLMLayers
import VLMTensor
import VLMTestSupport

/// Multi-axis rotary positions (Qwen2-VL's M-RoPE) against transformers 5.25 (Scripts/fixtures/mrope_fixtures.py):
/// the 3-D position ids `get_rope_index` gives a prompt with an image (temporal/height/width axes for the image
/// tokens, one shared position for text), frequencies split [2, 3, 3] over the axes, applied by the same
/// `RotaryTables` every decoder layer uses. The 1-D case (text positions on every axis) must equal plain RoPE.
@Suite struct MultiAxisRotaryTests {
    struct Meta: Decodable {
        let head_dim: Int, rope_theta: Float, mrope_section: [Int], tokens: Int, heads: Int, kv_heads: Int
    }

    /// [H, T, D] (the fixture's layout) -> [T, H * D] (one row per position, heads side by side, as q/k sit in
    /// the fused projection).
    static func rows(_ a: Npy.Array) -> Tensor {
        let (h, t, d) = (a.shape[0], a.shape[1], a.shape[2]), v = a.floats
        var out = [Float](repeating: 0, count: h * t * d)
        for head in 0 ..< h { for r in 0 ..< t { for i in 0 ..< d { out[r * h * d + head * d + i] = v[(head * t + r) * d + i] } } }
        return Tensor(shape: [t, h * d], values: out)
    }

    static func load(_ name: String) throws -> Npy.Array { try Npy.read(Fixtures.url("mrope/\(name).npy")) }

    /// inv_freq as transformers computes it: 1 / theta^(2i / D) in float32.
    static func rotary(_ meta: Meta, sections: [Int]?) -> RotaryEmbedding {
        let half = meta.head_dim / 2
        let inv = (0 ..< half).map { i in 1 / pow(meta.rope_theta, Float(2 * i) / Float(meta.head_dim)) }
        return RotaryEmbedding(inverseFrequencies: inv, sections: sections)
    }

    static func maxError(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test func threeAxisPositionsMatchQwen2VL() throws {
        let meta = try Fixtures.json("mrope/meta.json", as: Meta.self)
        let positions = try #require(try Self.load("positions").int64s)
        let t = meta.tokens
        #expect(positions.count == 3 * t)
        let ids = PositionIDs(axes: (0 ..< 3).map { axis in (0 ..< t).map { Int(positions[axis * t + $0]) } })
        let tables = Self.rotary(meta, sections: meta.mrope_section).tables(for: ids)
        for (input, expected, heads) in [("q", "q_embed", meta.heads), ("k", "k_embed", meta.kv_heads)] {
            let x = Self.rows(try Self.load(input))
            tables.apply(x, offset: 0, ld: heads * meta.head_dim, heads: heads, headDim: meta.head_dim)
            let error = Self.maxError(x, Self.rows(try Self.load(expected)))
            // float32 cos/sin of angles up to ~11 rad, then two products: a few ulps of values of size ~3.
            #expect(error < 2e-6, "\(input): max |error| \(error)")
        }
        // The image tokens really do have distinct axes (the fixture exercises M-RoPE, not 1-D in disguise).
        #expect(ids.axes[1] != ids.axes[2])
    }

    @Test func textPositionsOnEveryAxisAreOrdinaryRoPE() throws {
        let meta = try Fixtures.json("mrope/meta.json", as: Meta.self)
        let t = meta.tokens
        let expected = Self.rows(try Self.load("q1_embed"))
        for (ids, sections) in [(PositionIDs(axes: Array(repeating: Array(0 ..< t), count: 3)), meta.mrope_section as [Int]?),
                                (PositionIDs.range(from: 0, count: t), nil)] {
            let x = Self.rows(try Self.load("q"))
            Self.rotary(meta, sections: sections).tables(for: ids).apply(x, offset: 0, ld: meta.heads * meta.head_dim, heads: meta.heads, headDim: meta.head_dim)
            let error = Self.maxError(x, expected)
            #expect(error < 2e-6, "\(ids.dimensions) axes: max |error| \(error)")
        }
    }
}
