import Foundation
import VLMImage
import VLMModels
import VLMScenes
import VLMTensor
import VLMTokenizers
import VLMTraining

/// A generative VLM trained from scratch on the scenes generator: the checkpoint's non-weight files (a word-level
/// tokenizer with an `<image>` token, a chat template, a CLIP image processor), the LLaVA presets, and the
/// supervised turns (a caption or a question about one scene, the answer scored).
public enum SceneVLM {
    /// The user turn of a caption example: `vlm caption`'s default instruction, so captioning works untold.
    public static let captionPrompt = "Describe this image in one sentence."
    public static let imageToken = "<image>"
    /// USER-turn parts, then "answer :" after which the model speaks; the assistant turn ends with EOS. The
    /// template does not depend on add_generation_prompt: every user turn ends with the answer cue.
    public static let chatTemplate = """
    {% for message in messages %}{% if message['role'] == 'user' %}question :{% for part in message['content'] %}\
    {% if part['type'] == 'image' %} <image>{% else %} {{ part['text'] }}{% endif %}{% endfor %} answer :\
    {% elif message['role'] == 'assistant' %}{% for part in message['content'] %} {{ part['text'] }}{% endfor %}{{ eos_token }}\
    {% endif %}{% endfor %}
    """
    /// The same conversation with each user turn's text before its images ("question : what colour is the star ?
    /// <image> answer :"). In a causal decoder the image tokens then attend to the question, so every patch can
    /// compute "am I the star, and what colour am I" in place and the answer only has to gather it, instead of
    /// the answer token having to find the star among 64 patches on its own.
    public static let questionFirstChatTemplate = """
    {% for message in messages %}{% if message['role'] == 'user' %}question :{% for part in message['content'] %}\
    {% if part['type'] != 'image' %} {{ part['text'] }}{% endif %}{% endfor %}{% for part in message['content'] %}\
    {% if part['type'] == 'image' %} <image>{% endif %}{% endfor %} answer :\
    {% elif message['role'] == 'assistant' %}{% for part in message['content'] %} {{ part['text'] }}{% endfor %}{{ eos_token }}\
    {% endif %}{% endfor %}
    """
    public static let presets = ["micro", "tiny", "deep"]
    /// "where is the red star?": answered with PaliGemma location tokens and the label.
    static let locatePrefix = "where is the"

    /// Every word the generator (and the template) can say: captions and questions of a few thousand scenes of
    /// every split, class names, count words, the caption instruction.
    public static func corpus(seed: UInt64) throws -> [String] {
        var corpus = SceneVocabulary.allTypes.map(\.name) + SceneShape.allCases.map(\.plural) + SceneVocabulary.countWords
        corpus += SceneRelation.allCases.map(\.phrase) + ObjectSize.allCases.map(\.rawValue) + SceneColour.allCases.map(\.rawValue)
        corpus += [captionPrompt, "question : answer : yes no", locatePrefix]
        let generator = try SceneGenerator(seed: seed)
        for split in SceneSplit.allCases {
            for index in 0 ..< 1000 {  // layouts and texts only, nothing rendered
                let text = SceneText(scene: try generator.scene(index: index, split: split), seed: seed)
                corpus += text.captions.map(\.text) + text.questions.flatMap { [$0.question, $0.answer] }
            }
        }
        return corpus
    }

    /// tokenizer.json (word-level, lowercase, Whitespace pre-tokenizer, BOS prepended, `<image>` an added special
    /// token), tokenizer_config.json with the chat template, special_tokens_map.json, preprocessor_config.json.
    /// Ids: pad 0, unk 1, words, BOS, EOS, `<image>`, then the 1024 location tokens `<loc0000>`... (added, not
    /// special: decoding keeps them, as PaliGemma's tokenizer does). processor_config.json lets
    /// transformers' LlavaProcessor expand `<image>` the same way ((S / patch)² + 1 - 1 for the CLS, "default").
    public static func assets(words: [String], imageSize: Int, maxLength: Int, patchSize: Int = 16, strategy: String = "default",
                              locationTokens: Bool = true, questionFirst: Bool = false) throws -> (files: [String: Data], vocabSize: Int, bos: Int, eos: Int, image: Int) {
        let (vocab, bos, eos, pad) = CheckpointAssets.vocabulary(words: words)
        let image = vocab.count
        var full = vocab
        full[imageToken] = image
        var locations: [(key: String, value: Int)] = []
        for (i, token) in (locationTokens ? LocationTokens.all : []).enumerated() {
            full[token] = image + 1 + i
            locations.append((token, image + 1 + i))
        }
        func added(_ content: String, _ id: Int, special: Bool = true) -> [String: Any] {
            ["id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": special]
        }
        let b = CheckpointAssets.bos, e = CheckpointAssets.eos
        let template = questionFirst ? questionFirstChatTemplate : chatTemplate
        let tokenizer: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": [added(CheckpointAssets.pad, pad), added(CheckpointAssets.unk, 1), added(b, bos), added(e, eos), added(imageToken, image)]
                + locations.map { added($0.key, $0.value, special: false) },
            "normalizer": ["type": "Lowercase"],
            "pre_tokenizer": ["type": "Whitespace"],
            "post_processor": ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                               "pair": [["SpecialToken": ["id": b, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                               "special_tokens": [b: ["id": b, "ids": [bos], "tokens": [b]]]],
            "decoder": ["type": "WordPiece", "prefix": "##", "cleanup": true],
            "model": ["type": "WordLevel", "vocab": full, "unk_token": CheckpointAssets.unk],
        ]
        let config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": maxLength, "bos_token": b, "eos_token": e,
            "pad_token": CheckpointAssets.pad, "unk_token": CheckpointAssets.unk, "clean_up_tokenization_spaces": false,
            "chat_template": template, "extra_special_tokens": ["image_token": imageToken],
        ]
        let map: [String: Any] = ["bos_token": b, "eos_token": e, "pad_token": CheckpointAssets.pad, "unk_token": CheckpointAssets.unk]
        let processor: [String: Any] = ["processor_class": "LlavaProcessor", "image_token": imageToken, "patch_size": patchSize,
                                        "vision_feature_select_strategy": strategy, "num_additional_image_tokens": 1]
        let generation: [String: Any] = ["bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad, "do_sample": false]
        let files: [String: Data] = [
            "tokenizer.json": try json(tokenizer), "tokenizer_config.json": try json(config), "special_tokens_map.json": try json(map),
            "preprocessor_config.json": try CheckpointAssets.preprocessorConfig(imageSize: imageSize),
            "processor_config.json": try json(processor), "generation_config.json": try json(generation),
            "chat_template.json": try json(["chat_template": template]),
        ]
        return (files, full.count, bos, eos, image)
    }

    /// LLaVA architectures for 64x64 scenes: CLIP tower (patch 16 -> 16 image tokens), linear-GELU-linear
    /// projector, a Llama decoder with grouped-query attention and tied embeddings.
    /// `vision`: a pretrained tower's config (e.g. the embedded contrastive model's) instead of the preset's.
    public static func config(preset: String, vocabSize: Int, bos: Int, eos: Int, image: Int, imageSize: Int = 64,
                              vision: CLIPVisionConfig? = nil, maxLength: Int = 96, strategy: String = "default",
                              featureLayers: [Int] = [-1]) throws -> LlavaConfig {
        var c = LlavaConfig()
        var v = CLIPVisionConfig(), t = LlamaConfig()
        v.imageSize = imageSize
        v.patchSize = 16
        v.hiddenAct = "quick_gelu"
        t.vocabSize = vocabSize
        t.maxPositionEmbeddings = maxLength
        t.bosTokenID = bos
        t.eosTokenIDs = [eos]
        t.padTokenID = 0
        t.tieWordEmbeddings = true
        t.rmsNormEps = 1e-5
        switch preset {
        case "micro":
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (32, 64, 2, 2)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads, t.numKeyValueHeads) = (32, 64, 1, 2, 1)
        case "tiny":
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (128, 384, 3, 4)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads, t.numKeyValueHeads) = (128, 352, 3, 4, 2)
        case "deep":
            // tiny's width with twice the decoder depth and heads: finding "the star" among the patches and reading
            // its colour is a two-hop lookup, which needs layers and heads more than width.
            (v.hiddenSize, v.intermediateSize, v.numHiddenLayers, v.numAttentionHeads) = (128, 384, 3, 4)
            (t.hiddenSize, t.intermediateSize, t.numHiddenLayers, t.numAttentionHeads, t.numKeyValueHeads) = (128, 352, 6, 8, 4)
        default:
            throw PipelineError.invalidArgument("unknown preset '\(preset)'; use one of: \(presets.joined(separator: ", "))")
        }
        c.visionConfig = vision ?? v
        c.textConfig = t
        c.imageTokenIndex = image
        c.visionFeatureLayers = featureLayers
        c.visionFeatureSelectStrategy = strategy
        return c
    }

    /// Overwrites the rows of the 1024 location tokens (ids firstID ..< firstID + 1024) of `embedding` ([V, C])
    /// with Fourier features of the bin: pair j holds a·sin(2π f_j b / 1024), a·cos(...), f_j geometric from
    /// 1/2 to 32 cycles over the range (periods of 2048 down to 32 bins, two pixels of a 64-pixel scene).
    /// Why: with 1024 independent random rows, a box coordinate is a 1024-way choice whose neighbouring
    /// answers share nothing, and the few "where" turns per bin never teach it (boxes IoU >= 0.5 stayed at
    /// 3-5%). Started smooth, the tied head scores bins near the right one almost as high as it, so a near miss
    /// costs little IoU, and every bin's gradient moves its neighbours too. a = 0.02·√2 keeps each row's
    /// norm at that of the N(0, 0.02) rows (transformers' initializer_range).
    public static func fourierLocationEmbeddings(_ embedding: Tensor, firstID: Int) {
        let c = embedding.shape[1], pairs = c / 2, a = 0.02 * 2.0.squareRoot()
        for b in 0 ..< LocationTokens.bins where firstID + b < embedding.shape[0] {
            let row = embedding.pointer + (firstID + b) * c
            for j in 0 ..< pairs {
                let f = 0.5 * pow(64.0, Double(j) / Double(max(1, pairs - 1)))
                let angle = 2 * Double.pi * f * Double(b) / Double(LocationTokens.bins)
                row[2 * j] = Float(a * sin(angle))
                row[2 * j + 1] = Float(a * cos(angle))
            }
            if c % 2 == 1 { row[c - 1] = 0 }
        }
    }

    /// Rewrites the patch rows (1 ... grid²) of a CLIP tower's position embedding ([1 + grid², C], row 0 the CLS
    /// position) as their mean plus 2-D Fourier features of the patch's row and column: the first half of the
    /// channels code the row, the second the column, pairs a·sin(2π f_j p / grid), a·cos(...), f_j geometric from
    /// 1/2 to grid/2 cycles across the grid. Why: the contrastive default's patch positions are nearly one vector
    /// (neighbour and far cosine 0.86 / 0.84, spread 0.3 against patch contents of norm 1.5-10), so no layer of the
    /// tower, its projector or the decoder can tell where an object is: boxes and left/right stay at chance, and a
    /// linear probe finds the object's x and y at chance from hidden state 1 on. a = 0.25 gives the code a norm of
    /// 2 (sqrt(C/2)·a for C = 128), near a background patch's content, below an object's.
    public static func addGridPositions(_ table: Tensor, grid: Int, amplitude: Double = 0.25) {
        let c = table.shape[1], rows = table.shape[0]
        guard rows == 1 + grid * grid, c >= 4 else { return }
        var mean = [Double](repeating: 0, count: c)
        for p in 1 ..< rows { for j in 0 ..< c { mean[j] += Double(table.pointer[p * c + j]) / Double(rows - 1) } }
        let pairsPerAxis = c / 4
        for r in 0 ..< grid {
            for col in 0 ..< grid {
                let row = table.pointer + (1 + r * grid + col) * c
                for j in 0 ..< c { row[j] = Float(mean[j]) }
                for (axis, position) in [r, col].enumerated() {
                    for k in 0 ..< pairsPerAxis {
                        let f = 0.5 * pow(Double(grid), Double(k) / Double(max(1, pairsPerAxis - 1)))
                        let angle = 2 * Double.pi * f * (Double(position) + 0.5) / Double(grid)
                        let base = axis * (c / 2) + 2 * k
                        row[base] += Float(amplitude * sin(angle))
                        row[base + 1] += Float(amplitude * cos(angle))
                    }
                }
            }
        }
    }

    /// Overwrites the image-token position rows ([tokens, C]; tokens = grid², or 1 + grid² with the CLS state
    /// first, whose row becomes zero) with `addGridPositions`' 2-D code of each patch's row and column.
    public static func setImagePositions(_ table: Tensor, grid: Int, amplitude: Double) {
        let c = table.shape[1], rows = table.shape[0], full = Tensor(zeros: [1 + grid * grid, c])
        guard rows <= full.shape[0] else { return }
        addGridPositions(full, grid: grid, amplitude: amplitude)
        table.pointer.update(from: full.pointer + (full.shape[0] - rows) * c, count: rows * c)
    }

    static func json(_ object: Any) throws -> Data {
        do { return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) } catch {
            throw PipelineError.invalidArgument("cannot encode JSON: \(error)")
        }
    }
}

/// One supervised turn about one scene.
public struct SceneVLMExample: Sendable {
    /// "caption" or a SceneQuestion.Kind raw value.
    public let kind: String
    public let prompt: String
    public let answer: String
}

extension SceneVLMExample {
    /// The caption turn and every question the generator asks about the scene; with `locate` also "where is
    /// the ...?" for each object `references` names alone, answered "<locY1><locX1><locY2><locX2> red star"
    /// (kind "locate"), and with `.all` "where are the stars?" answered with every star's box and label in turn
    /// (kind "enumerate").
    public static func all(for scene: GeneratedScene, locate: Bool, references: LocateReference = .type) -> [SceneVLMExample] {
        let text = scene.text
        var out = [SceneVLMExample(kind: "caption", prompt: SceneVLM.captionPrompt, answer: text.caption)]
            + text.questions.map { SceneVLMExample(kind: $0.kind.rawValue, prompt: $0.question, answer: $0.answer) }
        if locate {
            out += SceneGrounding.locateQuestions(scene.scene, references: references).map {
                SceneVLMExample(kind: "locate", prompt: $0.question,
                                answer: LocationTokens.encode($0.box) + " " + $0.label)
            }
        }
        if locate && references == .all {
            out += SceneGrounding.enumerateQuestions(scene.scene).map { q in
                SceneVLMExample(kind: "enumerate", prompt: q.question,
                                answer: q.objects.map { LocationTokens.encode($0.box) + " " + $0.label }.joined(separator: " "))
            }
        }
        return out
    }
}

/// Batches of scene turns, a pure function of (seed, step): each slot draws a scene of 0 ..< count (train split)
/// and then a kind uniformly among the scene's kinds (caption included), then one turn of that kind, so rare
/// kinds are seen as often as common ones. Prompts go through the checkpoint's own processor (chat template,
/// tokenizer, image processor), exactly as `vlm ask` prepares them; labels cover the answer and EOS only.
public struct SceneVLMBatches: Sendable {
    public let generator: SceneGenerator
    public let count: Int
    public let batchSize: Int
    public let seed: UInt64
    let processor: ImageTokenInputProcessor
    let eos: Int
    /// Whether the tokenizer has PaliGemma's location tokens (then "where is the ...?" turns are drawn too).
    public let locate: Bool
    /// Id of `<loc0000>` (the 1024 location tokens follow it in order), when the tokenizer has them.
    public let locationFirstID: Int?
    /// Turns per sequence: one image, then up to this many question-answer turns about it (as LLaVA trains on
    /// multi-turn conversations), as many as fit the context. The image and prompt are paid for once and every
    /// answer is scored, so a step sees several times the supervision for a fraction more compute.
    public let turns: Int
    let contextLength: Int
    /// The share of turns drawn as "where is the ...?" when a scene has a one-of-a-kind object (nil: uniform over
    /// kinds, 1/8). Boxes need the image tokens to keep where each patch is; with few box turns early in training,
    /// the projector learns to drop it before the decoder learns to read it.
    public var locateShare: Double?
    /// The first step at which `locateShare` applies (before it, turns are drawn uniformly over kinds). Boxes
    /// drawn at a third of the turns from the start cost attribute binding, which forms around step 3000 of the
    /// shipped schedule (Benchmarks/RESULTS.md, session 15): raise the share once the lookup has formed.
    public var locateShareFrom = 0
    /// The share of the turns not drawn as "where" that are drawn as "how many ...?" (nil: uniform over kinds,
    /// 1/8). Counting a shape needs every object's shape right, so it lags the per-object questions.
    public var countShare: Double?
    /// Which phrases the "where" turns use (`LocateReference`; `.type` as runs before the option trained).
    public var locateReferences = LocateReference.type
    /// Relative weight of each kind in the first draw of a turn (kinds not named weigh 1; nil: uniform, as runs
    /// before the option trained, with the same random stream). `locateShare` and `countShare` still apply on top.
    /// If every kind a scene offers weighs 0, that turn is drawn uniformly.
    public var kindWeights: [String: Double]?
    /// The share of object patches whose image token is also scored, with the covering object's shape word as
    /// its label (`patchLabels(scene:share:step:slot:)`; nil: image tokens unscored, as runs before it trained).
    public var patchLabelShare: Double?
    /// Which outputs the patch labels score (`PatchLabelPlace`; the decoder's by default).
    public var patchLabelPlace = PatchLabelPlace.decoder
    let imageTokenID: Int
    let tokensPerImage: Int
    /// Token ids of the shape words, for patch labels.
    let shapeTokenIDs: [String: Int]

    /// The kinds `kindWeights` may name: caption, the generator's question kinds, locate and enumerate.
    public static let kindNames = ["caption"] + SceneQuestion.Kind.allCases.map(\.rawValue) + ["locate", "enumerate"]

    /// `kinds[i]` for a draw `r` of the generator: uniform (`r % count`) without weights, else by weight.
    static func pickKind(_ kinds: [String], weights: [String: Double]?, draw r: UInt64) -> String {
        guard let weights else { return kinds[Int(r % UInt64(kinds.count))] }
        let w = kinds.map { max(0, weights[$0] ?? 1) }
        let total = w.reduce(0, +)
        guard total > 0, total.isFinite else { return kinds[Int(r % UInt64(kinds.count))] }
        var u = Double(r >> 11) / 9007199254740992.0 * total
        for (i, wi) in w.enumerated() {
            if u < wi { return kinds[i] }
            u -= wi
        }
        return kinds[w.lastIndex(where: { $0 > 0 }) ?? kinds.count - 1]
    }

    public init(directory: URL, seed: UInt64, scenesSeed: UInt64, count: Int, batchSize: Int, config: LlavaConfig, turns: Int = 1) throws {
        guard count >= 1, batchSize >= 1 else { throw PipelineError.invalidArgument("--scenes and --batch must be >= 1") }
        generator = try SceneGenerator(seed: scenesSeed)
        self.count = count
        self.batchSize = batchSize
        self.seed = seed
        self.turns = max(1, turns)
        contextLength = config.textConfig.maxPositionEmbeddings
        processor = ImageTokenInputProcessor(tokenizer: try TokenizerLoader.load(directory: directory),
                                             chat: try ChatPrompt.load(directory: directory, contentParts: true),
                                             images: try ImageProcessors.load(directory: directory), imageTokenID: config.imageTokenIndex,
                                             tokensPerImage: config.imageTokensPerImage, contextLength: config.textConfig.maxPositionEmbeddings,
                                             modelName: directory.lastPathComponent)
        eos = config.textConfig.eosTokenIDs.first ?? 2
        imageTokenID = config.imageTokenIndex
        tokensPerImage = config.imageTokensPerImage
        var shapes: [String: Int] = [:]
        for shape in SceneShape.allCases { shapes[shape.rawValue] = processor.tokenizer.tokenID(for: shape.rawValue) }
        shapeTokenIDs = shapes
        // Checkpoints made before location tokens existed train without the "where" turns.
        locationFirstID = processor.tokenizer.tokenID(for: LocationTokens.token(0))
        locate = locationFirstID != nil
    }

    /// The turn of (step, slot) and its scene.
    public func draw(step: Int, slot: Int) throws -> (GeneratedScene, SceneVLMExample) {
        let (scene, turns) = try draw(step: step, slot: slot, turns: 1)
        return (scene, turns[0])
    }

    /// The scene of (step, slot) and `turns` distinct turns about it: each drawn by kind first (uniformly among
    /// the scene's kinds, caption included), then uniformly within the kind, so rare kinds are seen as often
    /// as common ones. A pure function of (seed, step, slot).
    public func draw(step: Int, slot: Int, turns: Int) throws -> (GeneratedScene, [SceneVLMExample]) {
        var rng = SplitMix64(seed: seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(slot) &* 0xBF58_476D_1CE4_E5B9)
        let index = Int(rng.next() % UInt64(count))
        let scene = try generator.generate(index: index, split: .train)
        var pool = SceneVLMExample.all(for: scene, locate: locate, references: locateReferences)
        var chosen: [SceneVLMExample] = []
        while chosen.count < turns, !pool.isEmpty {
            let kinds = Array(Set(pool.map(\.kind))).sorted()
            var kind = Self.pickKind(kinds, weights: kindWeights, draw: rng.next())
            var forced = false
            if let share = locateShare, step >= locateShareFrom, kinds.contains("locate"), Double(rng.next() >> 11) / 9007199254740992.0 < share {
                kind = "locate"
                forced = true
            }
            // Drawn only when set, so runs without it keep their exact stream.
            if !forced, let share = countShare, kinds.contains("count"), Double(rng.next() >> 11) / 9007199254740992.0 < share { kind = "count" }
            let ofKind = pool.indices.filter { pool[$0].kind == kind }
            chosen.append(pool.remove(at: ofKind[Int(rng.next() % UInt64(ofKind.count))]))
        }
        return (scene, chosen)
    }

    /// Prompt ids (image run expanded) and pixels of one turn, as inference prepares them.
    public func prompt(_ image: RGBImage, _ text: String) throws -> PreparedInput {
        try processor.prepare(messages: [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(text)])], images: [image])
    }

    public func batch(step: Int) throws -> LlavaTrainingBatch {
        var ids: [[Int]] = [], labels: [[Int]] = [], pixels: [Tensor] = [], imageLabels: [Int] = []
        for slot in 0 ..< batchSize {
            let (scene, drawn) = try draw(step: step, slot: slot, turns: turns)
            // Turn 1 as inference prepares it (image run expanded); later turns continue the conversation as the
            // chat template renders it (" question : ... answer :" after the previous answer's EOS).
            let input = try prompt(try scene.image.rgbImage(), drawn[0].prompt)
            guard let p = input.pixels?.pixelValues else { throw PipelineError.invalidArgument("the image processor returned no pixels") }
            var seq = input.ids, lab = Array(repeating: LlavaTrainingBatch.ignoreIndex, count: input.ids.count)
            for (n, turn) in drawn.enumerated() {
                var cue: [Int] = []
                if n > 0 { cue = try processor.tokenizer.encode("question : \(turn.prompt) answer :", addSpecialTokens: false) }
                let answer = try processor.tokenizer.encode(turn.answer, addSpecialTokens: false) + [eos]
                if n > 0 && seq.count + cue.count + answer.count > contextLength { break }  // what fits
                seq += cue + answer
                lab += Array(repeating: LlavaTrainingBatch.ignoreIndex, count: cue.count) + answer
            }
            if let share = patchLabelShare, let start = seq.firstIndex(of: imageTokenID) {
                let patches = try patchLabels(scene: scene.scene, share: share, step: step, slot: slot)
                // Label t is predicted from position t - 1: the token's own label goes on the position after it.
                if patchLabelPlace.decoder { for (token, id) in patches where start + token + 1 < lab.count { lab[start + token + 1] = id } }
                if patchLabelPlace.projector {
                    if imageLabels.isEmpty { imageLabels = Array(repeating: LlavaTrainingBatch.ignoreIndex, count: batchSize * tokensPerImage) }
                    for (token, id) in patches { imageLabels[slot * tokensPerImage + token] = id }
                }
            }
            ids.append(seq)
            labels.append(lab)
            pixels.append(p)
        }
        let one = pixels[0].count
        let stacked = Tensor(uninitialized: [batchSize] + Array(pixels[0].shape.dropFirst()))
        for (i, p) in pixels.enumerated() { (stacked.pointer + i * one).update(from: p.pointer, count: one) }
        return LlavaTrainingBatch(pixels: stacked, ids: ids, labels: labels, imageLabels: imageLabels.isEmpty ? nil : imageLabels)
    }
}
