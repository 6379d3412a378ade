import Foundation
import VLMModels
import VLMTensor

extension TrainableCLIP {
    /// config.json for this model: the checkpoint's own file when it was loaded from one, otherwise the fields
    /// CLIPConfig decodes (transformers fills the rest with its defaults).
    public func configData() throws -> Data {
        if let configJSON { return configJSON }
        let t = config.textConfig, v = config.visionConfig
        var text: [String: Any] = [
            "model_type": "clip_text_model", "vocab_size": t.vocabSize, "hidden_size": t.hiddenSize,
            "intermediate_size": t.intermediateSize, "num_hidden_layers": t.numHiddenLayers,
            "num_attention_heads": t.numAttentionHeads, "max_position_embeddings": t.maxPositionEmbeddings,
            "hidden_act": t.hiddenAct, "layer_norm_eps": Double(t.layerNormEps), "projection_dim": config.projectionDim,
        ]
        if let id = t.padTokenID { text["pad_token_id"] = id }
        if let id = t.bosTokenID { text["bos_token_id"] = id }
        if let id = t.eosTokenID { text["eos_token_id"] = id }
        let vision: [String: Any] = [
            "model_type": "clip_vision_model", "hidden_size": v.hiddenSize, "intermediate_size": v.intermediateSize,
            "num_hidden_layers": v.numHiddenLayers, "num_attention_heads": v.numAttentionHeads, "num_channels": v.numChannels,
            "image_size": v.imageSize, "patch_size": v.patchSize, "hidden_act": v.hiddenAct,
            "layer_norm_eps": Double(v.layerNormEps), "projection_dim": config.projectionDim,
        ]
        let root: [String: Any] = [
            "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": config.projectionDim,
            "logit_scale_init_value": Double(config.logitScaleInitValue), "initializer_factor": 1.0,
            "text_config": text, "vision_config": vision, "torch_dtype": "float32",
        ]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        // JSONSerialization writes 1.0 as `1`, and transformers 5's strict config dataclasses reject an int for the
        // float field initializer_factor, so CLIPConfig.from_pretrained would refuse the checkpoint.
        return Data(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"initializer_factor\" : 1,", with: "\"initializer_factor\" : 1.0,").utf8)
    }

    /// Writes config.json + model.safetensors (float32, Hugging Face keys) into `directory`, atomically: the files
    /// go to a sibling `.partial` directory that then replaces `directory`, so a crash never leaves half a checkpoint.
    /// `extraFiles` (e.g. the optimizer state) are written into the same directory before the swap.
    /// `dtype` .f16 halves the file for shipping (logit_scale stays float32: it is exponentiated).
    /// Entries of an existing `directory` that the new checkpoint does not write (e.g. `checkpoints/`, logs) are
    /// carried over, so writing the final model into a run's output folder keeps the rest of the run.
    public func save(to directory: URL, extraFiles: [String: Data] = [:], dtype: SafeTensorsWriter.StorageType = .f32) throws {
        try writeCheckpointDirectory(directory) { partial in
            try configData().write(to: partial.appendingPathComponent("config.json"))
            let items = parameters.names.map { SafeTensorsWriter.Item($0, parameters[$0], dtype: $0 == "logit_scale" ? .f32 : dtype) }
            try SafeTensorsWriter.write(items, to: partial.appendingPathComponent("model.safetensors"))
            for (name, data) in extraFiles { try data.write(to: partial.appendingPathComponent(name)) }
        }
    }
}

/// Writes a checkpoint directory atomically: `write` fills a sibling `.partial` directory that then replaces
/// `directory`, so a crash never leaves half a checkpoint. Entries of an existing `directory` that the new
/// checkpoint does not write (e.g. `checkpoints/`, logs) are carried over.
func writeCheckpointDirectory(_ directory: URL, write: (URL) throws -> Void) throws {
    let fm = FileManager.default
    let partial = directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + ".partial")
    let old = directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + ".old")
    do {
        try? fm.removeItem(at: partial)
        try fm.createDirectory(at: partial, withIntermediateDirectories: true)
        try write(partial)
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: directory.path) {
            for name in try fm.contentsOfDirectory(atPath: directory.path) where !fm.fileExists(atPath: partial.appendingPathComponent(name).path) {
                try fm.moveItem(at: directory.appendingPathComponent(name), to: partial.appendingPathComponent(name))
            }
            try fm.moveItem(at: directory, to: old)
        }
        try fm.moveItem(at: partial, to: directory)
        try? fm.removeItem(at: old)
    } catch let e as TrainingError {
        throw e
    } catch {
        throw TrainingError.io(path: directory.path, reason: "cannot write checkpoint: \(error)")
    }
}
