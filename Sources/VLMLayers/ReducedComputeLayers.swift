import Foundation
import VLMTensor

/// Which linear layers run int8 x int8 compute (PackedLinearWeight.setInt8Compute) when their weights are int8
/// (`--precision int8`, or an int8 checkpoint): activations are quantized per token and group of 128 k at call time, so these layers
/// trade accuracy for speed on top of the weights' rounding. Calls with fewer than
/// PackedLinearWeight.int8ComputeMinRows rows (decode) stay weight-only whatever the choice.
///
/// The default depends on the family (VLM_INT8_COMPUTE overrides it everywhere):
/// - decoders (Llama/Qwen2 language models): `.all` (with bf16 attention in prefill, GroupedQueryAttention.bf16).
///   `vlm quant-report` prefill figures (Benchmarks/RESULTS.md, session 16): next-token top-1 agreement with fp32
///   the same as `.mlp` on the embedded generative default and all five random-weight decoder fixtures, mean KL
///   1.35-1.45x `.mlp`'s on the fixtures (0.0003-0.0014, the size of the int8 weights' own cost) and half of it on the
///   trained default; for 1.5x the prefill tokens/s. q|k|v take the same normed inputs as gate|up, so the
///   activation outliers of real checkpoints reach both alike; `VLM_INT8_COMPUTE=mlp` keeps the old choice.
/// - dual-encoder towers (CLIP, SigLIP, SigLIP2): `.all`. Measured on the embedded default (Benchmarks/RESULTS.md):
///   R@1 on fresh scenes within 0.8 points of fp32, zero-shot agreement 100% on the photo fixtures, embedding
///   cosine >= 0.9996, for 1.8x the images/s of `.mlp`.
public enum Int8ComputeLayers: String, Sendable, CaseIterable {
    /// Weight-only everywhere (activations stay float32).
    case none
    /// The MLPs: fc1/fc2 of encoder layers, gate|up and down of decoder layers.
    case mlp
    /// The MLPs, every attention projection (fused q|k|v, out_proj / o_proj) and the towers' patch projections.
    case all

    /// VLM_INT8_COMPUTE (none, mlp or all) when set to one of those, else the decoders' default: the environment
    /// variable exists to measure the alternatives (vlm quant-report, vlm bench*) without a new precision name.
    public static var standard: Int8ComputeLayers { standard(familyDefault: decoderDefault) }

    /// VLM_INT8_COMPUTE when set to a valid choice, else the family's default.
    public static func standard(familyDefault: Int8ComputeLayers) -> Int8ComputeLayers {
        ProcessInfo.processInfo.environment["VLM_INT8_COMPUTE"].flatMap { Int8ComputeLayers(rawValue: $0.lowercased()) } ?? familyDefault
    }

    /// The defaults above.
    public static let decoderDefault = Int8ComputeLayers.all
    public static let dualEncoderDefault = Int8ComputeLayers.all

    /// Whether layers of `role` (.mlp or .all for attention) run int8 compute under this choice.
    public func covers(_ role: Int8ComputeLayers) -> Bool {
        switch self {
        case .none: return false
        case .mlp: return role == .mlp
        case .all: return true
        }
    }
}

/// Whether bf16 weights asked for with `--precision bf16` (WeightStorage.bfloat16) also compute in bf16
/// (PackedLinearWeight.setBF16Compute): activations rounded to bf16, exact products summed in fp32, on calls of
/// PackedLinearWeight.bf16ComputeMinRows rows or more (encoders, prefill). Every linear layer of the model takes
/// part (the published experience, and our quant-report, is that bf16 activations cost little, unlike int8).
/// Checkpoints whose weights are bf16 as stored (the default `.asStored`) keep exact fp32 compute.
public enum BF16Compute {
    /// False when VLM_BF16_COMPUTE is "none" (to measure weight-only bf16 against bf16 compute), else true.
    public static var standard: Bool {
        ProcessInfo.processInfo.environment["VLM_BF16_COMPUTE"]?.lowercased() != "none"
    }
}

/// Whether int4 weights decode in W4A8 (PackedLinearWeight.w4a8Kernel: int8 activations in blocks of 32, the 4-bit
/// codes multiplied in int32) instead of widening every code to fp32. On where the CPU has a SIMD kernel for it
/// (AVX512-VNNI + VBMI): there the weight-only int4 GEMV is compute-bound below the memory bandwidth. Every int4
/// layer takes part (per-block scales cost far less than the per-token ones of int8 compute; `vlm quant-report`
/// measures it). Applies to `--precision int4` (storage `.int4`); a GPTQ/AWQ/compressed-tensors checkpoint loaded as
/// stored keeps the weight-only GEMV, the w4a16 arithmetic transformers computes. VLM_W4A8=none keeps the
/// weight-only GEMV (to measure one against the other).
public enum W4A8Decode {
    public static var standard: Bool {
        ProcessInfo.processInfo.environment["VLM_W4A8"]?.lowercased() != "none" && PackedLinearWeight.w4a8FastAvailable
    }
}

extension WeightScope {
    /// Marks the weights of `layers` for reduced-precision compute: int8 weights when the loader's int8 choice
    /// covers `role`, bf16 weights of a scope forced to bf16 when the loader computes in bf16, int4 weights of a
    /// scope forced to int4 for W4A8 decode (whatever the role); other storages are left as they are.
    public func applyReducedCompute(_ role: Int8ComputeLayers, _ layers: [Linear]) throws {
        for layer in layers {
            do {
                if layer.weight.storage == .int8, loader.int8Compute.covers(role) { try layer.weight.setInt8Compute(true) }
                if layer.weight.storage == .bfloat16, computesInBF16 { try layer.weight.setBF16Compute(true) }
            } catch let e as TensorError { throw WeightError.storage(e) }
        }
        try applyW4A8Decode(layers)
    }

    /// Marks int4 weights of `layers` for W4A8 decode when this scope decodes in W4A8 (decoder layers, and the LM head,
    /// which is not one of the roles of applyReducedCompute); other weights are left as they are.
    public func applyW4A8Decode(_ layers: [Linear]) throws {
        guard decodesInW4A8 else { return }
        for layer in layers where layer.weight.storage == .int4 {
            do { try layer.weight.setInt8Compute(true) } catch let e as TensorError { throw WeightError.storage(e) }
        }
    }
}
