import Foundation
import VLMTensor

/// open_clip's weight-decay rule (open_clip_train/main.py):
///   exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or 'logit_scale' in n
/// Excluded parameters (biases, LayerNorm gains, class_embedding, logit_scale) get weight_decay 0. Note the rule
/// is by rank: 2-D embedding tables (token, position) and the 4-D patch conv *are* decayed, as in open_clip.
public func isExcludedFromWeightDecay(name: String, shape: [Int]) -> Bool {
    shape.count < 2 || name.contains("bn") || name.contains("ln") || name.contains("bias") || name.contains("logit_scale")
}

/// Learning rate per step: linear warmup then cosine decay to 0, exactly open_clip_train/scheduler.py cosine_lr:
///   step < warmup: base · (step + 1) / warmup;  else 0.5 · (1 + cos(π (step - warmup) / (total - warmup))) · base.
public struct CosineSchedule: Sendable, Codable {
    public var baseLR: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(baseLR: Float, warmupSteps: Int, totalSteps: Int) {
        self.baseLR = baseLR
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// step: 0-based index of the optimizer step about to be taken.
    public func learningRate(step: Int) -> Float {
        if step < warmupSteps { return baseLR * Float(step + 1) / Float(warmupSteps) }
        let span = max(totalSteps - warmupSteps, 1)
        let e = Double(min(step - warmupSteps, span))
        return Float(0.5 * (1 + cos(Double.pi * e / Double(span))) * Double(baseLR))
    }
}

/// Clips gradients to a global L2 norm as torch.nn.utils.clip_grad_norm_ (which scales by max / (norm + 1e-6)
/// only when that factor is < 1). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ grads: Gradients, maxNorm: Float) -> Float {
    let norm = grads.globalNorm
    let factor = Double(maxNorm) / (norm + 1e-6)
    if factor < 1 { grads.scale(by: Float(factor)) }
    return Float(norm)
}

/// AdamW (Loshchilov & Hutter), as torch.optim.AdamW: decoupled decay p ← p·(1 - lr·wd) first, then
///   m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  p ← p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps).
/// Defaults are open_clip's for ViT CLIP (β2 0.98, eps 1e-6, wd 0.2).
public final class AdamW: @unchecked Sendable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    /// Which parameters get no weight decay (open_clip's rule by default).
    public var excludeFromDecay: (String, [Int]) -> Bool = isExcludedFromWeightDecay
    /// Per-parameter multiplier of the learning rate (torch's parameter groups with their own lr), e.g. a
    /// pretrained tower trained 10x slower than the layers above it. Decay uses the scaled rate too, as in torch.
    public var learningRateScale: (String) -> Float = { _ in 1 }
    /// Optimizer steps taken so far, per parameter (torch keeps `step` per parameter too).
    public private(set) var steps: [String: Int] = [:]
    var firstMoment: [String: Tensor] = [:]
    var secondMoment: [String: Tensor] = [:]

    public init(learningRate: Float = 5e-4, beta1: Float = 0.9, beta2: Float = 0.98, eps: Float = 1e-6, weightDecay: Float = 0.2) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    /// Updates every parameter that has a gradient, in place. Parameters without one (frozen) are untouched,
    /// like torch skipping params whose .grad is None.
    public func step(_ params: ParameterSet, _ grads: Gradients) {
        for name in grads.names {
            guard let g = grads[name], let p = params.tensor(name) else { continue }
            precondition(g.count == p.count, "AdamW: gradient of \(name) has \(g.count) values for \(p.count)")
            let m = firstMoment[name] ?? Tensor(zeros: p.shape)
            let v = secondMoment[name] ?? Tensor(zeros: p.shape)
            firstMoment[name] = m
            secondMoment[name] = v
            let t = (steps[name] ?? 0) + 1
            steps[name] = t
            let lr = Double(learningRate) * Double(learningRateScale(name))
            let wd = excludeFromDecay(name, p.shape) ? 0 : Double(weightDecay)
            let bc1 = 1 - pow(Double(beta1), Double(t)), bc2 = 1 - pow(Double(beta2), Double(t))
            let stepSize = Float(lr / bc1), bc2Root = Float(bc2.squareRoot())
            let decay = Float(1 - lr * wd), b1 = beta1, b2 = beta2, e = eps
            let pp = p.pointer, gp = g.pointer, mp = m.pointer, vp = v.pointer
            // Elementwise, so splitting across threads cannot change a value.
            parallelRanges(p.count, minPerChunk: 1 << 15) { range in
                for i in range {
                    pp[i] *= decay
                    mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                    vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                    pp[i] -= stepSize * mp[i] / (vp[i].squareRoot() / bc2Root + e)
                }
            }
        }
    }

    // MARK: - State (resume)

    /// Moments and step counts as a safetensors file: `exp_avg.<name>`, `exp_avg_sq.<name>`, and the per-parameter
    /// step counts plus hyper-parameters in the metadata.
    public func stateData() throws -> Data {
        var items: [SafeTensorsWriter.Item] = []
        for (name, m) in firstMoment { items.append(.init("exp_avg.\(name)", m)) }
        for (name, v) in secondMoment { items.append(.init("exp_avg_sq.\(name)", v)) }
        var meta: [String: String] = ["format": "swiftvlm-adamw"]
        let stepsJSON = try JSONSerialization.data(withJSONObject: steps, options: [.sortedKeys])
        meta["steps"] = String(decoding: stepsJSON, as: UTF8.self)
        meta["hyper"] = "\(learningRate) \(beta1) \(beta2) \(eps) \(weightDecay)"
        return try SafeTensorsWriter.encode(items, metadata: meta)
    }

    /// Restores moments and step counts written by `stateData()`. Shapes must match `params`.
    public func loadState(from url: URL, params: ParameterSet) throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: url.path) } catch { throw TrainingError.optimizerState("\(error)") }
        guard let stepsText = file.metadata["steps"],
              let decoded = try? JSONSerialization.jsonObject(with: Data(stepsText.utf8)) as? [String: Int] else {
            throw TrainingError.optimizerState("\(url.path) has no step counts")
        }
        var m: [String: Tensor] = [:], v: [String: Tensor] = [:]
        for key in file.keys {
            let (table, name): (Int, String)
            if key.hasPrefix("exp_avg_sq.") { (table, name) = (1, String(key.dropFirst("exp_avg_sq.".count))) } else if key.hasPrefix("exp_avg.") {
                (table, name) = (0, String(key.dropFirst("exp_avg.".count)))
            } else { throw TrainingError.optimizerState("unexpected tensor '\(key)'") }
            guard let p = params.tensor(name) else { throw TrainingError.optimizerState("state for unknown parameter '\(name)'") }
            let t: Tensor
            do { t = try file.tensor(key) } catch { throw TrainingError.optimizerState("\(key): \(error)") }
            guard t.shape == p.shape else { throw TrainingError.optimizerState("'\(key)' has shape \(t.shape), parameter \(p.shape)") }
            if table == 0 { m[name] = t.copy() } else { v[name] = t.copy() }
        }
        guard Set(m.keys) == Set(v.keys), Set(m.keys) == Set(decoded.keys) else {
            throw TrainingError.optimizerState("\(url.path): moments and step counts cover different parameters")
        }
        firstMoment = m
        secondMoment = v
        steps = decoded
    }
}
