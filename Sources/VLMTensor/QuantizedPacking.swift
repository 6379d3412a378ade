import CVLM

/// Codes quantized elsewhere (a GPTQ, AWQ or compressed-tensors checkpoint) for rows of an int8/int4 weight:
/// W(r, k) = scales[r * groups + k / group] * (codes[r * cols + k] - zeros[r * groups + k / group]), exactly.
public struct QuantizedRows: Sendable {
    /// Output rows and input features (k).
    public let rows: Int
    public let cols: Int
    /// Weights per scale along k (the last group of a row may be shorter).
    public let group: Int
    /// [rows, cols]: int8 values (8-bit) or unsigned codes 0...15 (4-bit).
    public let codes: [Int8]
    /// [rows, groups] float32 scales.
    public let scales: [Float]
    /// [rows, groups] zero points (4-bit; any UInt8, e.g. 16 from a GPTQ v1 zero stored as 15), nil for 0.
    public let zeros: [UInt8]?

    public var groups: Int { (cols + group - 1) / group }

    public init(rows: Int, cols: Int, group: Int, codes: [Int8], scales: [Float], zeros: [UInt8]?) {
        self.rows = rows
        self.cols = cols
        self.group = group
        self.codes = codes
        self.scales = scales
        self.zeros = zeros
    }

    /// The dequantized values [rows, cols] in float32: s * Float(q - z), one rounding, which is exact for the
    /// scales checkpoints store (fp16/bf16 times an integer of at most 9 bits fits a float32 mantissa).
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        let g = groups
        for r in 0 ..< rows {
            for k in 0 ..< cols {
                let at = r * g + k / group
                let z = zeros.map { Int($0[at]) } ?? 0
                out[r * cols + k] = scales[at] * Float(Int(codes[r * cols + k]) - z)
            }
        }
        return out
    }
}

extension PackedLinearWeight {
    /// Packs the row-concatenation of `parts` (all of `inFeatures` columns and one group size, a multiple of
    /// 32 in 32...4096) into int8 or int4 storage without re-rounding: the weight's dequantized values are
    /// exactly the parts' (QuantizedRows.dequantized). Throws `.invalidArgument` for mismatched parts, codes
    /// outside 0...15 for int4, or zero points on int8.
    public static func prequantized(_ parts: [QuantizedRows], inFeatures k: Int, storage: Storage,
                                    name: String = "weight") throws -> PackedLinearWeight {
        guard storage.isQuantized else { throw TensorError.invalidArgument("\(name): \(storage.rawValue) is not a quantized storage") }
        guard let group = parts.first?.group, parts.allSatisfy({ $0.group == group && $0.cols == k && $0.rows > 0 }) else {
            throw TensorError.invalidArgument("\(name): parts differ in group size or width, or are empty")
        }
        guard group >= 32, group <= 4096, group % 32 == 0 else {
            throw TensorError.invalidArgument("\(name): quantization group \(group) is not a multiple of 32 in 32...4096")
        }
        let n = parts.reduce(0) { $0 + $1.rows }
        guard let handle = vlm_packed_weight_create_grouped(Int64(n), Int64(k), storage.c, Int64(group)) else {
            throw TensorError.allocationFailed(name: name, bytes: n * k)
        }
        var row0 = 0
        for part in parts {
            let g = part.groups
            guard part.codes.count == part.rows * k, part.scales.count == part.rows * g,
                  part.zeros.map({ $0.count == part.rows * g }) ?? true, storage == .int4 || part.zeros == nil else {
                vlm_packed_weight_free(handle)
                throw TensorError.invalidArgument("\(name): a part's codes, scales or zero points do not match \(part.rows) x \(k)")
            }
            let zeros = part.zeros ?? [UInt8](repeating: 0, count: part.rows * g)
            let status = part.codes.withUnsafeBufferPointer { q in
                part.scales.withUnsafeBufferPointer { s in
                    zeros.withUnsafeBufferPointer { z in
                        vlm_pack_quantized_rows(handle, Int64(row0), q.baseAddress, s.baseAddress, z.baseAddress, Int64(part.rows))
                    }
                }
            }
            guard status == 0 else {
                vlm_packed_weight_free(handle)
                throw TensorError.invalidArgument("\(name): codes outside the \(storage.rawValue) range")
            }
            row0 += part.rows
        }
        return PackedLinearWeight(adopting: handle, outFeatures: n, inFeatures: k, storage: storage)
    }
}
