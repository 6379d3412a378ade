import Foundation
import VLMIndex

extension EmbeddingPipeline {
    /// The identity an index records for this checkpoint: folder name + SHA-256 of config.json (prefix) +
    /// embedding dim (+ the weight precision unless fp32). Another checkpoint, a modified config, another projection
    /// size or another precision all give another fingerprint, so `vlm index` and `vlm serve --index` refuse to mix their embeddings.
    public func indexIdentity() -> ModelIdentity {
        let config = directory.appendingPathComponent("config.json")
        let hash = (try? SHA256Hasher.hex(fileAt: config.path)).map { String($0.prefix(16)) } ?? "noconfig"
        let dim = model.embeddingDim
        // Reduced-precision weights give (slightly) other vectors: such an index is its own model's. fp32 keeps the
        // fingerprint indexes have always had.
        let precisionSuffix = precision == .fp32 ? "" : "/\(precision.rawValue)"
        return ModelIdentity(fingerprint: "\(directory.standardizedFileURL.lastPathComponent)/\(hash)/\(dim)\(precisionSuffix)", dim: dim)
    }
}
