import Foundation
import VLMTensor

/// Variants of the tiny llava-hf checkpoint (Tests/Fixtures/llava/llava-chat) for bad-input tests, written to
/// fresh temporary directories: a text-only Llama LM (the same language model without the vision tower) with a
/// string-content template that refuses some orders, and a LLaVA whose tokenizer lacks the image token.
public enum GenerativeFixtures {
    public static var llava: URL { Fixtures.url("llava/llava-chat") }

    /// A ChatML-like template reading string content, refusing an assistant first (as many templates do with
    /// `raise_exception`) and a system message after the first turn.
    public static let strictTemplate = """
    {% for message in messages %}{% if loop.first and message['role'] == 'assistant' %}{{ raise_exception('Conversation roles must start with user or system, not assistant') }}{% endif %}\
    {% if not loop.first and message['role'] == 'system' %}{{ raise_exception('A system message is only allowed first') }}{% endif %}\
    {{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}
    """

    /// A directory with `files` copied from llava-chat.
    static func copy(_ files: [String]) throws -> URL {
        let dir = TestScratch.root.appendingPathComponent("vlm-gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in files { try FileManager.default.copyItem(at: llava.appendingPathComponent(f), to: dir.appendingPathComponent(f)) }
        return dir
    }

    /// llava-chat's language model alone as a `LlamaForCausalLM` checkpoint, with `strictTemplate`.
    public static func textOnly() throws -> URL {
        let dir = try copy(["tokenizer.json", "tokenizer_config.json", "generation_config.json"])
        let llavaConfig = try JSONSerialization.jsonObject(with: Data(contentsOf: llava.appendingPathComponent("config.json"))) as? [String: Any]
        var config = llavaConfig?["text_config"] as? [String: Any] ?? [:]
        config["model_type"] = "llama"
        config["architectures"] = ["LlamaForCausalLM"]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(path: llava.appendingPathComponent("model.safetensors").path)
        let prefix = "language_model."
        let items = try file.keys.filter { $0.hasPrefix(prefix) }.map { SafeTensorsWriter.Item(String($0.dropFirst(prefix.count)), try file.tensor($0)) }
        try SafeTensorsWriter.write(items, to: dir.appendingPathComponent("model.safetensors"))
        try JSONSerialization.data(withJSONObject: ["chat_template": strictTemplate]).write(to: dir.appendingPathComponent("chat_template.json"))
        return dir
    }

    /// llava-chat with `<image>` removed from the tokenizer's added tokens: the config's image_token_index has
    /// no token, so "<image>" in a prompt is ordinary text.
    public static func withoutImageToken() throws -> URL {
        let dir = try copy(["config.json", "model.safetensors", "tokenizer_config.json", "generation_config.json",
                            "preprocessor_config.json", "chat_template.json"])
        let url = llava.appendingPathComponent("tokenizer.json")
        var tokenizer = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any] ?? [:]
        let added = tokenizer["added_tokens"] as? [[String: Any]] ?? []
        tokenizer["added_tokens"] = added.filter { ($0["content"] as? String) != "<image>" }
        try JSONSerialization.data(withJSONObject: tokenizer).write(to: dir.appendingPathComponent("tokenizer.json"))
        return dir
    }
}
