import Foundation
import SwiftVLM
import Testing
import VLMTestSupport

/// Checkpoints as transformers 5.25 `save_pretrained` writes them (Scripts/fixtures/clip_fixtures.py and
/// llava_fixtures.py save the same models and processors both ways): processor_config.json with the image
/// processor nested instead of preprocessor_config.json, 5.x's weight-key prefixes, chat_template.jinja. They
/// must load unchanged through the registry and give the same numbers as the Hub-layout copies' references.
@Suite struct FileLayoutTests {
    @Test func clipSavedByTransformers5MatchesTheReferenceEndToEnd() throws {
        let ref = try CLIPReference.load("tiny-a")
        let pipeline = try EmbeddingPipeline.load(directory: Fixtures.url("clip/tiny-a-saved"))
        #expect(pipeline.model.modelType == "clip")
        #expect(pipeline.processor.processorClass == "CLIPImageProcessor")
        #expect(try pipeline.tokenize(ref.texts) == ref.input_ids)
        let texts = try pipeline.embed(texts: ref.texts)
        for (ours, theirs) in zip(texts, ref.text_embeds) { #expect(cosine(ours, theirs) >= 0.99999) }
        let images = try pipeline.embed(imageFiles: ref.images.map { Fixtures.url("clip/images/\($0)") })
        #expect(images.count == ref.image_embeds.count)
        for (ours, theirs) in zip(images, ref.image_embeds) { #expect(cosine(ours, theirs) >= 0.99999) }
        // Zero-shot scoring is CLIP's softmax over logit_scale x cosine.
        let probabilities = pipeline.scoring.probabilities(texts.map { ZeroShot.dot(images[0], $0) })
        let logits = ref.logits_per_image[0]
        let m = logits.max() ?? 0
        let e = logits.map { exp($0 - m) }
        for (p, q) in zip(probabilities, e.map { $0 / e.reduce(0, +) }) { #expect(abs(p - q) <= 1e-4) }
    }

    @Test func llavaSavedByTransformers5AnswersAsTheReference() throws {
        let ref: LlavaChatReference = try Fixtures.json("llava/llava-chat.reference.json")
        let directory = Fixtures.url("llava/llava-chat-saved")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("preprocessor_config.json").path))
        let pipeline = try GenerativePipeline.load(directory: directory)
        let image = try ImageDecoder.load(Fixtures.url(ref.image), alpha: .compositeOnWhite)
        for c in ref.cases {
            let messages = [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(c.question)])]
            #expect(try pipeline.prompt(for: messages) == c.prompt)
            var options = SamplingOptions()
            options.maxTokens = c.greedy.count
            options.stopAtEOS = false
            let result = try pipeline.generate(messages: messages, images: [image], options: options)
            #expect(result.tokens == c.greedy)
            #expect(result.text == c.text)
        }
    }

    @Test func registryRoutesByModelTypeOrArchitecturesAndNamesTheSupportedTypes() throws {
        #expect(try ModelRegistry.kind(directory: Fixtures.url("clip/tiny-a")) == .embedding)
        #expect(try ModelRegistry.kind(directory: Fixtures.url("llava/llava-chat")) == .chat)
        let dir = try TemporaryDirectory()
        try Data(#"{"architectures": ["CLIPModel"]}"#.utf8).write(to: dir.url.appendingPathComponent("config.json"))
        #expect(try ModelRegistry.family(directory: dir.url).name == "CLIP")
        try Data(#"{"model_type": "blip"}"#.utf8).write(to: dir.url.appendingPathComponent("config.json"))
        let error = #expect(throws: ModelError.self) { try ModelRegistry.family(directory: dir.url) }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("'blip'") && message.contains("clip") && message.contains("llava"))
        // A chat checkpoint where an embedding model is needed: named, not a crash.
        let wrong = #expect(throws: ModelError.self) { try EmbeddingPipeline.load(directory: Fixtures.url("llava/llava-chat")) }
        #expect("\(wrong.map { "\($0)" } ?? "")".contains("LLaVA"))
    }

    @Test func processorConfigNamingAnUnknownProcessorIsAClearError() throws {
        let dir = try TemporaryDirectory()
        let json = #"{"image_processor": {"image_processor_type": "MagicImageProcessorFast", "size": {"height": 8, "width": 8}}, "processor_class": "MagicProcessor"}"#
        try Data(json.utf8).write(to: dir.url.appendingPathComponent("processor_config.json"))
        let error = #expect(throws: ImageError.self) { try ImageProcessors.load(directory: dir.url) }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("MagicImageProcessorFast") && message.contains("CLIPImageProcessor") && message.contains("processor_config.json"))
        try Data(#"{"processor_class": "X"}"#.utf8).write(to: dir.url.appendingPathComponent("processor_config.json"))
        let missing = #expect(throws: ImageError.self) { try ImageProcessors.load(directory: dir.url) }
        #expect("\(missing.map { "\($0)" } ?? "")".contains("image_processor"))
    }
}
