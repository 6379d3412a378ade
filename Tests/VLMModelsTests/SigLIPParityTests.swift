import Foundation
import Testing
import VLMLayers
import VLMImage
@testable import VLMModels
import VLMTensor
import VLMTestSupport

/// transformers 5.25's outputs for the tiny SigLIP / SigLIP2 checkpoints (Scripts/fixtures/siglip_fixtures.py).
/// A missing fixture makes `load` throw, so its tests fail instead of passing silently.
struct SigLIPReference: Decodable {
    struct Interpolation: Decodable {
        struct Case: Decodable {
            let rows: Int, columns: Int
            /// transformers 5.25's resize_positional_embeddings (what the model computes).
            let values: [Float]
            /// torch's F.interpolate(bilinear, antialias=True), and whether it agrees with `values`.
            let torch: [Float]
            let torch_agrees: Bool
        }
        let grid: Int, channels: Int
        let table: [Float]
        let cases: [Case]
    }

    let config: String
    let images: [String]
    let texts: [String]
    let input_ids: [[Int]]
    let attention_mask: [[Int]]?
    let pixel_values_shape: [Int]
    let pixel_values_file: String
    let image_embeds: [[Float]]
    let text_embeds: [[Float]]
    let logits_per_image: [[Float]]
    let probabilities: [[Float]]
    let logit_scale: Float
    let logit_bias: Float
    let pixel_attention_mask: [[Int]]?
    let spatial_shapes: [[Int]]?
    let vision_last_hidden_state_0: [Float]?
    let interpolation: Interpolation?

    static func load(_ name: String) throws -> SigLIPReference { try Fixtures.json("siglip/\(name).reference.json") }

    /// The processor's output exactly as transformers handed it to the model.
    func pixels() throws -> PixelInputs {
        let values = try Npy.readTensor(Fixtures.url("siglip/\(pixel_values_file)"))
        #expect(values.shape == pixel_values_shape)
        guard let mask = pixel_attention_mask, let shapes = spatial_shapes else { return PixelInputs(pixelValues: values) }
        return PixelInputs(pixelValues: values, patchMask: mask.flatMap { $0.map { UInt8($0) } },
                           spatialShapes: shapes.map { PatchGrid(rows: $0[0], columns: $0[1]) })
    }
}

/// A scratch copy of a fixture checkpoint with its config and tensors edited.
func editedSigLIPCheckpoint(_ name: String, config: ((inout [String: Any]) -> Void)? = nil,
                            tensors: (inout [SafeTensorsWriter.Item]) -> Void = { _ in }) throws -> URL {
    let source = Fixtures.url("siglip/\(name)")
    let dir = TestScratch.root.appendingPathComponent("vlm-siglip-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
    config?(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
    let file = try SafeTensorsFile(path: source.appendingPathComponent("model.safetensors").path)
    var items = try file.keys.sorted().map { SafeTensorsWriter.Item($0, try file.tensor($0)) }
    tensors(&items)
    try SafeTensorsWriter.write(items, to: dir.appendingPathComponent("model.safetensors"))
    return dir
}

let sigLIPFixtures = ["siglip-tiny", "siglip2-fixres", "siglip2-naflex"]

/// Parity of the model alone: the reference's own input_ids and pixel inputs go in, so tokenizer and image
/// processing are out of the picture. Tolerances: embeddings cosine >= 0.99999, max |diff| <= 1e-4 between the
/// L2-normalised embeddings and <= 1e-4 x max(1, max |reference|) raw; logits and sigmoid probabilities within 1e-4.
@Suite struct SigLIPParityTests {
    @Test(arguments: sigLIPFixtures)
    func embeddingsLogitsAndProbabilitiesMatchTransformers(name: String) throws {
        let ref = try SigLIPReference.load(name)
        let model = try ModelRegistry.loadDualEncoder(directory: Fixtures.url("siglip/\(name)"))

        let image = rows(try model.imageFeatures(ref.pixels()))
        #expect(image.count == ref.image_embeds.count && image.count == ref.images.count)
        var worst: (cos: Float, diff: Float) = (1, 0)
        for (i, (ours, theirs)) in zip(image, ref.image_embeds).enumerated() {
            let scale = theirs.reduce(0) { max($0, abs($1)) }
            #expect(cosine(ours, theirs) >= 0.99999, "image \(i) \(ref.images[i])")
            #expect(maxAbsDiff(normalized(ours), normalized(theirs)) <= 1e-4, "image \(i)")
            #expect(maxAbsDiff(ours, theirs) <= 1e-4 * max(scale, 1), "image \(i)")
            worst = (min(worst.cos, cosine(ours, theirs)), max(worst.diff, maxAbsDiff(ours, theirs) / max(scale, 1)))
        }

        let text = rows(try model.textFeatures(ref.input_ids))
        #expect(text.count == ref.text_embeds.count)
        for (i, (ours, theirs)) in zip(text, ref.text_embeds).enumerated() {
            let scale = theirs.reduce(0) { max($0, abs($1)) }
            #expect(cosine(ours, theirs) >= 0.99999, "text \(i): \(ref.texts[i].prefix(40))")
            #expect(maxAbsDiff(normalized(ours), normalized(theirs)) <= 1e-4, "text \(i)")
            #expect(maxAbsDiff(ours, theirs) <= 1e-4 * max(scale, 1), "text \(i)")
            worst = (min(worst.cos, cosine(ours, theirs)), max(worst.diff, maxAbsDiff(ours, theirs) / max(scale, 1)))
        }

        // logits_per_image = exp(logit_scale) * cos(image, text) + logit_bias; probabilities = sigmoid.
        guard case .sigmoid(let scale, let bias) = model.scoring else {
            Issue.record("SigLIP must score with a sigmoid, got \(model.scoring.name)")
            return
        }
        #expect(abs(scale - exp(ref.logit_scale)) <= 1e-5 * scale && abs(bias - ref.logit_bias) <= 1e-6)
        var worstLogit: Float = 0, worstProbability: Float = 0
        for (i, img) in image.enumerated() {
            let cosines = text.map { cosine(img, $0) }
            let logits = model.scoring.logits(cosines), probabilities = model.scoring.probabilities(cosines)
            worstLogit = max(worstLogit, maxAbsDiff(logits, ref.logits_per_image[i]))
            worstProbability = max(worstProbability, maxAbsDiff(probabilities, ref.probabilities[i]))
        }
        #expect(worstLogit <= 1e-4)
        #expect(worstProbability <= 1e-4)
        print("SigLIP parity \(name): min cosine \(worst.cos), max rel |diff| \(worst.diff), max |logit diff| \(worstLogit), max |prob diff| \(worstProbability)")
    }

    @Test(arguments: zip(sigLIPFixtures, ["SigLIP", "SigLIP", "SigLIP2"]))
    func registryLoadsEachDirectoryAsADualEncoder(name: String, family: String) throws {
        let dir = Fixtures.url("siglip/\(name)")
        #expect(try ModelRegistry.family(directory: dir).name == family)
        #expect(try ModelRegistry.kind(directory: dir) == .embedding)
        let model = try ModelRegistry.loadDualEncoder(directory: dir)
        #expect(model.textPolicy == TextPolicy(maxLength: 64, padding: .maxLength(64)))
        #expect(model.scoring.name == "sigmoid")
        #expect(model.defaultImageProcessor == (family == "SigLIP2" ? "Siglip2ImageProcessor" : "SiglipImageProcessor"))
        let ref = try SigLIPReference.load(name)
        #expect(model.embeddingDim == ref.image_embeds[0].count)
        #expect(model.modelType == (family == "SigLIP2" ? "siglip2" : "siglip"))
    }

    /// Ragged batches (unpadded ids of different lengths) use a key mask; each row must equal the row alone.
    @Test func raggedTextBatchesMatchSequencesAlone() throws {
        let model = try SigLIPModel.load(directory: Fixtures.url("siglip/siglip-tiny"))
        let ids = [[5, 9, 13, 1], [7, 1], [20, 21, 22, 23, 24, 25, 1], [3]]
        let batch = rows(try model.textFeatures(ids))
        for (i, seq) in ids.enumerated() {
            let alone = rows(try model.textFeatures([seq]))[0]
            #expect(maxAbsDiff(batch[i], alone) <= 1e-5, "row \(i)")
        }
    }

    /// vision_use_head = false: the tower loads without head.* and its last_hidden_state still matches; the dual
    /// encoder refuses image embeddings with a message instead of inventing a pooling.
    @Test func visionTowerWithoutHeadMatchesLastHiddenState() throws {
        let ref = try SigLIPReference.load("siglip-tiny")
        let expected = try #require(ref.vision_last_hidden_state_0, "fixture lacks vision_last_hidden_state_0")
        let dir = try editedSigLIPCheckpoint("siglip-tiny", config: { json in
            var vision = json["vision_config"] as? [String: Any] ?? [:]
            vision["vision_use_head"] = false
            json["vision_config"] = vision
        }, tensors: { $0.removeAll { $0.name.hasPrefix("vision_model.head.") } })
        let model = try SigLIPModel.load(directory: dir)
        let all = try ref.pixels().pixelValues
        let first = Tensor(shape: [1] + Array(all.shape.dropFirst()), values: Array(UnsafeBufferPointer(start: all.pointer, count: all.count / all.shape[0])))
        let hidden = model.visionLastHiddenState(pixelValues: first)
        let ours = Array(UnsafeBufferPointer(start: hidden.pointer, count: hidden.count))
        #expect(ours.count == expected.count)
        #expect(maxAbsDiff(ours, expected) <= 1e-4)
        #expect(throws: ModelError.self) { _ = try model.imageFeatures(PixelInputs(pixelValues: first)) }
    }

    /// The position-table resize against transformers 5.25's closed form (the model's rule) and torch's own
    /// F.interpolate(bilinear, antialias=True), for the separable implementation and the literal closed form.
    /// torch 2.15's CPU kernel is wrong for a single output column with a changed row count (it repeats the first
    /// row; the fixture script documents it): there we must match 5.25 and differ from torch.
    @Test func antialiasedBilinearMatchesTransformersAndTorch() throws {
        let golden = try #require(try SigLIPReference.load("siglip-tiny").interpolation, "fixture lacks interpolation")
        let table = Tensor(shape: [golden.grid, golden.grid, golden.channels], values: golden.table)
        #expect(golden.cases.contains { !$0.torch_agrees } && golden.cases.contains { $0.torch_agrees })
        for c in golden.cases {
            let fast = AntialiasedBilinear.resize(table, side: golden.grid, rows: c.rows, columns: c.columns)
            let naive = AntialiasedBilinear.resizeNaive(table, side: golden.grid, rows: c.rows, columns: c.columns)
            #expect(fast.shape == [c.rows * c.columns, golden.channels])
            let f = Array(UnsafeBufferPointer(start: fast.pointer, count: fast.count))
            let n = Array(UnsafeBufferPointer(start: naive.pointer, count: naive.count))
            #expect(maxAbsDiff(f, c.values) <= 2e-6, "\(c.rows)x\(c.columns) separable")
            #expect(maxAbsDiff(n, c.values) <= 2e-6, "\(c.rows)x\(c.columns) closed form")
            if c.torch_agrees {
                #expect(maxAbsDiff(f, c.torch) <= 2e-6, "\(c.rows)x\(c.columns) vs torch")
            } else {
                #expect(c.columns == 1 && c.rows != golden.grid, "torch disagrees at \(c.rows)x\(c.columns)")
            }
        }
    }
}

// MARK: - Bad inputs and damaged checkpoints

@Suite struct SigLIPErrorTests {
    func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return "\(error)" }
        return nil
    }

    @Test func wrongPixelShapesNameTheExpectedShape() throws {
        let siglip = try SigLIPModel.load(directory: Fixtures.url("siglip/siglip-tiny"))
        let fixed = try #require(message { _ = try siglip.imageFeatures(PixelInputs(pixelValues: Tensor(zeros: [1, 3, 32, 32]))) })
        #expect(fixed.contains("[1, 3, 32, 32]") && fixed.contains("[B, 3, 40, 40]"))

        let naflex = try SigLIPModel.load(directory: Fixtures.url("siglip/siglip2-naflex"))
        let wrongWidth = try #require(message { _ = try naflex.imageFeatures(PixelInputs(pixelValues: Tensor(zeros: [1, 48, 100]),
                                                                                         patchMask: [UInt8](repeating: 1, count: 48),
                                                                                         spatialShapes: [PatchGrid(rows: 6, columns: 8)])) })
        #expect(wrongWidth.contains("[B, max_num_patches, 192]"))
        let noMask = try #require(message { _ = try naflex.imageFeatures(PixelInputs(pixelValues: Tensor(zeros: [1, 48, 192]))) })
        #expect(noMask.contains("pixel_attention_mask"))
        let tooBig = try #require(message { _ = try naflex.imageFeatures(PixelInputs(pixelValues: Tensor(zeros: [1, 48, 192]),
                                                                                     patchMask: [UInt8](repeating: 1, count: 48),
                                                                                     spatialShapes: [PatchGrid(rows: 7, columns: 7)])) })
        #expect(tooBig.contains("(7, 7)"))
        let fixedToNaFlex = try #require(message { _ = try naflex.imageFeatures(PixelInputs(pixelValues: Tensor(zeros: [1, 3, 32, 32]))) })
        #expect(fixedToNaFlex.contains("192"))
    }

    @Test func badTokenIDsAreRefused() throws {
        let model = try SigLIPModel.load(directory: Fixtures.url("siglip/siglip-tiny"))
        let vocab = model.config.textConfig.vocabSize
        #expect(try #require(message { _ = try model.textFeatures([[1, vocab]]) }).contains("\(vocab)"))
        #expect(try #require(message { _ = try model.textFeatures([[-1]]) }).contains("-1"))
        #expect(try #require(message { _ = try model.textFeatures([Array(repeating: 1, count: 65)]) }).contains("at most 64"))
        #expect(message { _ = try model.textFeatures([[]]) } != nil)
    }

    @Test func truncatedSafetensorsIsDetected() throws {
        let dir = try editedSigLIPCheckpoint("siglip2-naflex")
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 64).write(to: url)
        let text = try #require(message { _ = try ModelRegistry.loadDualEncoder(directory: dir) })
        #expect(text.contains("truncated"))
    }

    @Test(arguments: ["vision_model.head.attention.in_proj_weight", "text_model.head.weight", "logit_bias",
                      "vision_model.embeddings.patch_embedding.bias"])
    func missingTensorIsNamedByKey(key: String) throws {
        let dir = try editedSigLIPCheckpoint("siglip-tiny", tensors: { $0.removeAll { $0.name == key } })
        let text = try #require(message { _ = try ModelRegistry.loadDualEncoder(directory: dir) })
        #expect(text.contains(key))
    }

    @Test func mismatchedTowerWidthsAreRefusedAtTheConfig() throws {
        let dir = try editedSigLIPCheckpoint("siglip-tiny", config: { json in
            var text = json["text_config"] as? [String: Any] ?? [:]
            text["projection_size"] = 47
            json["text_config"] = text
        })
        let text = try #require(message { _ = try SigLIPModel.load(directory: dir) })
        #expect(text.contains("projection_size"))
    }
}
