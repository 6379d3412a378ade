import VLMScenes
import VLMTensor
import VLMTraining

/// Patch labels: an auxiliary target on the image tokens of scene batches.
///
/// Why: most wrong colour answers name another object of the scene ("what colour is the star?" -> the cross's
/// colour), and about half the wrong shape answers name a shape the scene does not have. Both start with finding
/// "the star" among 64 patches, which needs every patch of the star to say "star" in a form the decoder's
/// attention can match. The answer turns reward that only through the lookup; patch labels ask for it directly:
/// each object patch's image token is scored with the object's shape word, through the same tied head as the
/// answers, at the decoder's output, the projector's row, or both (`PatchLabelPlace`). The projector's row is what
/// made the lookup work (Benchmarks/RESULTS.md, session 25). Inference is unchanged: nothing is exported for it.
extension SceneVLMBatches {
    /// For each patch of a `grid` x `grid` image (row-major), the index of the object that covers at least a
    /// quarter of it (16 sample points per patch through `ShapeGeometry`, the renderer's own point test), or nil.
    /// Objects never touch, so at most one object covers a patch that much.
    public static func patchObjects(_ scene: Scene, grid: Int) -> [Int?] {
        guard grid > 0 else { return [] }
        let samples = 4, cell = 1 / Double(grid)
        var out = [Int?](repeating: nil, count: grid * grid)
        for row in 0 ..< grid {
            for col in 0 ..< grid {
                for (k, object) in scene.objects.enumerated() where object.radius > 0 {
                    var covered = 0
                    for sy in 0 ..< samples {
                        let v = ((Double(row) + (Double(sy) + 0.5) / Double(samples)) * cell - object.y) / object.radius
                        for sx in 0 ..< samples {
                            let u = ((Double(col) + (Double(sx) + 0.5) / Double(samples)) * cell - object.x) / object.radius
                            if ShapeGeometry.contains(object.shape, u, v) { covered += 1 }
                        }
                    }
                    if covered * 4 >= samples * samples {
                        out[row * grid + col] = k
                        break
                    }
                }
            }
        }
        return out
    }

    /// The labelled patches of one image: (index in the image's token run, shape word id), each object patch kept
    /// with probability `share`, a pure function of (seed, step, slot). The CLS token (first, when the run is
    /// 1 + grid² long) is never labelled.
    func patchLabels(scene: Scene, share: Double, step: Int, slot: Int) throws -> [(token: Int, id: Int)] {
        let run = tokensPerImage
        var grid = Int(Double(run).squareRoot())
        if grid * grid != run { grid = Int(Double(run - 1).squareRoot()) }
        guard grid > 0, grid * grid <= run else { return [] }
        let first = run - grid * grid
        var rng = SplitMix64(seed: seed ^ 0x7061_7463_6821 &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(slot) &* 0xBF58_476D_1CE4_E5B9)
        var out: [(token: Int, id: Int)] = []
        for (p, object) in Self.patchObjects(scene, grid: grid).enumerated() {
            guard let object, Double(rng.next() >> 11) / 9007199254740992.0 < share else { continue }
            let word = scene.objects[object].shape.rawValue
            guard let id = shapeTokenIDs[word] else {
                throw PipelineError.invalidArgument("the tokenizer has no token for the shape '\(word)' (patch labels need one)")
            }
            out.append((first + p, id))
        }
        return out
    }
}

/// Where patch labels score an image token.
public enum PatchLabelPlace: String, Codable, CaseIterable, Sendable {
    /// The decoder's output at the token predicts the word (next-token labels at the image run, shifted by one).
    case decoder
    /// The projector's output row is classified by the language model's head (`LlavaTrainingBatch.imageLabels`).
    case projector
    case both

    var decoder: Bool { self != .projector }
    var projector: Bool { self != .decoder }
}
