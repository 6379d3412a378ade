import CVLM

/// int8 compute (W8A8) on int8 weights: activations quantized to int8 per token and weight group at call time, products summed
/// exactly in int32 per group, fp32 epilogue (definition: vlm_linear_i8 in cvlm_kernels.h). Applies to calls with
/// at least `int8ComputeMinRows` rows (encoders, prefill); fewer rows (decode) keep the weight-only kernels.
extension PackedLinearWeight {
    /// Rows from which a weight marked for int8 compute runs it (fewer keep the weight-only GEMV).
    public static let int8ComputeMinRows = Int(VLM_I8_GEMM_MIN_M)

    /// The int8-compute kernel this CPU runs ("avx2 int8 vpmaddwd 6x16", "avx512-vnni int8 vpdpbusd 8x32", "naive").
    public static var int8ComputeKernel: String { String(cString: vlm_i8_gemm_kernel()) }

    /// Whether linear calls on this weight run int8 compute (from `int8ComputeMinRows` rows).
    public var computesInInt8: Bool { vlm_packed_weight_compute(handle) == VLM_COMPUTE_INT8 }

    /// Marks this int8 weight for int8 compute (or back to weight-only); on an int4 weight, W4A8 decode (calls of up
    /// to `w4a8MaxRows` rows: activations in int8 blocks of 32, definition: vlm_linear_w4a8). Call at load, before
    /// the weight is used from several threads (an int4 weight's codes are re-laid in place for the kernel that
    /// reads them). Throws for storage other than int8 and int4.
    public func setInt8Compute(_ on: Bool) throws {
        let status = vlm_packed_weight_set_compute(handle, on ? VLM_COMPUTE_INT8 : VLM_COMPUTE_WEIGHT_ONLY)
        if status == VLM_ERR_NOMEM { throw TensorError.allocationFailed(name: "int4 code re-layout", bytes: 4096 * 16) }
        guard status == 0 else {
            throw TensorError.invalidArgument("int8 compute needs int8 or int4 weights, this one is \(storage.rawValue)")
        }
    }
}

/// W4A8 decode on int4 weights: rows of up to `w4a8MaxRows` (decode steps) quantize their activations to int8 in
/// blocks of 32 and multiply them with the 4-bit codes in int32 (vpdpbusd), instead of widening every code to fp32;
/// prefill keeps the fp32 path (definition: vlm_linear_w4a8 in cvlm_kernels.h).
extension PackedLinearWeight {
    /// Rows up to which an int4 weight marked for int8 compute runs W4A8.
    public static let w4a8MaxRows = Int(VLM_QGEMV_MAX_M)
    /// The W4A8 kernel this CPU runs ("avx512-vnni+vbmi int4 x int8 vpdpbusd GEMV", or "naive").
    public static var w4a8Kernel: String { String(cString: vlm_w4a8_kernel()) }
    /// Whether this CPU (and forced ISA) runs W4A8 with SIMD; elsewhere it would run the scalar reference.
    public static var w4a8FastAvailable: Bool { vlm_w4a8_fast_available() != 0 }
}

/// bf16 compute on bf16 weights: activations rounded to bf16 at call time, exact products summed in fp32
/// (definition: vlm_linear_bf16 in cvlm_kernels.h; vdpbf16ps on CPUs with AVX512_BF16, elsewhere the same rounded
/// activations through the fp32 kernel). Applies to calls with at least `bf16ComputeMinRows` rows (encoders,
/// prefill); fewer rows (decode, bandwidth-bound) keep the exact kernels on the same weights.
extension PackedLinearWeight {
    /// Rows from which a weight marked for bf16 compute runs it.
    public static let bf16ComputeMinRows = Int(VLM_BF16_GEMM_MIN_M)

    /// The bf16-compute kernel this CPU runs ("avx512-bf16 vdpbf16ps 14x32", or the fallback's name).
    public static var bf16ComputeKernel: String { String(cString: vlm_bf16_gemm_kernel()) }

    /// Whether linear calls on this weight run bf16 compute (from `bf16ComputeMinRows` rows).
    public var computesInBF16: Bool { vlm_packed_weight_compute(handle) == VLM_COMPUTE_BF16 }

    /// Marks this bf16 weight for bf16 compute (or back to exact fp32 compute). Call at load, before the weight is
    /// used from several threads. Throws for storage other than bf16.
    public func setBF16Compute(_ on: Bool) throws {
        guard vlm_packed_weight_set_compute(handle, on ? VLM_COMPUTE_BF16 : VLM_COMPUTE_WEIGHT_ONLY) == 0 else {
            throw TensorError.invalidArgument("bf16 compute needs bf16 weights, this one is \(storage.rawValue)")
        }
    }
}
