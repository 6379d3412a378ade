import ArgumentParser
import Foundation
import SwiftVLM
import VLMLayers

@main
struct VLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vlm",
        abstract: "Vision-language models on the CPU: embeddings, zero-shot classification, similarity.",
        discussion: "Point --model at a Hugging Face checkpoint directory (config.json, *.safetensors, tokenizer and preprocessor files).",
        subcommands: [DemoCommand.self, Embed.self, Classify.self, Similarity.self, Tokenize.self, Preprocess.self, Bench.self, IndexCommand.self, ScenesCommand.self, ServeCommand.self, TrainCommand.self, EvalCommand.self, Caption.self, Ask.self, Chat.self, TaskCommand.self, Detect.self, OCR.self, Ground.self, DescribeRegion.self, QuantReportCommand.self, BenchLLM.self, BenchChat.self, BenchTrain.self, BenchTrainVLM.self, BenchDecode.self, BenchFlorence.self]
    )

    static func main() {
        // Before any model loads: large activations are reused instead of page-faulted again on every layer.
        Kernels.keepLargeBuffers()
        main(nil)
    }
}

/// Options every model command shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Checkpoint directory in the Hugging Face layout (default: the embedded scenes model; VLM_MODEL_DIR overrides).")
    var model: String?

    @Option(name: .long, help: "Kernel threads (default: all cores).")
    var threads: Int?

    @Flag(name: .customLong("no-exif-transpose"), help: "Keep images' stored pixel grid instead of applying their EXIF orientation (PIL's plain convert(\"RGB\")).")
    var noExifTranspose = false

    @Option(help: ArgumentHelp(Precision.helpText, valueName: "fp32|bf16|int8|int4"))
    var precision: Precision?

    func apply() {
        if let threads, threads > 0 { Kernels.threads = threads }
        if noExifTranspose { ImageDecoder.appliesExifOrientation = false }
    }

    var url: URL { (try? DefaultModel.resolve(model)) ?? DefaultModel.packageDirectory(DefaultModel.relativePath) }

    func pipeline() throws -> EmbeddingPipeline {
        apply()
        let directory = try DefaultModel.resolve(model)
        try ModelRegistry.family(directory: directory).check(precision: precision)
        return try EmbeddingPipeline.load(directory: directory, precision: precision)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable { case text, json }

/// Prints one line to stderr and exits non-zero: every failure a user can cause ends here, never in a crash.
func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}

func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch let exit as ExitCode { throw exit } catch { throw fail(error) }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

func formatFloat(_ x: Float, digits: Int = 6) -> String { String(format: "%.\(digits)g", Double(x)) }
