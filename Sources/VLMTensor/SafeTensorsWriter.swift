import CVLM
import Foundation

/// Writes `.safetensors` files as `safetensors.torch.save_file` does: header JSON with keys sorted, data
/// aligned in key order, header padded with spaces to a multiple of 8 bytes. Used for checkpoints SwiftVLM
/// writes itself (training) and for tests that craft damaged files.
public enum SafeTensorsWriter {
    public enum StorageType: String, Sendable { case f32 = "F32", f16 = "F16", bf16 = "BF16" }

    public struct Item {
        public let name: String
        public let tensor: Tensor
        public let dtype: StorageType
        public init(_ name: String, _ tensor: Tensor, dtype: StorageType = .f32) {
            self.name = name
            self.tensor = tensor
            self.dtype = dtype
        }
    }

    /// The bytes of a safetensors file holding `items`.
    public static func encode(_ items: [Item], metadata: [String: String] = [:]) throws -> Data {
        let sorted = items.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var payload = Data()
        for item in sorted {
            let begin = payload.count
            let n = item.tensor.count
            switch item.dtype {
            case .f32:
                payload.append(Data(bytes: item.tensor.pointer, count: n * 4))
            case .f16, .bf16:
                var half = [UInt16](repeating: 0, count: n)
                half.withUnsafeMutableBufferPointer { dst in
                    if item.dtype == .f16 { vlm_f32_to_f16(item.tensor.pointer, dst.baseAddress, Int64(n)) } else {
                        vlm_f32_to_bf16(item.tensor.pointer, dst.baseAddress, Int64(n))
                    }
                }
                half.withUnsafeBytes { payload.append(contentsOf: $0) }
            }
            header[item.name] = ["dtype": item.dtype.rawValue, "shape": item.tensor.shape, "data_offsets": [begin, payload.count]]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(payload)
        return out
    }

    /// Writes atomically (temporary file + rename), so an interrupted save never leaves a torn checkpoint.
    public static func write(_ items: [Item], to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        let data = try encode(items, metadata: metadata)
        do { try data.write(to: url, options: .atomic) } catch {
            throw TensorError.unreadable(path: url.path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
