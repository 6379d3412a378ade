import Foundation

/// config.json's `quantization_config` as GPTQ, AWQ and compressed-tensors checkpoints write it (the keys each
/// method uses; absent keys take the method's defaults).
public struct QuantizationConfig: Decodable, Sendable {
    public var quantMethod: String?
    public var bits: Int?
    public var groupSize: Int?
    public var descAct: Bool?
    public var sym: Bool?
    /// GPTQ: "gptq" (v1, zero points stored minus one) or "gptq_v2".
    public var checkpointFormat: String?
    /// AWQ: "gemm" (others: gemv, exllama, ipex ... pack differently).
    public var version: String?
    public var zeroPoint: Bool?
    /// compressed-tensors: "pack-quantized", "int-quantized", ...
    public var format: String?
    public var configGroups: [String: CompressedTensorsGroup]?

    enum CodingKeys: String, CodingKey {
        case quantMethod = "quant_method", bits, groupSize = "group_size", descAct = "desc_act", sym
        case checkpointFormat = "checkpoint_format", version, zeroPoint = "zero_point", format
        case configGroups = "config_groups"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        quantMethod = try c.decodeIfPresent(String.self, forKey: .quantMethod)
        bits = try c.decodeIfPresent(Int.self, forKey: .bits)
        groupSize = try c.decodeIfPresent(Int.self, forKey: .groupSize)
        descAct = try c.decodeIfPresent(Bool.self, forKey: .descAct)
        sym = try c.decodeIfPresent(Bool.self, forKey: .sym)
        checkpointFormat = try c.decodeIfPresent(String.self, forKey: .checkpointFormat)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        zeroPoint = try c.decodeIfPresent(Bool.self, forKey: .zeroPoint)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        configGroups = try c.decodeIfPresent([String: CompressedTensorsGroup].self, forKey: .configGroups)
    }
}

/// One `config_groups` entry of a compressed-tensors config: which layers, and how weights and activations are
/// quantized.
public struct CompressedTensorsGroup: Decodable, Sendable {
    public struct Args: Decodable, Sendable {
        public var numBits = 8
        public var type = "int"
        public var symmetric = true
        public var strategy = "tensor"
        public var groupSize: Int?
        public var dynamic = false

        enum CodingKeys: String, CodingKey {
            case numBits = "num_bits", type, symmetric, strategy, groupSize = "group_size", dynamic
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            numBits = try c.decodeIfPresent(Int.self, forKey: .numBits) ?? numBits
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? type
            symmetric = try c.decodeIfPresent(Bool.self, forKey: .symmetric) ?? symmetric
            strategy = try c.decodeIfPresent(String.self, forKey: .strategy) ?? strategy
            groupSize = try c.decodeIfPresent(Int.self, forKey: .groupSize)
            dynamic = try c.decodeIfPresent(Bool.self, forKey: .dynamic) ?? dynamic
        }
    }

    public var weights: Args?
    public var inputActivations: Args?

    enum CodingKeys: String, CodingKey { case weights, inputActivations = "input_activations" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weights = try c.decodeIfPresent(Args.self, forKey: .weights)
        inputActivations = try c.decodeIfPresent(Args.self, forKey: .inputActivations)
    }
}

/// A quantized-checkpoint format this loader reads, resolved from a QuantizationConfig. Each maps onto our
/// packed int4/int8 weights without re-rounding when its groups are contiguous runs of k (else the exact
/// dequantized values are kept as float32); activations always stay float32.
public enum QuantizationScheme: Sendable, Equatable, CustomStringConvertible {
    /// GPTQ 4-bit: qweight [K/8, N], qzeros [G, N/8] (v1: stored minus one), scales [G, N], g_idx [K].
    case gptq(group: Int, v1: Bool)
    /// AWQ GEMM 4-bit: qweight [K, N/8] and qzeros [G, N/8] in AWQ's nibble order, scales [G, N].
    case awq(group: Int)
    /// compressed-tensors pack-quantized 4-bit: weight_packed [N, K/8], weight_scale [N, G],
    /// weight_zero_point [N/8, G] when asymmetric.
    case packQuantized(symmetric: Bool)
    /// compressed-tensors int-quantized 8-bit: weight int8 [N, K], weight_scale [N, G or 1]; `activations`
    /// names the activation scheme of the config, which we run in float32 (weight-only).
    case intQuantized(activations: String?)

    /// What loads, for error messages.
    public static let supported = "gptq (4-bit, checkpoint_format gptq or gptq_v2, desc_act false or true), awq (4-bit, version gemm), compressed-tensors (format pack-quantized int4, int-quantized int8)"

    public var description: String {
        switch self {
        case .gptq(let g, let v1): return "GPTQ 4-bit, group \(g)\(v1 ? "" : ", v2 zero points")"
        case .awq(let g): return "AWQ GEMM 4-bit, group \(g)"
        case .packQuantized(let sym): return "compressed-tensors pack-quantized int4 (\(sym ? "symmetric" : "asymmetric"))"
        case .intQuantized(let act):
            return "compressed-tensors int-quantized int8 weights" + (act.map { " (activations: \($0) in the config, run in fp32: weight-only)" } ?? "")
        }
    }

    /// The scheme of `config`; an unsupported method or variant is an error naming it and what is supported.
    public init(_ config: QuantizationConfig) throws {
        let method = config.quantMethod ?? "(none)"
        func unsupported(_ what: String) -> WeightError {
            .invalid("quantization_config: \(what) is not supported; supported: \(Self.supported)")
        }
        switch method.lowercased() {
        case "gptq":
            let bits = config.bits ?? 4
            guard bits == 4 else { throw unsupported("gptq with \(bits) bits") }
            let format = (config.checkpointFormat ?? "gptq").lowercased()
            guard format == "gptq" || format == "gptq_v2" else { throw unsupported("gptq checkpoint_format '\(format)'") }
            self = .gptq(group: config.groupSize ?? 128, v1: format == "gptq")
        case "awq":
            let bits = config.bits ?? 4
            guard bits == 4 else { throw unsupported("awq with \(bits) bits") }
            let version = (config.version ?? "gemm").lowercased()
            guard version == "gemm" else { throw unsupported("awq version '\(version)'") }
            self = .awq(group: config.groupSize ?? 128)
        case "compressed-tensors":
            let format = config.format ?? "(none)"
            let groups = Array((config.configGroups ?? [:]).values)
            guard let weights = groups.first?.weights else { throw WeightError.invalid("quantization_config: compressed-tensors config has no config_groups with weights") }
            guard groups.allSatisfy({ $0.weights?.numBits == weights.numBits && $0.weights?.symmetric == weights.symmetric }) else {
                throw unsupported("compressed-tensors with config groups of different bit widths")
            }
            guard weights.type == "int" else { throw unsupported("compressed-tensors \(weights.type) weights") }
            switch format {
            case "pack-quantized" where weights.numBits == 4:
                self = .packQuantized(symmetric: weights.symmetric)
            case "int-quantized" where weights.numBits == 8:
                let act = groups.first?.inputActivations.map { "int\($0.numBits) \($0.strategy)\($0.dynamic ? " dynamic" : " static")" }
                self = .intQuantized(activations: act)
            default:
                throw unsupported("compressed-tensors format '\(format)' with \(weights.numBits)-bit weights")
            }
        default:
            throw unsupported("quant_method '\(method)'")
        }
    }

    /// The scheme of config.json in `directory`, nil when it has no quantization_config.
    public static func load(directory: URL) throws -> QuantizationScheme? {
        struct File: Decodable {
            var quantizationConfig: QuantizationConfig?
            enum CodingKeys: String, CodingKey { case quantizationConfig = "quantization_config" }
            init(from decoder: Decoder) throws {
                quantizationConfig = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(QuantizationConfig.self, forKey: .quantizationConfig)
            }
        }
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw WeightError.invalid("\(url.path): quantization_config is malformed (\(error))")
        }
        return try file.quantizationConfig.map(QuantizationScheme.init)
    }
}
