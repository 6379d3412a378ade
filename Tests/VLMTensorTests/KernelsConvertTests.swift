import CVLM
import Foundation
import Testing
import VLMTestSupport

/// Half / bfloat16 conversions: hand-checked edge values on the naive path, then every SIMD path
/// bit-exact against naive (NaNs compared as NaN, since F16C may quiet a signalling NaN).
@Suite struct KernelsConvertTests {
    @Test func f16EdgeValues() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x7BFF, 65504), (0x0001, 5.9604644775390625e-8),
            (0x03FF, 6.097555160522461e-5), (0x0400, 6.103515625e-5), (0x7C00, .infinity), (0xFC00, -.infinity), (0x3555, 0.333251953125),
        ]
        for (h, f) in cases {
            var out: Float = 0
            var src = h
            vlm_f16_to_f32_naive(&src, &out, 1)
            #expect(out == f && out.sign == f.sign, "f16 \(String(h, radix: 16)) -> \(out), want \(f)")
            var back: UInt16 = 0
            vlm_f32_to_f16_naive(&out, &back, 1)
            #expect(back == h)
        }
        var nanIn: UInt16 = 0x7E00
        var nanOut: Float = 0
        vlm_f16_to_f32_naive(&nanIn, &nanOut, 1)
        #expect(nanOut.isNaN)
        // Rounding to nearest even on the way down.
        let down: [(Float, UInt16)] = [
            (65519, 0x7BFF), (65520, 0x7C00), (1e10, 0x7C00), (1 + 1.0 / 2048, 0x3C00), (1 + 3.0 / 2048, 0x3C02),
            (Float(sign: .plus, exponent: -25, significand: 1), 0x0000), (Float(sign: .plus, exponent: -25, significand: 1.5), 0x0001),
            (Float(sign: .plus, exponent: -24, significand: 1.5), 0x0002), (-.infinity, 0xFC00), (1e-10, 0x0000),
        ]
        for (f, h) in down {
            var src = f
            var out: UInt16 = 0
            vlm_f32_to_f16_naive(&src, &out, 1)
            #expect(out == h, "\(f) -> \(String(out, radix: 16)), want \(String(h, radix: 16))")
        }
    }

    @Test func bf16EdgeValues() {
        let down: [(Float, UInt16)] = [
            (1, 0x3F80), (1 + 1.0 / 256, 0x3F80), (1 + 3.0 / 256, 0x3F82), (-2, 0xC000), (.infinity, 0x7F80),
            (Float.greatestFiniteMagnitude, 0x7F80), (Float(bitPattern: 0x0001_16C2), 0x0001),  // subnormal, rounds down
            (Float(bitPattern: 0x0001_8000), 0x0002), (Float(bitPattern: 0x0002_8000), 0x0002),     // ties to even
        ]
        for (f, h) in down {
            var src = f
            var out: UInt16 = 0
            vlm_f32_to_bf16_naive(&src, &out, 1)
            #expect(out == h, "\(f) -> \(String(out, radix: 16))")
        }
        var nan = Float.nan
        var out: UInt16 = 0
        vlm_f32_to_bf16_naive(&nan, &out, 1)
        var back: Float = 0
        vlm_bf16_to_f32_naive(&out, &back, 1)
        #expect(back.isNaN)
        var h: UInt16 = 0x0001  // bf16 subnormal
        vlm_bf16_to_f32_naive(&h, &back, 1)
        #expect(back.bitPattern == 0x0001_0000)
    }

    @Test func simdConversionsMatchNaive() {
        let allHalves = (0...0xFFFF).map { UInt16($0) }
        var floats = (0..<20000).map { i -> Float in
            Float(bitPattern: UInt32(truncatingIfNeeded: UInt64(i) &* 0x9E3779B97F4A7C15 >> 17))
        }
        floats += [0, -0.0, 65504, 65519, 65520, 1e-8, 6e-8, 3e-8, .infinity, -.infinity, .nan, Float(bitPattern: 0x0001_16C2), 3.4e38]
        KernelPaths.forEach(threads: [1]) { path, _ in
            for n in [allHalves.count, 5, 17] {
                var fast = [Float](repeating: 0, count: n), ref = fast
                vlm_f16_to_f32(allHalves, &fast, Int64(n))
                vlm_f16_to_f32_naive(allHalves, &ref, Int64(n))
                #expect(zip(fast, ref).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "f16->f32 \(path) n=\(n)")
                var bf = [Float](repeating: 0, count: n), bref = bf
                vlm_bf16_to_f32(allHalves, &bf, Int64(n))
                vlm_bf16_to_f32_naive(allHalves, &bref, Int64(n))
                #expect(zip(bf, bref).allSatisfy { $0.bitPattern == $1.bitPattern }, "bf16->f32 \(path) n=\(n)")
            }
            for n in [floats.count, 3, 21] {
                var h = [UInt16](repeating: 0, count: n), href = h
                vlm_f32_to_f16(floats, &h, Int64(n))
                vlm_f32_to_f16_naive(floats, &href, Int64(n))
                let isNaN16 = { (x: UInt16) in (x & 0x7C00) == 0x7C00 && (x & 0x3FF) != 0 }
                #expect(zip(h, href).allSatisfy { $0 == $1 || (isNaN16($0) && isNaN16($1)) }, "f32->f16 \(path) n=\(n)")
                var b = [UInt16](repeating: 0, count: n), bref = b
                vlm_f32_to_bf16(floats, &b, Int64(n))
                vlm_f32_to_bf16_naive(floats, &bref, Int64(n))
                #expect(b == bref, "f32->bf16 \(path) n=\(n)")
            }
        }
    }
}
