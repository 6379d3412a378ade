import Foundation
import Testing
import VLMImage
@testable import VLMModels
import VLMTensor
import VLMTestSupport
import VLMTokenizers

struct SmolVLMReference: Decodable {
    struct Case: Decodable {
        let name: String
        let images: [String]
        let question: String
        let prompt: String
        let input_ids: [Int]
        let greedy: [Int]
        let text: String
        let last_logits: [Float]
        let rows: [Int]?
        let cols: [Int]?
        let pixel_values_shape: [Int]?
        let pixel_values_file: String?
    }

    let family: String
    let image_seq_len: Int
    let cases: [Case]
}

/// Tiny SmolVLM checkpoints (Scripts/fixtures/smolvlm_fixtures.py): smolvlm-tiny (model_type idefics3, the Hub's
/// files as SmolVLM-256M/500M-Instruct ship) and smolvlm2-tiny (model_type smolvlm, written by transformers 5.25
/// save_pretrained). With transformers' pixel_values: the expanded prompt's ids identical to SmolVLMProcessor's /
/// Idefics3Processor's; the prefill's last logits within 1e-3; 32 greedy tokens identical (each step's top-2
/// margin in the reference >= 1e-3, so float32 summation order cannot flip them).
@Suite struct Idefics3ParityTests {
    static let checkpoints = ["smolvlm-tiny", "smolvlm2-tiny"]

    func model(_ name: String) throws -> Idefics3Model {
        guard case .generative(let loaded) = try ModelRegistry.load(directory: Fixtures.url("smolvlm/\(name)")),
              let model = loaded as? Idefics3Model else {
            throw ModelError.invalidInput("\(name) did not load as an Idefics3 model")
        }
        return model
    }

    /// The reference's pixels as the tiling processor hands them over: tiles in order, with each image's grid.
    func pixels(_ c: SmolVLMReference.Case) throws -> PixelInputs? {
        guard let file = c.pixel_values_file, let rows = c.rows, let cols = c.cols else { return nil }
        let values = try Npy.readTensor(Fixtures.url("smolvlm/\(file)"))
        let grids = zip(rows, cols).map { PatchGrid(rows: $0, columns: $1) }
        return PixelInputs(pixelValues: values, tilesPerImage: grids.map { $0.rows * $0.columns + 1 }, tileGrids: grids)
    }

    func inputProcessor(_ name: String, model: Idefics3Model) throws -> Idefics3InputProcessor {
        let dir = Fixtures.url("smolvlm/\(name)")
        // The image processor is not used here: the tests hand over transformers' pixel values.
        return Idefics3InputProcessor(tokenizer: try TokenizerLoader.load(directory: dir),
                                      chat: try ChatPrompt.load(directory: dir, contentParts: true),
                                      images: ImageProcessor(config: .clip), imageSeqLen: model.config.tokensPerTile,
                                      imageTokenID: model.config.imageTokenID, patchSize: model.config.visionConfig.patchSize,
                                      contextLength: model.contextLength, modelName: name)
    }

    @Test(arguments: checkpoints)
    func promptIDsMatchTheProcessor(name: String) throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/\(name).reference.json")
        let model = try model(name)
        #expect(model.config.tokensPerTile == ref.image_seq_len)
        let processor = try inputProcessor(name, model: model)
        for c in ref.cases {
            let parts = c.images.map { _ in ChatContentPart(type: "image") } + [.text(c.question)]
            #expect(try processor.prompt(for: [ChatMessage(role: "user", parts: parts)]) == c.prompt, "\(c.name)")
            let input = try processor.prepare(text: c.prompt, pixels: try pixels(c))
            #expect(input.ids == c.input_ids, "\(c.name)")
            #expect(input.imageCount == c.images.count)
            #expect(input.imageTokenCount >= (input.pixels?.count ?? 0) * ref.image_seq_len)
        }
    }

    @Test(arguments: checkpoints)
    func prefillAndGreedyMatchTransformers(name: String) throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/\(name).reference.json")
        let model = try model(name)
        let vocab = model.vocabularySize
        for c in ref.cases {
            let input = PreparedInput(ids: c.input_ids, pixels: try pixels(c))
            let state = model.makeState(capacity: c.input_ids.count + c.greedy.count)
            var logits = try model.prefill(input, state: state)
            var worst: Float = 0
            for v in 0 ..< vocab { worst = max(worst, abs(logits[v] - c.last_logits[v])) }
            #expect(worst <= 1e-3, "\(name) \(c.name): max |logit diff| \(worst)")
            var generated: [Int] = []
            while generated.count < c.greedy.count {
                let next = argmax(logits.pointer, vocab)
                generated.append(next)
                logits = try model.step(token: next, state: state)
            }
            #expect(generated == c.greedy, "\(name) \(c.name)")
        }
    }

    @Test func imageTokenCountsAreChecked() throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/smolvlm-tiny.reference.json")
        let model = try model("smolvlm-tiny")
        let processor = try inputProcessor("smolvlm-tiny", model: model)
        guard let split = ref.cases.first(where: { $0.name == "split" }), let pixels = try pixels(split) else {
            Issue.record("the split case is missing from the reference")
            return
        }
        // Two <image> placeholders, one image.
        let twice = split.prompt.replacingOccurrences(of: "<image>", with: "<image><image>")
        #expect(throws: ModelError.self) { try processor.prepare(text: twice, pixels: pixels) }
        // Image tokens without pixels, and pixels for fewer tokens than the prompt has.
        #expect(throws: ModelError.self) { try model.embed(ids: split.input_ids, pixels: nil) }
        let oneTile = PixelInputs(pixelValues: pixels.pixelValues.rows(0 ..< 1))
        var message = ""
        do { _ = try model.embed(ids: split.input_ids, pixels: oneTile) } catch { message = "\(error)" }
        #expect(message.contains("\(split.input_ids.filter { $0 == model.config.imageTokenID }.count) image tokens"), "\(message)")
        // Non-square tiles are refused with the shape named.
        #expect(throws: ModelError.self) { try model.imageFeatures(Tensor(zeros: [1, 3, 32, 16]), patchMask: nil) }
    }

    /// `--precision bf16` reaches the vision tower (WeightScope.storingVisionTower): its features move off the
    /// float32 ones by bf16 rounding, and stay within it; as stored (the default) the tower computes in float32.
    /// Bound: activations and weights rounded to 8 significant bits (2^-9 relative each) through the tiny tower's
    /// layers measured 0.33% relative L2 on these features (2026-12-06); the bound is 6x that.
    @Test func bf16PrecisionComputesTheVisionTowerInBF16() throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/smolvlm-tiny.reference.json")
        guard let split = ref.cases.first(where: { $0.name == "split" }), let pixels = try pixels(split) else {
            Issue.record("fixture has no split case"); return
        }
        let dir = Fixtures.url("smolvlm/smolvlm-tiny")
        let wide = try Idefics3Model.load(directory: dir, storage: .float32)
        let stored = try Idefics3Model.load(directory: dir, storage: .asStored)
        let half = try Idefics3Model.load(directory: dir, storage: .bfloat16)
        let f = try wide.imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask)
        let a = try stored.imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask)
        let b = try half.imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask)
        func relative(_ x: Tensor) -> Double {
            var err = 0.0, norm = 0.0
            for i in 0 ..< f.count { err += Double((x[i] - f[i]) * (x[i] - f[i])); norm += Double(f[i] * f[i]) }
            return (err / max(norm, 1e-30)).squareRoot()
        }
        #expect(relative(a) < 1e-5, "as stored, the tower computes in float32")
        let r = relative(b)
        #expect(r > 1e-4 && r < 0.02, "bf16 tower: relative L2 \(r) from float32")
    }

    /// Tiles encoded in groups (to keep activations small) give the features of all tiles at once up to float
    /// rounding: no tile's arithmetic depends on another's, but the GEMM's row tiles have other heights, whose
    /// micro-kernels may pair their k steps differently (measured 2.6e-6 on these features; bound 2e-5).
    @Test func tilesEncodedInGroupsMatchAllAtOnce() throws {
        let ref: SmolVLMReference = try Fixtures.json("smolvlm/smolvlm-tiny.reference.json")
        guard let split = ref.cases.first(where: { $0.name == "split" }), let pixels = try pixels(split) else {
            Issue.record("fixture has no split case"); return
        }
        let model = try model("smolvlm-tiny")
        let n = pixels.pixelValues.shape[0]
        try #require(n >= 3, "the split case has \(n) tiles")
        let all = try model.imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask, tileGroup: n)
        for group in [1, 2] {
            let grouped = try model.imageFeatures(pixels.pixelValues, patchMask: pixels.patchMask, tileGroup: group)
            let worst = zip(grouped.scalars, all.scalars).map { abs($0 - $1) }.max() ?? .infinity
            #expect(grouped.shape == all.shape && worst <= 2e-5, "groups of \(group): max |diff| \(worst)")
        }
    }
}
