import CVLM
import Foundation
import Testing
import VLMTensor
import VLMTestSupport

/// Codes quantized elsewhere (GPTQ/AWQ/compressed-tensors) packed without re-rounding, on odd shapes (n not a
/// multiple of 32, k not a multiple of the group, two parts fused, zero points up to 16 as GPTQ v1 yields).
/// Tolerances: dequantized rows bit-exact against s * (q - z); M = 7 (dequantize + fp32 kernel) bit-exact
/// against an fp32 packed weight holding those values; M = 1 (fused group GEMV) within 1e-5 relative to
/// sum |x| |w| of the naive linear.
@Suite struct PrequantizedPackingTests {
    static func part(rows: Int, cols: Int, group: Int, int4: Bool, seed: UInt64) -> QuantizedRows {
        let g = (cols + group - 1) / group
        var s = seed
        func next() -> UInt64 { s = s &* 6364136223846793005 &+ 1442695040888963407; return s >> 33 }
        let codes = (0 ..< rows * cols).map { _ in int4 ? Int8(next() % 16) : Int8(truncatingIfNeeded: Int(next() % 256) - 128) }
        let scales = (0 ..< rows * g).map { _ in Float(next() % 1000 + 1) / 65536 }
        let zeros = int4 ? (0 ..< rows * g).map { _ in UInt8(next() % 17) } : nil
        return QuantizedRows(rows: rows, cols: cols, group: group, codes: codes, scales: scales, zeros: zeros)
    }

    @Test(arguments: [true, false])
    func packedValuesAndProductsMatchTheDequantizedReference(int4: Bool) throws {
        for (n0, n1, k, group) in [(37, 20, 77, 32), (3, 64, 300, 128), (33, 1, 129, 64)] {
            let parts = [Self.part(rows: n0, cols: k, group: group, int4: int4, seed: 1), Self.part(rows: n1, cols: k, group: group, int4: int4, seed: 2)]
            let w = try PackedLinearWeight.prequantized(parts, inFeatures: k, storage: int4 ? .int4 : .int8)
            let want = parts.flatMap { $0.dequantized() }
            let fp32 = try PackedLinearWeight(weight: Tensor(shape: [n0 + n1, k], values: want))
            var row = [Float](repeating: 0, count: k), bad = 0
            for r in 0 ..< n0 + n1 {
                row.withUnsafeMutableBufferPointer { w.copyRow(r, into: $0.baseAddress!) }
                for c in 0 ..< k where row[c].bitPattern != want[r * k + c].bitPattern { bad += 1 }
            }
            #expect(bad == 0, "\(n0)+\(n1) x \(k): \(bad) values differ")
            // Both products under one kernel path: a test forcing another ISA meanwhile (KernelPaths) would make the
            // bit-for-bit comparison compare two different tilings.
            KernelPaths.exclusive {
                for m in [1, 7] {
                    let x = Tensor(shape: [m, k], values: (0 ..< m * k).map { Float(($0 * 37) % 101) / 50 - 1 })
                    let y = Ops.linear(x, w, bias: nil), exact = Ops.linear(x, fp32, bias: nil)
                    var ref = [Float](repeating: 0, count: m * (n0 + n1))
                    vlm_linear_naive(x.pointer, Int64(m), Int64(k), want, Int64(n0 + n1), Int64(k), nil, VLM_ACT_NONE, &ref, Int64(n0 + n1))
                    for i in 0 ..< m * (n0 + n1) {
                        let mag = (0 ..< k).reduce(Float(0)) { $0 + abs(x[(i / (n0 + n1)) * k + $1] * want[(i % (n0 + n1)) * k + $1]) }
                        if m > 4 {
                            #expect(y[i].bitPattern == exact[i].bitPattern, "M=\(m) out \(i): \(y[i]) vs \(exact[i])")
                        } else {
                            #expect(abs(y[i] - ref[i]) <= 1e-5 * mag + 1e-30, "M=\(m) out \(i): \(y[i]) vs \(ref[i])")
                        }
                    }
                }
            }
        }
    }

    @Test func badPartsAreErrors() {
        let p = Self.part(rows: 4, cols: 64, group: 32, int4: true, seed: 3)
        var codes = p.codes
        codes[5] = 16
        let outOfRange = QuantizedRows(rows: 4, cols: 64, group: 32, codes: codes, scales: p.scales, zeros: p.zeros)
        #expect(throws: TensorError.self) { try PackedLinearWeight.prequantized([outOfRange], inFeatures: 64, storage: .int4) }
        #expect(throws: TensorError.self) { try PackedLinearWeight.prequantized([p], inFeatures: 64, storage: .int8) }  // zero points on int8
        #expect(throws: TensorError.self) { try PackedLinearWeight.prequantized([p], inFeatures: 64, storage: .float32) }
        let oddGroup = QuantizedRows(rows: 4, cols: 64, group: 48, codes: p.codes, scales: [Float](repeating: 1, count: 8), zeros: [UInt8](repeating: 0, count: 8))
        #expect(throws: TensorError.self) { try PackedLinearWeight.prequantized([oddGroup], inFeatures: 64, storage: .int4) }
    }
}
