import CVLM
import Foundation
import Testing
import VLMTensor
import VLMTestSupport

/// Packed weights of reduced-precision formats between 64 KB and 4 MB share huge-page slabs (weight_slabs.c): which
/// weights go there, and that freeing weights in any order never releases memory a live weight still reads.
@Suite struct WeightSlabTests {
    static let slabsOn = ProcessInfo.processInfo.environment["VLM_HUGE_PAGES"]?.lowercased() != "none"

    @Test func whichWeightsShareSlabs() throws {
        try #require(Self.slabsOn, "VLM_HUGE_PAGES=none turns slabs off")
        let w = randomFloats(1024 * 256, seed: 3)
        // (rows, cols, storage, in a slab): bf16 512 KB yes; int4 ~140 KB yes; bf16 32 KB no (small);
        // bf16 8 MB no (own huge pages); fp32 1 MB no (float32 packs are re-created by indexes and training).
        let cases: [(Int, Int, vlm_weight_dtype, Bool)] = [
            (1024, 256, VLM_WEIGHT_BF16, true), (1024, 256, VLM_WEIGHT_I4, true), (64, 256, VLM_WEIGHT_BF16, false),
            (4096, 1024, VLM_WEIGHT_BF16, false), (1024, 256, VLM_WEIGHT_F32, false),
        ]
        for (n, k, dtype, slab) in cases {
            let src = n * k <= w.count ? w : randomFloats(n * k, seed: 4)
            guard let p = vlm_pack_weight(src, Int64(n), Int64(k), dtype) else { Issue.record("pack \(n)x\(k)"); continue }
            defer { vlm_packed_weight_free(p) }
            #expect(vlm_packed_weight_in_slab(p) == (slab ? 1 : 0), "\(n)x\(k) dtype \(dtype.rawValue): \(vlm_packed_weight_bytes(p)) bytes")
        }
    }

    /// 120 bf16 weights of 512 KB (two slabs and more) freed in a shuffled half, then as many new ones packed (which
    /// would land in freed memory if a slab went too early): every survivor still reads back its own values.
    @Test func freeingInAnyOrderKeepsLiveWeights() {
        let (n, k) = (1024, 256)
        var weights: [(OpaquePointer, [Float])] = []
        for i in 0 ..< 120 {
            let src = randomFloats(n * k, seed: UInt64(100 + i))
            guard let p = vlm_pack_weight(src, Int64(n), Int64(k), VLM_WEIGHT_BF16) else { Issue.record("pack \(i)"); return }
            weights.append((p, src))
        }
        var rng = SplitMix64(seed: 9)
        for i in stride(from: weights.count - 1, to: 0, by: -1) { weights.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        for (p, _) in weights.prefix(60) { vlm_packed_weight_free(p) }
        var survivors = Array(weights.dropFirst(60))
        for i in 0 ..< 60 {
            let src = randomFloats(n * k, seed: UInt64(500 + i))
            guard let p = vlm_pack_weight(src, Int64(n), Int64(k), VLM_WEIGHT_BF16) else { Issue.record("repack \(i)"); return }
            survivors.append((p, src))
        }
        var row = [Float](repeating: 0, count: k)
        for (i, (p, src)) in survivors.enumerated() {
            for r in [0, n / 2, n - 1] {
                _ = vlm_packed_weight_get_row(p, Int64(r), &row)
                // bf16 storage: each value is the source rounded to 8 significant bits.
                let ok = (0 ..< k).allSatisfy { abs(row[$0] - src[r * k + $0]) <= abs(src[r * k + $0]) * 0.004 }
                #expect(ok, "weight \(i) row \(r) changed")
            }
        }
        for (p, _) in survivors { vlm_packed_weight_free(p) }
    }
}
