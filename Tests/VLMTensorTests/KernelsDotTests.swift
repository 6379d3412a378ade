import CVLM
import Foundation
import Testing
import VLMTestSupport

/// The vector-search inner products (vlm_dot, vlm_dot_gather) on every SIMD path this CPU has, against the
/// naive twins (double accumulation), on odd dimensions that exercise every loop and masked tail.
@Suite struct KernelsDotTests {
    static let dims = [1, 3, 17, 511, 513, 1000]

    /// Float accumulation bound: ~(n/8 + 16) roundings relative to sum |a_i b_i| (lanes sum n/8 terms at
    /// most on AVX2, n/16 on AVX-512, then a short reduction tree).
    static func tolerance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        let magnitude = zip(a, b).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
        return (Float(a.count) / 8 + 16) * 1.2e-7 * magnitude + 1e-30
    }

    @Test func dotMatchesNaive() {
        var checked: [String] = []
        KernelPaths.forEach(threads: [1]) { path, _ in
            checked.append(path)
            for (i, n) in Self.dims.enumerated() {
                let a = randomFloats(n + 3, seed: UInt64(100 + i), scale: 2), b = randomFloats(n + 3, seed: UInt64(200 + i), scale: 2)
                // Offsets 0 and 1..3 floats: unaligned rows must work too.
                for offset in 0 ..< 4 {
                    let fast = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                        vlm_dot(pa.baseAddress! + offset, pb.baseAddress! + (3 - offset), Int64(n))
                    } }
                    let ref = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                        vlm_dot_naive(pa.baseAddress! + offset, pb.baseAddress! + (3 - offset), Int64(n))
                    } }
                    let tol = Self.tolerance(a[offset ..< offset + n], b[(3 - offset) ..< (3 - offset + n)])
                    #expect(abs(fast - ref) <= tol, "\(path) n=\(n) offset=\(offset): \(fast) vs \(ref)")
                }
            }
            #expect(vlm_dot(nil, nil, 0) == 0)
        }
        #expect(checked == KernelPaths.simdISAs.map { String(cString: vlm_isa_name($0)) })
    }

    @Test func gatherMatchesNaiveAndSingleDots() {
        KernelPaths.forEach(threads: [1]) { path, _ in
            for (i, n) in Self.dims.enumerated() {
                let rows = 40, stride = n + 5  // padded rows: only n floats of each are read
                let base = randomFloats(rows * stride, seed: UInt64(300 + i)), q = randomFloats(n, seed: UInt64(400 + i))
                // Every count from 0 to 11 (groups of four and each tail), repeated and out-of-order rows.
                for count in 0 ... 11 {
                    let idx: [Int32] = (0 ..< count).map { Int32(($0 * 7 + count) % rows) }
                    var fast = [Float](repeating: .nan, count: count + 1), ref = fast
                    vlm_dot_gather(q, base, Int64(stride), idx, Int64(count), Int64(n), &fast)
                    vlm_dot_gather_naive(q, base, Int64(stride), idx, Int64(count), Int64(n), &ref)
                    for j in 0 ..< count {
                        let row = Int(idx[j]) * stride
                        let tol = Self.tolerance(q[...], base[row ..< row + n])
                        #expect(abs(fast[j] - ref[j]) <= tol, "\(path) n=\(n) count=\(count) row \(j): \(fast[j]) vs \(ref[j])")
                        // The gathered score is the single dot's (same kernel family, same order within a row
                        // up to the accumulator split): within the same bound.
                        let single = base.withUnsafeBufferPointer { vlm_dot(q, $0.baseAddress! + row, Int64(n)) }
                        #expect(abs(fast[j] - single) <= 2 * tol)
                    }
                    #expect(fast[count].isNaN, "\(path): wrote past count")
                }
            }
        }
    }

    /// The naive path (forced) is the reference itself.
    @Test func naivePathIsExactlyTheReference() {
        KernelPaths.exclusive {
            _ = vlm_force_isa(VLM_ISA_NAIVE)
            defer { _ = vlm_force_isa(VLM_ISA_AVX512) }
            let a = randomFloats(513, seed: 1), b = randomFloats(513, seed: 2)
            #expect(vlm_dot(a, b, 513) == vlm_dot_naive(a, b, 513))
        }
    }
}
