import ArgumentParser
import Foundation
import SwiftVLM

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

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            let r = try Florence2Benchmark.run(config: config, side: side, beams: beams, newTokens: tokens, repeats: repeats)
            let data = try JSONEncoder().encode(r)
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
