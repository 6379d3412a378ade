import Foundation
import VLMModels
import VLMTensor

/// Which parameters train. LiT ("Locked-image Tuning", Zhai et al. 2022) locks the image tower; open_clip's
/// --lock-image / --lock-text lock a whole tower including its projection (open_clip's proj lives in the tower).
public enum FreezeMode: String, Sendable, CaseIterable {
    case none
    /// vision_model.* and visual_projection frozen.
    case lockImage = "lock-image"
    /// text_model.* and text_projection frozen.
    case lockText = "lock-text"
    /// Only visual_projection, text_projection and logit_scale train.
    case projectionsOnly = "projections-only"

    public func isTrainable(_ name: String) -> Bool {
        switch self {
        case .none: return true
        case .lockImage: return !(name.hasPrefix("vision_model.") || name == "visual_projection.weight")
        case .lockText: return !(name.hasPrefix("text_model.") || name == "text_projection.weight")
        case .projectionsOnly: return name == "visual_projection.weight" || name == "text_projection.weight" || name == "logit_scale"
        }
    }
}

/// One forward pass: the loss and everything backward needs.
public struct CLIPForwardPass {
    public let loss: Float
    /// The loss in Double as accumulated (finite-difference checks).
    public var exactLoss: Double { lossResult.exactLoss }
    /// [B, B]
    public var logitsPerImage: Tensor { lossResult.logitsPerImage }
    /// L2-normalised embeddings, [B, P].
    public let imageEmbeds: Tensor
    public let textEmbeds: Tensor
    let lossResult: ContrastiveLossResult
    let vision: VisionCache
    let text: TextCache
    let imageNorms: [Float]
    let textNorms: [Float]
}

/// CLIP with parameters as named tensors (Hugging Face keys), a forward that keeps caches and a backward that
/// returns gradients by name. The inference `CLIPModel` remains the serving path: `save(to:)` writes a checkpoint
/// it loads unchanged.
public final class TrainableCLIP: @unchecked Sendable {
    public let config: CLIPConfig
    public let parameters: ParameterSet
    public var freeze: FreezeMode = .none
    /// config.json as read from a checkpoint, written back verbatim so fields we do not model survive.
    var configJSON: Data?
    /// The last forward pass, for `backward()`.
    public private(set) var lastPass: CLIPForwardPass?

    public init(config: CLIPConfig, parameters: ParameterSet) throws {
        do { try config.validate(path: "config") } catch { throw TrainingError.invalidConfig("\(error)") }
        for (name, shape) in clipParameterShapes(config) {
            guard let t = parameters.tensor(name) else { throw TrainingError.checkpoint("missing parameter '\(name)'") }
            guard t.shape == shape else { throw TrainingError.checkpoint("parameter '\(name)' has shape \(t.shape), expected \(shape)") }
        }
        self.config = config
        self.parameters = parameters
    }

    /// Loads a Hugging Face CLIP checkpoint directory (config.json + safetensors), every key strictly.
    public static func load(directory: URL) throws -> TrainableCLIP {
        let config: CLIPConfig
        let data: Data
        do {
            data = try ConfigFile.data(in: directory)
            config = try ConfigFile.decode(CLIPConfig.self, in: directory)
        } catch { throw TrainingError.checkpoint("\(error)") }
        guard config.modelType == "clip" else {
            // Name the family the registry sees, so a SigLIP or LLaVA checkpoint is called what it is.
            let family = (try? ModelRegistry.family(directory: directory).name).map { "a \($0) checkpoint" } ?? "not a CLIP checkpoint"
            throw TrainingError.checkpoint("\(directory.path) is \(family) (model_type '\(config.modelType)'); contrastive training takes CLIP-layout checkpoints")
        }
        do { try config.validate(path: ConfigFile.url(in: directory).path) } catch { throw TrainingError.invalidConfig("\(error)") }
        let model = try TrainableCLIP(config: config, parameters: try ParameterSet.loadCLIP(directory: directory, config: config))
        model.configJSON = data
        return model
    }

    /// A freshly initialised model (transformers' CLIP init scheme, seeded).
    public static func random(config: CLIPConfig, seed: UInt64) throws -> TrainableCLIP {
        do { try config.validate(path: "config") } catch { throw TrainingError.invalidConfig("\(error)") }
        return try TrainableCLIP(config: config, parameters: ParameterSet.randomCLIP(config: config, seed: seed))
    }

    // MARK: - Forward / backward

    /// pixels: [B, channels, S, S], ids: B token sequences (BOS ... EOS, unpadded; different lengths allowed).
    /// Returns the symmetric contrastive loss and the caches for `backward`.
    /// `negativeIDs`: extra texts that are false for every image of the batch (hard negatives), used only as
    /// additional image->text candidates (see ContrastiveLoss).
    public func forward(pixels: Tensor, ids: [[Int]], negativeIDs: [[Int]] = []) throws -> CLIPForwardPass {
        try validate(pixels: pixels, ids: ids + negativeIDs)
        guard pixels.shape[0] == ids.count, !ids.isEmpty else {
            throw TrainingError.invalidBatch("\(pixels.shape[0]) images but \(ids.count) texts; a batch needs matching, non-empty pairs")
        }
        let (imageFeatures, vision) = VisionTowerOp.forward(pixels, params: parameters, config: config.visionConfig)
        let (textFeatures, text) = TextTowerOp.forward(ids + negativeIDs, params: parameters, config: config.textConfig)
        let (imageEmbeds, imageNorms) = L2NormalizeOp.forward(imageFeatures)
        let (textEmbeds, textNorms) = L2NormalizeOp.forward(textFeatures)
        let loss = ContrastiveLoss.forward(imageEmbeds: imageEmbeds, textEmbeds: textEmbeds, logitScale: parameters["logit_scale"][0])
        let pass = CLIPForwardPass(loss: loss.loss, imageEmbeds: imageEmbeds, textEmbeds: textEmbeds, lossResult: loss,
                                   vision: vision, text: text, imageNorms: imageNorms, textNorms: textNorms)
        lastPass = pass
        return pass
    }

    /// Gradients of the last forward pass's loss, by parameter name (only trainable parameters; frozen towers are
    /// not traversed at all).
    public func backward() throws -> Gradients {
        guard let pass = lastPass else { throw TrainingError.invalidBatch("backward() before forward()") }
        return backward(pass)
    }

    public func backward(_ pass: CLIPForwardPass) -> Gradients {
        let grads = Gradients()
        let (dImage, dText, dLogit) = ContrastiveLoss.backward(pass.lossResult, imageEmbeds: pass.imageEmbeds, textEmbeds: pass.textEmbeds)
        if freeze.isTrainable("logit_scale") { grads.add("logit_scale", Tensor(shape: [], values: [dLogit])) }
        if freeze.isTrainable("visual_projection.weight") {
            let dFeat = L2NormalizeOp.backward(dImage, output: pass.imageEmbeds, norms: pass.imageNorms)
            VisionTowerOp.backward(dFeat, cache: pass.vision, params: parameters, config: config.visionConfig, grads: grads,
                                   body: freeze.isTrainable("vision_model.post_layernorm.weight"))
        }
        if freeze.isTrainable("text_projection.weight") {
            let dFeat = L2NormalizeOp.backward(dText, output: pass.textEmbeds, norms: pass.textNorms)
            TextTowerOp.backward(dFeat, cache: pass.text, params: parameters, config: config.textConfig, grads: grads,
                                 body: freeze.isTrainable("text_model.final_layer_norm.weight"))
        }
        return grads
    }

    /// pixels: [B, channels, S, S] -> [B, P], unnormalised (get_image_features), no caches kept.
    public func imageFeatures(_ pixels: Tensor) throws -> Tensor {
        try validate(pixels: pixels, ids: [])
        return VisionTowerOp.forward(pixels, params: parameters, config: config.visionConfig).0
    }

    /// ids: B sequences -> [B, P], unnormalised (get_text_features).
    public func textFeatures(_ ids: [[Int]]) throws -> Tensor {
        try validate(pixels: nil, ids: ids)
        return TextTowerOp.forward(ids, params: parameters, config: config.textConfig).0
    }

    private func validate(pixels: Tensor?, ids: [[Int]]) throws {
        let v = config.visionConfig, t = config.textConfig
        if let pixels {
            guard pixels.rank == 4, pixels.shape[1] == v.numChannels, pixels.shape[2] == v.imageSize, pixels.shape[3] == v.imageSize,
                  pixels.shape[0] > 0 else {
                throw TrainingError.invalidBatch("pixels have shape \(pixels.shape); expected [B>0, \(v.numChannels), \(v.imageSize), \(v.imageSize)]")
            }
        }
        for (n, seq) in ids.enumerated() {
            guard !seq.isEmpty else { throw TrainingError.invalidBatch("text \(n) has no tokens") }
            guard seq.count <= t.maxPositionEmbeddings else {
                throw TrainingError.invalidBatch("text \(n) has \(seq.count) tokens; at most \(t.maxPositionEmbeddings)")
            }
            if let bad = seq.first(where: { $0 < 0 || $0 >= t.vocabSize }) {
                throw TrainingError.invalidBatch("text \(n) has token id \(bad) outside 0..<\(t.vocabSize)")
            }
        }
    }
}
