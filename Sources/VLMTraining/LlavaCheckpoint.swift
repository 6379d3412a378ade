import Foundation
import VLMModels
import VLMTensor

extension TrainableLlava {
    /// config.json: the checkpoint's own file when loaded from one, else the fields LlavaConfig decodes
    /// (transformers fills the rest with its defaults).
    public func configData() throws -> Data {
        if let configJSON { return configJSON }
        // Floats through their shortest decimal text, so 1e-06 is written as such and not as 9.99999997e-07.
        func decimal(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
        let t = config.textConfig, v = config.visionConfig
        var text: [String: Any] = [
            "model_type": t.modelType, "vocab_size": t.vocabSize, "hidden_size": t.hiddenSize,
            "intermediate_size": t.intermediateSize, "num_hidden_layers": t.numHiddenLayers,
            "num_attention_heads": t.numAttentionHeads, "num_key_value_heads": t.kvHeads, "head_dim": t.resolvedHeadDim,
            "hidden_act": t.hiddenAct, "max_position_embeddings": t.maxPositionEmbeddings, "rms_norm_eps": decimal(t.rmsNormEps),
            "tie_word_embeddings": t.tieWordEmbeddings, "attention_bias": false, "mlp_bias": false,
            "rope_parameters": ["rope_type": t.rope.ropeType, "rope_theta": t.rope.ropeTheta ?? t.ropeTheta],
        ]
        if let id = t.bosTokenID { text["bos_token_id"] = id }
        if let id = t.padTokenID { text["pad_token_id"] = id }
        text["eos_token_id"] = t.eosTokenIDs.count == 1 ? t.eosTokenIDs[0] as Any : t.eosTokenIDs as Any
        let vision: [String: Any] = [
            "model_type": "clip_vision_model", "hidden_size": v.hiddenSize, "intermediate_size": v.intermediateSize,
            "num_hidden_layers": v.numHiddenLayers, "num_attention_heads": v.numAttentionHeads, "num_channels": v.numChannels,
            "image_size": v.imageSize, "patch_size": v.patchSize, "hidden_act": v.hiddenAct, "layer_norm_eps": decimal(v.layerNormEps),
        ]
        let layers = config.visionFeatureLayers
        var root: [String: Any] = [
            "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": text, "vision_config": vision,
            "image_token_index": config.imageTokenIndex, "projector_hidden_act": config.projectorHiddenAct,
            "vision_feature_select_strategy": config.visionFeatureSelectStrategy,
            "vision_feature_layer": layers.count == 1 ? layers[0] as Any : layers as Any,
            "multimodal_projector_bias": config.multimodalProjectorBias, "tie_word_embeddings": t.tieWordEmbeddings,
            "image_seq_length": config.imageTokensPerImage, "dtype": "float32",
        ]
        if config.imagePositionEmbedding { root["image_position_embedding"] = true }
        let data = try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
        // JSONSerialization writes 10000.0 as 10000; transformers' strict config classes want a float for rope_theta.
        let theta = t.rope.ropeTheta ?? t.ropeTheta
        var textJSON = String(decoding: data, as: UTF8.self)
        if theta == theta.rounded() { textJSON = textJSON.replacingOccurrences(of: "\"rope_theta\" : \(Int(theta))", with: "\"rope_theta\" : \(Int(theta)).0") }
        return Data(textJSON.utf8)
    }

    /// Writes config.json + model.safetensors (llava-hf keys) and `extraFiles` into `directory`, atomically
    /// (see `writeCheckpointDirectory`). `dtype` .f16/.bf16 halves the file for shipping; `weights` (same names and
    /// shapes, e.g. a `ParameterAverage`) are written in place of the model's own.
    public func save(to directory: URL, extraFiles: [String: Data] = [:], dtype: SafeTensorsWriter.StorageType = .f32,
                     weights: ParameterSet? = nil) throws {
        let weights = weights ?? parameters
        try writeCheckpointDirectory(directory) { partial in
            try configData().write(to: partial.appendingPathComponent("config.json"))
            let items = parameters.names.map { SafeTensorsWriter.Item($0, weights.tensor($0) ?? parameters[$0], dtype: dtype) }
            try SafeTensorsWriter.write(items, to: partial.appendingPathComponent("model.safetensors"), metadata: ["format": "pt"])
            for (name, data) in extraFiles { try data.write(to: partial.appendingPathComponent(name)) }
        }
    }
}
