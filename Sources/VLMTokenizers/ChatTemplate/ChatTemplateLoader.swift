import Foundation

/// Finds a checkpoint's chat template the way transformers 5 loads it:
/// 1. `chat_template.jinja` (the "default" template) and `additional_chat_templates/<name>.jinja`;
/// 2. else the processor's legacy `chat_template.json` (`{"chat_template": "..."}`);
/// 3. else `tokenizer_config.json`'s `"chat_template"`: a string, or a list of `{"name", "template"}`.
/// Choosing among named templates follows `get_chat_template`: the requested name, else
/// `tool_use` when tools are passed and it exists, else `default`.
public enum ChatTemplateLoader {
    /// Every template of the checkpoint by name ("default" for the unnamed one).
    public static func templates(in directory: URL) throws -> [String: String] {
        let fm = FileManager.default
        var templates: [String: String] = [:]
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: jinja.path) {
            templates["default"] = try String(contentsOf: jinja, encoding: .utf8)
        }
        let extraDir = directory.appendingPathComponent("additional_chat_templates")
        if let files = try? fm.contentsOfDirectory(atPath: extraDir.path) {
            for file in files.sorted() where file.hasSuffix(".jinja") {
                let name = String(file.dropLast(".jinja".count))
                templates[name] = try String(contentsOf: extraDir.appendingPathComponent(file), encoding: .utf8)
            }
        }
        if !templates.isEmpty { return templates }

        if case .object(let o)? = try readJSON(directory.appendingPathComponent("chat_template.json")) {
            try collect(o["chat_template"], into: &templates, file: "chat_template.json")
            if !templates.isEmpty { return templates }
        }
        if case .object(let o)? = try readJSON(directory.appendingPathComponent("tokenizer_config.json")) {
            try collect(o["chat_template"], into: &templates, file: "tokenizer_config.json")
        }
        return templates
    }

    /// The template source to use: `name` if given, else `tool_use` when `withTools` and present, else `default`.
    public static func source(in directory: URL, name: String? = nil, withTools: Bool = false) throws -> String {
        let templates = try templates(in: directory)
        if templates.isEmpty {
            throw ChatTemplateError.notFound("no chat template in \(directory.path) (chat_template.jinja, chat_template.json or tokenizer_config.json)")
        }
        if let name {
            guard let t = templates[name] else {
                throw ChatTemplateError.notFound("no chat template named '\(name)'; available: \(templates.keys.sorted().joined(separator: ", "))")
            }
            return t
        }
        if withTools, let t = templates["tool_use"] { return t }
        if let t = templates["default"] { return t }
        throw ChatTemplateError.notFound(
            "This model has multiple chat templates with no default specified! Available template names are \(templates.keys.sorted()).")
    }

    /// Loads and parses the template (see `source(in:name:withTools:)`).
    public static func load(from directory: URL, name: String? = nil, withTools: Bool = false) throws -> ChatTemplate {
        try ChatTemplate(try source(in: directory, name: name, withTools: withTools))
    }

    /// `bos_token` / `eos_token` from tokenizer_config.json, falling back to special_tokens_map.json
    /// (either as a string or as an AddedToken dict with "content").
    public static func specialTokens(in directory: URL) throws -> (bos: String?, eos: String?) {
        var bos: String? = nil
        var eos: String? = nil
        for file in ["tokenizer_config.json", "special_tokens_map.json"] {
            guard case .object(let o)? = try readJSON(directory.appendingPathComponent(file)) else { continue }
            bos = bos ?? tokenText(o["bos_token"])
            eos = eos ?? tokenText(o["eos_token"])
        }
        return (bos, eos)
    }

    private static func tokenText(_ value: JinjaValue?) -> String? {
        switch value {
        case .string(let s)?: return s
        case .object(let o)?: return o["content"]?.stringValue
        default: return nil
        }
    }

    private static func readJSON(_ url: URL) throws -> JinjaValue? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JinjaValue(jsonData: Data(contentsOf: url))
    }

    private static func collect(_ value: JinjaValue?, into templates: inout [String: String], file: String) throws {
        switch value {
        case nil, .none?: return
        case .string(let s)?: templates["default"] = s
        case .array(let items)?:
            for item in items {
                guard case .object(let entry) = item, let name = entry["name"]?.stringValue,
                    let template = entry["template"]?.stringValue
                else {
                    throw ChatTemplateError.notFound("\(file): chat_template list entries need string 'name' and 'template'")
                }
                templates[name] = template
            }
        default:
            throw ChatTemplateError.notFound("\(file): chat_template must be a string or a list of {name, template}")
        }
    }
}
