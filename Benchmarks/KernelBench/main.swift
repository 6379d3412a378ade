// Kernel micro-benchmark (release build): swift run -c release vlm-bench-kernels [--quick] [--no-naive] [--cpu-time] [--llm] [--lowp]
// (--lowp: encoder/prefill shapes in fp32, bf16 compute and int8 compute.)
// (--llm: only the decoder-layer shapes with f32 / bf16 / f16 weight storage, GEMV GB/s vs read bandwidth.)
// Prints GFLOP/s of vlm_linear on the ViT-B/32 shapes at 1 and 2 threads (fast path and the naive reference,
// which is single-threaded),
// plus sgemm and attention. Compare with Benchmarks/kernels_torch.py (torch F.linear, same threads).
import CVLM
import Foundation
import VLMTensor

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// CPU time of the calling thread: with 1 kernel thread every call runs inline on the caller, so this
/// excludes the time other processes hold the core (`--cpu-time`, for tuning on a shared machine).
func threadCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
let useCPUTime = CommandLine.arguments.contains("--cpu-time")

/// Best (minimum) seconds per call over a run of at least `minTime`: the machine is shared, and the
/// minimum is the estimator least disturbed by other processes taking the cores.
func measure(minTime: Double = 0.3, _ body: () -> Void) -> Double {
    body()  // warm-up (packs scratch, wakes the pool)
    var times: [Double] = []
    let start = now()
    let singleThreaded = vlm_get_num_threads() == 1
    while now() - start < minTime || times.count < 5 {
        if useCPUTime && singleThreaded {
            let t0 = threadCPUTime()
            body()
            times.append(threadCPUTime() - t0)
        } else {
            let t0 = now()
            body()
            times.append(now() - t0)
        }
        if times.count > 2000 { break }
    }
    return times.min() ?? 0
}

func randomBuffer(_ n: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
    var s = seed &* 6364136223846793005 &+ 1442695040888963407
    for i in 0..<n {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        p[i] = Float(Int32(truncatingIfNeeded: s >> 33)) / Float(Int32.max)
    }
    return p
}

/// Read bandwidth (bytes/s) of `threads` threads scanning a 1 GiB buffer, best of 3 (the GEMV roofline).
func readBandwidth(threads: Int) -> Double {
    let count = 1 << 28
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 1, count: count)
    var best = 0.0
    for _ in 0 ..< 3 {
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: threads) { w in
            let chunk = count / threads
            let base = UnsafeRawPointer(buffer + w * chunk)
            // glibc's memchr is a vectorised streaming read: searching a byte that is absent reads the whole chunk.
            if memchr(base, 0x55, chunk * 4) != nil { print("") }  // 1.0f is bytes 00 00 80 3F: no 0x55
        }
        best = max(best, Double(count * 4) / (now() - t0))
    }
    return best
}

/// Decoder layer shapes (SmolLM2-360M, Llama-7B) with f32, bf16 and f16 weight storage: decode GEMV (M=1,
/// memory bound: GB/s of weights streamed vs the read bandwidth) and a 128-token prefill (GFLOP/s).
func benchLLMShapes() {
    let bw = [1, 2].map { readBandwidth(threads: $0) }
    print(String(format: "\nLLM layers, weight storage f32 / bf16 / f16 (read bandwidth: %.1f GB/s 1 thread, %.1f GB/s 2 threads)",
                 bw[0] / 1e9, bw[1] / 1e9))
    print("shape".padding(toLength: 36, withPad: " ", startingAt: 0) + "store  thr     ms/call    GB/s   GFLOP/s")
    let layers: [(Int, Int, String)] = [
        (960, 1600, "360M qkv"), (960, 5120, "360M gate|up"), (2560, 960, "360M down"),
        (4096, 4096, "7B q/o"), (4096, 11008, "7B up"), (4096, 22016, "7B gate|up"), (11008, 4096, "7B down"),
    ]
    let stores: [(vlm_weight_dtype, String, Int)] = [(VLM_WEIGHT_F32, "f32", 4), (VLM_WEIGHT_BF16, "bf16", 2), (VLM_WEIGHT_F16, "f16", 2)]
    for m in [1, 128] {
        for (k, n, label) in layers {
            let x = randomBuffer(m * k, seed: 1), w = randomBuffer(n * k, seed: 2)
            let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            for (dtype, name, esize) in stores {
                guard let packed = vlm_pack_weight(w, Int64(n), Int64(k), dtype) else { print("pack failed"); continue }
                for threads in [1, 2] {
                    vlm_set_num_threads(Int32(threads))
                    let t = measure(minTime: m == 1 ? 0.3 : 0.5) { vlm_linear(x, Int64(m), Int64(k), packed, nil, VLM_ACT_NONE, y, Int64(n)) }
                    let bytes = Double(n * k * esize)
                    var line = "\(label) M=\(m) K=\(k) N=\(n)".padding(toLength: 36, withPad: " ", startingAt: 0)
                    line += name.padding(toLength: 7, withPad: " ", startingAt: 0)
                    line += String(format: "%d  %10.3f  %6.1f  %8.1f", threads, t * 1e3, bytes / t / 1e9, 2.0 * Double(m * n * k) / t / 1e9)
                    if m == 1 { line += String(format: "   (%.0f%% of read bw)", 100 * bytes / t / bw[threads - 1]) }
                    print(line)
                }
                vlm_packed_weight_free(packed)
            }
            x.deallocate(); w.deallocate(); y.deallocate()
        }
    }
    // Load-time cost: packing a 7B up-projection from a bf16 checkpoint buffer (odd address, as an mmap gives).
    let (n, k) = (11008, 4096)
    let src = UnsafeMutableRawPointer.allocate(byteCount: n * k * 2 + 1, alignment: 64)
    let w = randomBuffer(n * k, seed: 9)
    vlm_f32_to_bf16(w, (src + 1).assumingMemoryBound(to: UInt16.self), Int64(n * k))
    for (storage, name) in [(VLM_WEIGHT_BF16, "bf16 -> bf16"), (VLM_WEIGHT_F32, "bf16 -> f32")] {
        for threads in [1, 2] {
            vlm_set_num_threads(Int32(threads))
            let t = measure(minTime: 0.5) { vlm_packed_weight_free(vlm_pack_weight_ex(src + 1, VLM_SRC_BF16, Int64(n), Int64(k), storage)) }
            print(String(format: "pack %@ K=%d N=%d, %d threads: %.1f ms (%.2f GB/s of source)", name, k, n, threads, t * 1e3,
                         Double(n * k * 2) / t / 1e9))
        }
    }
    src.deallocate()
    w.deallocate()
    vlm_set_num_threads(0)
}

/// Encoder / prefill shapes (ViT-B/32 at batch 8, SmolLM2-360M prefill of 128 tokens) in fp32 and in the
/// reduced-precision compute modes (bf16: vlm_linear_bf16, int8: vlm_linear_i8), GFLOP/s at 1 and 2 threads.
func benchLowPrecisionShapes() {
    print("\nReduced-precision compute, kernels: bf16 \(String(cString: vlm_bf16_gemm_kernel())), int8 \(String(cString: vlm_i8_gemm_kernel()))")
    print("shape".padding(toLength: 36, withPad: " ", startingAt: 0) + "mode        thr     ms/call   GFLOP/s  x fp32")
    let shapes: [(Int, Int, Int, String)] = [
        (400, 768, 2304, "B/32 B8 qkv"), (400, 768, 3072, "B/32 B8 fc1"), (400, 3072, 768, "B/32 B8 fc2"),
        (128, 960, 5120, "360M prefill gate|up"), (128, 2560, 960, "360M prefill down"),
        (128, 2048, 6144, "1.7B prefill qkv"), (128, 2048, 16384, "1.7B prefill gate|up"),
        (128, 8192, 2048, "1.7B prefill down"), (2056, 4096, 1024, "L/14 B8 fc2"),
    ]
    for (m, k, n, label) in shapes {
        let x = randomBuffer(m * k, seed: 1), w = randomBuffer(n * k, seed: 2)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        let modes: [(vlm_weight_dtype, vlm_compute_mode, String)] = [
            (VLM_WEIGHT_F32, VLM_COMPUTE_WEIGHT_ONLY, "fp32"), (VLM_WEIGHT_BF16, VLM_COMPUTE_BF16, "bf16"),
            (VLM_WEIGHT_I8, VLM_COMPUTE_INT8, "int8"),
        ]
        for threads in [1, 2] {
            vlm_set_num_threads(Int32(threads))
            var fp32Time = 0.0
            for (dtype, mode, name) in modes {
                guard let packed = vlm_pack_weight(w, Int64(n), Int64(k), dtype) else { print("pack failed"); continue }
                _ = vlm_packed_weight_set_compute(packed, mode)
                let t = measure(minTime: 0.5) { vlm_linear(x, Int64(m), Int64(k), packed, nil, VLM_ACT_NONE, y, Int64(n)) }
                if name == "fp32" { fp32Time = t }
                var line = "\(label) M=\(m) K=\(k) N=\(n)".padding(toLength: 36, withPad: " ", startingAt: 0)
                line += name.padding(toLength: 12, withPad: " ", startingAt: 0)
                line += String(format: "%d  %10.3f  %8.1f  %5.2fx", threads, t * 1e3, 2.0 * Double(m * n * k) / t / 1e9, fp32Time / t)
                print(line)
                vlm_packed_weight_free(packed)
            }
        }
        x.deallocate(); w.deallocate(); y.deallocate()
    }
    vlm_set_num_threads(0)
}

let args = CommandLine.arguments
if args.contains("--llm") {
    benchLLMShapes()
    exit(0)
}
if args.contains("--lowp") {
    benchLowPrecisionShapes()
    exit(0)
}
let quick = args.contains("--quick")
let withNaive = !args.contains("--no-naive")
let cpuISA = String(cString: vlm_isa_name(vlm_cpu_isa()))
print("CPU ISA: \(cpuISA), online CPUs: \(Kernels.threads)")

// (M, K, N, label): ViT-B/32 at batch 8 (400 tokens), batch 1 (50 tokens), text (77 tokens), decode (1).
var shapes: [(Int, Int, Int, String)] = []
for (m, tag) in [(400, "B8"), (50, "B1"), (77, "text"), (1, "gemv")] {
    shapes += [(m, 768, 768, "\(tag) out-proj"), (m, 768, 2304, "\(tag) qkv"), (m, 768, 3072, "\(tag) fc1"), (m, 3072, 768, "\(tag) fc2")]
}
if quick { shapes = shapes.filter { $0.0 == 400 } }

let isas: [vlm_isa] = withNaive ? [vlm_cpu_isa(), VLM_ISA_NAIVE] : [vlm_cpu_isa()]
print("\nvlm_linear GFLOP/s (best of runs)")
print("shape".padding(toLength: 34, withPad: " ", startingAt: 0) + "isa      1 thread   2 threads")
for (m, k, n, label) in shapes {
    let x = randomBuffer(m * k, seed: 1)
    let w = randomBuffer(n * k, seed: 2)
    let bias = randomBuffer(n, seed: 3)
    let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    guard let packed = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32) else { print("pack failed"); continue }
    for isa in isas {
        _ = vlm_force_isa(isa)
        var line = "\(label) M=\(m) K=\(k) N=\(n)".padding(toLength: 34, withPad: " ", startingAt: 0)
        line += String(cString: vlm_isa_name(vlm_active_isa())).padding(toLength: 9, withPad: " ", startingAt: 0)
        for threads in isa == VLM_ISA_NAIVE ? [1] : [1, 2] {
            vlm_set_num_threads(Int32(threads))
            let t = measure(minTime: isa == VLM_ISA_NAIVE ? 0.1 : 0.3) {
                vlm_linear(x, Int64(m), Int64(k), packed, bias, VLM_ACT_NONE, y, Int64(n))
            }
            line += String(format: "%8.1f   ", 2.0 * Double(m * n * k) / t / 1e9)
        }
        print(line)
    }
    _ = vlm_force_isa(VLM_ISA_AVX512)
    vlm_packed_weight_free(packed)
    x.deallocate(); w.deallocate(); bias.deallocate(); y.deallocate()
}

print("\nvlm_linear + GELU epilogue (M=400 K=768 N=3072), GFLOP/s")
do {
    let (m, k, n) = (400, 768, 3072)
    let x = randomBuffer(m * k, seed: 1), w = randomBuffer(n * k, seed: 2), bias = randomBuffer(n, seed: 3)
    let y = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    if let packed = vlm_pack_weight(w, Int64(n), Int64(k), VLM_WEIGHT_F32) {
        for (act, name) in [(VLM_ACT_GELU, "gelu"), (VLM_ACT_QUICK_GELU, "quick_gelu")] {
            var line = "  \(name)".padding(toLength: 14, withPad: " ", startingAt: 0)
            for threads in [1, 2] {
                vlm_set_num_threads(Int32(threads))
                let t = measure { vlm_linear(x, Int64(m), Int64(k), packed, bias, act, y, Int64(n)) }
                line += String(format: "%8.1f   ", 2.0 * Double(m * n * k) / t / 1e9)
            }
            print(line)
        }
        vlm_packed_weight_free(packed)
    }
}

print("\nvlm_sgemm GFLOP/s (M=400 N=768 K=768), trans combos")
do {
    let (m, n, k) = (400, 768, 768)
    let a = randomBuffer(m * k, seed: 4), b = randomBuffer(k * n, seed: 5)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        var line = "  transA=\(ta) transB=\(tb)".padding(toLength: 22, withPad: " ", startingAt: 0)
        for threads in [1, 2] {
            vlm_set_num_threads(Int32(threads))
            let t = measure {
                vlm_sgemm(Int32(ta), Int32(tb), Int64(m), Int64(n), Int64(k), 1, a, Int64(ta == 1 ? m : k),
                          b, Int64(tb == 1 ? k : n), 0, c, Int64(n))
            }
            line += String(format: "%8.1f   ", 2.0 * Double(m * n * k) / t / 1e9)
        }
        print(line)
    }
}

print("\nvlm_attention (fused QKV layout), ms per call and GFLOP/s")
for (b, t, h, d, causal) in [(8, 50, 12, 64, false), (1, 50, 12, 64, false), (8, 77, 8, 64, true), (1, 577, 16, 64, false)] {
    let c = h * d
    let qkv = randomBuffer(b * t * 3 * c, seed: 6)
    let out = UnsafeMutablePointer<Float>.allocate(capacity: b * t * c)
    var line = "  B=\(b) T=\(t) H=\(h) D=\(d) causal=\(causal)".padding(toLength: 40, withPad: " ", startingAt: 0)
    let flops = 4.0 * Double(b * h * t * t * d)
    for threads in [1, 2] {
        vlm_set_num_threads(Int32(threads))
        let s = measure {
            vlm_attention(Int64(b), Int64(h), Int64(t), Int64(t), Int64(d), qkv, Int64(3 * c), qkv + c, Int64(3 * c),
                          qkv + 2 * c, Int64(3 * c), out, Int64(c), 0.125, causal ? 1 : 0, nil)
        }
        line += String(format: "%7.3f ms %6.1f GF/s   ", s * 1e3, flops / s / 1e9)
    }
    print(line)
}
vlm_set_num_threads(0)

benchLLMShapes()
