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

    public static func forEach(threads: [Int] = [1, 2], _ body: (_ path: String, _ threads: Int) -> Void) {
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

