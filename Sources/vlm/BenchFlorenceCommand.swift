import ArgumentParser
import Foundation
import SwiftVLM
import VLMLayers

struct BenchFlorence: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-florence",
        abstract: "Florence-2 (random weights): encoder time and <CAPTION>/<OD> answers with beam search.",
        discussion: "Compare with Benchmarks/bench_torch_florence2.py (same configuration, image side, beams and tokens).")
    @Option(help: "base or large.") var config = "base"
    @Option(help: "Image side in pixels.") var side = 768
    @Option(help: "Beams.") var beams = 3
    @Option(help: "New tokens per answer.") var tokens = 20
    @Option(help: "Runs per measurement (median).") var repeats = 3
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(help: ArgumentHelp(Precision.helpText)) var precision = "fp32"

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            guard let p = Precision(name: precision) else { throw Precision.unknown(precision) }
            let r = try Florence2Benchmark.run(config: config, side: side, beams: beams, newTokens: tokens, repeats: repeats, precision: p)
            let data = try JSONEncoder().encode(r)
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
