import CVLM
import Foundation
import Testing
@testable import VLMTensor
import VLMTestSupport

/// 16-bit (BF16 / F16) packed weights: every SIMD path at 1 and 2 threads, on odd shapes.
///
/// Exactness: the kernels widen each stored value to float32 exactly (bf16 is the upper 16 bits of a
/// binary32; every binary16 is a binary32) and run the f32 path's FMA sequence (same tiles, same k order,
/// same thread split), so a 16-bit weight must give bit-for-bit the output of the F32 weight holding the
/// widened values. Against the unpacked naive reference the usual float-rounding bound applies.
@Suite struct KernelsGemm16Tests {
    static let ms = [1, 3, 7, 14, 15, 50, 129]
    static let nk: [(n: Int, k: Int)] = [(1, 1), (17, 31), (65, 33), (33, 65), (100, 7), (31, 129), (45, 257)]

    /// Values rounded to `storage` (raw 16-bit bits) and those bits widened back to float.
    static func roundTo(_ storage: vlm_weight_dtype, _ w: [Float]) -> (raw: [UInt16], widened: [Float]) {
        var raw = [UInt16](repeating: 0, count: w.count), wide = [Float](repeating: 0, count: w.count)
        if storage == VLM_WEIGHT_BF16 {
            vlm_f32_to_bf16_naive(w, &raw, Int64(w.count)); vlm_bf16_to_f32_naive(raw, &wide, Int64(w.count))
        } else {
            vlm_f32_to_f16_naive(w, &raw, Int64(w.count)); vlm_f16_to_f32_naive(raw, &wide, Int64(w.count))
        }
        return (raw, wide)
    }

    static func source(_ storage: vlm_weight_dtype) -> vlm_source_dtype { storage == VLM_WEIGHT_BF16 ? VLM_SRC_BF16 : VLM_SRC_F16 }

    @Test(arguments: [VLM_WEIGHT_BF16, VLM_WEIGHT_F16])
    func matchesF32PathBitwiseAndNaive(storage: vlm_weight_dtype) {
        KernelPaths.forEach { path, threads in
            for (ci, s) in Self.nk.enumerated() {
                let (raw, wide) = Self.roundTo(storage, randomFloats(s.n * s.k, seed: UInt64(300 + ci)))
                let bias = randomFloats(s.n, seed: UInt64(400 + ci))
                guard let p16 = vlm_pack_weight_ex(raw, Self.source(storage), Int64(s.n), Int64(s.k), storage),
                      let p32 = vlm_pack_weight(wide, Int64(s.n), Int64(s.k), VLM_WEIGHT_F32) else {
                    Issue.record("pack failed"); return
                }
                defer { vlm_packed_weight_free(p16); vlm_packed_weight_free(p32) }
                #expect(vlm_packed_weight_dtype(p16) == storage)
                // 32-row panels of 2-byte weights; BF16 stores k pairs, so an odd K gets one zero row per panel.
                let storedK = storage == VLM_WEIGHT_BF16 ? (s.k + 1) / 2 * 2 : s.k
                #expect(vlm_packed_weight_bytes(p16) == Int64((s.n + 31) / 32 * 32 * storedK * 2))
                for (mi, m) in Self.ms.enumerated() {
                    let act: vlm_activation = mi % 2 == 0 ? VLM_ACT_NONE : VLM_ACT_SILU
                    let withBias = mi % 3 != 0
                    let ldx = s.k + mi % 3, ldy = s.n + mi % 2
                    let x = randomFloats(m * ldx, seed: UInt64(mi * 31 + ci))
                    var y16 = [Float](repeating: 7, count: m * ldy), y32 = y16, ref = y16, mag = y16
                    vlm_linear(x, Int64(m), Int64(ldx), p16, withBias ? bias : nil, act, &y16, Int64(ldy))
                    vlm_linear(x, Int64(m), Int64(ldx), p32, withBias ? bias : nil, act, &y32, Int64(ldy))
                    let same = zip(y16, y32).allSatisfy { $0.bitPattern == $1.bitPattern }
                    #expect(same, "\(path) t=\(threads) \(storage) M=\(m) N=\(s.n) K=\(s.k): 16-bit differs from f32 on widened weights")
                    raw.withUnsafeBytes { r in
                        vlm_linear_naive_ex(x, Int64(m), Int64(ldx), r.baseAddress, Self.source(storage), Int64(s.n), Int64(s.k),
                                            withBias ? bias : nil, act, &ref, Int64(ldy))
                    }
                    vlm_linear_naive(x.map(abs), Int64(m), Int64(ldx), wide.map(abs), Int64(s.n), Int64(s.k),
                                     withBias ? bias.map(abs) : nil, VLM_ACT_NONE, &mag, Int64(ldy))
                    let scale = 5e-7 * Float(s.k).squareRoot()
                    let (ratio, at) = worstRatio(y16, ref) { i in (i % ldy) < s.n ? scale * max(mag[i], 1e-3) : 1e-30 }
                    #expect(ratio <= 1, "\(path) t=\(threads) \(storage) M=\(m) N=\(s.n) K=\(s.k) at \(at)")
                }
            }
        }
    }

    /// The naive packed path reads 16-bit panels too, and agrees bit for bit with its own f32 run.
    @Test func naivePackedPathIsExact() {
        KernelPaths.exclusive {
            _ = vlm_force_isa(VLM_ISA_NAIVE)
            defer { _ = vlm_force_isa(VLM_ISA_AVX512) }
            for storage in [VLM_WEIGHT_BF16, VLM_WEIGHT_F16] {
                let (n, k, m) = (37, 45, 3)
                let (raw, wide) = Self.roundTo(storage, randomFloats(n * k, seed: 9))
                let x = randomFloats(m * k, seed: 10)
                guard let p16 = vlm_pack_weight_ex(raw, Self.source(storage), Int64(n), Int64(k), storage),
                      let p32 = vlm_pack_weight(wide, Int64(n), Int64(k), VLM_WEIGHT_F32) else { Issue.record("pack failed"); return }
                defer { vlm_packed_weight_free(p16); vlm_packed_weight_free(p32) }
                var y16 = [Float](repeating: 0, count: m * n), y32 = y16
                vlm_linear(x, Int64(m), Int64(k), p16, nil, VLM_ACT_NONE, &y16, Int64(n))
                vlm_linear(x, Int64(m), Int64(k), p32, nil, VLM_ACT_NONE, &y32, Int64(n))
                #expect(zip(y16, y32).allSatisfy { $0.bitPattern == $1.bitPattern })
            }
        }
    }

    /// q|k|v packed source by source at row offsets that split panels, from unaligned 16-bit buffers, equals
    /// packing the concatenation in one go; rows read back widened exactly.
    @Test func rowOffsetPackingMatchesConcatenation() {
        let k = 67, parts = [45, 20, 20]
        let n = parts.reduce(0, +)
        for storage in [VLM_WEIGHT_BF16, VLM_WEIGHT_F16] {
            let (raw, wide) = Self.roundTo(storage, randomFloats(n * k, seed: 21))
            guard let whole = vlm_pack_weight_ex(raw, Self.source(storage), Int64(n), Int64(k), storage),
                  let pieces = vlm_packed_weight_create(Int64(n), Int64(k), storage) else { Issue.record("alloc failed"); return }
            defer { vlm_packed_weight_free(whole); vlm_packed_weight_free(pieces) }
            var row0 = 0
            for rows in parts {
                // Copy to an odd address: safetensors data offsets need not be 2-byte aligned.
                var bytes = [UInt8](repeating: 0, count: rows * k * 2 + 1)
                raw.withUnsafeBytes { src in
                    bytes.withUnsafeMutableBytes { dst in
                        (dst.baseAddress! + 1).copyMemory(from: src.baseAddress! + row0 * k * 2, byteCount: rows * k * 2)
                    }
                }
                let rc = bytes.withUnsafeBytes { vlm_pack_weight_rows(pieces, Int64(row0), $0.baseAddress! + 1, Self.source(storage), Int64(rows)) }
                #expect(rc == 0)
                row0 += rows
            }
            #expect(vlm_pack_weight_rows(pieces, Int64(n - 1), raw, Self.source(storage), 2) == -1)
            var a = [Float](repeating: 0, count: k), b = a
            for r in 0 ..< n {
                #expect(vlm_packed_weight_get_row(pieces, Int64(r), &a) == 0)
                #expect(vlm_packed_weight_get_row(whole, Int64(r), &b) == 0)
                #expect(a == Array(wide[(r * k) ..< ((r + 1) * k)]) && a == b, "row \(r)")
            }
            #expect(vlm_packed_weight_get_row(whole, Int64(n), &a) == -1)
            let x = randomFloats(5 * k, seed: 22)
            var y1 = [Float](repeating: 0, count: 5 * n), y2 = y1
            // Bit for bit only on one kernel path: hold the lock so no concurrent test forces another ISA between
            // the two calls (CI once ran them on different paths and they differed in the last bit).
            KernelPaths.exclusive {
                vlm_linear(x, 5, Int64(k), whole, nil, VLM_ACT_NONE, &y1, Int64(n))
                vlm_linear(x, 5, Int64(k), pieces, nil, VLM_ACT_NONE, &y2, Int64(n))
            }
            #expect(y1 == y2)
        }
    }

    /// f32 -> 16-bit storage rounds to nearest even like the conversion kernels; 16-bit -> F32 widens exactly;
    /// bf16 <-> f16 storage goes through float.
    @Test func storageConversions() {
        let (n, k) = (33, 19)
        let w = randomFloats(n * k, seed: 5, scale: 3)
        var row = [Float](repeating: 0, count: k)
        for storage in [VLM_WEIGHT_BF16, VLM_WEIGHT_F16] {
            let (raw, wide) = Self.roundTo(storage, w)
            guard let p = vlm_pack_weight(w, Int64(n), Int64(k), storage),
                  let q = vlm_pack_weight_ex(raw, Self.source(storage), Int64(n), Int64(k), VLM_WEIGHT_F32) else { Issue.record("pack"); return }
            defer { vlm_packed_weight_free(p); vlm_packed_weight_free(q) }
            #expect(vlm_packed_weight_bytes(q) == Int64(64 * k * 4))
            for r in 0 ..< n {
                _ = vlm_packed_weight_get_row(p, Int64(r), &row)
                #expect(row == Array(wide[(r * k) ..< ((r + 1) * k)]))
                _ = vlm_packed_weight_get_row(q, Int64(r), &row)
                #expect(row == Array(wide[(r * k) ..< ((r + 1) * k)]))
            }
        }
        // bf16 source into f16 storage: widen (exact) then round to binary16.
        let (rawB, wideB) = Self.roundTo(VLM_WEIGHT_BF16, w)
        let (_, viaF16) = Self.roundTo(VLM_WEIGHT_F16, wideB)
        guard let p = vlm_pack_weight_ex(rawB, VLM_SRC_BF16, Int64(n), Int64(k), VLM_WEIGHT_F16) else { Issue.record("pack"); return }
        defer { vlm_packed_weight_free(p) }
        _ = vlm_packed_weight_get_row(p, 4, &row)
        #expect(row == Array(viaF16[(4 * k) ..< (5 * k)]))
        #expect(vlm_pack_weight_ex(rawB, VLM_SRC_BF16, 0, Int64(k), VLM_WEIGHT_BF16) == nil)
    }
}
