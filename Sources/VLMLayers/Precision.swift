/// What a user asks for with `--precision`: how a model's weights are kept, mapped to a WeightStorage here so
/// every command and the server agree. Compute stays float32 in every case (weight-only: 16-bit weights are
/// widened exactly, int8/int4 weights are dequantized by their group's scale inside the kernels).
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
    /// int8 weights, symmetric, one float32 scale per 128 weights along k (~1.03 bytes per weight).
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
    public static let helpText = "Weight precision: fp32 (exact), bf16, int8 or int4 (weight-only, group-wise scales; compute stays fp32). Generative models: the language model's weights (the vision tower stays fp32); default the checkpoint's own (bf16/fp16 kept as stored). Embedding models (CLIP, SigLIP): both towers; default fp32 (an index remembers the precision it was built with). Quantized checkpoints (GPTQ, AWQ, compressed-tensors) load as stored by default; fp32 dequantizes them exactly."

    /// The error for a name that is not a precision.
    public static func unknown(_ name: String) -> WeightError {
        .invalid("unknown precision '\(name)' (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
    }
}
