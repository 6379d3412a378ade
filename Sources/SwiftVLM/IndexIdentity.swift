import Foundation
import VLMIndex

extension EmbeddingPipeline {
    /// The identity an index records for this checkpoint: folder name + SHA-256 of config.json (prefix) +
    /// embedding dim. Another checkpoint, a modified config or another projection size all give another
    /// fingerprint, so `vlm index` and `vlm serve --index` refuse to mix their embeddings.
    public func indexIdentity() -> ModelIdentity {
        let config = directory.appendingPathComponent("config.json")
        let hash = (try? SHA256Hasher.hex(fileAt: config.path)).map { String($0.prefix(16)) } ?? "noconfig"
        let dim = model.embeddingDim
        return ModelIdentity(fingerprint: "\(directory.standardizedFileURL.lastPathComponent)/\(hash)/\(dim)", dim: dim)
    }
}
