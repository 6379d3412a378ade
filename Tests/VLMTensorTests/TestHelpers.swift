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

/// Serialises tests that change the process-wide ISA or thread count (Swift Testing runs tests in
/// parallel), and runs `body` once per SIMD path this CPU has, at 1 and 2 threads. Restores defaults.
enum KernelPaths {
    private static let lock = NSLock()

    static var simdISAs: [vlm_isa] {
        [VLM_ISA_AVX2, VLM_ISA_AVX512].filter { $0.rawValue <= vlm_cpu_isa().rawValue }
    }

    static func forEach(threads: [Int] = [1, 2], _ body: (_ path: String, _ threads: Int) -> Void) {
        lock.lock()
        defer {
            _ = vlm_force_isa(VLM_ISA_AVX512)
            vlm_set_num_threads(0)
            lock.unlock()
        }
        for isa in simdISAs {
            _ = vlm_force_isa(isa)
            for t in threads {
                vlm_set_num_threads(Int32(t))
                body(String(cString: vlm_isa_name(isa)), t)
            }
        }
    }

    /// Runs body with the default (best) path while holding the lock, so no other test forces a path.
    static func exclusive(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body()
    }

    static func exclusiveThrowing(_ body: () throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        try body()
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
