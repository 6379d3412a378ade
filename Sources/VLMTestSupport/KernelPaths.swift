import CVLM
import Foundation

// Every test target runs in one process: a test that forces an ISA or a thread count changes the kernel path of
// every other test running at that moment. Tests that force paths, and tests that compare two runs bit for bit
// (resumed training, batched vs single steps), hold this one lock.
/// Serialises tests that change the process-wide ISA or thread count (Swift Testing runs tests in
/// parallel), and runs `body` once per SIMD path this CPU has, at 1 and 2 threads. Restores defaults.
public enum KernelPaths {
    private static let lock = NSLock()

    public static var simdISAs: [vlm_isa] {
        [VLM_ISA_AVX2, VLM_ISA_AVX512].filter { $0.rawValue <= vlm_cpu_isa().rawValue }
    }

    /// `hiding`: feature sets to run each path without as well (vlm_hide_cpu_features), for kernels that pick a
    /// variant by feature within an ISA (int8 VNNI with and without VBMI); a set the CPU lacks anyway is skipped.
    /// The path name then ends in "-no-" and the features' names.
    public static func forEach(threads: [Int] = [1, 2], hiding: [UInt64] = [], _ body: (_ path: String, _ threads: Int) -> Void) {
        lock.lock()
        defer {
            _ = vlm_force_isa(VLM_ISA_AVX512)
            vlm_set_num_threads(0)
            _ = vlm_hide_cpu_features(0)
            lock.unlock()
        }
        let masks = [UInt64(0)] + hiding.filter { $0 != 0 && vlm_cpu_features() & $0 == $0 }
        for mask in masks {
            _ = vlm_hide_cpu_features(mask)
            let suffix = mask == 0 ? "" : "-no-" + (0 ..< 64).compactMap { bit -> String? in
                guard mask & (1 << UInt64(bit)) != 0, let name = vlm_cpu_feature_name(1 << UInt64(bit)) else { return nil }
                return String(cString: name)
            }.joined(separator: "+")
            for isa in simdISAs {
                _ = vlm_force_isa(isa)
                for t in threads {
                    vlm_set_num_threads(Int32(t))
                    body(String(cString: vlm_isa_name(isa)) + suffix, t)
                }
            }
        }
    }

    /// Runs body with the default (best) path while holding the lock, so no other test forces a path; its result.
    @discardableResult
    public static func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    public static func exclusiveThrowing(_ body: () throws -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        try body()
    }
}

