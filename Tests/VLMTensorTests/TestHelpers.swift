import CVLM
import Foundation
import VLMTensor

/// Deterministic uniform [-1, 1) values (64-bit LCG), so failures reproduce.
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var s = seed &* 0x9E3779B97F4A7C15 &+ 0x632BE59BD9B4E019
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int32(truncatingIfNeeded: s >> 32)) / 2147483648.0 * scale
    }
}

/// Largest |a - b| / tol(i) over all elements; <= 1 passes.
func worstRatio(_ a: [Float], _ b: [Float], tol: (Int) -> Float) -> (ratio: Float, index: Int) {
    var worst: Float = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let d = abs(a[i] - b[i])
        let r: Float = d.isNaN ? (a[i].isNaN && b[i].isNaN ? 0 : .infinity) : d / tol(i)
        if r > worst || r.isNaN { worst = r; at = i }
    }
    return (worst, at)
}
