import Foundation
import VLMIndex
import VLMMilvus

/// Opens `--index` values: a `milvus://` URI gives the Milvus backend (VLMMilvus, linked only into this
/// executable so the libraries stay free of gRPC), anything else a SQLite path (SearchIndex).
enum IndexBackends {
    static func isMilvus(_ location: String) -> Bool { location.lowercased().hasPrefix("milvus://") }

    /// `model` nil: open an existing index with the identity stored in it (refusing if there is none).
    static func open(_ location: String, token: String?, model: ModelIdentity?, onMismatch: ModelMismatchPolicy) throws -> any VectorIndex {
        if isMilvus(location) {
            var options = MilvusOptions()
            options.token = token ?? ProcessInfo.processInfo.environment["MILVUS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return try MilvusIndex.open(uri: try MilvusURI(parsing: location), model: model, options: options, onMismatch: onMismatch)
        }
        if let model { return try SearchIndex(path: location, model: model, onMismatch: onMismatch) }
        guard let identity = try VectorStore.storedIdentity(path: location) else {
            throw IndexError.io(path: location, message: "no index here (create one with `vlm index add`)")
        }
        return try SearchIndex(path: location, model: identity)
    }
}
