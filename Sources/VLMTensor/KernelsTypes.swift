import CVLM

/// The one error type of VLMTensor. Payloads name the culprit (a tensor or parameter name) so a failure
/// deep in model loading still says what was wrong.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    /// `name` has the wrong rank.
    case rankMismatch(name: String, expected: Int, got: [Int])
    /// `name` has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    /// Memory for `name` could not be allocated.
    case allocationFailed(name: String, bytes: Int)
    /// Any other invalid argument (e.g. an unknown activation name).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .rankMismatch(name, expected, got):
            return "\(name): expected rank \(expected), got shape \(got)"
        case let .shapeMismatch(name, expected, got):
            return "\(name): expected shape \(expected), got \(got)"
        case let .allocationFailed(name, bytes):
            return "\(name): failed to allocate \(bytes) bytes"
        case let .invalidArgument(message):
            return message
        }
    }
}

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

    var c: vlm_activation {
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
public final class PackedLinearWeight: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    let handle: OpaquePointer

    /// Throws `TensorError.rankMismatch` if `weight` is not 2-D, `.allocationFailed` if packing fails.
    public init(weight: Tensor, name: String = "weight") throws {
        guard weight.rank == 2 else { throw TensorError.rankMismatch(name: name, expected: 2, got: weight.shape) }
        let n = weight.shape[0], k = weight.shape[1]
        guard n > 0, k > 0 else { throw TensorError.invalidArgument("\(name): empty weight of shape \(weight.shape)") }
        let packed = withExtendedLifetime(weight) { vlm_pack_weight(weight.pointer, Int64(n), Int64(k), VLM_WEIGHT_F32) }
        guard let packed else {
            throw TensorError.allocationFailed(name: name, bytes: ((n + 31) / 32) * 32 * k * MemoryLayout<Float>.size)
        }
        handle = packed
        outFeatures = n
        inFeatures = k
    }

    deinit { vlm_packed_weight_free(handle) }
}
