import VLMTensor

/// What a user asks for with `--precision`: how a model's weights are kept and how its linear layers compute,
/// mapped to a WeightStorage here so every command and the server agree.
/// - fp32: exact (float32 weights and compute).
/// - bf16: bf16 weights; calls of at least 16 rows (encoders, prefill) also compute in bf16 (activations rounded to
///   bf16, exact products summed in fp32: vdpbf16ps on CPUs with AVX512_BF16, the same numbers through the fp32
///   kernel elsewhere); decode stays exact on the bf16 weights (BF16Compute; VLM_BF16_COMPUTE=none turns it off).
/// - int8: int8 weights (weight-only: dequantized by their group's scale inside the kernels), except that the
///   layers Int8ComputeLayers chooses (every projection, by default) run int8 x int8
///   compute with int8 activations (a scale per token and group of 128) on calls of at least 16 rows; decode stays
///   weight-only.
/// - int4: int4 weights, weight-only.
///
/// Scope: a precision applies to the language model of a generative checkpoint (its linear layers, embedding
/// table and tied LM head; LLaVA's projector too; bf16, int8 and int4 keep its KV cache in bf16:
/// KVCachePrecision.standard) and to both towers of a dual encoder (CLIP, SigLIP, SigLIP2:
/// every linear layer, the patch projection and the token embeddings). The vision towers of generative
/// checkpoints stay float32. A family that cannot run a precision refuses it with an error that says so.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// float32 weights (exact; 4 bytes per weight).
    case fp32
    /// bfloat16 weights (float32 checkpoints are rounded to nearest even; 2 bytes per weight); encoders and
    /// prefill compute in bf16 (BF16Compute).
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
    public static let helpText = "Precision: fp32 (exact), bf16, int8 or int4. bf16: bf16 weights, and encoders/prefill (calls of 16+ rows) compute in bf16 (activations rounded to bf16, fp32 sums; AVX512_BF16 where the CPU has it; VLM_BF16_COMPUTE=none keeps fp32 compute). int8/int4: group-wise quantized weights, fp32 compute, except int8 layers compute in int8 with int8 activations (a scale per token and group of 128) on calls of 16+ rows (every projection, decoders with bf16 attention in prefill; VLM_INT8_COMPUTE=none|mlp|all overrides). --precision int4 decode steps quantize activations to int8 in blocks of 32 where the CPU has AVX512-VNNI + VBMI (VLM_W4A8=none: fp32; quantized checkpoints loaded as stored keep fp32 activations). Generative models: the language model (the vision tower stays fp32), whose KV cache bf16, int8 and int4 keep in bf16 (half the memory and the bytes a decode step reads; VLM_KV_CACHE=fp32 keeps fp32); default the checkpoint's own weights (bf16/fp16 kept as stored, fp32 compute). Embedding models (CLIP, SigLIP): both towers; default fp32 (an index remembers the precision it was built with). Quantized checkpoints (GPTQ, AWQ, compressed-tensors) load as stored by default; fp32 dequantizes them exactly."

    /// What a load with this precision computes with, for benchmark reports ("int8 weights, int8 compute in mlp
    /// layers (avx512-vnni int8 vpdpbusd 8x32), fp32 elsewhere").
    public var engineDescription: String { engineDescription(int8Layers: .standard) }

    /// As engineDescription for a family whose int8-compute layers are `int8Layers` (dual encoders:
    /// Int8ComputeLayers.standard(familyDefault: .dualEncoderDefault)).
    public func engineDescription(int8Layers: Int8ComputeLayers) -> String {
        switch self {
        case .bf16 where BF16Compute.standard:
            return "bf16 weights, bf16 compute from \(PackedLinearWeight.bf16ComputeMinRows) rows (\(PackedLinearWeight.bf16ComputeKernel))"
        case .int4 where W4A8Decode.standard:
            return "int4 weights, decode in W4A8 (int8 activations in blocks of 32, \(PackedLinearWeight.w4a8Kernel)), fp32 prefill"
        case .int8 where int8Layers != .none:
            return "int8 weights, int8 compute in \(int8Layers.rawValue) layers (\(PackedLinearWeight.int8ComputeKernel)), fp32 elsewhere"
        default:
            return "\(rawValue) weights, fp32 compute"
        }
    }

    /// engineDescription for a dual encoder (CLIP, SigLIP towers).
    public var dualEncoderEngineDescription: String {
        engineDescription(int8Layers: .standard(familyDefault: .dualEncoderDefault))
    }

    /// The error for a name that is not a precision.
    public static func unknown(_ name: String) -> WeightError {
        .invalid("unknown precision '\(name)' (known: \(allCases.map(\.rawValue).joined(separator: ", ")))")
    }
}
