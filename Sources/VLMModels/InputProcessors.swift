import Foundation
import VLMImage
import VLMLayers
import VLMTensor
import VLMTokenizers

// MARK: - Protocol

/// Messages + images -> the model's `PreparedInput`, as a family's transformers processor does it (chat
/// template or the family's own prompt format, tokenizer, image processor, image-token expansion). Built by
/// the model itself (`GenerativeModel.makeInputProcessor`), so a new family brings its own.
public protocol GenerativeInputProcessor: Sendable {
    /// Decodes generated ids (streaming, answers).
    var tokenizer: any Tokenizer { get }
    var supportsImages: Bool { get }
    /// The prompt text the model reads for `messages` (generation prompt added), as the processor renders it.
    func prompt(for messages: [ChatMessage]) throws -> String
    /// Everything the model needs for one answer, checked: images only if supported, one image per image
    /// placeholder, a tokenizer that has the image token, and room left in the context.
    func prepare(messages: [ChatMessage], images: [RGBImage]) throws -> PreparedInput
}

// MARK: - Chat prompts

/// A checkpoint's chat template with its special tokens. Families that read message content as a string (most
/// text LMs) get lists of text parts joined with newlines (as vLLM does); families whose templates iterate
/// content parts (LLaVA) get a string as one text part.
public struct ChatPrompt: Sendable {
    public let template: ChatTemplate
    public let bosToken: String?
    public let eosToken: String?
    /// True when the template iterates content parts (images are parts), false when it prints a string.
    public let contentParts: Bool

    /// Roles a message may have.
    public static let roles: Set<String> = ["system", "user", "assistant"]

    public init(template: ChatTemplate, bosToken: String?, eosToken: String?, contentParts: Bool) {
        self.template = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.contentParts = contentParts
    }

    /// The checkpoint's template (chat_template.jinja/.json or tokenizer_config.json) and bos/eos tokens.
    public static func load(directory: URL, contentParts: Bool) throws -> ChatPrompt {
        let special = try ChatTemplateLoader.specialTokens(in: directory)
        return ChatPrompt(template: try ChatTemplateLoader.load(from: directory), bosToken: special.bos, eosToken: special.eos,
                          contentParts: contentParts)
    }

    /// Messages in the form the template reads.
    public func templateMessages(_ messages: [ChatMessage]) -> [ChatMessage] {
        messages.map { message in
            var m = message
            switch (message.content, contentParts) {
            case (.text(let s), true): m.content = .parts([.text(s)])
            case (.parts(let parts), false) where parts.allSatisfy({ $0.type == "text" }):
                m.content = .text(parts.compactMap(\.text).joined(separator: "\n"))
            default: break
            }
            return m
        }
    }

    /// The rendered prompt (generation prompt added). An empty list or an unknown role is refused; a template
    /// that refuses the order (`raise_exception`) is reported with its own message.
    public func render(_ messages: [ChatMessage]) throws -> String {
        guard !messages.isEmpty else { throw ModelError.invalidConversation("the message list is empty") }
        for (i, m) in messages.enumerated() where !Self.roles.contains(m.role) {
            throw ModelError.invalidConversation("message \(i) has role '\(m.role)'; expected system, user or assistant")
        }
        do {
            return try template.apply(messages: templateMessages(messages), addGenerationPrompt: true,
                                      bosToken: bosToken, eosToken: eosToken)
        } catch ChatTemplateError.raised(let message) {
            throw ModelError.invalidConversation(message)
        }
    }
}

// MARK: - Text only

/// A text LM's processor (the Llama family): chat template, tokenizer, nothing else.
public struct TextInputProcessor: GenerativeInputProcessor {
    public let tokenizer: any Tokenizer
    public let chat: ChatPrompt
    public let contextLength: Int
    /// Named in errors (the checkpoint directory's name).
    public let modelName: String
    public var supportsImages: Bool { false }

    public init(tokenizer: any Tokenizer, chat: ChatPrompt, contextLength: Int, modelName: String) {
        self.tokenizer = tokenizer
        self.chat = chat
        self.contextLength = contextLength
        self.modelName = modelName
    }

    public static func load(directory: URL, contextLength: Int) throws -> TextInputProcessor {
        TextInputProcessor(tokenizer: try TokenizerLoader.load(directory: directory),
                           chat: try ChatPrompt.load(directory: directory, contentParts: false),
                           contextLength: contextLength, modelName: directory.lastPathComponent)
    }

    public func prompt(for messages: [ChatMessage]) throws -> String { try chat.render(messages) }

    public func prepare(messages: [ChatMessage], images: [RGBImage]) throws -> PreparedInput {
        guard images.isEmpty else { throw ModelError.imagesNotSupported(model: modelName) }
        let ids = try tokenizer.encode(prompt(for: messages), addSpecialTokens: true)
        guard ids.count < contextLength else { throw ModelError.promptTooLong(tokens: ids.count, imageTokens: 0, context: contextLength) }
        return PreparedInput(ids: ids)
    }
}

// MARK: - Images as runs of placeholder tokens

/// LlavaProcessor's rule, shared by families that splice image features into placeholder tokens: the template
/// writes one image token per image; each becomes a run of `tokensPerImage` image tokens, and the images'
/// pixels come from the checkpoint's image processor.
public struct ImageTokenInputProcessor: GenerativeInputProcessor {
    public let tokenizer: any Tokenizer
    public let chat: ChatPrompt
    public let images: any ImageInputProcessor
    public let imageTokenID: Int
    public let tokensPerImage: Int
    public let contextLength: Int
    public let modelName: String
    public var supportsImages: Bool { true }

    public init(tokenizer: any Tokenizer, chat: ChatPrompt, images: any ImageInputProcessor, imageTokenID: Int,
                tokensPerImage: Int, contextLength: Int, modelName: String) {
        self.tokenizer = tokenizer
        self.chat = chat
        self.images = images
        self.imageTokenID = imageTokenID
        self.tokensPerImage = tokensPerImage
        self.contextLength = contextLength
        self.modelName = modelName
    }

    public func prompt(for messages: [ChatMessage]) throws -> String { try chat.render(messages) }

    public func prepare(messages: [ChatMessage], images pictures: [RGBImage]) throws -> PreparedInput {
        let text = try prompt(for: messages)
        let raw = try tokenizer.encode(text, addSpecialTokens: true)
        let placeholders = raw.filter { $0 == imageTokenID }.count
        let tokenText = tokenizer.token(for: imageTokenID)
        if !pictures.isEmpty && tokenText == nil { throw ModelError.imageTokenMissing(id: imageTokenID, model: modelName) }
        guard placeholders == pictures.count else {
            throw ModelError.imageCountMismatch(placeholders: placeholders, images: pictures.count,
                                                token: "'\(tokenText ?? "?")' (id \(imageTokenID))")
        }
        var ids: [Int] = []
        var spans: [Range<Int>] = []
        ids.reserveCapacity(raw.count + placeholders * (tokensPerImage - 1))
        for id in raw {
            if id == imageTokenID {
                spans.append(ids.count ..< ids.count + tokensPerImage)
                ids += Array(repeating: imageTokenID, count: tokensPerImage)
            } else {
                ids.append(id)
            }
        }
        let imageTokens = tokensPerImage * pictures.count
        guard ids.count < contextLength else {
            throw ModelError.promptTooLong(tokens: ids.count, imageTokens: imageTokens, context: contextLength)
        }
        let pixels = pictures.isEmpty ? nil : try images.pixelInputs(pictures)
        return PreparedInput(ids: ids, pixels: pixels, imageSpans: spans)
    }
}
