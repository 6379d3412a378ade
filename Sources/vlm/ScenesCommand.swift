import ArgumentParser
import Foundation
import SwiftVLM
import VLMImage
import VLMScenes

/// `vlm scenes ...`: the synthetic image-text world used to train and evaluate the small CLIP.
struct ScenesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenes",
        abstract: "Synthetic scenes: coloured shapes with captions, negatives and questions.",
        subcommands: [ScenesGenerate.self, ScenesShow.self, ScenesVocabulary.self])
}

extension SceneSplit: ExpressibleByArgument {}
extension KindSelection: ExpressibleByArgument {}
extension LocateReference: ExpressibleByArgument {}
extension PatchLabelPlace: ExpressibleByArgument {}

enum SceneImageFormatOption: String, ExpressibleByArgument, CaseIterable { case png, jpeg }

/// Options that change what a scene looks like; they must match between `generate` and `show`.
struct SceneOptions: ParsableArguments {
    @Option(help: "Seed (any unsigned 64-bit integer); the same seed always gives the same data.") var seed: UInt64 = 0
    @Option(help: "Split: train, test (same distribution, other stream) or heldout (unseen compositions).") var split: SceneSplit = .train
    @Option(help: "Objects per scene: single, multi (2-4) or mixed.") var kind: KindSelection = .mixed
    @Option(help: "Image side in pixels.") var size = 64
    @Option(help: "Anti-aliasing samples per pixel side.") var supersample = 4
    @Option(help: "Background grey noise amplitude (0 = plain).") var noise = 0

    func config() throws -> SceneConfig {
        var config = SceneConfig()
        config.size = size
        config.supersample = supersample
        config.backgroundNoise = noise
        try config.validate()
        return config
    }
}

struct ScenesGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write N images plus manifest.jsonl and dataset.json to a directory.")

    @OptionGroup var scene: SceneOptions
    @Option(help: "Number of scenes.") var count: Int
    @Option(help: "Output directory (must not exist or be empty, unless --overwrite).") var out: String
    @Option(name: .customLong("image-format"), help: "png or jpeg.") var imageFormat: SceneImageFormatOption = .png
    @Option(help: "JPEG quality 1...100.") var quality = 95
    @Option(help: "Worker threads (default: all cores); output does not depend on it.") var threads: Int?
    @Flag(help: "Replace a non-empty output directory.") var overwrite = false
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    struct Summary: Encodable {
        let directory: String
        let count: Int
        let seconds: Double
        let scenesPerSecond: Double
    }

    func run() throws {
        try guarded {
            guard count >= 0 else { throw SceneError.invalidArgument("--count must be >= 0") }
            if let threads, threads < 1 { throw SceneError.invalidArgument("--threads must be at least 1") }
            let fileFormat: SceneImageFormat = imageFormat == .png ? .png : .jpeg(quality: quality)
            let url = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
            let result = try SceneDataset.export(
                count: count, seed: scene.seed, split: scene.split, kind: scene.kind, config: scene.config(),
                format: fileFormat, to: url, overwrite: overwrite,
                threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
            let summary = Summary(directory: result.directory.path, count: result.count, seconds: result.seconds,
                                  scenesPerSecond: result.seconds > 0 ? Double(result.count) / result.seconds : 0)
            switch format {
            case .json: try printJSON(summary)
            case .text:
                print("wrote \(summary.count) scenes to \(summary.directory) in \(String(format: "%.2f", summary.seconds)) s")
            }
        }
    }
}

struct ScenesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print one scene's objects, captions, negatives and questions (and optionally save its image).")

    @OptionGroup var scene: SceneOptions
    @Option(help: "Scene index within the split.") var index = 0
    @Option(help: "Also write the image to this PNG file.") var image: String?
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func run() throws {
        try guarded {
            let generator = try SceneGenerator(seed: scene.seed, config: scene.config())
            let generated = try generator.generate(index: index, split: scene.split, kind: scene.kind)
            if let image {
                let png = try ImageEncoder.png(width: generated.image.width, height: generated.image.height, rgb: generated.image.pixels)
                do { try png.write(to: URL(fileURLWithPath: (image as NSString).expandingTildeInPath)) } catch {
                    throw SceneError.writeFailed(path: image, reason: "\(error)")
                }
            }
            let record = ManifestRecord(generated, file: image ?? "")
            switch format {
            case .json: try printJSON(record)
            case .text:
                print("scene \(index) (\(record.split), \(record.kind), \(record.structure))")
                for o in record.objects {
                    print("  object: \(o.size) \(o.colour) \(o.shape) at (\(o.x), \(o.y)) radius \(o.radius)")
                }
                print(Self.preview(generated.scene, columns: 32).map { "  |" + $0 + "|" }.joined(separator: "\n"))
                for c in record.captions { print("  caption: \(c)") }
                for n in record.negatives { print("  negative (\(n.type)): \(n.caption)") }
                for q in record.questions { print("  question: \(q.question) -> \(q.answer)") }
                if let label = record.label { print("  label: \(label)") }
                if !record.heldout.pairs.isEmpty || !record.heldout.triples.isEmpty {
                    print("  held-out: \((record.heldout.pairs + record.heldout.triples).joined(separator: ", "))")
                }
            }
        }
    }

    /// A terminal sketch: each object drawn with its colour's letter (k = black).
    static func preview(_ scene: Scene, columns: Int) -> [String] {
        let letters: [SceneColour: Character] = [.red: "r", .orange: "o", .yellow: "y", .green: "g", .cyan: "c", .blue: "b",
                                            .purple: "p", .white: "w", .black: "k"]
        let rows = columns / 2  // terminal cells are about twice as tall as wide
        return (0..<rows).map { r in
            String((0..<columns).map { c -> Character in
                let x = (Double(c) + 0.5) / Double(columns), y = (Double(r) + 0.5) / Double(rows)
                for o in scene.objects where ShapeGeometry.contains(o.shape, (x - o.x) / o.radius, (y - o.y) / o.radius) {
                    return letters[o.colour] ?? "#"
                }
                return "."
            })
        }
    }
}

struct ScenesVocabulary: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vocab",
        abstract: "Print the vocabulary, zero-shot labels and held-out compositions as JSON.")

    struct Report: Encodable {
        let generator: String
        let vocabulary: DatasetInfo.VocabularyInfo
        let labels: [String]
        let seen_labels: [String]
        let heldout_pairs: [String]
        let heldout_triples: [String]
    }

    func run() throws {
        try guarded {
            let info = DatasetInfo(seed: 0, split: .train, kind: .mixed, count: 0, config: SceneConfig(), imageFormat: "png")
            try printJSON(Report(generator: info.generator, vocabulary: info.vocabulary, labels: info.labels,
                                 seen_labels: info.seenLabels, heldout_pairs: info.heldoutPairs, heldout_triples: info.heldoutTriples))
        }
    }
}
