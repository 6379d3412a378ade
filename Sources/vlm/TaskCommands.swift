import ArgumentParser
import Foundation
import SwiftVLM


/// Flags of every Florence-2 task command.
struct TaskFlags: ParsableArguments {
    @Option(help: "Output: a readable table, or json (post_process_generation's result).") var format: TaskOutputFormat = .table
    @Option(help: "Write the image with the result's boxes, polygons and labels drawn (PNG, or JPEG for .jpg/.jpeg).") var draw: String?
    @Option(help: "Beams (default: the checkpoint's generation_config.json num_beams).") var numBeams: Int?
    @Option(help: "Maximum new tokens (default: the checkpoint's, else 256).") var maxTokens: Int?

    /// Prints the result and writes the drawing.
    func emit(_ result: VisionTaskRunner.Result, image: RGBImage) throws {
        print(format == .json ? result.json : TaskTable.render(result.parsed))
        guard let draw else { return }
        let drawn = TaskDrawing.draw(result.parsed, on: image)
        let lower = draw.lowercased()
        let data = lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg")
            ? try ImageEncoder.jpeg(width: drawn.width, height: drawn.height, rgb: drawn.pixels)
            : try ImageEncoder.png(width: drawn.width, height: drawn.height, rgb: drawn.pixels)
        try data.write(to: URL(fileURLWithPath: (draw as NSString).expandingTildeInPath))
    }
}

enum TaskOutputFormat: String, ExpressibleByArgument { case table, json }

/// Runs one task through the library and prints it.
func runTask(_ model: GenerativeOptions, _ flags: TaskFlags, image path: String, task: String, text: String? = nil, box: String? = nil) throws {
    try guarded {
        let region = try box.map(TaskTable.parseBox)
        let runner = try VisionTaskRunner(pipeline: try model.pipeline())
        let options = try runner.options(numBeams: flags.numBeams, maxTokens: flags.maxTokens)
        let image = try loadImage(path)
        try flags.emit(try runner.run(image: image, task: task, text: text, box: region, options: options), image: image)
    }
}

struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "task", abstract: "Run a Florence-2 task token (<OD>, <OCR>, <CAPTION>, ...) on an image.")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Option(help: "Task token, e.g. '<OD>' or '<CAPTION_TO_PHRASE_GROUNDING>'.") var task: String
    @Option(help: "The task's text (phrase grounding, referring expressions) or region (<loc_..> x4).") var text: String?
    @Option(help: "Region tasks: the box x0,y0,x1,y1 in image pixels.") var box: String?
    @OptionGroup var flags: TaskFlags
    func run() throws { try runTask(model, flags, image: image, task: task, text: text, box: box) }
}

struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Object detection (Florence-2 <OD>): labels and boxes.")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @OptionGroup var flags: TaskFlags
    func run() throws { try runTask(model, flags, image: image, task: "<OD>") }
}

struct OCR: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ocr", abstract: "Read the text in an image (Florence-2 <OCR>, or <OCR_WITH_REGION> with --regions).")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Flag(help: "Each text line with its quad box.") var regions = false
    @OptionGroup var flags: TaskFlags
    func run() throws { try runTask(model, flags, image: image, task: regions ? "<OCR_WITH_REGION>" : "<OCR>") }
}

struct Ground: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Phrase grounding (Florence-2 <CAPTION_TO_PHRASE_GROUNDING>): boxes for the phrases of a caption.")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Argument(help: "The phrase or caption.") var phrase: String
    @OptionGroup var flags: TaskFlags
    func run() throws { try runTask(model, flags, image: image, task: "<CAPTION_TO_PHRASE_GROUNDING>", text: phrase) }
}

struct DescribeRegion: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe-region", abstract: "Describe a region of an image (Florence-2 <REGION_TO_DESCRIPTION>).")
    @OptionGroup var model: GenerativeOptions
    @Argument(help: "Image file.") var image: String
    @Option(help: "The region x0,y0,x1,y1 in image pixels.") var box: String
    @OptionGroup var flags: TaskFlags
    func run() throws { try runTask(model, flags, image: image, task: "<REGION_TO_DESCRIPTION>", box: box) }
}
