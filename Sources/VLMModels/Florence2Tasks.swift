import Foundation

// Florence2Processor's task side (transformers 5.25): the task-token prompts with their text or region
// argument, the 1000 location bins, and post_process_generation's parsers (boxes, quad boxes, polygons and
// phrase grounding in original-image pixels).

// MARK: - Tasks and prompts

public enum Florence2Tasks {
    /// Task tokens that are the whole prompt (Florence2Processor.task_prompts_without_inputs).
    public static let promptsWithoutInput: [(task: String, prompt: String)] = [
        ("<OCR>", "What is the text in the image?"),
        ("<OCR_WITH_REGION>", "What is the text in the image, with regions?"),
        ("<CAPTION>", "What does the image describe?"),
        ("<DETAILED_CAPTION>", "Describe in detail what is shown in the image."),
        ("<MORE_DETAILED_CAPTION>", "Describe with a paragraph what is shown in the image."),
        ("<OD>", "Locate the objects with category name in the image."),
        ("<DENSE_REGION_CAPTION>", "Locate the objects in the image, with their descriptions."),
        ("<REGION_PROPOSAL>", "Locate the region proposals in the image."),
    ]
    /// Task tokens followed by text or a region (task_prompts_with_input); {input} is the argument.
    public static let promptsWithInput: [(task: String, prompt: String)] = [
        ("<CAPTION_TO_PHRASE_GROUNDING>", "Locate the phrases in the caption: {input}"),
        ("<REFERRING_EXPRESSION_SEGMENTATION>", "Locate {input} in the image with mask"),
        ("<REGION_TO_SEGMENTATION>", "What is the polygon mask of region {input}"),
        ("<OPEN_VOCABULARY_DETECTION>", "Locate {input} in the image."),
        ("<REGION_TO_CATEGORY>", "What is the region {input}?"),
        ("<REGION_TO_DESCRIPTION>", "What does the region {input} describe?"),
        ("<REGION_TO_OCR>", "What text is in the region {input}?"),
    ]
    /// Tasks whose argument is a region (<loc_x0><loc_y0><loc_x1><loc_y1>) rather than free text.
    public static let regionTasks: Set<String> = ["<REGION_TO_SEGMENTATION>", "<REGION_TO_CATEGORY>", "<REGION_TO_DESCRIPTION>", "<REGION_TO_OCR>"]

    /// tasks_answer_post_processing_type.
    public static let postProcessingType: [String: String] = [
        "<OCR>": "pure_text", "<OCR_WITH_REGION>": "ocr", "<CAPTION>": "pure_text", "<DETAILED_CAPTION>": "pure_text",
        "<MORE_DETAILED_CAPTION>": "pure_text", "<OD>": "description_with_bboxes", "<DENSE_REGION_CAPTION>": "description_with_bboxes",
        "<CAPTION_TO_PHRASE_GROUNDING>": "phrase_grounding", "<REFERRING_EXPRESSION_SEGMENTATION>": "polygons",
        "<REGION_TO_SEGMENTATION>": "polygons", "<OPEN_VOCABULARY_DETECTION>": "description_with_bboxes_or_polygons",
        "<REGION_TO_CATEGORY>": "pure_text", "<REGION_TO_DESCRIPTION>": "pure_text", "<REGION_TO_OCR>": "pure_text",
        "<REGION_PROPOSAL>": "bboxes",
    ]

    public static var allTasks: [String] { promptsWithoutInput.map(\.task) + promptsWithInput.map(\.task) }

    /// Florence2Processor._construct_prompts for one prompt: a task token alone becomes its prompt, a task token
    /// with an argument is substituted, anything else is left as it is.
    public static func constructPrompt(_ text: String) throws -> String {
        for (task, prompt) in promptsWithoutInput where text.contains(task) {
            guard text == task else { throw ModelError.invalidInput("task token \(task) should be the only content in the prompt") }
            return prompt
        }
        for (task, prompt) in promptsWithInput where text.contains(task) {
            let input = text.replacingOccurrences(of: task, with: "").trimmingCharacters(in: .whitespacesAndNewlines)
            return prompt.replacingOccurrences(of: "{input}", with: input)
        }
        return text
    }

    /// The prompt text for `task` with its argument, checked: an unknown task token, a task that needs text
    /// given none, or text for a task that takes none is an error naming the tasks.
    public static func taskPrompt(task: String, text: String?) throws -> String {
        let argument = text?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if promptsWithoutInput.contains(where: { $0.task == task }) {
            guard argument.isEmpty else { throw ModelError.invalidInput("the task \(task) takes no text (got '\(argument)')") }
            return task
        }
        guard promptsWithInput.contains(where: { $0.task == task }) else {
            throw ModelError.invalidInput("unknown Florence-2 task '\(task)'; tasks: \(allTasks.joined(separator: ", "))")
        }
        guard !argument.isEmpty else {
            throw ModelError.invalidInput(regionTasks.contains(task) ? "the task \(task) needs a region (<loc_x0><loc_y0><loc_x1><loc_y1> or a box)"
                                                                     : "the task \(task) needs text")
        }
        return task + argument
    }

    // MARK: - Location bins

    public static let bins = 1000

    /// Florence2PostProcessor.quantize of a box [x0, y0, x1, y1] in pixels of an image of (width, height): the
    /// location tokens of a region argument. A box outside the image or inverted is an error.
    public static func regionTokens(box: [Double], imageSize: (width: Int, height: Int)) throws -> String {
        guard box.count == 4, box.allSatisfy(\.isFinite) else { throw ModelError.invalidInput("a region is four numbers x0,y0,x1,y1") }
        let (w, h) = (Double(imageSize.width), Double(imageSize.height))
        guard box[0] >= 0, box[1] >= 0, box[2] <= w, box[3] <= h, box[0] < box[2], box[1] < box[3] else {
            throw ModelError.invalidInput("the region \(box.map { String(format: "%g", $0) }.joined(separator: ",")) is not inside the "
                + "\(imageSize.width)x\(imageSize.height) image (need 0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)")
        }
        let perW = w / Double(bins), perH = h / Double(bins)
        let q = [box[0] / perW, box[1] / perH, box[2] / perW, box[3] / perH].map { min(max(Int($0.rounded(.down)), 0), bins - 1) }
        return q.map { "<loc_\($0)>" }.joined()
    }

    /// dequantize of bins (x, y pairs): (bin + 0.5) * size / 1000, truncated to an integer as torch's .int().
    static func dequantize(_ bins: [Int], imageSize: (width: Int, height: Int)) -> [Int] {
        let perW = Float(Double(imageSize.width) / Double(self.bins)), perH = Float(Double(imageSize.height) / Double(self.bins))
        return bins.enumerated().map { i, b in
            let v = (Float(b) + 0.5) * (i % 2 == 0 ? perW : perH)  // float32 tensors, as torch computes them
            return Int(v.rounded(.towardZero))
        }
    }
}
