import CVLM
import Foundation

/// Activation functions fusable into a linear layer's epilogue.
public enum Activation: String, Sendable, Codable, CaseIterable {
    case none
    /// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch.nn.functional.gelu).
    case gelu
    /// Tanh-approximated GELU (torch gelu(approximate="tanh"), HF "gelu_new" / "gelu_pytorch_tanh").
    case geluTanh = "gelu_tanh"
    /// x * sigmoid(1.702 x) (OpenAI CLIP).
    case quickGelu = "quick_gelu"
    case silu
    case relu

    /// Maps a Hugging Face `hidden_act` string to a case; nil if unknown.
    /// Names follow transformers' ACT2FN table (activations.py).
    public init?(huggingFace name: String) {
        switch name.lowercased() {
        case "gelu", "gelu_python": self = .gelu
        // gelu_fast computes 0.5x(1 + tanh(0.7978845608 x (1 + 0.044715 x^2))), algebraically the same
        // tanh approximation as gelu_new.
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_tanh": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        case "silu", "swish": self = .silu
        case "relu": self = .relu
        case "linear", "identity", "none": self = .none
        default: return nil
        }
    }

    public var c: vlm_activation {
        switch self {
        case .none: return VLM_ACT_NONE
        case .gelu: return VLM_ACT_GELU
        case .geluTanh: return VLM_ACT_GELU_TANH
        case .quickGelu: return VLM_ACT_QUICK_GELU
        case .silu: return VLM_ACT_SILU
        case .relu: return VLM_ACT_RELU
        }
    }
}

/// Process-wide kernel settings.
public enum Kernels {
    /// Runs `body` over `bytes` of memory allocated the way packed weights are (vlm_aligned_alloc: huge pages for large
    /// blocks), so that a bandwidth sweep reads memory mapped as the weights it is compared with. nil when the
    /// allocation fails.
    public static func withWeightMemory<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R? {
        guard bytes > 0, let p = vlm_aligned_alloc(bytes) else { return nil }
        defer { vlm_aligned_free(p) }
        return try body(p)
    }

    /// Name of the ISA the kernels use now ("naive", "avx2", "avx512").
    public static var isa: String { String(cString: vlm_isa_name(vlm_active_isa())) }

    /// Name of the best ISA the CPU supports.
    public static var cpuISA: String { String(cString: vlm_isa_name(vlm_cpu_isa())) }

    /// Forces a code path ("naive" | "avx2" | "avx512"), clamped to what the CPU supports.
    /// Unknown names select the best path.
    public static func forceISA(_ name: String) {
        switch name.lowercased() {
        case "naive": _ = vlm_force_isa(VLM_ISA_NAIVE)
        case "avx2": _ = vlm_force_isa(VLM_ISA_AVX2)
        default: _ = vlm_force_isa(VLM_ISA_AVX512)
        }
    }

    /// The CPU's features as a set ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
    /// "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8"), each listed only when
    /// the OS also enables its register state. The kernels choose their path per format from these.
    public static var cpuFeatures: [String] {
        let bits = vlm_cpu_features()
        return (0 ..< 64).compactMap { i -> String? in
            let bit = UInt64(1) << UInt64(i)
            guard bits & bit != 0, let name = vlm_cpu_feature_name(bit) else { return nil }
            return String(cString: name)
        }
    }

    /// The CPU model name from /proc/cpuinfo (Linux), or nil.
    public static var cpuModel: String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// The kernel the active path runs for weights in `storage` with `rows` activation rows
    /// (e.g. "avx2 int4 group GEMV, fp32 FMA" for decode).
    public static func kernel(for storage: PackedLinearWeight.Storage, rows: Int) -> String {
        String(cString: vlm_weight_format_kernel(storage.c, Int64(rows)))
    }

    /// A kernel that could not allocate its scratch memory returns VLM_ERR_NOMEM instead of a partial result.
    /// Tensor ops have no error path (their shapes are validated before), so running out of memory here stops
    /// the process with a message naming the operation, as a failed Swift allocation would.
    static func checkAllocation(_ status: Int32, _ op: @autoclosure () -> String) {
        if status == VLM_ERR_NOMEM { fatalError("out of memory for the scratch buffers of \(op())") }  // safe: memory exhaustion, not input
    }

    /// Kernel thread count (default: online CPUs). Setting a value <= 0 restores the default.
    /// Names the calling thread (first 15 bytes): what ps, top and gdb show.
    public static func nameCurrentThread(_ name: String) { vlm_set_current_thread_name(name) }

    /// Makes the C allocator keep activation-sized blocks (up to 64 MiB) in its heap instead of mapping each one
    /// afresh (vlm_keep_large_buffers): process-wide, so call it once at start. Returns whether it took effect.
    @discardableResult
    public static func keepLargeBuffers() -> Bool { vlm_keep_large_buffers() == 0 }

    public static var threads: Int {
        get { Int(vlm_get_num_threads()) }
        set { vlm_set_num_threads(Int32(clamping: newValue)) }
    }
}

/// A linear layer's weight packed once for the fast GEMM. weight: [N, K] (out x in, PyTorch layout).
///
/// Storage may be float32, bfloat16 or float16: 16-bit storage halves memory and the bytes a decode step
/// streams; the kernels widen each value exactly to float32 and compute in float32, so the outputs equal
/// those of a float32 weight holding the widened values, bit for bit.
public final class PackedLinearWeight: @unchecked Sendable {
    /// Element type of the packed panels. int8 and int4 are weight-only group-wise quantized formats (see
    /// vlm_weight_dtype and vlm_quantize_naive): every `group` weights of a row along k share a float32 scale
    /// (int4: and a zero point); activations and accumulation stay float32.
    public enum Storage: String, Sendable, CaseIterable {
        case float32, bfloat16, float16, int8, int4

        var c: vlm_weight_dtype {
            switch self {
            case .float32: return VLM_WEIGHT_F32
            case .bfloat16: return VLM_WEIGHT_BF16
            case .float16: return VLM_WEIGHT_F16
            case .int8: return VLM_WEIGHT_I8
            case .int4: return VLM_WEIGHT_I4
            }
        }

        /// Whether values are rounded to a grid with scales (int8, int4) rather than stored as floats.
        public var isQuantized: Bool { self == .int8 || self == .int4 }

        /// The format's descriptor in words: panel layout, scales and zero points, activations, epilogue.
        public var formatDescription: String {
            guard let f = vlm_weight_format_info(c)?.pointee else { return rawValue }
            return "\(String(cString: f.name)): \(f.bits)-bit, \(String(cString: f.layout)); activations \(String(cString: f.activations)); epilogue \(String(cString: f.epilogue))"
        }

        /// Default weights per scale along k of the quantized formats.
        public static let defaultGroup = Int(VLM_QUANT_GROUP_DEFAULT)

        /// The storage that keeps a safetensors dtype without loss (F32 for anything but BF16/F16).
        public init(keeping dtype: SafeTensorsDType) {
            switch dtype {
            case .bf16: self = .bfloat16
            case .f16: self = .float16
            default: self = .float32
            }
        }

        /// Bytes per stored weight of the float formats (quantized formats: 1 for int8, 1 for int4 rounded up;
        /// use PackedLinearWeight.byteCount for the exact size with scales).
        public var bytesPerElement: Int {
            switch self {
            case .float32: return 4
            case .bfloat16, .float16: return 2
            case .int8, .int4: return 1
            }
        }
    }

    public let outFeatures: Int
    public let inFeatures: Int
    public let storage: Storage
    /// Weights per scale along k (int8/int4), 0 for the float formats.
    public var group: Int { Int(vlm_packed_weight_group(handle)) }
    let handle: OpaquePointer

    /// Bytes of packed data (rows padded to a multiple of 32).
    public var byteCount: Int { Int(vlm_packed_weight_bytes(handle)) }

    /// Throws `TensorError.rankMismatch` if `weight` is not 2-D, `.allocationFailed` if packing fails.
    /// Float32 values round to nearest even for 16-bit storage.
    public init(weight: Tensor, name: String = "weight", storage: Storage = .float32) throws {
        guard weight.rank == 2 else { throw TensorError.rankMismatch(name: name, expected: 2, got: weight.shape) }
        let n = weight.shape[0], k = weight.shape[1]
        guard n > 0, k > 0 else { throw TensorError.invalidArgument("\(name): empty weight of shape \(weight.shape)") }
        let packed = withExtendedLifetime(weight) { vlm_pack_weight(weight.pointer, Int64(n), Int64(k), storage.c) }
        guard let packed else { throw Self.allocationError(name, n, k, storage) }
        handle = packed
        outFeatures = n
        inFeatures = k
        self.storage = storage
    }

    /// A source of rows: raw row-major values of a safetensors dtype (F32, BF16 or F16; any alignment).
    public struct RawRows {
        public let bytes: UnsafeRawBufferPointer
        public let dtype: SafeTensorsDType
        public let rows: Int
        public init(bytes: UnsafeRawBufferPointer, dtype: SafeTensorsDType, rows: Int) {
            self.bytes = bytes
            self.dtype = dtype
            self.rows = rows
        }
    }

    /// Packs the row-concatenation of `parts` (each [rows_i, inFeatures]) without an intermediate float32 copy
    /// (fused q|k|v and gate|up straight from a memory-mapped checkpoint). `fill` is called once per part, in
    /// order, and must call its argument with that part's rows while they are valid.
    /// Throws `.invalidArgument` for a dtype other than F32/BF16/F16 or a size mismatch.
    /// int8/int4 quantize each row group by group as they are packed (`group`: a multiple of 32 in 32...4096).
    public init(rows partRows: [Int], inFeatures k: Int, storage: Storage, group: Int = Storage.defaultGroup, name: String = "weight",
                fill: (_ part: Int, _ pack: (RawRows) throws -> Void) throws -> Void) throws {
        let n = partRows.reduce(0, +)
        guard n > 0, k > 0, partRows.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument("\(name): empty weight of \(partRows) x \(k)")
        }
        if storage.isQuantized, group < 32 || group > 4096 || group % 32 != 0 {
            throw TensorError.invalidArgument("\(name): quantization group \(group) is not a multiple of 32 in 32...4096")
        }
        guard let packed = vlm_packed_weight_create_grouped(Int64(n), Int64(k), storage.c, Int64(group)) else { throw Self.allocationError(name, n, k, storage) }
        var row0 = 0
        do {
            for (i, rows) in partRows.enumerated() {
                var done = false
                try fill(i) { src in
                    let c: vlm_source_dtype
                    switch src.dtype {
                    case .f32: c = VLM_SRC_F32
                    case .bf16: c = VLM_SRC_BF16
                    case .f16: c = VLM_SRC_F16
                    default: throw TensorError.invalidArgument("\(name): cannot pack \(src.dtype.rawValue) values")
                    }
                    guard !done, src.rows == rows, src.bytes.count == rows * k * src.dtype.byteSize, let base = src.bytes.baseAddress else {
                        throw TensorError.invalidArgument("\(name): part \(i) does not hold \(rows) x \(k) values")
                    }
                    let status = vlm_pack_weight_rows(packed, Int64(row0), base, c, Int64(rows))
                    if status == VLM_ERR_NOMEM { throw TensorError.allocationFailed(name: name, bytes: k * 4) }
                    guard status == 0 else { throw TensorError.invalidArgument("\(name): part \(i) could not be packed") }
                    done = true
                }
                guard done else { throw TensorError.invalidArgument("\(name): part \(i) was not packed") }
                row0 += rows
            }
        } catch {
            vlm_packed_weight_free(packed)
            throw error
        }
        handle = packed
        outFeatures = n
        inFeatures = k
        self.storage = storage
    }

    /// Adopts a packed weight made by the C packing functions (QuantizedPacking.swift).
    init(adopting handle: OpaquePointer, outFeatures: Int, inFeatures: Int, storage: Storage) {
        self.handle = handle
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.storage = storage
    }

    /// Row `n` widened (int8/int4: dequantized) to float32 into dst[0..<inFeatures] (an embedding lookup in a
    /// tied LM head's table).
    /// The caller validates n.
    public func copyRow(_ n: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(n >= 0 && n < outFeatures, "row \(n) outside 0..<\(outFeatures)")
        _ = vlm_packed_weight_get_row(handle, Int64(n), dst)
    }

    private static func allocationError(_ name: String, _ n: Int, _ k: Int, _ storage: Storage) -> TensorError {
        let bytes = ((n + 31) / 32) * 32 * k
        return TensorError.allocationFailed(name: name, bytes: storage == .int4 ? bytes / 2 : bytes * storage.bytesPerElement)
    }

    deinit { vlm_packed_weight_free(handle) }
}
