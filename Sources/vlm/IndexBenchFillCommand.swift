import ArgumentParser
import Foundation
import SwiftVLM
import VLMIndex
import VLMMilvus

extension IndexCommand {
    /// Fills an index (SQLite or Milvus) with the synthetic vectors of `index_bench.py gen` under a serving model's
    /// identity, so `vlm serve --index` can be load-tested on a large index without embedding that many images
    /// (Benchmarks/serve_search_backends.sh).
    struct BenchFill: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-fill",
            abstract: "Write the vectors of `index_bench.py gen` into an index as synthetic files, under a model's identity (for serving benchmarks).")
        @OptionGroup var location: IndexLocation
        @OptionGroup var options: ModelOptions
        @Option(help: "Directory written by `index_bench.py gen`.") var data = "/tmp/vlm_index_bench"
        @Option(help: "Size (base_<n>.npy).") var n: Int
        @Option(help: "Rows per committed batch.") var batch = 2000

        func run() throws {
            try guarded {
                let pipeline = try options.pipeline()
                let index = try location.open(model: IndexCLI.identity(pipeline), onMismatch: .rebuild)
                let start = Date()
                let written = try IndexBenchmark.fill(index, directory: data, n: n, batch: batch) { done in
                    if done % 20_000 == 0 || done == n { print("\(done)/\(n) written"); fflush(stdout) }
                }
                if let milvus = index as? MilvusIndex {
                    // Searches before Milvus has indexed the new segments scan them brute force: wait, so a
                    // benchmark measures the served index, not its construction.
                    try milvus.checkpoint()
                    try milvus.waitUntilIndexed(rows: n)
                }
                let seconds = Date().timeIntervalSince(start)
                print(String(format: "wrote %d vectors into %@ in %.1f s (%.0f vectors/s); it holds %d",
                             written, index.location, seconds, Double(written) / seconds, try index.entryCount()))
            }
        }
    }
}
