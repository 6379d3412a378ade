import Foundation
import VLMTensor

/// An exponential moving average of the weights, as torch.optim.swa_utils.AveragedModel with
/// `get_ema_multi_avg_fn(decay)` keeps it: started as a copy of the weights at the first update, then
/// `avg ← decay · avg + (1 − decay) · p` after every optimizer step. The average never feeds back into training,
/// so a run's trajectory (and its raw weights) are the same with or without it; only what is exported differs.
public final class ParameterAverage: @unchecked Sendable {
    public let decay: Float
    /// nil until the first `update`.
    public private(set) var average: ParameterSet?
    /// Updates folded in so far (restored on resume).
    public private(set) var updates = 0

    public init(decay: Float) throws {
        guard decay > 0, decay < 1 else { throw TrainingError.invalidConfig("the weight average's decay must be in (0, 1), got \(decay)") }
        self.decay = decay
    }

    /// Folds the current weights in (the first call copies them). Element by element in a fixed order, so a
    /// resumed run reproduces the same average bit for bit.
    public func update(_ params: ParameterSet) {
        updates += 1
        guard let average else {
            self.average = params.copy()
            return
        }
        let keep = decay, take = 1 - decay
        for name in params.names {
            let p = params[name].pointer, a = average[name].pointer
            for i in 0 ..< params[name].count { a[i] = keep * a[i] + take * p[i] }
        }
    }

    // MARK: - State (resume)

    /// The average as a safetensors file (`<name>` keys, decay and update count in the metadata).
    public func stateData() throws -> Data {
        guard let average else { throw TrainingError.checkpoint("the weight average has not started") }
        let items = average.names.map { SafeTensorsWriter.Item($0, average[$0]) }
        return try SafeTensorsWriter.encode(items, metadata: ["format": "swiftvlm-ema", "decay": "\(decay)", "updates": "\(updates)"])
    }

    /// Restores an average written by `stateData()`: every parameter of `params`, same shapes, same decay.
    public func loadState(from url: URL, params: ParameterSet) throws {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: url.path) } catch { throw TrainingError.checkpoint("\(url.path): \(error)") }
        guard let text = file.metadata["decay"], let saved = Float(text), saved == decay,
              let count = file.metadata["updates"].flatMap({ Int($0) }), count >= 1 else {
            throw TrainingError.checkpoint("\(url.path): not a weight average of decay \(decay) (metadata \(file.metadata))")
        }
        guard Set(file.keys) == Set(params.names) else {
            throw TrainingError.checkpoint("\(url.path): the average covers other tensors than the model has")
        }
        let out = ParameterSet()
        for name in params.names {
            let t: Tensor
            do { t = try file.tensor(name) } catch { throw TrainingError.checkpoint("\(url.path): \(name): \(error)") }
            guard t.shape == params[name].shape else {
                throw TrainingError.checkpoint("\(url.path): '\(name)' has shape \(t.shape), the parameter \(params[name].shape)")
            }
            out.set(name, t.copy())
        }
        average = out
        updates = count
    }
}
