import Foundation
import SwiftVLM
import Testing
import VLMTestSupport

/// SigLIP and SigLIP2 from their files, as a user runs them: the checkpoint's own tokenizer (spiece.model or
/// Gemma tokenizer.json), its image processor (SiglipImageProcessor, or Siglip2ImageProcessor for NaFlex) and the
/// model, through `EmbeddingPipeline` (the registry). References: Scripts/fixtures/siglip_fixtures.py
/// (transformers 5.25, PIL backend). Tolerances (issue): ids identical, embeddings cosine >= 0.99999, sigmoid
/// probabilities within 1e-4.
///
/// The text embeddings compared are `get_text_features(input_ids)` without an attention mask: SigLIP's text tower
/// was trained attending over its max_length padding (big_vision, open_clip and transformers 4.x all run it that
/// way). transformers 5.25's tokenizers also return an attention mask, which `model(**inputs)` then applies; the
/// fixtures record that variant too (`text_embeds_masked`), and it is not what we compute.
@Suite struct SigLIPEndToEndTests {
    @Test(arguments: ["siglip-tiny", "siglip2-fixres", "siglip2-naflex"])
    func filesToEmbeddingsAndProbabilities(config: String) throws {
        let ref = try SigLIPReference.load(config)
        let pipeline = try EmbeddingPipeline.load(directory: Fixtures.url("siglip/\(config)"))
        #expect(pipeline.textPolicy.maxLength == 64)
        #expect(pipeline.scoring.name == "sigmoid")

        // Tokenizer + padding policy: the processor's max_length-64 ids, exactly.
        #expect(try pipeline.padded(pipeline.tokenize(ref.texts)) == ref.input_ids)
        let texts = try pipeline.embed(texts: ref.texts)
        for (i, (ours, theirs)) in zip(texts, ref.text_embeds).enumerated() {
            #expect(cosine(ours, theirs) >= 0.99999, "text \(i)")
        }

        // Decoding + image processor + vision tower.
        let files = ref.images.map { Fixtures.url("siglip/\($0)") }
        let images = try pipeline.embed(imageFiles: files)
        #expect(images.count == ref.image_embeds.count)
        for (i, (ours, theirs)) in zip(images, ref.image_embeds).enumerated() {
            #expect(cosine(ours, theirs) >= 0.99999, "image \(i) \(ref.images[i])")
        }

        // Zero-shot: each label's own sigmoid(logit_scale x cosine + logit_bias).
        for (i, image) in images.enumerated() {
            let probabilities = pipeline.scoring.probabilities(texts.map { ZeroShot.dot(image, $0) })
            for (p, q) in zip(probabilities, ref.probabilities[i]) { #expect(abs(p - q) <= 1e-4) }
        }
    }

    @Test func classifyGivesIndependentSigmoidsBestFirst() throws {
        let pipeline = try EmbeddingPipeline.load(directory: Fixtures.url("siglip/siglip2-naflex"))
        let image = try ImageDecoder.load(Fixtures.url("clip/images/chelsea.jpg"), alpha: .compositeOnWhite)
        let scores = try pipeline.classify(image: image, labels: ["cat", "dog", "car"])
        #expect(scores.count == 3)
        #expect(zip(scores, scores.dropFirst()).allSatisfy { $0.probability >= $1.probability })
        for s in scores { #expect(abs(1 / (1 + exp(-s.logit)) - s.probability) <= 1e-6) }
    }

    @Test func naflexImageSmallerThanAPatchIsEmbeddedNotACrash() throws {
        let pipeline = try EmbeddingPipeline.load(directory: Fixtures.url("siglip/siglip2-naflex"))
        for (w, h) in [(1, 1), (3, 500), (500, 3)] {
            let image = try RGBImage(width: w, height: h, pixels: [UInt8](repeating: 128, count: w * h * 3))
            let v = try pipeline.embed(images: [image])
            #expect(v.count == 1 && v[0].allSatisfy(\.isFinite))
        }
    }
}
