import Foundation

/// A Hugging Face chat template, parsed once and rendered like transformers'
/// `apply_chat_template(..., tokenize=False)` (jinja2 with trim_blocks and lstrip_blocks, an
/// immutable sandbox, `raise_exception`, `strftime_now`, a json.dumps `tojson`, loop controls
/// and the `{% generation %}` tag).
///
/// Supported: the statements `if/elif/else`, `for` (with `else`, loop filters, `loop.*`,
/// `break`/`continue`), `set` (names, tuples, namespace attributes, block form with filters),
/// `macro`/`call`, `filter`, `with`, `raw`, `generation`; jinja2's operators, literals, tests and
/// the filters chat templates use; str/dict/list methods; the globals `range`, `namespace`,
/// `dict`, `joiner`, `raise_exception`, `strftime_now`.
/// Not supported (no chat template needs them): `include`/`import`/`extends`/`block`, recursive
/// loops, `{% do %}`, autoescaping. Unknown filters and tests fail when reached, as jinja2 3
/// does for those inside conditionals.
public struct ChatTemplate: Sendable {
    private let nodes: [JinjaNode]
    public let source: String
    /// Bounds that turn runaway templates into errors.
    public var limits = ChatTemplateLimits()
    /// The clock behind `strftime_now` (fixed in tests; local time like Python's datetime.now()).
    public var now: @Sendable () -> Date = { Date() }

    /// Parses `source`; a syntax error names the line and column.
    public init(_ source: String) throws {
        self.source = source
        nodes = try JinjaParser.parse(source)
    }

    /// Renders with `context` as the template's variables.
    public func render(_ context: [String: JinjaValue]) throws -> String {
        let interpreter = JinjaInterpreter(limits: limits, now: now)
        return try interpreter.render(nodes, context: context)
    }

    /// The variables transformers passes: `messages`, `tools` and `documents` (None unless given
    /// in `extra`), `add_generation_prompt`, the special tokens that exist, then `extra`.
    ///
    /// `continueFinalMessage` is transformers' `continue_final_message=True`: the output ends
    /// inside the last message's text (for prefilling a reply) instead of closing that turn.
    public func apply(
        messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
        extra: [String: JinjaValue] = [:], continueFinalMessage: Bool = false
    ) throws -> String {
        var chat = ChatTemplate.aliasReasoningFields(.array(messages.map(\.jinjaValue)))
        var finalText = ""
        if continueFinalMessage {
            if addGenerationPrompt {
                throw ChatTemplateError.runtime("continue_final_message and add_generation_prompt are not compatible.")
            }
            (chat, finalText) = try Self.tagFinalMessage(chat, source: source)
        }
        var context: [String: JinjaValue] = [
            "messages": chat,
            "tools": .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extra { context[k] = v }
        let rendered = try render(context)
        return continueFinalMessage ? try Self.cutAtTag(rendered, finalText: finalText) : rendered
    }

    /// transformers marks the text to continue with this tag, renders, then cuts the output there.
    static let continueTag = "CONTINUE_FINAL_MESSAGE_TAG "

    /// Appends the tag to the last message's content (a string, or the last part with "text").
    private static func tagFinalMessage(_ chat: JinjaValue, source: String) throws -> (JinjaValue, String) {
        guard case .array(var items) = chat, case .object(var last)? = items.last else {
            throw ChatTemplateError.runtime("continue_final_message is set but the conversation is empty!")
        }
        guard let content = last["content"], !content.isNone else {
            throw ChatTemplateError.runtime("continue_final_message is set but the final message has no \"content\" to continue!")
        }
        guard source.contains("content") else {
            throw ChatTemplateError.runtime("continue_final_message is set to \"content\" but this is not an accepted field in the chat_template")
        }
        var finalText = ""
        switch content {
        case .string(let s):
            finalText = s
            last["content"] = .string(s + continueTag)
        case .array(var parts):
            guard let i = parts.lastIndex(where: { if case .object(let p) = $0 { return p["text"] != nil } else { return false } }),
                case .object(var part) = parts[i], let text = part["text"]
            else {
                throw ChatTemplateError.runtime("continue_final_message is set but we could not find any text to continue in the final message!")
            }
            finalText = JinjaPython.str(text)
            part["text"] = .string(finalText + continueTag)
            parts[i] = .object(part)
            last["content"] = .array(parts)
        default:
            throw ChatTemplateError.runtime("continue_final_message needs string or list content")
        }
        items[items.count - 1] = .object(last)
        return (.array(items), finalText)
    }

    private static func cutAtTag(_ rendered: String, finalText: String) throws -> String {
        let tag = JinjaMethods.strip(continueTag, nil, leading: true, trailing: true)
        let stripped = JinjaMethods.strip(finalText, nil, leading: true, trailing: true)
        guard rendered.contains(stripped), let tagRange = rendered.range(of: tag, options: .backwards) else {
            throw ChatTemplateError.runtime("continue_final_message is set but the final message does not appear in the chat after applying the chat template!")
        }
        if rendered[tagRange.lowerBound...].hasPrefix(continueTag) { return String(rendered[..<tagRange.lowerBound]) }
        // The template trimmed the space after the tag, so trailing spacing of the message went too.
        return JinjaMethods.strip(String(rendered[..<tagRange.lowerBound]), nil, leading: false, trailing: true)
    }
}

extension ChatTemplate {
    /// transformers' `_alias_reasoning_fields`: a message whose reasoning comes under
    /// `reasoning_content`, `thinking` or `reasoning` (first non-null wins) is rebuilt as
    /// `{"thinking": r, **message, "reasoning_content": r}`, so templates can read either name.
    public static func aliasReasoningFields(_ messages: JinjaValue) -> JinjaValue {
        guard case .array(let items) = messages else { return messages }
        return .array(items.map { item in
            guard case .object(let message) = item else { return item }
            let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap { key -> JinjaValue? in
                guard let v = message[key], !v.isNone else { return nil }
                return v
            }.first
            guard let reasoning else { return item }
            var aliased = JinjaObject()
            aliased["thinking"] = reasoning
            for (k, v) in message.pairs { aliased[k] = v }
            aliased["reasoning_content"] = reasoning
            return .object(aliased)
        })
    }
}

/// One content block of a multimodal message: `{"type": "text", "text": ...}`, `{"type": "image"}`...
public struct ChatContentPart: Codable, Sendable, Equatable {
    public var type: String
    public var text: String?

    public init(type: String, text: String? = nil) {
        self.type = type
        self.text = text
    }

    public static func text(_ text: String) -> ChatContentPart { ChatContentPart(type: "text", text: text) }
    public static let image = ChatContentPart(type: "image")
    public static let video = ChatContentPart(type: "video")

    var jinjaValue: JinjaValue {
        var o = JinjaObject()
        o["type"] = .string(type)
        if let text { o["text"] = .string(text) }
        return .object(o)
    }
}

/// A message's content: a string, a list of parts, or absent (an assistant turn with only tool calls).
public enum ChatContent: Codable, Sendable, Equatable {
    case text(String)
    case parts([ChatContentPart])
    case none

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .none
        } else if let s = try? container.decode(String.self) {
            self = .text(s)
        } else {
            self = .parts(try container.decode([ChatContentPart].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let s): try container.encode(s)
        case .parts(let p): try container.encode(p)
        case .none: try container.encodeNil()
        }
    }
}

/// A chat message as transformers' templates read it (`{"role": ..., "content": ...}` plus any
/// other fields, e.g. `tool_calls`, `tool_call_id`, `name`, kept in their order).
public struct ChatMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: ChatContent
    public var fields: JinjaObject
    /// The key order of the dict this message was built from: templates that print or
    /// `tojson` a message see Python's insertion order. Empty: role, content, then fields.
    var keyOrder: [String] = []

    public init(role: String, content: ChatContent, fields: JinjaObject = JinjaObject()) {
        self.role = role
        self.content = content
        self.fields = fields
    }

    public init(role: String, text: String) { self.init(role: role, content: .text(text)) }
    public init(role: String, parts: [ChatContentPart]) { self.init(role: role, content: .parts(parts)) }

    /// Builds a message from a dict value (role and content first; the rest goes to `fields`).
    public init(_ value: JinjaValue) throws {
        guard case .object(let o) = value, case .string(let role)? = o["role"] else {
            throw ChatTemplateError.runtime("a chat message must be a dict with a string 'role'")
        }
        self.role = role
        switch o["content"] ?? JinjaValue.none {
        case .string(let s): content = .text(s)
        case .none, .undefined: content = .none
        case .array(let items):
            content = .parts(try items.map { item in
                guard case .object(let p) = item, case .string(let type)? = p["type"] else {
                    throw ChatTemplateError.runtime("a content part must be a dict with a string 'type'")
                }
                return ChatContentPart(type: type, text: p["text"]?.stringValue)
            })
        default: throw ChatTemplateError.runtime("message content must be a string, a list of parts or null")
        }
        var rest = JinjaObject()
        for (k, v) in o.pairs where k != "role" && k != "content" { rest[k] = v }
        fields = rest
        keyOrder = o.keys
    }

    public var jinjaValue: JinjaValue {
        var o = JinjaObject()
        o["role"] = .string(role)
        switch content {
        case .text(let s): o["content"] = .string(s)
        case .parts(let parts): o["content"] = .array(parts.map(\.jinjaValue))
        case .none: o["content"] = JinjaValue.none
        }
        for (k, v) in fields.pairs { o[k] = v }
        guard !keyOrder.isEmpty else { return .object(o) }
        var ordered = JinjaObject()
        for k in keyOrder { if let v = o[k] { ordered[k] = v } }
        for (k, v) in o.pairs where ordered[k] == nil { ordered[k] = v }
        return .object(ordered)
    }

    private enum CodingKeys: String, CodingKey { case role, content }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(String.self, forKey: .role)
        content = try c.decodeIfPresent(ChatContent.self, forKey: .content) ?? .none
        fields = JinjaObject()
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
    }
}
