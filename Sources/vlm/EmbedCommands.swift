import ArgumentParser
import Foundation
import SwiftVLM

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print image and text embeddings in the model's shared space (L2-normalised unless --raw).")

    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("image"), help: "Image file (JPEG or PNG); repeatable.") var images: [String] = []
    @Option(name: .customLong("text"), help: "Text; repeatable.") var texts: [String] = []
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Flag(help: "Unnormalised projections, as get_image_features/get_text_features return them.") var raw = false

    struct Row: Encodable {
        let kind: String
        let input: String
        let embedding: [Float]
    }

    func run() throws {
        try guarded {
            guard !images.isEmpty || !texts.isEmpty else { throw PipelineError.invalidArgument("give at least one --image or --text") }
            let pipeline = try options.pipeline()
            let imageVectors = try pipeline.embed(imageFiles: images.map { URL(fileURLWithPath: $0) }, normalize: !raw)
            let textVectors = try pipeline.embed(texts: texts, normalize: !raw)
            // Rows come out in the order the inputs were given on the command line.
            var nextImage = 0, nextText = 0
            var rows: [Row] = []
            for kind in Self.inputOrder(CommandLine.arguments, images: images.count, texts: texts.count) {
                if kind == "image" {
                    rows.append(Row(kind: kind, input: images[nextImage], embedding: imageVectors[nextImage]))
                    nextImage += 1
                } else {
                    rows.append(Row(kind: kind, input: texts[nextText], embedding: textVectors[nextText]))
                    nextText += 1
                }
            }
            switch format {
            case .json: try printJSON(rows)
            case .text:
                for row in rows {
                    print("\(row.kind)\t\(row.input)\t\(row.embedding.map { formatFloat($0) }.joined(separator: " "))")
                }
            }
        }
    }

    /// The sequence of "image"/"text" as the options appear in argv (ArgumentParser keeps each list's order,
    /// not their interleaving).
    static func inputOrder(_ argv: [String], images: Int, texts: Int) -> [String] {
        var order: [String] = []
        for arg in argv.dropFirst() {
            if arg == "--" { break }
            if arg == "--image" || arg.hasPrefix("--image=") { order.append("image") }
            if arg == "--text" || arg.hasPrefix("--text=") { order.append("text") }
        }
        if order.filter({ $0 == "image" }).count != images || order.filter({ $0 == "text" }).count != texts {
            return Array(repeating: "image", count: images) + Array(repeating: "text", count: texts)
        }
        return order
    }
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Zero-shot classification, best first: CLIP's softmax of logit_scale x cosine over the labels, SigLIP's sigmoid(logit_scale x cosine + logit_bias) per label.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "Image file.") var image: String
    @Option(help: "Comma-separated labels, e.g. \"cat,dog,car\".") var labels: String
    @Option(help: "Prompt template; {} is replaced by the label.") var template = "a photo of a {}."
    @Option(help: "Show only the N best labels.") var top: Int?
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func run() throws {
        try guarded {
            let labelList = labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !labelList.isEmpty else { throw PipelineError.invalidArgument("--labels has no labels") }
            if let top, top < 1 { throw PipelineError.invalidArgument("--top must be at least 1") }
            let pipeline = try options.pipeline()
            let picture = try ImageDecoder.load(URL(fileURLWithPath: image), alpha: .compositeOnWhite)
            var scores = try pipeline.classify(image: picture, labels: labelList, template: template)
            if let top { scores = Array(scores.prefix(top)) }
            switch format {
            case .json: try printJSON(scores)
            case .text:
                let width = scores.map(\.label.count).max() ?? 0
                for s in scores {
                    print("\(s.label.padding(toLength: width, withPad: " ", startingAt: 0))  \(String(format: "%.4f", Double(s.probability)))")
                }
            }
        }
    }
}

struct Similarity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Matrix of image-text cosine similarities (and the model's logits with --format json).")

    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("image"), help: "Image file; repeatable.") var images: [String] = []
    @Option(name: .customLong("text"), help: "Text; repeatable.") var texts: [String] = []
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    struct Output: Encodable {
        let images: [String]
        let texts: [String]
        let cosine: [[Float]]
        let logits: [[Float]]
        let logit_scale: Float
        let logit_bias: Float?
        let scoring: String
    }

    func run() throws {
        try guarded {
            guard !images.isEmpty, !texts.isEmpty else { throw PipelineError.invalidArgument("give at least one --image and one --text") }
            let pipeline = try options.pipeline()
            let img = try pipeline.embed(imageFiles: images.map { URL(fileURLWithPath: $0) })
            let txt = try pipeline.embed(texts: texts)
            let cosine = pipeline.similarity(imageEmbeddings: img, textEmbeddings: txt)
            let scoring = pipeline.scoring
            var bias: Float?
            if case .sigmoid(_, let b) = scoring { bias = b }
            switch format {
            case .json:
                try printJSON(Output(images: images, texts: texts, cosine: cosine, logits: cosine.map { scoring.logits($0) },
                                     logit_scale: scoring.logitScale, logit_bias: bias, scoring: scoring.name))
            case .text:
                print((["image \\ text"] + texts).joined(separator: "\t"))
                for (name, row) in zip(images, cosine) {
                    print(([name] + row.map { String(format: "%.4f", Double($0)) }).joined(separator: "\t"))
                }
            }
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Token ids as JSON: one array per string, BOS/EOS included, truncated to the model's length, no padding.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "Texts to tokenize.") var texts: [String]

    func run() throws {
        try guarded {
            try printJSON(try options.pipeline().tokenize(texts))
        }
    }
}

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the model's input tensor for an image (pixel_values, float32; [1, 3, H, W], or [1, patches, 3*p*p] for NaFlex) as NumPy .npy.")

    @OptionGroup var options: ModelOptions
    @Argument(help: "Image file.") var image: String
    @Option(help: "Output .npy path.") var out: String

    func run() throws {
        try guarded {
            let processor = try ImageProcessors.load(directory: options.url)
            let picture = try ImageDecoder.load(URL(fileURLWithPath: image), alpha: .compositeOnWhite)
            let pixels = try processor.pixelInputs([picture]).pixelValues
            try Npy.write(pixels, to: URL(fileURLWithPath: out))
            FileHandle.standardError.write(Data("wrote \(out): pixel_values \(pixels.shape)\n".utf8))
        }
    }
}
