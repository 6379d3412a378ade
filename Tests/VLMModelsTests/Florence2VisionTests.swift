import Foundation
import Testing
import VLMImage
import VLMLayers
@testable import VLMModels
import VLMTensor
import VLMTestSupport
import VLMTokenizers

/// Florence-2's image side against transformers 5.25 (Scripts/fixtures/florence2_fixtures.py): a tiny random
/// Florence2ForConditionalGeneration with the real DaViT structure, two photographs at 80x112.
/// Tolerances: pixel_values 1e-5 absolute (PIL backend); every DaViT stage output and the projector output
/// 2e-5 x max(1, max |reference|) absolute (float32 GEMMs and attention against PyTorch's; measured <= 2.1e-6).
@Suite struct Florence2VisionTests {
    static let tiny = Fixtures.url("florence2/tiny")
    static let photos = ["clip/images/chelsea.jpg", "clip/images/astronaut.jpg"]

    static func reference(_ name: String) throws -> Tensor { try Npy.readTensor(Fixtures.url("florence2/\(name).npy")) }

    /// [B, C, H, W] (transformers' layout) -> [B, H, W, C] values.
    static func channelsLastValues(_ t: Tensor) -> [Float] {
        let (b, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = [Float](repeating: 0, count: t.count)
        for bi in 0 ..< b { for ci in 0 ..< c { for y in 0 ..< h { for x in 0 ..< w {
            out[((bi * h + y) * w + x) * c + ci] = t[((bi * c + ci) * h + y) * w + x]
        } } } }
        return out
    }

    static func worst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

    @Test func pixelValuesMatchPILProcessor() throws {
        let processor = try ImageProcessor.load(directory: Self.tiny)
        #expect(processor.outputSize == (80, 112))
        let images = try Self.photos.map { try ImageDecoder.load(Fixtures.url($0)) }
        let pixels = try processor.preprocess(images)
        let ref = try Self.reference("pixel_values")
        #expect(pixels.shape == ref.shape)
        let diff = Self.worst(pixels.scalars, ref.scalars)
        #expect(diff <= 1e-5, "pixel_values max |diff| \(diff)")
    }

    @Test func stageOutputsAndImageFeaturesMatchTransformers() throws {
        let encoder = try Florence2VisionEncoder.load(directory: Self.tiny)
        let pixels = try Self.reference("pixel_values")
        let maps = try encoder.featureMaps(pixelValues: pixels)
        #expect(maps.count == 4)
        for (i, map) in maps.enumerated() {
            let ref = try Self.reference("stage\(i)")
            #expect(map.shape == [ref.shape[0], ref.shape[2], ref.shape[3], ref.shape[1]], "stage \(i) shape")
            let expected = Self.channelsLastValues(ref)
            let scale = max(1, expected.map(abs).max() ?? 0)
            let diff = Self.worst(map.scalars, expected)
            #expect(diff <= 2e-5 * scale, "stage \(i): max |diff| \(diff) (scale \(scale))")
        }
        let features = try encoder.imageFeatures(pixelValues: pixels)
        let ref = try Self.reference("image_features")
        #expect(features.shape == ref.shape)
        #expect(encoder.imageTokenCount(height: 80, width: 112) == ref.shape[1])
        let scale = max(1, ref.scalars.map(abs).max() ?? 0)
        let diff = Self.worst(features.scalars, ref.scalars)
        #expect(diff <= 2e-5 * scale, "image features: max |diff| \(diff) (scale \(scale))")
    }

    /// `--precision bf16` reaches every projection of the image side (the window and channel attention's qkv and proj
    /// were left weight-only before: a third of the encoder's GEMM time in fp32), and fp32 keeps all of them exact.
    @Test func bf16PrecisionComputesEveryImageSideProjectionInBF16() throws {
        for (storage, expected) in [(WeightStorage.bfloat16, true), (.float32, false)] {
            let model = try Florence2Model.load(directory: Self.tiny, storage: storage)
            var linears: [Linear] = [model.vision.projector.projection]
            for stage in model.vision.stages {
                for block in stage.blocks {
                    for b in [block.spatial, block.channel] {
                        switch b.mixer {
                        case .window(let a): linears += [a.qkv, a.proj]
                        case .channel(let a): linears += [a.qkv, a.proj]
                        }
                        linears += [b.ffn.fc1, b.ffn.fc2]
                    }
                }
            }
            #expect(linears.count > 10)
            #expect(linears.allSatisfy { $0.weight.computesInBF16 == expected }, "storage \(storage)")
        }
    }

    @Test func oneImageAloneMatchesItsRowOfTheBatch() throws {
        // Window padding, channel attention and the mean are per image: batching changes nothing (1e-5).
        let encoder = try Florence2VisionEncoder.load(directory: Self.tiny)
        let pixels = try Self.reference("pixel_values")
        let both = try encoder.imageFeatures(pixelValues: pixels)
        let second = try encoder.imageFeatures(pixelValues: pixels.rows(1 ..< 2))
        #expect(Self.worst(second.scalars, both.rows(1 ..< 2).scalars) <= 1e-5)
    }

    @Test func checkpointWithoutTemporalBufferRecomputesIt() throws {
        // transformers re-initialises a missing pos_idx_to_embed to the sinusoid table (row 0: 0, 1, 0, 1, ...),
        // which the checkpoint holds too: identical features.
        let dir = try Self.edited(tensors: { $0.removeAll { $0.name.hasSuffix("visual_temporal_embed.pos_idx_to_embed") } })
        let pixels = try Self.reference("pixel_values")
        let stored = try Florence2VisionEncoder.load(directory: Self.tiny).imageFeatures(pixelValues: pixels)
        let computed = try Florence2VisionEncoder.load(directory: dir.url).imageFeatures(pixelValues: pixels)
        #expect(Self.worst(stored.scalars, computed.scalars) <= 1e-6)
    }

    @Test func randomWeightsBuildFromAConfig() throws {
        // Benchmarks' path: the checkpoint's own config, seeded weights, the same output shapes.
        let config = try ConfigFile.decode(Florence2Config.self, in: Self.tiny).visionConfig
        let encoder = try Florence2VisionEncoder.random(config: config, seed: 7)
        let features = try encoder.imageFeatures(pixelValues: try Self.reference("pixel_values"))
        #expect(features.shape == [2, 13, 32])
        #expect(features.scalars.allSatisfy { $0.isFinite })
    }

    @Test func tokenizerWithTaskAndLocationTokensMatchesTransformers() throws {
        // For the decoder sessions: the checkpoint's BART tokenizer with <loc_*>, task tokens and <image>.
        struct Cases: Decodable { struct Case: Decodable { let text: String; let ids: [Int] }; let cases: [Case] }
        let reference = try Fixtures.json("florence2/tokenizer_cases.json", as: Cases.self)
        let tokenizer = try TokenizerLoader.loadPretrained(directory: Self.tiny)
        for c in reference.cases {
            let ids = try tokenizer.encode(c.text, addSpecialTokens: false)
            #expect(ids == c.ids, "\(c.text)")
        }
    }

    // MARK: Bad checkpoints, configs and inputs

    /// A scratch copy of the tiny checkpoint with its config and tensors edited.
    static func edited(config: (inout [String: Any]) -> Void = { _ in },
                       tensors: (inout [SafeTensorsWriter.Item]) -> Void = { _ in }) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "vlm-florence2")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: tiny.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        config(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.url.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(path: tiny.appendingPathComponent("model.safetensors").path)
        var items = try file.keys.sorted().map { SafeTensorsWriter.Item($0, try file.tensor($0)) }
        tensors(&items)
        try SafeTensorsWriter.write(items, to: dir.url.appendingPathComponent("model.safetensors"))
        return dir
    }

    static func loadError(_ dir: TemporaryDirectory) -> String {
        do {
            _ = try Florence2VisionEncoder.load(directory: dir.url)
            return "(loaded)"
        } catch { return "\(error)" }
    }

    @Test func truncatedCheckpointNamesTheMissingKey() throws {
        let key = "model.vision_tower.blocks.2.1.channel_block.conv2.bias"
        let dir = try Self.edited(tensors: { $0.removeAll { $0.name == key } })
        let message = Self.loadError(dir)
        #expect(message.contains("lacks tensor '\(key)'"), "\(message)")
    }

    @Test func mismatchedConfigNamesTheTensorAndShapes() throws {
        // A config claiming wider last-stage channels than the tensors have.
        let dir = try Self.edited(config: { json in
            var vision = json["vision_config"] as? [String: Any] ?? [:]
            vision["embed_dim"] = [16, 32, 48, 80]
            json["vision_config"] = vision
        })
        let message = Self.loadError(dir)
        #expect(message.contains("model.vision_tower.convs.3.conv.weight") && message.contains("[64, 48, 3, 3]"), "\(message)")
    }

    @Test func extraVisionTensorIsRefusedButLanguageModelKeysAreLeftAlone() throws {
        let dir = try Self.edited(tensors: { $0.append(SafeTensorsWriter.Item("model.vision_tower.extra.weight", Tensor(zeros: [2]))) })
        let message = Self.loadError(dir)
        #expect(message.contains("'model.vision_tower.extra.weight'"), "\(message)")
        #expect(!message.contains("language_model"), "\(message)")
    }

    @Test func invalidConfigsNameTheKey() throws {
        let cases: [(String, Any, String)] = [
            ("num_groups", [2, 4, 5, 8], "num_groups[2] = 5"),
            ("depths", [1, 1, 2], "depths has 3 entries"),
            ("activation_function", "swiglu", "activation_function 'swiglu'"),
            ("patch_stride", [4, 0, 2, 2], "patch_stride[1] = 0"),
        ]
        for (key, value, expected) in cases {
            let dir = try Self.edited(config: { json in
                var vision = json["vision_config"] as? [String: Any] ?? [:]
                vision[key] = value
                json["vision_config"] = vision
            })
            let message = Self.loadError(dir)
            #expect(message.contains(expected) && message.contains("config.json"), "\(key): \(message)")
        }
    }

    @Test func badPixelInputsAreClearErrors() throws {
        let encoder = try Florence2VisionEncoder.load(directory: Self.tiny)
        let attempts: [(Tensor, String)] = [
            (Tensor(zeros: [1, 4, 80, 112]), "[batch, 3, height, width]"),
            (Tensor(zeros: [0, 3, 80, 112]), "batch and sides must be"),
            (Tensor(zeros: [1, 3, 5000, 8]), "batch and sides must be"),
            // 1700 px -> 425 -> 213 -> 107 -> 54 rows, past the 50-row position table.
            (Tensor(zeros: [1, 3, 1700, 16]), "max_position_embeddings"),
        ]
        for (pixels, expected) in attempts {
            do {
                _ = try encoder.imageFeatures(pixelValues: pixels)
                Issue.record("accepted \(pixels.shape)")
            } catch {
                #expect("\(error)".contains(expected), "\(pixels.shape): \(error)")
            }
        }
    }
}
