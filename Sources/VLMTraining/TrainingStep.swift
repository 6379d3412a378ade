import Foundation
import VLMTensor

/// What one optimizer step reports.
public struct StepResult: Sendable {
    public let loss: Float
    /// Global gradient L2 norm before clipping.
    public let gradientNorm: Float
    public let learningRate: Float
    /// The image-token targets' loss of a LLaVA step that had them (`LlavaForwardPass.imageTargetLoss`; not in `loss`).
    public var imageTargetLoss: Float?
}

extension AdamW {
    /// Optional global-norm clipping of `grads`, then one step of `params` at `learningRate`; the pre-clipping
    /// norm for the report. Every trainer's step ends here.
    func clipAndStep(_ params: ParameterSet, _ grads: Gradients, learningRate: Float, maxGradNorm: Float?, loss: Float) -> StepResult {
        let norm: Float
        if let maxGradNorm { norm = clipGradientNorm(grads, maxNorm: maxGradNorm) } else { norm = Float(grads.globalNorm) }
        self.learningRate = learningRate
        step(params, grads)
        return StepResult(loss: loss, gradientNorm: norm, learningRate: learningRate)
    }
}

extension TrainableCLIP {
    /// ln(100): open_clip clamps logit_scale to [0, ln 100] after every optimizer step (open_clip_train/train.py:
    /// `unwrap_model(model).logit_scale.clamp_(0, math.log(100))`), so the temperature never exceeds 100.
    public static let maxLogitScale: Float = Float(log(100.0))

    /// One training step on a batch: forward, backward, optional global-norm clipping, AdamW at `learningRate`,
    /// then the logit_scale clamp. pixels: [B, channels, S, S]; ids: B unpadded sequences.
    public func trainStep(pixels: Tensor, ids: [[Int]], negativeIDs: [[Int]] = [], optimizer: AdamW, learningRate: Float,
                          maxGradNorm: Float? = nil) throws -> StepResult {
        let pass = try forward(pixels: pixels, ids: ids, negativeIDs: negativeIDs)
        let result = optimizer.clipAndStep(parameters, backward(pass), learningRate: learningRate, maxGradNorm: maxGradNorm, loss: pass.loss)
        let s = parameters["logit_scale"]
        s[0] = min(max(s[0], 0), Self.maxLogitScale)
        return result
    }
}
