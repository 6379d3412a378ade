import Foundation
import VLMImage
import VLMTensor
import VLMTokenizers

// MARK: - Prompt expansion

/// Idefics3Processor / SmolVLMProcessor: the chat template writes `<image>` once per image; each becomes, in
/// the text, the image's tiles as `<fake_token_around_image><row_r_col_c>` + `image_seq_len` image tokens (a
/// newline after each row of tiles), then `\n<fake_token_around_image><global-img>` + the global image's tokens
/// + `<fake_token_around_image>`; an image that was not split is only the global part. The expanded text is
/// tokenized as a whole (as transformers does), so the token count per image follows from its tile grid.
public struct Idefics3InputProcessor: GenerativeInputProcessor {
    public let tokenizer: any Tokenizer
    public let chat: ChatPrompt
    /// The checkpoint's tiling image processor (its pixel inputs carry tilesPerImage and tileGrids).
    public let images: any ImageInputProcessor
    /// Image tokens per tile (processor_config.json `image_seq_len`, which must match the model).
    public let imageSeqLen: Int
    public let imageTokenID: Int
    /// The vision tower's patch size: a tile's pixel mask becomes its patch mask.
    public let patchSize: Int
    public let contextLength: Int
    public let modelName: String
    public var supportsImages: Bool { true }

    public static let imageToken = "<image>"
    public static let fakeToken = "<fake_token_around_image>"
    public static let globalToken = "<global-img>"

    public init(tokenizer: any Tokenizer, chat: ChatPrompt, images: any ImageInputProcessor, imageSeqLen: Int,
                imageTokenID: Int, patchSize: Int, contextLength: Int, modelName: String) {
        self.tokenizer = tokenizer
        self.chat = chat
        self.images = images
        self.imageSeqLen = imageSeqLen
        self.imageTokenID = imageTokenID
        self.patchSize = patchSize
        self.contextLength = contextLength
        self.modelName = modelName
    }

    /// The checkpoint's tokenizer, chat template (content parts: the template prints `<image>` for image parts),
    /// image processor and `image_seq_len` (processor_config.json; the model's tokens per tile when absent).
    public static func load(directory: URL, config: Idefics3Config, contextLength: Int,
                            options: InputProcessingOptions = InputProcessingOptions()) throws -> Idefics3InputProcessor {
        let seqLen = try imageSeqLen(directory: directory) ?? config.tokensPerTile
        guard seqLen == config.tokensPerTile else {
            throw ModelError.invalidConfig(path: directory.appendingPathComponent("processor_config.json").path,
                                           reason: "image_seq_len \(seqLen) does not match the model's \(config.tokensPerTile) tokens per tile ((image_size / patch_size / scale_factor)^2)")
        }
        return Idefics3InputProcessor(tokenizer: try TokenizerLoader.load(directory: directory),
                                      chat: try ChatPrompt.load(directory: directory, contentParts: true),
                                      images: try Idefics3ImageProcessor.load(directory: directory, maxLongestEdge: options.maxImageEdge),
                                      imageSeqLen: seqLen, imageTokenID: config.imageTokenID,
                                      patchSize: config.visionConfig.patchSize, contextLength: contextLength,
                                      modelName: directory.lastPathComponent)
    }

    /// processor_config.json's `image_seq_len`, nil when the file or the key is absent.
    static func imageSeqLen(directory: URL) throws -> Int? {
        let url = directory.appendingPathComponent("processor_config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.invalidConfig(path: url.path, reason: "not a JSON object")
        }
        guard let value = object["image_seq_len"] else { return nil }
        guard let n = value as? Int, n > 0, n <= 1 << 16 else {
            throw ModelError.invalidConfig(path: url.path, reason: "image_seq_len \(value) is not a positive token count")
        }
        return n
    }

    public func prompt(for messages: [ChatMessage]) throws -> String { try chat.render(messages) }

    public func prepare(messages: [ChatMessage], images pictures: [RGBImage]) throws -> PreparedInput {
        let text = try prompt(for: messages)
        let placeholders = text.components(separatedBy: Self.imageToken).count - 1
        guard placeholders == pictures.count else {
            throw ModelError.imageCountMismatch(placeholders: placeholders, images: pictures.count, token: "'\(Self.imageToken)'")
        }
        if !pictures.isEmpty { try checkImageToken() }
        let pixels = pictures.isEmpty ? nil : try images.pixelInputs(pictures)
        return try prepare(text: text, pixels: pixels)
    }

    /// The rendered `text` with each `<image>` expanded for the tiles in `pixels` (which carry each image's
    /// tile grid and tile count), tokenized, checked against the context.
    public func prepare(text: String, pixels: PixelInputs?) throws -> PreparedInput {
        let pieces = text.components(separatedBy: Self.imageToken)
        let grids = pixels?.tileGrids ?? []
        guard let pixels else {
            guard pieces.count == 1 else {
                throw ModelError.imageCountMismatch(placeholders: pieces.count - 1, images: 0, token: "'\(Self.imageToken)'")
            }
            return try finish(ids: tokenizer.encode(text, addSpecialTokens: true), pixels: nil, tilesPerImage: [])
        }
        guard grids.count == pieces.count - 1, let tiles = pixels.tilesPerImage, tiles.count == grids.count else {
            throw ModelError.imageCountMismatch(placeholders: pieces.count - 1, images: pixels.imageCount, token: "'\(Self.imageToken)'")
        }
        var expanded = pieces[0]
        for (k, grid) in grids.enumerated() {
            expanded += expansion(rows: grid.rows, cols: grid.columns) + pieces[k + 1]
        }
        return try finish(ids: tokenizer.encode(expanded, addSpecialTokens: true), pixels: pixels, tilesPerImage: tiles)
    }

    /// The text one image becomes (Idefics3Processor.replace_image_token / get_image_prompt_string).
    public func expansion(rows: Int, cols: Int) -> String {
        let run = String(repeating: Self.imageToken, count: imageSeqLen)
        let global = Self.fakeToken + Self.globalToken + run + Self.fakeToken
        guard rows > 0 || cols > 0 else { return global }
        var text = ""
        for r in 1 ... max(rows, 1) {
            for c in 1 ... max(cols, 1) { text += Self.fakeToken + "<row_\(r)_col_\(c)>" + run }
            text += "\n"
        }
        return text + "\n" + global
    }

    /// Image spans (each image's first to last image token) and the checks: every tile's run present, room
    /// left in the context.
    private func finish(ids: [Int], pixels: PixelInputs?, tilesPerImage: [Int]) throws -> PreparedInput {
        let slots = ids.indices.filter { ids[$0] == imageTokenID }
        let expected = tilesPerImage.reduce(0, +) * imageSeqLen
        guard slots.count == expected else {
            throw ModelError.invalidInput("the expanded prompt has \(slots.count) image tokens; the images' \(tilesPerImage.reduce(0, +)) tiles need \(expected) (\(imageSeqLen) each): does the text contain '\(Self.imageToken)' itself?")
        }
        var spans: [Range<Int>] = []
        var next = 0
        for count in tilesPerImage {
            let n = count * imageSeqLen
            spans.append(slots[next] ..< slots[next + n - 1] + 1)
            next += n
        }
        guard ids.count < contextLength else {
            throw ModelError.promptTooLong(tokens: ids.count, imageTokens: expected, context: contextLength)
        }
        return PreparedInput(ids: ids, pixels: pixels, imageSpans: spans)
    }

    private func checkImageToken() throws {
        guard tokenizer.tokenID(for: Self.imageToken) == imageTokenID else {
            throw ModelError.imageTokenMissing(id: imageTokenID, model: modelName)
        }
    }

    /// transformers' patch mask from a tile's pixel mask: a patch is real when any of its pixels is.
    /// pixelMask: [N, H, W] (1 = real pixel) -> [N * (H/p) * (W/p)], nil when every patch is real.
    public static func patchMask(pixelMask: [UInt8], tiles: Int, height: Int, width: Int, patch: Int) -> [UInt8]? {
        let gh = height / patch, gw = width / patch
        var mask = [UInt8](repeating: 0, count: tiles * gh * gw)
        for t in 0 ..< tiles {
            for y in 0 ..< gh * patch {
                for x in 0 ..< gw * patch where pixelMask[(t * height + y) * width + x] != 0 {
                    mask[(t * gh + y / patch) * gw + x / patch] = 1
                }
            }
        }
        return mask.allSatisfy { $0 != 0 } ? nil : mask
    }
}
