import Foundation
import VLMTensor

/// One linear layer's weight as a quantized checkpoint stores it, unpacked: codes, and per output row and
/// group a scale and zero point, with the group of every k (GPTQ act-order scatters a group's columns).
struct UnpackedQuantizedWeight {
    let rows: Int, cols: Int, groups: Int
    /// The checkpoint's weights per group along k (its group_size; cols for per-channel scales).
    let groupSize: Int
    /// [rows, cols]: unsigned 4-bit codes 0...15, or int8 values.
    var codes: [Int8]
    /// [rows, groups]
    var scales: [Float]
    /// [rows, groups], nil for 0.
    var zeros: [UInt8]?
    /// [cols]: the group of each k.
    var groupOfK: [Int]

    /// The checkpoint's group size when groups are contiguous runs of k (k / size), else nil.
    var contiguousGroup: Int? {
        let size = groups == 1 ? cols : groupSize
        return groupOfK.enumerated().allSatisfy { $0.element == $0.offset / size } ? size : nil
    }

    /// As rows of our packed formats (group a multiple of 32 in 32...4096 inside which the checkpoint's scale is
    /// constant: its group, a divisor of it, or one group covering a short row), or nil when no such group exists.
    func asQuantizedRows() -> QuantizedRows? {
        guard let size = contiguousGroup else { return nil }
        let ours: Int
        if size >= cols, (cols + 31) / 32 * 32 <= 4096 {
            ours = max(32, (cols + 31) / 32 * 32)
        } else if let g = stride(from: min(size, 4096) / 32 * 32, through: 32, by: -32).first(where: { size % $0 == 0 }) {
            ours = g
        } else {
            return nil
        }
        let ourGroups = (cols + ours - 1) / ours
        var s = [Float](repeating: 0, count: rows * ourGroups), z: [UInt8]? = zeros.map { _ in [UInt8](repeating: 0, count: rows * ourGroups) }
        for r in 0 ..< rows {
            for g in 0 ..< ourGroups {
                let theirs = r * groups + groupOfK[g * ours]
                s[r * ourGroups + g] = scales[theirs]
                if let zeros { z?[r * ourGroups + g] = zeros[theirs] }
            }
        }
        return QuantizedRows(rows: rows, cols: cols, group: ours, codes: codes, scales: s, zeros: z)
    }

    /// The exact dequantized values [rows, cols] (see QuantizedRows.dequantized).
    func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * cols)
        for r in 0 ..< rows {
            for k in 0 ..< cols {
                let at = r * groups + groupOfK[k]
                out[r * cols + k] = scales[at] * Float(Int(codes[r * cols + k]) - (zeros.map { Int($0[at]) } ?? 0))
            }
        }
        return out
    }
}

extension WeightLoader {
    /// Whether `weightKey` ("<layer>.weight") is stored quantized (qweight, weight_packed, or int8 weight with a
    /// weight_scale).
    func isQuantized(_ weightKey: String) -> Bool {
        guard let store else { return false }
        let layer = String(weightKey.dropLast(".weight".count))
        return store.entry("\(layer).qweight") != nil || store.entry("\(layer).weight_packed") != nil
            || (store.entry(weightKey)?.dtype == .i8 && store.entry("\(layer).weight_scale") != nil)
    }

    /// The row-concatenation of quantized layers `keys` ("<layer>.weight", each [rows_i, cols]): packed int4/int8
    /// with the checkpoint's codes when every part's groups map onto ours and `storage` is .asStored or the
    /// matching quantized storage; the exact dequantized values as float32 when `storage` is .float32 or a
    /// part's groups cannot map (GPTQ act-order). Other storages would re-round the weights: an error.
    func quantizedWeight(_ keys: [String], rows: [Int], cols: Int, storage: WeightStorage,
                         scheme: QuantizationScheme, store: WeightStore) throws -> PackedLinearWeight {
        let parts = try zip(keys, rows).map { try unpack(String($0.dropLast(".weight".count)), rows: $1, cols: cols, scheme: scheme, store: store) }
        let native: PackedLinearWeight.Storage
        if case .intQuantized = scheme { native = .int8 } else { native = .int4 }
        let name = keys.joined(separator: "|")
        switch storage {
        case .asStored, .int8, .int4:
            if storage != .asStored && storage.packedStorage(for: .f32) != native {
                throw WeightError.invalid("\(name) is stored \(scheme); loading it as \(storage.rawValue) would re-round its weights (load it as stored or as fp32)")
            }
            let mapped = parts.compactMap { $0.asQuantizedRows() }
            if mapped.count == parts.count, Set(mapped.map(\.group)).count == 1, native == .int4 || parts.allSatisfy({ $0.zeros == nil }) {
                return try PackedLinearWeight.prequantized(mapped, inFeatures: cols, storage: native, name: name)
            }
            if storage != .asStored {
                throw WeightError.invalid("\(name): the groups of its \(scheme) codes do not map onto \(storage.rawValue) groups (act-order); load it as stored (exact fp32)")
            }
        case .float32:
            break
        case .bfloat16, .float16:
            throw WeightError.invalid("\(name) is stored \(scheme); loading it as \(storage.rawValue) would re-round its weights (load it as stored or as fp32)")
        }
        let values = parts.map { $0.dequantized() }
        return try PackedLinearWeight(rows: rows, inFeatures: cols, storage: .float32, name: name) { i, pack in
            try values[i].withUnsafeBytes { try pack(.init(bytes: $0, dtype: .f32, rows: rows[i])) }
        }
    }

    /// Reads one layer's quantized tensors and claims them.
    private func unpack(_ layer: String, rows n: Int, cols k: Int, scheme: QuantizationScheme, store: WeightStore) throws -> UnpackedQuantizedWeight {
        var used: [String] = []
        func entry(_ name: String) throws -> SafeTensorsFile.Entry {
            let key = "\(layer).\(name)"
            guard let e = store.entry(key) else { throw WeightError.missing(key: key, directory: store.directory.path) }
            used.append(key)
            return e
        }
        func ints(_ name: String, shape: [Int], dtypes: [SafeTensorsDType] = [.i32]) throws -> [Int32] {
            let e = try entry(name), key = "\(layer).\(name)"
            guard e.shape == shape else { throw WeightError.shapeMismatch(key: key, expected: shape, actual: e.shape) }
            guard dtypes.contains(e.dtype) else { throw WeightError.invalid("tensor '\(key)' is \(e.dtype.rawValue), expected \(dtypes.map(\.rawValue).joined(separator: " or ")) (\(scheme))") }
            do {
                return try store.withRawBytes(key) { raw, e in
                    let count = shape.reduce(1, *)
                    switch e.dtype {
                    case .i8: return (0 ..< count).map { Int32(raw.loadUnaligned(fromByteOffset: $0, as: Int8.self)) }
                    case .i64: return (0 ..< count).map { Int32(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
                    default: return (0 ..< count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
                    }
                }
            } catch let e as TensorError { throw WeightError.storage(e) }
        }
        func floats(_ name: String, shape: [Int]) throws -> [Float] {
            let e = try entry(name), key = "\(layer).\(name)"
            guard e.shape == shape else { throw WeightError.shapeMismatch(key: key, expected: shape, actual: e.shape) }
            do {
                let t = try store.tensor(key)
                return withExtendedLifetime(t) { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)) }
            } catch let e as TensorError { throw WeightError.storage(e) }
        }
        func nibble(_ word: Int32, _ i: Int) -> Int { Int((UInt32(bitPattern: word) >> UInt32(4 * i)) & 15) }
        func groupCount(_ group: Int) throws -> Int {
            guard group == -1 || group > 0 else { throw WeightError.invalid("\(layer): group_size \(group) is invalid (\(scheme))") }
            return group == -1 ? 1 : (k + group - 1) / group
        }
        var w: UnpackedQuantizedWeight
        switch scheme {
        case .gptq(let group, let v1):
            // GPTQ: qweight [K/8, N], nibble i of word (r, n) is k = 8r + i; qzeros [G, N/8], scales [G, N].
            guard k % 8 == 0, n % 8 == 0 else { throw WeightError.invalid("\(layer): GPTQ packing needs in/out features divisible by 8, got \(n) x \(k)") }
            let g = try groupCount(group)
            let qweight = try ints("qweight", shape: [k / 8, n]), qzeros = try ints("qzeros", shape: [g, n / 8])
            let scales = try floats("scales", shape: [g, n])
            let size = group == -1 ? k : group
            var gIdx = (0 ..< k).map { min($0 / size, g - 1) }
            if store.entry("\(layer).g_idx") != nil { gIdx = try ints("g_idx", shape: [k]).map { Int($0) } }
            guard gIdx.allSatisfy({ $0 >= 0 && $0 < g }) else { throw WeightError.invalid("\(layer).g_idx has a group outside 0..<\(g)") }
            w = UnpackedQuantizedWeight(rows: n, cols: k, groups: g, groupSize: size, codes: [Int8](repeating: 0, count: n * k), scales: [], zeros: [], groupOfK: gIdx)
            for r in 0 ..< k / 8 { for c in 0 ..< n { let word = qweight[r * n + c]; for i in 0 ..< 8 { w.codes[c * k + 8 * r + i] = Int8(nibble(word, i)) } } }
            w.scales = (0 ..< n * g).map { scales[($0 % g) * n + $0 / g] }
            w.zeros = (0 ..< n * g).map { at in
                let c = at / g, gi = at % g
                return UInt8(nibble(qzeros[gi * (n / 8) + c / 8], c % 8) + (v1 ? 1 : 0))
            }
        case .awq(let group):
            // AWQ GEMM: qweight [K, N/8], qzeros [G, N/8]; column 8c + j sits in nibble order[j].
            let order = [0, 4, 1, 5, 2, 6, 3, 7]
            guard n % 8 == 0 else { throw WeightError.invalid("\(layer): AWQ packing needs out features divisible by 8, got \(n)") }
            let g = try groupCount(group)
            let qweight = try ints("qweight", shape: [k, n / 8]), qzeros = try ints("qzeros", shape: [g, n / 8])
            let scales = try floats("scales", shape: [g, n])
            let size = group == -1 ? k : group
            w = UnpackedQuantizedWeight(rows: n, cols: k, groups: g, groupSize: size, codes: [Int8](repeating: 0, count: n * k), scales: [], zeros: [],
                                        groupOfK: (0 ..< k).map { $0 / size })
            for kk in 0 ..< k { for c in 0 ..< n { w.codes[c * k + kk] = Int8(nibble(qweight[kk * (n / 8) + c / 8], order[c % 8])) } }
            w.scales = (0 ..< n * g).map { scales[($0 % g) * n + $0 / g] }
            w.zeros = (0 ..< n * g).map { at in UInt8(nibble(qzeros[(at % g) * (n / 8) + at / g / 8], order[at / g % 8])) }
        case .packQuantized(let symmetric):
            // weight_packed [N, ceil(K/8)]: signed codes + 8, k = 8c + i in nibble i; weight_scale [N, G].
            let packed = try ints("weight_packed", shape: [n, (k + 7) / 8])
            let shape = try ints("weight_shape", shape: [2], dtypes: [.i64, .i32])
            guard shape == [Int32(n), Int32(k)] else { throw WeightError.invalid("\(layer).weight_shape is \(shape), expected [\(n), \(k)]") }
            guard let scaleShape = store.entry("\(layer).weight_scale")?.shape, scaleShape.count == 2, scaleShape[0] == n, scaleShape[1] >= 1, scaleShape[1] <= k else {
                throw WeightError.invalid("\(layer).weight_scale is missing or not [\(n), groups]")
            }
            let g = scaleShape[1], size = (k + g - 1) / g
            let scales = try floats("weight_scale", shape: [n, g])
            w = UnpackedQuantizedWeight(rows: n, cols: k, groups: g, groupSize: size, codes: [Int8](repeating: 0, count: n * k),
                                        scales: scales, zeros: nil, groupOfK: (0 ..< k).map { $0 / size })
            for r in 0 ..< n { for kk in 0 ..< k { w.codes[r * k + kk] = Int8(nibble(packed[r * ((k + 7) / 8) + kk / 8], kk % 8)) } }
            if symmetric {
                w.zeros = [UInt8](repeating: 8, count: n * g)
            } else {
                // weight_zero_point [ceil(N/8), G], packed along n (signed + 8).
                let zp = try ints("weight_zero_point", shape: [(n + 7) / 8, g])
                w.zeros = (0 ..< n * g).map { at in UInt8(nibble(zp[(at / g / 8) * g + at % g], at / g % 8)) }
            }
        case .intQuantized:
            if store.entry("\(layer).weight_zero_point") != nil {
                throw WeightError.invalid("\(layer): asymmetric int-quantized weights (weight_zero_point) are not supported; supported: \(QuantizationScheme.supported)")
            }
            let weight = try ints("weight", shape: [n, k], dtypes: [.i8])
            guard let scaleShape = store.entry("\(layer).weight_scale")?.shape, [[n, 1], [n]].contains(scaleShape) || (scaleShape.count == 2 && scaleShape[0] == n && scaleShape[1] <= k) else {
                throw WeightError.invalid("\(layer).weight_scale is missing or not [\(n), 1] / [\(n), groups] (per-tensor int8 scales are not supported)")
            }
            let g = scaleShape.count == 2 ? scaleShape[1] : 1, size = (k + g - 1) / g
            let scales = try floats("weight_scale", shape: scaleShape)
            w = UnpackedQuantizedWeight(rows: n, cols: k, groups: g, groupSize: size, codes: weight.map { Int8(truncatingIfNeeded: $0) },
                                        scales: scales, zeros: nil, groupOfK: (0 ..< k).map { $0 / size })
            for suffix in ["input_scale", "input_zero_point"] where store.entry("\(layer).\(suffix)") != nil { used.append("\(layer).\(suffix)") }
        }
        used.forEach { claimed.insert($0) }
        return w
    }
}
