import ArgumentParser
import Foundation
import SwiftVLM
import VLMImage
import VLMLayers
import VLMModels
import VLMTensor

/// `vlm quant-report`: what each weight precision costs a model, measured against fp32 (logic: QuantReport).
struct QuantReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant-report",
        abstract: "Measure the accuracy cost of each weight precision against fp32 (generators: greedy/top-1 agreement, KL, perplexity; dual encoders: embedding cosine, zero-shot agreement).")

    @Option(name: .long, help: "Checkpoint directory (generative or dual encoder).") var model: String
    @Option(name: .long, help: "Image directory for dual encoders (every decodable file).") var images: String?
    @Option(name: .long, help: "Zero-shot labels for dual encoders, comma-separated.")
    var labels = "a cat,a dog,a person,a cup of coffee,a rocket,coins,a horse,a camera,a building,a plant,a car,a landscape"
    @Option(name: .long, help: "Precisions to compare with fp32, comma-separated.") var precisions = "fp32,bf16,int8,int4"
    @Option(name: .long, help: "Greedy tokens per prompt (generators).") var newTokens = 16
    @Option(name: .long, help: "table | json") var format = "table"
    @Option(name: .long, help: "Kernel threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Kernels.threads = threads }
        let list = try precisions.split(separator: ",").map { name -> Precision in
            guard let p = Precision(name: String(name)) else { throw ValidationError("\(Precision.unknown(String(name)))") }
            return p
        }
        guard ["table", "json"].contains(format) else { throw ValidationError("--format must be table or json") }
        let dir = URL(fileURLWithPath: model)
        let report: QuantReport.Report
        if try ModelRegistry.kind(directory: dir) == .chat {
            report = try QuantReport.generator(directory: dir, precisions: list, newTokens: newTokens)
        } else {
            guard let images else { throw ValidationError("--images DIR is required for a dual encoder") }
            let folder = URL(fileURLWithPath: images)
            let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
            let decoded = files.compactMap { try? ImageDecoder.load($0) }
            guard !decoded.isEmpty else { throw ValidationError("no decodable images in \(folder.path)") }
            report = try QuantReport.dualEncoder(directory: dir, precisions: list, images: decoded, imageSource: folder.lastPathComponent,
                                                 labels: labels.split(separator: ",").map(String.init))
        }
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(QuantReport.table(report))
        }
    }
}
