import ArgumentParser
import Foundation
import SwiftVLM
import VLMImage

/// `vlm bench-decode`: decode + preprocess milliseconds per image and format (DecodeBenchmark), next to
/// Benchmarks/bench_decode_pil.py on the same files.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-decode",
        abstract: "Decode + preprocess time per image format (read, decode, EXIF orientation, CLIP 224 pixel values).",
        discussion: "Make the files and the PIL figures with Benchmarks/bench_decode_pil.py --make DIR; then vlm bench-decode DIR/*.")
    @Argument(help: "Image files (any supported format; grouped by extension).") var files: [String]
    @Option(name: .customLong("repeat"), help: "Timed decodes per file (median reported).") var repeats = 5
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func run() throws {
        try guarded {
            guard !files.isEmpty else { throw PipelineError.invalidArgument("no files given") }
            let rows = try DecodeBenchmark.run(files: files.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) },
                                               repeats: repeats, processor: ImageProcessor(config: .clip))
            switch format {
            case .json: try printJSON(rows)
            case .text:
                print("format  files  megapixels  decode ms  preprocess ms  images/s")
                for r in rows {
                    let name = r.format.padding(toLength: 6, withPad: " ", startingAt: 0)
                    print(name + String(format: " %6d %11.2f %10.2f %14.2f %9.1f", r.files, r.megapixels,
                                        r.decodeMilliseconds, r.preprocessMilliseconds, r.imagesPerSecond))
                }
            }
        }
    }
}
