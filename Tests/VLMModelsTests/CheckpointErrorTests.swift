import Foundation
import Testing
import VLMModels
import VLMTensor
import VLMTestSupport

/// Damaged or mismatched checkpoints: each must give one clear error that names the culprit, never a crash.
@Suite struct CheckpointErrorTests {
    /// A scratch copy of tiny-a's config.json plus a weights file built from `edit` applied to its tensors.
    func checkpoint(editing edit: (inout [SafeTensorsWriter.Item]) -> Void = { _ in },
                    config: ((inout [String: Any]) -> Void)? = nil) throws -> URL {
        let source = Fixtures.url("clip/tiny-a")
        let dir = TestScratch.root.appendingPathComponent("vlm-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as? [String: Any] ?? [:]
        config?(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(path: source.appendingPathComponent("model.safetensors").path)
        var items = try file.keys.map { SafeTensorsWriter.Item($0, try file.tensor($0)) }
        edit(&items)
        try SafeTensorsWriter.write(items, to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    func loadError(_ dir: URL) -> String? {
        do {
            _ = try CLIPModel.load(directory: dir)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func roundTripThroughTheWriterLoads() throws {
        let dir = try checkpoint()
        #expect(loadError(dir) == nil)
    }

    @Test func missingTensorIsNamed() throws {
        let dir = try checkpoint { $0.removeAll { $0.name == "text_projection.weight" } }
        let message = try #require(loadError(dir))
        #expect(message.contains("text_projection.weight"))
    }

    @Test func misShapedTensorIsNamedWithBothShapes() throws {
        let dir = try checkpoint { items in
            items = items.map { $0.name == "visual_projection.weight" ? .init($0.name, Tensor(zeros: [12, 31])) : $0 }
        }
        let message = try #require(loadError(dir))
        #expect(message.contains("visual_projection.weight"))
        #expect(message.contains("[12, 31]") && message.contains("[12, 32]"))
    }

    @Test func extraTensorsAreRefused() throws {
        let dir = try checkpoint { $0.append(.init("vision_model.head.weight", Tensor(zeros: [2, 2]))) }
        let message = try #require(loadError(dir))
        #expect(message.contains("vision_model.head.weight"))
    }

    @Test func legacyPositionIDBuffersAreIgnored() throws {
        let dir = try checkpoint { $0.append(.init("text_model.embeddings.position_ids", Tensor(zeros: [1, 77]))) }
        #expect(loadError(dir) == nil)
    }

    @Test func truncatedFileIsDetected() throws {
        let dir = try checkpoint()
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 100).write(to: url)
        let message = try #require(loadError(dir))
        #expect(message.contains("truncated"))
    }

    @Test func zeroByteAndTinyFilesAreDetected() throws {
        let dir = try checkpoint()
        let url = dir.appendingPathComponent("model.safetensors")
        try Data().write(to: url)
        #expect(try #require(loadError(dir)).contains("truncated"))
        try Data([1, 2, 3]).write(to: url)
        #expect(try #require(loadError(dir)).contains("truncated"))
    }

    /// Writes a file with a hand-made header over `payloadBytes` zero bytes.
    func rawSafetensors(header: String, payloadBytes: Int, in dir: URL) throws {
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: payloadBytes))
        try data.write(to: dir.appendingPathComponent("model.safetensors"))
    }

    @Test func headerThatLiesAboutOffsetsIsRefused() throws {
        let dir = try checkpoint()
        // Offsets past the end of the data.
        try rawSafetensors(header: #"{"logit_scale":{"dtype":"F32","shape":[],"data_offsets":[0,4000]}}"#, payloadBytes: 4, in: dir)
        #expect(try #require(loadError(dir)).contains("logit_scale"))
        // Offsets that disagree with the shape.
        try rawSafetensors(header: #"{"logit_scale":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, payloadBytes: 4, in: dir)
        #expect(try #require(loadError(dir)).contains("logit_scale"))
        // A header length larger than the file.
        var data = Data()
        var n = UInt64(1 << 40).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(Data("{}".utf8))
        try data.write(to: dir.appendingPathComponent("model.safetensors"))
        #expect(try #require(loadError(dir)).contains("header"))
        // Not JSON.
        try rawSafetensors(header: "not json at all!", payloadBytes: 0, in: dir)
        #expect(try #require(loadError(dir)).contains("JSON"))
    }

    @Test func unknownDTypeIsNamed() throws {
        let dir = try checkpoint()
        try rawSafetensors(header: #"{"logit_scale":{"dtype":"Q4_K","shape":[],"data_offsets":[0,1]}}"#, payloadBytes: 1, in: dir)
        let message = try #require(loadError(dir))
        #expect(message.contains("Q4_K") && message.contains("logit_scale"))
    }

    @Test func configOfAnotherModelIsRefused() throws {
        let dir = try checkpoint(config: { $0["model_type"] = "bert" })
        let message = try #require(loadError(dir))
        #expect(message.contains("bert") && message.contains("clip"))
    }

    @Test func malformedConfigIsRefused() throws {
        let dir = try checkpoint()
        try Data("{\"model_type\": \"clip\", ".utf8).write(to: dir.appendingPathComponent("config.json"))
        #expect(try #require(loadError(dir)).contains("config.json"))
        let wrongType = try checkpoint(config: { $0["vision_config"] = ["hidden_size": "wide"] })
        let message = try #require(loadError(wrongType))
        #expect(message.contains("vision_config") && message.contains("hidden_size"))
        let badPatch = try checkpoint(config: { $0["vision_config"] = ["image_size": 32, "patch_size": 7] })
        #expect(try #require(loadError(badPatch)).contains("patch_size"))
    }

    @Test func unknownActivationIsNamed() throws {
        let dir = try checkpoint(config: { json in
            var text = json["text_config"] as? [String: Any] ?? [:]
            text["hidden_act"] = "mish"
            json["text_config"] = text
        })
        #expect(try #require(loadError(dir)).contains("mish"))
    }

    @Test func pickleOnlyCheckpointIsExplained() throws {
        let dir = try checkpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        try Data("PK".utf8).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        let message = try #require(loadError(dir))
        #expect(message.contains("pytorch_model.bin") && message.contains("safetensors"))
    }

    @Test func missingDirectoryAndConfig() throws {
        #expect(try #require(loadError(URL(fileURLWithPath: "/nonexistent/model"))).contains("/nonexistent/model"))
        let dir = try checkpoint()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
        #expect(try #require(loadError(dir)).contains("config.json"))
    }

    @Test func shardedCheckpointWithIndexLoads() throws {
        // tiny-b is sharded (model.safetensors.index.json); its parity is in CLIPModelParityTests. Here: an index
        // naming a shard that does not exist.
        let dir = TestScratch.root.appendingPathComponent("vlm-shard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let src = Fixtures.url("clip/tiny-b")
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        try Data(#"{"weight_map": {"logit_scale": "missing-shard.safetensors"}}"#.utf8)
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        #expect(try #require(loadError(dir)).contains("missing-shard.safetensors"))
        try Data(#"{"weight_map": {"logit_scale": "../../etc/passwd"}}"#.utf8)
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        #expect(try #require(loadError(dir)).contains("logit_scale"))
    }
}
