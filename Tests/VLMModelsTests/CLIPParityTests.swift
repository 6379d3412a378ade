import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport

/// transformers' outputs for the tiny checkpoints (Scripts/fixtures/clip_fixtures.py).
struct CLIPReference: Decodable {
    let images: [String]
    let texts: [String]
    let input_ids: [[Int]]
    let pixel_values_shape: [Int]
    let pixel_values: [Float]
    let image_features: [[Float]]
    let text_features: [[Float]]
    let image_embeds: [[Float]]
    let text_embeds: [[Float]]
    let logits_per_image: [[Float]]
    let logit_scale: Float

    static func load(_ name: String) throws -> CLIPReference { try Fixtures.json("clip/\(name).reference.json") }
}

func rows(_ t: Tensor) -> [[Float]] {
    let n = t.shape[0], d = t.count / max(n, 1)
    return (0 ..< n).map { Array(UnsafeBufferPointer(start: t.pointer + $0 * d, count: d)) }
}

func normalized(_ v: [Float]) -> [Float] {
    let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return v.map { $0 / norm }
}

func cosine(_ a: [Float], _ b: [Float]) -> Float {
    zip(normalized(a), normalized(b)).reduce(0) { $0 + $1.0 * $1.1 }
}

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Parity of the model alone: the reference's own pixel_values and input_ids go in, so tokenizer and image
/// processing are out of the picture (they have their own parity tests).
/// Tolerances (issue): cosine >= 0.99999 and max |diff| <= 1e-4 between L2-normalised embeddings; raw features
/// within 1e-4 relative to their norm.
@Suite struct CLIPModelParityTests {
    @Test(arguments: ["tiny-a", "tiny-b"])
    func imageAndTextFeaturesMatchTransformers(config: String) throws {
        let ref = try CLIPReference.load(config)
        let model = try CLIPModel.load(directory: Fixtures.url("clip/\(config)"))
        #expect(abs(model.logitScale - exp(ref.logit_scale)) < 1e-4)

        let pixels = Tensor(shape: ref.pixel_values_shape, values: ref.pixel_values)
        let image = rows(try model.imageFeatures(pixels))
        #expect(image.count == ref.image_features.count)
        for (ours, theirs) in zip(image, ref.image_features) {
            #expect(cosine(ours, theirs) >= 0.99999)
            #expect(maxAbsDiff(normalized(ours), normalized(theirs)) <= 1e-4)
            let scale = theirs.reduce(0) { max($0, abs($1)) }
            #expect(maxAbsDiff(ours, theirs) <= 1e-4 * max(scale, 1))
        }

        let text = rows(try model.textFeatures(ref.input_ids))
        #expect(text.count == ref.text_features.count)
        for (i, (ours, theirs)) in zip(text, ref.text_features).enumerated() {
            #expect(cosine(ours, theirs) >= 0.99999, "text \(i): \(ref.texts[i].prefix(40))")
            #expect(maxAbsDiff(normalized(ours), normalized(theirs)) <= 1e-4, "text \(i)")
        }

        // logits_per_image = exp(logit_scale) * cos(image, text)
        for (i, img) in image.enumerated() {
            for (j, txt) in text.enumerated() {
                let logit = model.logitScale * cosine(img, txt)
                #expect(abs(logit - ref.logits_per_image[i][j]) <= 1e-3)
            }
        }
    }

    @Test func textBatchingAndOrderDoNotChangeResults() throws {
        let ref = try CLIPReference.load("tiny-b")
        let model = try CLIPModel.load(directory: Fixtures.url("clip/tiny-b"))
        let all = rows(try model.textFeatures(ref.input_ids))
        for (i, ids) in ref.input_ids.enumerated().reversed() {
            let single = rows(try model.textFeatures([ids]))[0]
            #expect(maxAbsDiff(single, all[i]) <= 1e-5)
        }
    }

    @Test func legacyEOSRulePoolsAtTheHighestIDAndTrailingPaddingIsIgnored() throws {
        // tiny-a has eos_token_id == 2: pooling at argmax(ids). Padding after EOS (as a batch padded with
        // pad_token_id would have) must not change the pooled features, since attention is causal.
        let ref = try CLIPReference.load("tiny-a")
        let model = try CLIPModel.load(directory: Fixtures.url("clip/tiny-a"))
        let ids = ref.input_ids[0]
        let base = rows(try model.textFeatures([ids]))[0]
        let padded = rows(try model.textFeatures([ids + [1, 1, 1, 1]]))[0]
        #expect(maxAbsDiff(base, padded) <= 1e-5)
        #expect(cosine(base, ref.text_features[0]) >= 0.99999)
    }

    @Test func badInputsAreErrorsNotCrashes() throws {
        let model = try CLIPModel.load(directory: Fixtures.url("clip/tiny-a"))
        #expect(throws: ModelError.self) { try model.textFeatures([[]]) }
        #expect(throws: ModelError.self) { try model.textFeatures([[49406, 60000, 49407]]) }
        #expect(throws: ModelError.self) { try model.textFeatures([Array(repeating: 320, count: 78)]) }
        #expect(throws: ModelError.self) { try model.imageFeatures(Tensor(zeros: [1, 3, 31, 31])) }
    }
}
