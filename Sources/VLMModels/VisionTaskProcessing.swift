import Foundation

/// A processor whose model runs vision tasks named by task tokens (Florence-2's `<OD>`, `<OCR>`, ...): the task
/// prompt with its text or region argument, and the answer post-processed into boxes, quad boxes, polygons and
/// labels in original-image pixels. Callers (the CLI's task commands, the server's `/v1/vision/tasks`) decide
/// what a model can do by this conformance, never by its model_type.
public protocol VisionTaskProcessor: GenerativeInputProcessor {
    /// Every task token the processor knows, in its documented order.
    var visionTasks: [String] { get }
    /// Tasks whose argument is a region of the image rather than free text.
    var regionTasks: Set<String> { get }
    /// The user text for `task` with its argument, checked: an unknown task, a task that needs text given none,
    /// or text for a task that takes none is an error naming the problem.
    func taskPrompt(task: String, text: String?) throws -> String
    /// The region argument for `box` [x0, y0, x1, y1] in pixels of an image of `imageSize`; a box outside the
    /// image (or inverted) is an error naming it.
    func regionArgument(box: [Double], imageSize: (width: Int, height: Int)) throws -> String
    /// The generated text (special tokens kept) as the reference processor's post-processing returns it:
    /// `{task: answer}`, plain JSON values only (strings, numbers, arrays, objects).
    func postProcess(text: String, task: String, imageSize: (width: Int, height: Int)) throws -> [String: Any]
}

extension Florence2InputProcessor: VisionTaskProcessor {
    public var visionTasks: [String] { Florence2Tasks.allTasks }
    public var regionTasks: Set<String> { Florence2Tasks.regionTasks }

    public func taskPrompt(task: String, text: String?) throws -> String { try Florence2Tasks.taskPrompt(task: task, text: text) }

    public func regionArgument(box: [Double], imageSize: (width: Int, height: Int)) throws -> String {
        try Florence2Tasks.regionTokens(box: box, imageSize: imageSize)
    }

    public func postProcess(text: String, task: String, imageSize: (width: Int, height: Int)) throws -> [String: Any] {
        try postProcessor.process(text: text, task: task, imageSize: imageSize)
    }
}
