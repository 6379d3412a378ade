import Foundation
@testable import SwiftVLM
import Testing
import VLMTensor
import VLMTestSupport
import VLMTraining

/// `vlm train vlm --ema`: the moving average of the weights is torch's AveragedModel EMA rule, leaves the training
/// trajectory alone, survives a resume bit for bit, and is what --export writes.
@Suite("Scene VLM weight average")
struct SceneVLMAverageTests {
    @Test("--ema: AveragedModel's rule from --ema-from on, same trajectory, bit-for-bit resume, exported")
    func movingAverage() throws {
        try KernelPaths.exclusiveThrowing { try movingAverageBody() }
    }

    func movingAverageBody() throws {
        let root = SceneVLMTrainingTests.scratch()
        defer { try? FileManager.default.removeItem(at: root) }
        var plain = SceneVLMTrainingTests.micro(scenes: 12, steps: 5, batch: 3)
        plain.saveEvery = 3
        var args = plain
        args.ema = 0.75
        args.emaFrom = 1

        // The weights after every step, to apply the rule by hand: avg_2 = p_2, avg_k = 0.75 avg_{k-1} + 0.25 p_k.
        let trainer = try SceneVLMTrainer(args: args)
        var snapshots: [ParameterSet] = []
        trainer.onProgress = { [unowned trainer] _ in snapshots.append(trainer.model.parameters.copy()) }
        let out = root.appendingPathComponent("run")
        _ = try trainer.run(out: out)
        #expect(snapshots.count == 5)
        let average = try #require(trainer.average?.average)
        #expect(trainer.average?.updates == 4)
        var differs = 0
        for name in average.names {
            var expected = snapshots[1][name].scalars
            for k in 2 ..< 5 {
                let p = snapshots[k][name].scalars
                for i in expected.indices { expected[i] = Float(0.75) * expected[i] + Float(0.25) * p[i] }
            }
            #expect(average[name].scalars == expected, "\(name)")
            if average[name].scalars != trainer.model.parameters[name].scalars { differs += 1 }
        }
        #expect(differs > average.count / 2, "the average should differ from the last weights (\(differs) of \(average.count) tensors do)")

        // The average never feeds back: the same run without it takes the same steps.
        let reference = try SceneVLMTrainer(args: plain)
        _ = try reference.run(out: root.appendingPathComponent("plain"))
        #expect(reference.lossHistory == trainer.lossHistory)
        for name in average.names { #expect(reference.model.parameters[name].scalars == trainer.model.parameters[name].scalars, "\(name)") }

        // Resumed from the step-3 checkpoint (which holds ema.safetensors), the run ends on the same average.
        let checkpoint = out.appendingPathComponent("checkpoints/checkpoint-3")
        #expect(FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent(SceneVLMTrainer.averageFile).path))
        let resumed = try SceneVLMTrainer(resume: checkpoint)
        #expect(resumed.average?.updates == 2)
        _ = try resumed.run(out: root.appendingPathComponent("resumed"))
        for name in average.names { #expect(resumed.average?.average?[name].scalars == average[name].scalars, "\(name)") }

        // A checkpoint whose average went missing is refused, not restarted from its weights.
        let damaged = root.appendingPathComponent("damaged")
        try FileManager.default.copyItem(at: checkpoint, to: damaged)
        try FileManager.default.removeItem(at: damaged.appendingPathComponent(SceneVLMTrainer.averageFile))
        #expect { try SceneVLMTrainer(resume: damaged) } throws: { "\($0)".contains("ema.safetensors") }

        // --export writes the average (fp16), the checkpoint the last step's weights.
        let export = root.appendingPathComponent("export")
        try trainer.export(to: export)
        let exported = try SafeTensorsFile(path: export.appendingPathComponent("model.safetensors").path)
        let saved = try SafeTensorsFile(path: out.appendingPathComponent("model.safetensors").path)
        for name in average.names {
            #expect(try exported.tensor(name).scalars == average[name].scalars.map { Float(Float16($0)) }, "\(name)")
            #expect(try saved.tensor(name).scalars == trainer.model.parameters[name].scalars, "\(name)")
        }

        // Bad values are refused naming the option.
        var bad = plain
        bad.ema = 1
        #expect { try SceneVLMTrainer(args: bad) } throws: { "\($0)".contains("--ema") }
        bad.ema = nil
        bad.emaFrom = 2
        #expect { try SceneVLMTrainer(args: bad) } throws: { "\($0)".contains("--ema-from needs --ema") }
        bad.ema = 0.9
        bad.emaFrom = 5
        #expect { try SceneVLMTrainer(args: bad) } throws: { "\($0)".contains("--ema-from") }
    }
}
