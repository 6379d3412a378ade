import Foundation
import VLMModels

/// The non-weight files of a from-scratch checkpoint, in the Hugging Face layout so `TokenizerLoader`,
/// `ImageProcessor.load` and transformers read them: a word-level tokenizer.json built from a corpus, its
/// tokenizer_config.json / special_tokens_map.json, and a CLIPImageProcessor preprocessor_config.json.
public enum CheckpointAssets {
    public static let bos = "<|startoftext|>"
    public static let eos = "<|endoftext|>"
    public static let pad = "<pad>"
    public static let unk = "<unk>"
    /// Files besides config.json / model.safetensors that make a directory a complete CLIP checkpoint.
    public static let auxiliaryFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                                        "preprocessor_config.json", "processor_config.json"]

    /// Words as the Whitespace pre-tokenizer splits them (`\w+|[^\w\s]+`) after lowercasing, unique, sorted.
    public static func words(in corpus: [String]) -> [String] {
        var set = Set<String>()
        for text in corpus {
            var current = "", currentIsWord: Bool? = nil
            for ch in text.lowercased() {
                if ch.isWhitespace {
                    if !current.isEmpty { set.insert(current) }
                    current = ""; currentIsWord = nil
                    continue
                }
                let isWord = ch.isLetter || ch.isNumber || ch == "_"
                if let w = currentIsWord, w != isWord, !current.isEmpty { set.insert(current); current = "" }
                current.append(ch)
                currentIsWord = isWord
            }
            if !current.isEmpty { set.insert(current) }
        }
        return set.sorted()
    }

    /// Vocabulary layout: pad 0, unk 1, words 2..., then BOS and EOS as the two highest ids. EOS being the
    /// largest id keeps transformers' legacy pooling (argmax of input_ids, used when eos_token_id == 2) and
    /// the eos-position pooling in agreement.
    public static func vocabulary(words: [String]) -> (vocab: [String: Int], bos: Int, eos: Int, pad: Int) {
        var vocab: [String: Int] = [pad: 0, unk: 1]
        for w in words where vocab[w] == nil && w != bos && w != eos { vocab[w] = vocab.count }
        let b = vocab.count
        vocab[bos] = b
        vocab[eos] = b + 1
        return (vocab, b, b + 1, 0)
    }

    /// tokenizer.json + tokenizer_config.json + special_tokens_map.json for a word-level tokenizer over `words`
    /// (lowercase normaliser, Whitespace pre-tokenizer, BOS ... EOS by TemplateProcessing, `maxLength` tokens).
    public static func wordLevelTokenizerFiles(words: [String], maxLength: Int) throws -> [String: Data] {
        let (vocab, bosID, eosID, padID) = vocabulary(words: words)
        func added(_ content: String, _ id: Int) -> [String: Any] {
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let special: (String, Int) -> [String: Any] = { name, id in ["id": name, "ids": [id], "tokens": [name]] }
        let single: [[String: Any]] = [["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                                       ["SpecialToken": ["id": eos, "type_id": 0]]]
        let pair: [[String: Any]] = single + [["Sequence": ["id": "B", "type_id": 1]], ["SpecialToken": ["id": eos, "type_id": 1]]]
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": [added(pad, padID), added(unk, 1), added(bos, bosID), added(eos, eosID)],
            "normalizer": ["type": "Lowercase"],
            "pre_tokenizer": ["type": "Whitespace"],
            "post_processor": ["type": "TemplateProcessing", "single": single, "pair": pair,
                               "special_tokens": [bos: special(bos, bosID), eos: special(eos, eosID)]],
            "decoder": ["type": "WordPiece", "prefix": "##", "cleanup": true],
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": unk],
        ]
        let config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": maxLength, "bos_token": bos, "eos_token": eos,
            "pad_token": pad, "unk_token": unk, "clean_up_tokenization_spaces": false,
        ]
        let map: [String: Any] = ["bos_token": bos, "eos_token": eos, "pad_token": pad, "unk_token": unk]
        return ["tokenizer.json": try json(tokenizer), "tokenizer_config.json": try json(config), "special_tokens_map.json": try json(map)]
    }

    /// CLIPImageProcessor at `size`: shortest_edge = crop = size (a square image passes through unchanged).
    public static func preprocessorConfig(imageSize: Int) throws -> Data {
        try json([
            "image_processor_type": "CLIPImageProcessor", "do_resize": true, "size": ["shortest_edge": imageSize], "resample": 3,
            "do_center_crop": true, "crop_size": ["height": imageSize, "width": imageSize], "do_rescale": true,
            "rescale_factor": 1.0 / 255.0, "do_normalize": true, "do_convert_rgb": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        ] as [String: Any])
    }

    /// The tokenizer and preprocessor files of an existing checkpoint (fine-tuning keeps them).
    public static func copyable(from directory: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        for name in auxiliaryFiles {
            if let data = try? Data(contentsOf: directory.appendingPathComponent(name)) { out[name] = data }
        }
        return out
    }

    static func json(_ object: Any) throws -> Data {
        do { return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) } catch {
            throw TrainingError.invalidConfig("cannot encode JSON: \(error)")
        }
    }
}

/// Architectures for training from scratch on small images. Text length and vocabulary come from the tokenizer.
public enum CLIPPresets {
    /// "micro" is for tests and smoke runs (seconds in a debug build); "tiny" and "small" for real training.
    public static let names = ["micro", "tiny", "small"]

    public static func config(_ name: String, vocabSize: Int, maxLength: Int, bosID: Int, eosID: Int, padID: Int) throws -> CLIPConfig {
        var c = CLIPConfig()
        var v = CLIPVisionConfig(), t = CLIPTextConfig()
        v.imageSize = 64
        v.patchSize = 8
        v.hiddenAct = "quick_gelu"
        t.hiddenAct = "quick_gelu"
        t.vocabSize = vocabSize
        t.maxPositionEmbeddings = maxLength
        t.bosTokenID = bosID
        t.eosTokenID = eosID
        t.padTokenID = padID
        switch name.lowercased() {
        case "micro":
            v.patchSize = 16
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (32, 64, 1, 2)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads) = (32, 64, 1, 2)
            c.projectionDim = 32
        case "tiny":
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (128, 512, 4, 4)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads) = (128, 512, 3, 4)
            c.projectionDim = 128
        case "small":
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (192, 768, 6, 6)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads) = (128, 512, 4, 4)
            c.projectionDim = 128
        default:
            throw TrainingError.invalidConfig("unknown preset '\(name)'; use one of: \(names.joined(separator: ", "))")
        }
        c.visionConfig = v
        c.textConfig = t
        return c
    }
}
