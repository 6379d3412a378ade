import Foundation
import VLMImage
import VLMModels
import VLMTokenizers

/// Florence-2's tasks over a loaded pipeline: the task prompt (with its text or region argument), generation with
/// the checkpoint's generation_config.json (beam search where it asks for it), and
/// Florence2Processor.post_process_generation's result in original-image pixels.
public struct VisionTaskRunner {
    public let pipeline: GenerativePipeline
    let processor: Florence2InputProcessor

    /// Refuses a pipeline whose model does not run Florence-2 tasks, naming it.
    public init(pipeline: GenerativePipeline) throws {
        guard let processor = pipeline.processor as? Florence2InputProcessor else {
            throw PipelineError.invalidArgument("the model \(pipeline.modelType) does not run vision tasks (Florence-2 checkpoints do)")
        }
        self.pipeline = pipeline
        self.processor = processor
    }

    public struct Result: @unchecked Sendable {
        public let task: String
        /// The generated ids decoded with special tokens kept (what post_process_generation reads).
        public let generatedText: String
        /// `{task: answer}` as transformers returns it.
        public let parsed: [String: Any]
        public let generation: GenerationResult

        /// The parsed result as JSON (keys sorted).
        public var json: String {
            let data = (try? JSONSerialization.data(withJSONObject: parsed, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Runs `task` on `image`. `text`: the task's text argument; `box`: a region [x0, y0, x1, y1] in image pixels
    /// for region tasks (quantized to location tokens). Bad tasks, missing text and regions outside the image
    /// are errors naming the problem.
    public func run(image: RGBImage, task: String, text: String? = nil, box: [Double]? = nil,
                    options: SamplingOptions? = nil) throws -> Result {
        var argument = text
        if let box {
            guard Florence2Tasks.regionTasks.contains(task) else {
                throw PipelineError.invalidArgument("the task \(task) takes no region; region tasks: \(Florence2Tasks.regionTasks.sorted().joined(separator: ", "))")
            }
            argument = try Florence2Tasks.regionTokens(box: box, imageSize: (image.width, image.height))
        }
        let prompt = try Florence2Tasks.taskPrompt(task: task, text: argument)
        let options = options ?? SamplingOptions(defaults: pipeline.defaults)
        let result = try pipeline.generate(messages: [ChatMessage(role: "user", text: prompt)], images: [image], options: options)
        // transformers decodes the whole sequence: decoder start, answer, and the EOS that ended it.
        let start = pipeline.model.decoderStartTokenID.map { [$0] } ?? []
        let end = result.finishReason == "stop" ? Array(pipeline.model.eosTokenIDs.prefix(1)) : []
        let generated = pipeline.tokenizer.decode(start + result.tokens + end, skipSpecialTokens: false)
        let parsed = try processor.postProcessor.process(text: generated, task: task, imageSize: (image.width, image.height))
        return Result(task: task, generatedText: generated, parsed: parsed, generation: result)
    }
}

// MARK: - Drawing

/// Boxes, quad boxes and polygons of a parsed result drawn onto the image (2-pixel outlines, one colour per
/// label), for `--draw`.
public enum TaskDrawing {
    static let palette: [(UInt8, UInt8, UInt8)] = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]

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

    /// A copy of `image` with the result's shapes outlined.
    public static func draw(_ parsed: [String: Any], on image: RGBImage) -> RGBImage {
        var pixels = image.pixels
        let (w, h) = (image.width, image.height)
        var colours: [String: Int] = [:]
        func plot(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            for dy in 0 ... 1 { for dx in 0 ... 1 {
                let (px, py) = (x + dx, y + dy)
                guard px >= 0, py >= 0, px < w, py < h else { continue }
                let i = (py * w + px) * 3
                pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
            } }
        }
        for shape in shapes(parsed) where shape.points.count >= 2 {
            let colour = palette[colours[shape.label] ?? { let n = colours.count; colours[shape.label] = n; return n }() % palette.count]
            for k in 0 ..< shape.points.count {
                let (a, b) = (shape.points[k], shape.points[(k + 1) % shape.points.count])
                let steps = max(1, Int(max(abs(b.0 - a.0), abs(b.1 - a.1))))
                for s in 0 ... steps {
                    let t = Double(s) / Double(steps)
                    plot(Int((a.0 + (b.0 - a.0) * t).rounded()), Int((a.1 + (b.1 - a.1) * t).rounded()), colour)
                }
            }
        }
        return (try? RGBImage(width: w, height: h, pixels: pixels)) ?? image
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
