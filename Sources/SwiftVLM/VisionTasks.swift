import Foundation
import VLMImage
import VLMModels
import VLMTokenizers

/// Vision tasks (Florence-2's task tokens) over a loaded pipeline: the task prompt (with its text or region
/// argument), generation with the checkpoint's generation_config.json (beam search where it asks for it), and the
/// reference processor's post_process_generation result in original-image pixels. The CLI's task commands and the
/// server's `POST /v1/vision/tasks` both run tasks through this type; whether a model can is decided by its
/// processor's `VisionTaskProcessor` conformance.
public struct VisionTaskRunner: Sendable {
    public let pipeline: GenerativePipeline
    let processor: any VisionTaskProcessor

    /// Refuses a pipeline whose model does not run vision tasks, naming it.
    public init(pipeline: GenerativePipeline) throws {
        guard let processor = pipeline.processor as? any VisionTaskProcessor else {
            throw PipelineError.invalidArgument("the model \(pipeline.modelType) does not run vision tasks (Florence-2 checkpoints do)")
        }
        self.pipeline = pipeline
        self.processor = processor
    }

    /// The task tokens this model runs.
    public var tasks: [String] { processor.visionTasks }
    /// The tasks that take a region (`box`) rather than text.
    public var regionTasks: Set<String> { processor.regionTasks }

    /// The checkpoint's generation defaults with the caller's beams and token limit, checked.
    public func options(numBeams: Int? = nil, maxTokens: Int? = nil) throws -> SamplingOptions {
        var o = SamplingOptions(defaults: pipeline.defaults)
        if let numBeams {
            guard (1 ... 64).contains(numBeams) else { throw PipelineError.invalidArgument("num beams must be 1 ... 64 (got \(numBeams))") }
            o.numBeams = numBeams
        }
        if let maxTokens {
            guard maxTokens >= 1 else { throw PipelineError.invalidArgument("max tokens must be >= 1 (got \(maxTokens))") }
            o.maxTokens = maxTokens
        }
        try o.validate()
        return o
    }

    /// A checked task on one image, ready to generate (the image is no longer needed: its pixel values are in
    /// `input`).
    public struct Prepared: Sendable {
        public let task: String
        public let imageSize: (width: Int, height: Int)
        public let input: PreparedInput
    }

    /// Checks and prepares `task` on `image`. `text`: the task's text argument; `box`: a region [x0, y0, x1, y1]
    /// in image pixels for region tasks (quantized to location tokens). An unknown task, missing text, text for a
    /// task that takes none, a box for a task that takes none, both text and box, and a region outside the image
    /// are errors naming the problem.
    public func prepare(image: RGBImage, task: String, text: String? = nil, box: [Double]? = nil) throws -> Prepared {
        let size = (width: image.width, height: image.height)
        var argument = text
        if let box {
            guard regionTasks.contains(task) else {
                throw PipelineError.invalidArgument("the task \(task) takes no region; region tasks: \(regionTasks.sorted().joined(separator: ", "))")
            }
            guard (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw PipelineError.invalidArgument("give the region of \(task) as a box or as text, not both")
            }
            argument = try processor.regionArgument(box: box, imageSize: size)
        }
        let prompt = try processor.taskPrompt(task: task, text: argument)
        let input = try pipeline.prepare(messages: [ChatMessage(role: "user", text: prompt)], images: [image])
        return Prepared(task: task, imageSize: size, input: input)
    }

    public struct Result: @unchecked Sendable {
        public let task: String
        /// The generated ids decoded with special tokens kept (what post_process_generation reads).
        public let generatedText: String
        /// `{task: answer}` as transformers returns it (plain JSON values).
        public let parsed: [String: Any]
        public let generation: GenerationResult
        public let imageSize: (width: Int, height: Int)

        /// The parsed result as JSON (keys sorted): what `vlm task --format json` prints.
        public var json: String {
            let data = (try? JSONSerialization.data(withJSONObject: parsed, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Generates the answer of a prepared task and post-processes it. `shouldStop` is polled between tokens.
    public func run(_ prepared: Prepared, options: SamplingOptions? = nil, shouldStop: (() -> Bool)? = nil) throws -> Result {
        let options = options ?? SamplingOptions(defaults: pipeline.defaults)
        let result = try pipeline.generate(prepared.input, options: options, shouldStop: shouldStop)
        // transformers decodes the whole sequence: decoder start, answer, and the EOS that ended it.
        let start = pipeline.model.decoderStartTokenID.map { [$0] } ?? []
        let end = result.finishReason == "stop" ? Array(pipeline.model.eosTokenIDs.prefix(1)) : []
        let generated = pipeline.tokenizer.decode(start + result.tokens + end, skipSpecialTokens: false)
        let parsed = try processor.postProcess(text: generated, task: prepared.task, imageSize: prepared.imageSize)
        return Result(task: prepared.task, generatedText: generated, parsed: parsed, generation: result, imageSize: prepared.imageSize)
    }

    /// Runs `task` on `image` (`prepare` then `run`).
    public func run(image: RGBImage, task: String, text: String? = nil, box: [Double]? = nil,
                    options: SamplingOptions? = nil) throws -> Result {
        try run(prepare(image: image, task: task, text: text, box: box), options: options)
    }
}

extension GenerativePipeline {
    /// The vision task tokens the model runs (nil: it runs none).
    public var visionTasks: [String]? { (processor as? any VisionTaskProcessor)?.visionTasks }
}

// MARK: - Drawing

/// Boxes, quad boxes and polygons of a parsed result drawn onto the image with their labels (2-pixel outlines,
/// one colour per label; each label in white on its colour above the shape's top-left corner, or inside it at
/// the top edge of the image), for `--draw`.
public enum TaskDrawing {
    static let palette: [Canvas.Colour] = [.init(230, 25, 75), .init(60, 180, 75), .init(0, 130, 200), .init(245, 130, 48),
                                           .init(145, 30, 180), .init(70, 240, 240)]

    /// The shapes of a parsed answer: every box as a closed 4-corner polygon, quad boxes and polygons as given.
    public static func shapes(_ parsed: [String: Any]) -> [(points: [(Double, Double)], label: String)] {
        guard let answer = parsed.values.first as? [String: Any] else { return [] }
        var out: [(points: [(Double, Double)], label: String)] = []
        func numbers(_ v: Any) -> [Double] { (v as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.doubleValue } }
        let labels = (answer["labels"] as? [String]) ?? (answer["bboxes_labels"] as? [String]) ?? []
        for (i, b) in (answer["bboxes"] as? [Any] ?? []).enumerated() {
            let v = numbers(b)
            guard v.count == 4 else { continue }
            out.append(([(v[0], v[1]), (v[2], v[1]), (v[2], v[3]), (v[0], v[3])], i < labels.count ? labels[i] : ""))
        }
        for (i, q) in (answer["quad_boxes"] as? [Any] ?? []).enumerated() {
            let v = numbers(q)
            out.append((stride(from: 0, to: v.count - 1, by: 2).map { (v[$0], v[$0 + 1]) }, i < labels.count ? labels[i] : ""))
        }
        let polygonLabels = (answer["polygons_labels"] as? [String]) ?? labels
        for (i, instance) in (answer["polygons"] as? [Any] ?? []).enumerated() {
            for poly in instance as? [Any] ?? [] {
                let v = numbers(poly)
                out.append((stride(from: 0, to: v.count - 1, by: 2).map { (v[$0], v[$0 + 1]) }, i < polygonLabels.count ? polygonLabels[i] : ""))
            }
        }
        return out
    }

    /// Font scale for labels on an image of this size: 1 up to 959 pixels on the long side, then one more per 480.
    public static func labelScale(width: Int, height: Int) -> Int { max(1, min(6, max(width, height) / 480)) }

    /// Where a label of `size` goes for a shape whose points have this top-left corner: above the shape when it
    /// fits, else just inside its top; moved left to stay inside the image when it can.
    public static func labelOrigin(top: (x: Double, y: Double), size: (width: Int, height: Int), imageWidth: Int) -> (x: Int, y: Int) {
        let x = Int(top.x.rounded(.down)), y = Int(top.y.rounded(.down))
        let above = y - size.height
        return (max(0, min(x, imageWidth - size.width)), above >= 0 ? above : max(y, 0))
    }

    /// A copy of `image` with the result's shapes outlined and labelled.
    public static func draw(_ parsed: [String: Any], on image: RGBImage) -> RGBImage {
        var canvas = Canvas(image)
        var colours: [String: Int] = [:]
        let scale = labelScale(width: image.width, height: image.height)
        var labels: [(text: String, at: (x: Int, y: Int), colour: Canvas.Colour)] = []
        for shape in shapes(parsed) where shape.points.count >= 2 {
            // One colour per label, cycling through the palette (the modulo applies to known labels too: `??`
            // binds looser than `%`, which once let a repeated 7th label index past the palette).
            let index = colours[shape.label] ?? { let n = colours.count; colours[shape.label] = n; return n }()
            let colour = palette[index % palette.count]
            canvas.outline(shape.points.map { (x: $0.0, y: $0.1) }, colour: colour)
            let text = shape.label.trimmingCharacters(in: .whitespacesAndNewlines)
            let finite = shape.points.filter { $0.0.isFinite && $0.1.isFinite }
            guard !text.isEmpty, let minX = finite.map({ $0.0 }).min(), let minY = finite.map({ $0.1 }).min() else { continue }
            let size = Canvas.labelSize(text, scale: scale)
            let limit = Double(1 << 30)
            labels.append((text, labelOrigin(top: (min(max(minX, -limit), limit), min(max(minY, -limit), limit)), size: size,
                                             imageWidth: image.width), colour))
        }
        // Labels last, so no outline crosses one.
        for l in labels { canvas.label(l.text, x: l.at.x, y: l.at.y, scale: scale, background: l.colour) }
        return canvas.image
    }
}

// MARK: - Text output

/// The readable form of a parsed task result, and the CLI's box syntax.
public enum TaskTable {
    /// "x0,y0,x1,y1" -> four numbers; anything else is an error naming the expected form.
    public static func parseBox(_ text: String) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, values.count == 4, values.allSatisfy(\.isFinite) else {
            throw PipelineError.invalidArgument("--box must be four numbers x0,y0,x1,y1 (got '\(text)')")
        }
        return values
    }

    /// One line per label with its box (or quad box / polygon), or the text for pure-text tasks.
    public static func render(_ parsed: [String: Any]) -> String {
        guard let (_, answer) = parsed.first else { return "" }
        if let text = answer as? String { return text }
        let shapes = TaskDrawing.shapes(parsed)
        if shapes.isEmpty { return "(nothing found)" }
        return shapes.map { s in
            let points = s.points.map { "\(Int($0.0)),\(Int($0.1))" }.joined(separator: " ")
            return "\(s.label.isEmpty ? "(region)" : s.label)\t\(points)"
        }.joined(separator: "\n")
    }
}
