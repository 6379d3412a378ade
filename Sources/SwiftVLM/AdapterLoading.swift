import Foundation
import VLMLayers
import VLMTraining

extension GenerativePipeline {
    /// `directory` with the PEFT LoRA adapter in `adapter` applied at load: the adapter is merged into a temporary
    /// copy of the base (W + (alpha / r)·B·A for every adapted layer, saved modules replaced; see LoRAMerge), which is
    /// loaded through the registry and removed.
    public static func load(directory: URL, adapter: URL, precision: Precision? = nil,
                            options: InputProcessingOptions = InputProcessingOptions()) throws -> GenerativePipeline {
        let merged = try LoRAMerge.temporaryMerge(base: directory, adapter: adapter)
        defer { try? FileManager.default.removeItem(at: merged) }
        return try load(directory: merged, precision: precision, options: options)
    }
}
