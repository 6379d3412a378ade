import Foundation

// The component schemas of /openapi.json: one per request and response body type in APITypes.swift,
// ChatTypes.swift and IndexAPITypes.swift, written to match what those types decode and encode (optional
// Swift fields are omitted from responses when nil, so they are not `required`). Keep them in step with the
// types: OpenAPITests checks real responses against these schemas.

/// A JSON object under construction (JSONSerialization's currency).
typealias JSONObject = [String: Any]

/// Small constructors for JSON Schema fragments.
enum Schema {
    static func ref(_ name: String) -> JSONObject { ["$ref": "#/components/schemas/\(name)"] }
    static func string(_ description: String? = nil) -> JSONObject { described(["type": "string"], description) }
    static func integer(_ description: String? = nil, minimum: Int? = nil, maximum: Int? = nil, int64: Bool = false) -> JSONObject {
        var s: JSONObject = ["type": "integer"]
        if let minimum { s["minimum"] = minimum }
        if let maximum { s["maximum"] = maximum }
        if int64 { s["format"] = "int64" }
        return described(s, description)
    }
    static func number(_ description: String? = nil) -> JSONObject { described(["type": "number"], description) }
    static func boolean(_ description: String? = nil) -> JSONObject { described(["type": "boolean"], description) }
    static func constant(_ value: String) -> JSONObject { ["type": "string", "enum": [value]] }
    static func oneOfStrings(_ values: [String], _ description: String? = nil) -> JSONObject {
        described(["type": "string", "enum": values], description)
    }
    static func array(_ items: JSONObject, _ description: String? = nil, maxItems: Int? = nil) -> JSONObject {
        var s: JSONObject = ["type": "array", "items": items]
        if let maxItems { s["maxItems"] = maxItems }
        return described(s, description)
    }
    static func anyOf(_ choices: [JSONObject], _ description: String? = nil) -> JSONObject {
        described(["anyOf": choices], description)
    }
    static func object(_ properties: [String: JSONObject], required: [String] = [], _ description: String? = nil) -> JSONObject {
        var s: JSONObject = ["type": "object", "properties": properties]
        if !required.isEmpty { s["required"] = required }
        return described(s, description)
    }

    private static func described(_ schema: JSONObject, _ description: String?) -> JSONObject {
        guard let description else { return schema }
        var s = schema
        s["description"] = description
        return s
    }
}

enum OpenAPISchemas {
    /// `model` of a request: one of `ids` (omitted: the first).
    static func model(_ ids: [String], _ what: String) -> JSONObject {
        ids.isEmpty ? Schema.string(what) : Schema.oneOfStrings(ids, what + " Omitted: \(ids[0]).")
    }

    /// Every component schema of a server of this shape.
    static func all(_ shape: OpenAPIDocument.Shape) -> [String: JSONObject] {
        var s: [String: JSONObject] = [:]
        s["Error"] = Schema.object([
            "error": Schema.object([
                "message": Schema.string("What went wrong, in words."),
                "type": Schema.oneOfStrings(["invalid_request_error", "authentication_error", "server_overloaded", "not_implemented", "server_error"]),
                "code": Schema.string("Stable machine-readable code, e.g. malformed_json, invalid_request, invalid_base64, invalid_image, model_not_found, not_found, index_entry_not_found, payload_too_large, request_timeout, image_too_large, invalid_api_key, queue_full, shutting_down, not_implemented."),
                "param": Schema.string(),
            ], required: ["message", "type", "code"]),
        ], required: ["error"], "Every error response: OpenAI's error shape.")
        s["Usage"] = Schema.object(["prompt_tokens": Schema.integer(minimum: 0), "total_tokens": Schema.integer(minimum: 0)],
                                   required: ["prompt_tokens", "total_tokens"], "Text tokens including BOS/EOS; images count 0.")
        let imageURL = Schema.anyOf([Schema.string(), Schema.object(["url": Schema.string()], required: ["url"])],
                                    "OpenAI's image_url: a data URL string or {\"url\": ...}. Remote http(s) URLs are refused.")
        s["ImageURL"] = imageURL
        s["InputPart"] = Schema.anyOf([
            Schema.string("A text, or an image when it is a data:image/...;base64 URL."),
            Schema.object(["type": Schema.oneOfStrings(["text", "image_url", "image"]), "text": Schema.string(),
                           "image": Schema.string("Base64 or data URL of a JPEG/PNG image."), "image_url": Schema.ref("ImageURL")],
                          "A part naming its kind; without 'type', one of 'text', 'image', 'image_url'."),
        ])
        s["EmbeddingsRequest"] = Schema.object([
            "model": model(shape.embeddingIDs, "A served embedding model."),
            "input": Schema.anyOf([Schema.string(), ["type": "array", "items": Schema.ref("InputPart"), "minItems": 1], Schema.ref("InputPart")],
                                  "One text, a list of texts and parts, or one part. Token-id arrays are refused."),
            "encoding_format": Schema.oneOfStrings(["float", "base64"]),
            "dimensions": Schema.integer("Accepted only when equal to the model's width."),
        ], required: ["input"])
        s["EmbeddingsResponse"] = Schema.object([
            "object": Schema.constant("list"),
            "data": Schema.array(Schema.object([
                "object": Schema.constant("embedding"), "index": Schema.integer(minimum: 0),
                "embedding": Schema.anyOf([Schema.array(Schema.number()), Schema.string("base64 of little-endian float32")]),
            ], required: ["object", "index", "embedding"])),
            "model": Schema.string(), "usage": Schema.ref("Usage"),
        ], required: ["object", "data", "model", "usage"])
        s["ClassifyRequest"] = Schema.object([
            "model": model(shape.embeddingIDs, "A served embedding model."),
            "image": Schema.string("Base64 or data URL of a JPEG/PNG image (or send image_url)."),
            "image_url": Schema.ref("ImageURL"),
            "labels": ["type": "array", "items": ["type": "string", "pattern": "\\S"], "minItems": 1, "maxItems": shape.maxLabels,
                       "description": "At least one non-blank label."],
            "template": ["type": "string", "pattern": "\\{\\}", "description": "Prompt template with {} for the label, e.g. 'a photo of a {}.'"],
            "top_k": Schema.integer(minimum: 1),
        ], required: ["labels"], "Zero-shot classification of one image: 'image' or 'image_url' is required.")
        s["ClassifyResponse"] = Schema.object([
            "object": Schema.constant("classification"), "model": Schema.string(),
            "scoring": Schema.oneOfStrings(["softmax", "sigmoid"]),
            "data": Schema.array(Schema.object(["label": Schema.string(), "probability": Schema.number(), "logit": Schema.number()],
                                               required: ["label", "probability", "logit"]), "Best first."),
            "usage": Schema.ref("Usage"),
        ], required: ["object", "model", "scoring", "data", "usage"])
        s["EmbeddingModel"] = Schema.object([
            "id": Schema.string(), "object": Schema.constant("model"), "created": Schema.integer(), "owned_by": Schema.string(),
            "type": Schema.string("model_type: clip, siglip, siglip2"), "kind": Schema.constant("embedding"),
            "scoring": Schema.oneOfStrings(["softmax", "sigmoid"]), "embedding_dimensions": Schema.integer(),
            "max_input_tokens": Schema.integer(), "image_size": Schema.integer("0 when the input size depends on the image (NaFlex)"),
            "precision": Schema.string("Weight precision the model runs: fp32, bf16, int8 or int4 (weight-only)"),
        ], required: ["id", "object", "created", "owned_by", "type", "kind", "scoring", "embedding_dimensions", "max_input_tokens", "image_size", "precision"])
        s["ChatModel"] = Schema.object([
            "id": Schema.string(), "object": Schema.constant("model"), "created": Schema.integer(), "owned_by": Schema.string(),
            "type": Schema.string("model_type: llava, llama, mistral, qwen2, ..."), "kind": Schema.constant("chat"),
            "context_length": Schema.integer(), "accepts_images": Schema.boolean(), "image_tokens_per_image": Schema.integer(),
            "precision": Schema.string("Weight precision of the language model as loaded: fp32, bf16, fp16, int8, int4, or mixed"),
        ], required: ["id", "object", "created", "owned_by", "type", "kind", "context_length", "accepts_images", "precision"])
        s["Model"] = ["oneOf": [Schema.ref("EmbeddingModel"), Schema.ref("ChatModel")]]
        s["ModelList"] = Schema.object(["object": Schema.constant("list"), "data": Schema.array(Schema.ref("Model"))],
                                       required: ["object", "data"])
        s["Health"] = Schema.object([
            "status": Schema.constant("ok"), "model": Schema.string("The first model"), "kind": Schema.oneOfStrings(["embedding", "chat"]),
            "dimensions": Schema.integer("The first embedding model's width; absent on a chat-only server."),
            "models": Schema.array(Schema.object(["id": Schema.string(), "kind": Schema.oneOfStrings(["embedding", "chat"]),
                                                  "tasks": Schema.array(Schema.string(), "The vision task tokens the model runs (POST /v1/vision/tasks); absent for models that run none.")],
                                                 required: ["id", "kind"])),
            "index": Schema.object(["path": Schema.string(), "size": Schema.integer(minimum: 0), "model": Schema.string(),
                                    "strategy": Schema.oneOfStrings(["exact", "hnsw"])],
                                   required: ["path", "size", "model", "strategy"], "Absent without --index."),
            "queue": ["type": "object", "additionalProperties": Schema.integer(minimum: 0)],
            "generating": Schema.boolean("Whether a chat model is generating; absent without chat models."),
        ], required: ["status", "model", "kind", "models", "queue"])
        s.merge(indexSchemas(shape)) { a, _ in a }
        s.merge(OpenAPIChatSchemas.all(shape)) { a, _ in a }
        s.merge(OpenAPIVisionTasks.schemas(shape)) { a, _ in a }
        return s
    }

    static func indexSchemas(_ shape: OpenAPIDocument.Shape) -> [String: JSONObject] {
        let indexModel = model(Array(shape.embeddingIDs.prefix(1)), "The index's embedding model (the first one).")
        var s: [String: JSONObject] = [:]
        s["IndexHit"] = Schema.object([
            "id": Schema.integer("Stable while the entry exists.", minimum: 1, int64: true),
            "score": Schema.number("Cosine similarity with the query (search only)."),
            "path": Schema.string("Relative to the root holding the file (uploads: the stored file name)."),
            "name": Schema.string("The name given at upload, if any."),
            "url": Schema.string("/v1/index/{id}/image when the image can be served."),
            "thumbnail": Schema.string("/v1/index/{id}/thumbnail (a JPEG, longest edge --thumbnail-size) when the image can be served."),
            "status": Schema.oneOfStrings(["added", "updated", "unchanged"], "POST /v1/index only."),
        ], required: ["id", "path"])
        let nonBlank: JSONObject = ["type": "string", "pattern": "\\S"]
        s["SearchRequest"] = Schema.object([
            "model": indexModel,
            "query": Schema.anyOf([nonBlank, Schema.object(["text": nonBlank, "image": Schema.string(), "image_url": Schema.ref("ImageURL")])],
                                  "A text, or {text?, image?}; a non-empty text or an image is required."),
            "top_k": Schema.integer(minimum: 1, maximum: shape.maxTopK), "min_score": Schema.number(),
            "plus": Schema.array(Schema.string(), "Texts added to the query (+1)."),
            "minus": Schema.array(Schema.string(), "Texts subtracted from the query (-1)."),
        ], required: ["query"])
        s["SearchResponse"] = Schema.object([
            "object": Schema.constant("list"), "model": Schema.string(), "data": Schema.array(Schema.ref("IndexHit")),
            "index_size": Schema.integer(minimum: 0), "strategy": Schema.oneOfStrings(["exact", "hnsw"]),
        ], required: ["object", "model", "data", "index_size", "strategy"])
        s["IndexAddRequest"] = Schema.object([
            "model": indexModel,
            "images": Schema.array(Schema.anyOf([Schema.string("Base64 or data URL"),
                                                 Schema.object(["image": Schema.string(), "name": Schema.string()], required: ["image"])])),
            "paths": Schema.array(Schema.string("A file or directory inside a --root (absolute or relative to one)")),
        ], "All or nothing: any bad item fails the request and nothing is written.")
        s["IndexAddResponse"] = Schema.object([
            "object": Schema.constant("list"), "data": Schema.array(Schema.ref("IndexHit"), "Images first, then the files of each path."),
            "index_size": Schema.integer(minimum: 0),
        ], required: ["object", "data", "index_size"])
        s["IndexDeleteResponse"] = Schema.object([
            "id": Schema.integer(minimum: 1, int64: true), "object": Schema.constant("index.entry"),
            "deleted": ["type": "boolean", "enum": [true]], "index_size": Schema.integer(minimum: 0),
        ], required: ["id", "object", "deleted", "index_size"])
        return s
    }
}

enum OpenAPIChatSchemas {
    static func all(_ shape: OpenAPIDocument.Shape) -> [String: JSONObject] {
        var s: [String: JSONObject] = [:]
        s["ChatMessage"] = Schema.object([
            "role": Schema.oneOfStrings(["system", "user", "assistant"], "The chat template decides which orders it accepts."),
            "content": ["anyOf": [Schema.string(), Schema.array(Schema.ref("InputPart"))], "nullable": true,
                        "description": "A text or a list of parts; null only for an assistant turn."],
        ], required: ["role"])
        s["ChatCompletionRequest"] = Schema.object([
            "model": OpenAPISchemas.model(shape.chatIDs, "A served chat model."),
            "messages": ["type": "array", "items": Schema.ref("ChatMessage"), "minItems": 1],
            "max_tokens": Schema.integer(minimum: 1), "max_completion_tokens": Schema.integer(minimum: 1),
            "temperature": ["type": "number", "minimum": 0, "description": "0: greedy; omitted: the checkpoint's generation_config.json decides."],
            "top_p": ["type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1],
            "top_k": Schema.integer("-1 or 0: off", minimum: -1), "min_p": ["type": "number", "minimum": 0, "maximum": 1],
            "repetition_penalty": ["type": "number", "minimum": 0, "exclusiveMinimum": true, "description": "transformers' multiplicative penalty"],
            "frequency_penalty": ["type": "number", "enum": [0], "description": "only 0 is accepted"],
            "presence_penalty": ["type": "number", "enum": [0], "description": "only 0 is accepted"],
            "seed": Schema.integer(int64: true),
            "stop": ["anyOf": [Schema.string(), Schema.array(Schema.string(), maxItems: ChatCompletionRequest.maxStops)], "nullable": true],
            "n": ["type": "integer", "enum": [1], "description": "only 1 is accepted"], "stream": Schema.boolean("true: server-sent events"),
            "stream_options": Schema.object(["include_usage": Schema.boolean()]),
            "logprobs": ["type": "boolean", "enum": [false], "description": "only false is accepted"],
        ], required: ["messages"])
        s["ChatUsage"] = Schema.object([
            "prompt_tokens": Schema.integer(minimum: 0), "completion_tokens": Schema.integer(minimum: 0),
            "total_tokens": Schema.integer(minimum: 0),
            "prompt_tokens_details": Schema.object(["cached_tokens": Schema.integer(minimum: 0)], required: ["cached_tokens"]),
        ], required: ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"])
        s["ChatCompletion"] = Schema.object([
            "id": Schema.string(), "object": Schema.constant("chat.completion"), "created": Schema.integer(), "model": Schema.string(),
            "choices": Schema.array(Schema.object([
                "index": Schema.integer(minimum: 0),
                "message": Schema.object(["role": Schema.constant("assistant"), "content": Schema.string()], required: ["role", "content"]),
                "finish_reason": Schema.oneOfStrings(["stop", "length", "cancelled"]),
            ], required: ["index", "message", "finish_reason"])),
            "usage": Schema.ref("ChatUsage"),
        ], required: ["id", "object", "created", "model", "choices", "usage"])
        s["ServerSentEvent"] = Schema.object([
            "data": Schema.string("A ChatCompletionChunk as JSON; an Error as JSON if generation fails after the stream began; `[DONE]` last."),
            "event": Schema.string(), "id": Schema.string(), "retry": Schema.integer(),
        ], required: ["data"], "One event of a streamed answer (OpenAPI 3.0 describes each event of a text/event-stream).")
        s["ChatCompletionChunk"] = Schema.object([
            "id": Schema.string(), "object": Schema.constant("chat.completion.chunk"), "created": Schema.integer(), "model": Schema.string(),
            "choices": Schema.array(Schema.object([
                "index": Schema.integer(minimum: 0),
                "delta": Schema.object(["role": Schema.constant("assistant"), "content": Schema.string()]),
                "finish_reason": ["type": "string", "enum": ["stop", "length", "cancelled"], "nullable": true],
            ], required: ["index", "delta", "finish_reason"])),
            "usage": ["allOf": [Schema.ref("ChatUsage")], "nullable": true],
        ], required: ["id", "object", "created", "model", "choices"],
            "One `data:` event of a streamed answer (the stream ends with `data: [DONE]`).")
        return s
    }
}
