import Foundation

/// The body of `POST /v1/vision/tasks`.
struct VisionTaskRequest: Decodable, Sendable {
    /// A served model that runs vision tasks (omitted: the first one).
    var model: String?
    /// The image as a data URL (`data:image/png;base64,...`) or bare base64; remote URLs are refused.
    var image: String?
    /// The task token, e.g. `<OD>`, `<OCR_WITH_REGION>`, `<CAPTION_TO_PHRASE_GROUNDING>`.
    var task: String
    /// The task's text (phrase grounding, referring expressions, open-vocabulary detection).
    var text: String?
    /// Region tasks: [x0, y0, x1, y1] in image pixels (instead of `<loc_..>` tokens in `text`).
    var box: [Double]?
    /// Beams (omitted: the checkpoint's generation_config.json).
    var numBeams: Int?
    /// Maximum new tokens (omitted: the checkpoint's, else 256).
    var maxTokens: Int?

    enum CodingKeys: String, CodingKey {
        case model, image, task, text, box
        case numBeams = "num_beams"
        case maxTokens = "max_tokens"
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        image = try c.decodeIfPresent(String.self, forKey: .image)
        task = try c.decode(String.self, forKey: .task)
        text = try c.decodeIfPresent(String.self, forKey: .text)
        box = try c.decodeIfPresent([Double].self, forKey: .box)
        numBeams = try c.decodeIfPresent(Int.self, forKey: .numBeams)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens)
        if let box, box.count != 4 {
            throw DecodingError.dataCorrupted(.init(codingPath: [CodingKeys.box],
                                                    debugDescription: "expected four numbers [x0, y0, x1, y1], got \(box.count)"))
        }
    }
}

/// The OpenAPI side of `/v1/vision/tasks`: its operation and component schemas (OpenAPIDocument and
/// OpenAPISchemas include them when the server has a model that runs vision tasks).
enum OpenAPIVisionTasks {
    static func operation(_ shape: OpenAPIDocument.Shape) -> APIOperation {
        APIOperation(method: "post", path: "/v1/vision/tasks", summary: "A vision task on one image: detection, grounding, OCR, region captions",
                     description: "Florence-2 task tokens. `result` is exactly what `vlm task --format json` prints: transformers' `post_process_generation` result, boxes / quad boxes / polygons in original-image pixels.",
                     requestBody: "VisionTaskRequest",
                     responses: OpenAPIDocument.bodyErrors(images: true).merging(["200": OpenAPIDocument.ok("The task's result.", schema: "VisionTaskResponse")]) { a, _ in a })
    }

    static let example: JSONObject = ["image": OpenAPIExamples.png, "task": "<OD>", "max_tokens": 4]

    static func schemas(_ shape: OpenAPIDocument.Shape) -> [String: JSONObject] {
        guard shape.vision else { return [:] }
        var s: [String: JSONObject] = [:]
        let tasks = shape.visionTasks.isEmpty ? Schema.string("A task token.") : Schema.oneOfStrings(shape.visionTasks, "A task token.")
        s["VisionTaskRequest"] = Schema.object([
            "model": OpenAPISchemas.model(shape.visionIDs, "A served model that runs vision tasks."),
            "image": Schema.string("The image as a data:image/...;base64 URL or bare base64 (JPEG, PNG, ...); remote URLs are refused."),
            "task": tasks,
            "text": Schema.string("The task's text: phrase grounding, referring expressions, open-vocabulary detection. Region tasks take `box` (or `<loc_..>` tokens here)."),
            "box": ["type": "array", "items": Schema.number(), "minItems": 4, "maxItems": 4,
                    "description": "Region tasks: [x0, y0, x1, y1] in image pixels, inside the image."],
            "num_beams": Schema.integer("Omitted: the checkpoint's generation_config.json.", minimum: 1, maximum: 64),
            "max_tokens": Schema.integer("Omitted: the checkpoint's, else 256.", minimum: 1),
        ], required: ["image", "task"])
        s["VisionTaskResponse"] = Schema.object([
            "object": Schema.constant("vision.task"), "model": Schema.string(), "task": Schema.string(),
            "result": ["type": "object", "description": "`{task: answer}`: a string for text tasks, else an object with `bboxes` ([x0, y0, x1, y1]), `quad_boxes` ([x1, y1, ..., x4, y4]) or `polygons` (per instance, lists of [x, y, x, y, ...]) and their `labels` (`bboxes_labels` / `polygons_labels` for open-vocabulary detection)."],
            "text": Schema.string("The generated text, special tokens kept (what post-processing read)."),
            "image_size": Schema.object(["width": Schema.integer(minimum: 1), "height": Schema.integer(minimum: 1)], required: ["width", "height"]),
            "finish_reason": Schema.oneOfStrings(["stop", "length", "cancelled"]),
            "usage": Schema.object(["prompt_tokens": Schema.integer(minimum: 0), "completion_tokens": Schema.integer(minimum: 0),
                                    "total_tokens": Schema.integer(minimum: 0)], required: ["prompt_tokens", "completion_tokens", "total_tokens"]),
        ], required: ["object", "model", "task", "result", "text", "image_size", "finish_reason", "usage"])
        return s
    }
}
