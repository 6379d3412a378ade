import CVLM

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

    /// Kernel thread count (default: online CPUs). Setting a value <= 0 restores the default.
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
    /// Element type of the packed panels.
    public enum Storage: String, Sendable, CaseIterable {
        case float32, bfloat16, float16

        var c: vlm_weight_dtype {
            switch self {
            case .float32: return VLM_WEIGHT_F32
            case .bfloat16: return VLM_WEIGHT_BF16
            case .float16: return VLM_WEIGHT_F16
            }
        }

        /// The storage that keeps a safetensors dtype without loss (F32 for anything but BF16/F16).
        public init(keeping dtype: SafeTensorsDType) {
            switch dtype {
            case .bf16: self = .bfloat16
            case .f16: self = .float16
            default: self = .float32
            }
        }

        public var bytesPerElement: Int { self == .float32 ? 4 : 2 }
    }

    public let outFeatures: Int
    public let inFeatures: Int
    public let storage: Storage
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
    public init(rows partRows: [Int], inFeatures k: Int, storage: Storage, name: String = "weight",
                fill: (_ part: Int, _ pack: (RawRows) throws -> Void) throws -> Void) throws {
        let n = partRows.reduce(0, +)
        guard n > 0, k > 0, partRows.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument("\(name): empty weight of \(partRows) x \(k)")
        }
        guard let packed = vlm_packed_weight_create(Int64(n), Int64(k), storage.c) else { throw Self.allocationError(name, n, k, storage) }
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
                    guard !done, src.rows == rows, src.bytes.count == rows * k * src.dtype.byteSize, let base = src.bytes.baseAddress,
                          vlm_pack_weight_rows(packed, Int64(row0), base, c, Int64(rows)) == 0 else {
                        throw TensorError.invalidArgument("\(name): part \(i) does not hold \(rows) x \(k) values")
                    }
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

    /// Row `n` widened to float32 into dst[0..<inFeatures] (an embedding lookup in a tied LM head's table).
    /// The caller validates n.
    public func copyRow(_ n: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(n >= 0 && n < outFeatures, "row \(n) outside 0..<\(outFeatures)")
        _ = vlm_packed_weight_get_row(handle, Int64(n), dst)
    }

    private static func allocationError(_ name: String, _ n: Int, _ k: Int, _ storage: Storage) -> TensorError {
        TensorError.allocationFailed(name: name, bytes: ((n + 31) / 32) * 32 * k * storage.bytesPerElement)
    }

    deinit { vlm_packed_weight_free(handle) }
}
