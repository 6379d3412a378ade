import VLMTensor

/// What a user asks for with `--precision`: how a model's weights are kept, mapped to a WeightStorage here so
/// every command and the server agree. Compute stays float32 (weight-only: 16-bit weights are widened exactly,
/// int8/int4 weights are dequantized by their group's scale inside the kernels), except that int8 weights of the
/// layers Int8ComputeLayers chooses (default: the MLPs) run int8 x int8 compute with per-token int8 activations
/// on calls of at least 16 rows (encoders, prefill); decode stays weight-only.
///
/// Scope: a precision applies to the language model of a generative checkpoint (its linear layers, embedding
/// table and tied LM head; LLaVA's projector too) and to both towers of a dual encoder (CLIP, SigLIP, SigLIP2:
/// every linear layer, the patch projection and the token embeddings). The vision towers of generative
/// checkpoints stay float32. A family that cannot run a precision refuses it with an error that says so.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// float32 weights (exact; 4 bytes per weight).
    case fp32
    /// bfloat16 weights (float32 checkpoints are rounded to nearest even; 2 bytes per weight).
    case bf16
    /// int8 weights, symmetric, one float32 scale per 128 weights along k (~1.03 bytes per weight); the MLPs
    /// also compute in int8 from 16 rows (Int8ComputeLayers).
    case int8
    /// int4 weights with a zero point, one float32 scale and zero point per 128 weights (~0.56 bytes per weight).
    case int4

    /// Accepts the names above and the usual aliases (f32, float32, bfloat16, i8, i4, q8, q4).
    public init?(name: String) {
        switch name.lowercased() {
        case "fp32", "f32", "float32": self = .fp32
        case "bf16", "bfloat16": self = .bf16
        case "int8", "i8", "q8": self = .int8
        case "int4", "i4", "q4": self = .int4
        default: return nil
        }
    }

    /// The weight storage of the language model's layers.
    public var weightStorage: WeightStorage {
        switch self {
        case .fp32: return .float32
        case .bf16: return .bfloat16
        case .int8: return .int8
        case .int4: return .int4
        }
    }

    /// One line for command help texts.
    public static let helpText = "Weight precision: fp32 (exact), bf16, int8 or int4 (group-wise scales; compute stays fp32, except int8: MLPs compute in int8 with per-token int8 activations on encoder/prefill calls of 16+ rows; VLM_INT8_COMPUTE=none|mlp|all changes which layers). Generative models: the language model's weights (the vision tower stays fp32); default the checkpoint's own (bf16/fp16 kept as stored). Embedding models (CLIP, SigLIP): both towers; default fp32 (an index remembers the precision it was built with). Quantized checkpoints (GPTQ, AWQ, compressed-tensors) load as stored by default; fp32 dequantizes them exactly."

    /// What a load with this precision computes with, for benchmark reports ("int8 weights, int8 compute in mlp
    /// layers (avx2 int8 vpmaddwd 6x16), fp32 elsewhere").
    public var engineDescription: String {
        guard self == .int8, Int8ComputeLayers.standard != .none else { return "\(rawValue) weights, fp32 compute" }
        return "int8 weights, int8 compute in \(Int8ComputeLayers.standard.rawValue) layers (\(PackedLinearWeight.int8ComputeKernel)), fp32 elsewhere"
    }

    /// The error for a name that is not a precision.
    public static func unknown(_ name: String) -> WeightError {
        .invalid("unknown precision '\(name)' (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
    }
}
