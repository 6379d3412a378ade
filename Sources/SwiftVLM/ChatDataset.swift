import Foundation
import VLMTraining

/// One conversation of a fine-tuning file (JSONL, one JSON object a line; blank lines skipped):
///
///     {"images": ["photos/a.jpg"],
///      "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
///                   {"role": "assistant", "content": "A red star."}]}
///
/// `messages` is the OpenAI / transformers chat format (roles system, user, assistant; content a string or a list of
/// {"type": "text", "text": ...} and {"type": "image"} parts). `images` are paths relative to the JSONL file (or
/// absolute), one per image part, in order. Every assistant message is a target: the loss covers the tokens the
/// checkpoint's chat template writes for it (its text and the end-of-turn tokens), nothing else.
public struct ChatExample: Sendable {
    /// 1-based line in the file (named in errors).
    public let line: Int
    public let images: [URL]
    public let messages: [ChatMessage]
}

public enum ChatDataset {
    struct Line: Decodable {
        let images: [String]?
        let messages: [ChatMessage]?
        enum CodingKeys: String, CodingKey { case images, messages }
    }

    /// Reads and checks every line: JSON, roles, at least one assistant message, one image file per image part.
    /// Errors name the file, the line and what is wrong.
    public static func load(_ url: URL) throws -> [ChatExample] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw PipelineError.invalidArgument("\(url.path): cannot read (\(error.localizedDescription))")
        }
        let root = url.deletingLastPathComponent()
        var out: [ChatExample] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty else { continue }
            func bad(_ what: String) -> PipelineError { .invalidArgument("\(url.path):\(index + 1): \(what)") }
            let decoded: Line
            do { decoded = try JSONDecoder().decode(Line.self, from: Data(line.utf8)) } catch let error as DecodingError {
                throw bad(describe(error))
            } catch { throw bad("not valid JSON (\(error.localizedDescription))") }
            guard let messages = decoded.messages, !messages.isEmpty else { throw bad("no \"messages\" (a non-empty list of {\"role\", \"content\"})") }
            for (i, m) in messages.enumerated() where !ChatPrompt.roles.contains(m.role) {
                throw bad("message \(i) has role '\(m.role)'; expected system, user or assistant")
            }
            guard messages.contains(where: { $0.role == "assistant" }) else { throw bad("no assistant message: nothing to learn from") }
            for (i, m) in messages.enumerated() where m.role == "assistant" {
                if case .parts(let parts) = m.content, parts.contains(where: { $0.type != "text" }) {
                    throw bad("message \(i) (assistant) has a non-text part; answers are text")
                }
                if case .none = m.content { throw bad("message \(i) (assistant) has no content") }
            }
            let parts = messages.reduce(0) { n, m in
                if case .parts(let p) = m.content { return n + p.filter { $0.type == "image" }.count }
                return n
            }
            let images = (decoded.images ?? []).map { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : root.appendingPathComponent($0) }
            guard images.count == parts else {
                throw bad("\(images.count) image path(s) in \"images\" but \(parts) {\"type\": \"image\"} part(s) in the messages")
            }
            for image in images where !FileManager.default.fileExists(atPath: image.path) { throw bad("image '\(image.path)' does not exist") }
            out.append(ChatExample(line: index + 1, images: images, messages: messages))
        }
        guard !out.isEmpty else { throw PipelineError.invalidArgument("\(url.path) holds no conversation") }
        return out
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.isEmpty ? "" : " at \(p.hasPrefix(".") ? String(p.dropFirst()) : p)"
        }
        switch error {
        case .typeMismatch(let t, let c): return "wrong type\(path(c)) (expected \(t))"
        case .valueNotFound(let t, let c): return "missing value\(path(c)) (expected \(t))"
        case .keyNotFound(let k, let c): return "missing key '\(k.stringValue)'\(path(c))"
        case .dataCorrupted(let c): return "not valid JSON\(path(c)): \(c.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Token ids, labels and pixels of conversations, prepared by the checkpoint's own processor (tokenizer, chat
/// template, image processor and image-token expansion, the ImageTokenInputProcessor `vlm ask` uses for LLaVA).
///
/// Labels: for assistant message i, the template's rendering of messages[0..<i] with the generation prompt and of
/// messages[0...i] without it are both token prefixes of the whole conversation; the tokens between the two are
/// scored, everything else is -100. A template whose renderings are not prefixes of each other is refused
/// (naming the line) rather than guessed at.
public struct ChatEncoder: Sendable {
    public let processor: ImageTokenInputProcessor

    public init(directory: URL, config: LlavaConfig) throws {
        processor = ImageTokenInputProcessor(tokenizer: try TokenizerLoader.load(directory: directory),
                                             chat: try ChatPrompt.load(directory: directory, contentParts: true),
                                             images: try ImageProcessors.load(directory: directory), imageTokenID: config.imageTokenIndex,
                                             tokensPerImage: config.imageTokensPerImage, contextLength: config.textConfig.maxPositionEmbeddings,
                                             modelName: directory.lastPathComponent)
    }

    /// ids and labels of the same length (image runs expanded, -100 on them), and the images' pixels [n, C, S, S].
    public func encode(_ example: ChatExample) throws -> (ids: [Int], labels: [Int], pixels: Tensor) {
        func bad(_ what: String) -> PipelineError { .invalidArgument("line \(example.line): \(what)") }
        let chat = processor.chat, tokenizer = processor.tokenizer
        func tokens(_ messages: [ChatMessage], generationPrompt: Bool) throws -> [Int] {
            let text: String
            do {
                text = generationPrompt ? try chat.render(messages)
                    : try chat.template.apply(messages: chat.templateMessages(messages), addGenerationPrompt: false,
                                              bosToken: chat.bosToken, eosToken: chat.eosToken)
            } catch { throw bad("the chat template refuses the conversation: \(error)") }
            return try tokenizer.encode(text, addSpecialTokens: true)
        }
        let m = example.messages
        let all = try tokens(m, generationPrompt: false)
        var labels = [Int](repeating: LlavaTrainingBatch.ignoreIndex, count: all.count)
        for i in m.indices where m[i].role == "assistant" {
            let before = try tokens(Array(m[..<i]), generationPrompt: true)
            let through = try tokens(Array(m[...i]), generationPrompt: false)
            guard through.count <= all.count, Array(all[..<through.count]) == through, before.count <= through.count,
                  Array(through[..<before.count]) == before else {
                throw bad("the chat template's rendering up to message \(i) is not a token prefix of the whole conversation, so its answer tokens cannot be located")
            }
            guard before.count < through.count else { throw bad("message \(i) (assistant) renders as no tokens") }
            for j in before.count ..< through.count { labels[j] = all[j] }
        }
        // LlavaProcessor's expansion: each image token becomes a run of tokensPerImage (never scored).
        var ids: [Int] = [], expanded: [Int] = [], placeholders = 0
        for (id, label) in zip(all, labels) {
            if id == processor.imageTokenID {
                guard label == LlavaTrainingBatch.ignoreIndex else { throw bad("an assistant message renders an image token") }
                placeholders += 1
                ids += Array(repeating: id, count: processor.tokensPerImage)
                expanded += Array(repeating: LlavaTrainingBatch.ignoreIndex, count: processor.tokensPerImage)
            } else {
                ids.append(id)
                expanded.append(label)
            }
        }
        guard placeholders == example.images.count else {
            throw bad("the template rendered \(placeholders) image token(s) for \(example.images.count) image(s)")
        }
        guard ids.count <= processor.contextLength else {
            throw bad("\(ids.count) tokens (\(placeholders * processor.tokensPerImage) of them image tokens) exceed the model's context of \(processor.contextLength)")
        }
        let pictures = try example.images.map { url in
            do { return try ImageDecoder.load(url) } catch { throw bad("\(error)") }
        }
        return (ids, expanded, try processor.images.pixelInputs(pictures).pixelValues)
    }
}
