import Foundation

// MARK: - Configuration

/// processor_config.json's `post_processor_config` (Florence2PostProcessor's parse_task_config): per parse type,
/// an optional OCR PATTERN and AREA_THRESHOLD, and phrase grounding's banned tokens.
public struct Florence2PostProcessorConfig: Sendable {
    /// Parse types configured (transformers refuses the others); nil: no config in the checkpoint, every type runs
    /// with its defaults.
    public var parseTypes: Set<String>?
    public var ocrPattern: String?
    public var ocrAreaThreshold: Double = 0
    public var bannedGroundingTokens: Set<String> = []

    public init() {}

    /// Reads `post_processor_config` from processor_config.json in `directory` (absent file or null: defaults).
    public static func load(directory: URL) throws -> Florence2PostProcessorConfig {
        var config = Florence2PostProcessorConfig()
        let url = directory.appendingPathComponent("processor_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return config }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) } catch {
            throw ModelError.invalidConfig(path: url.path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any], let tasks = root["post_processor_config"] as? [String: Any] else { return config }
        config.parseTypes = Set(tasks.keys)
        if let ocr = tasks["ocr"] as? [String: Any] {
            config.ocrPattern = ocr["PATTERN"] as? String
            config.ocrAreaThreshold = (ocr["AREA_THRESHOLD"] as? NSNumber)?.doubleValue ?? 0
        }
        if let grounding = tasks["phrase_grounding"] as? [String: Any] {
            config.bannedGroundingTokens = Set(grounding["banned_grounding_tokens"] as? [String] ?? [])
        }
        return config
    }
}

// MARK: - post_process_generation

/// Florence2Processor.post_process_generation over generated text (decoded with special tokens kept): the JSON
/// object `{task: answer}` transformers returns, with boxes, quad boxes and polygons in pixels of the original
/// image (width, height).
public struct Florence2PostProcessor: Sendable {
    public let config: Florence2PostProcessorConfig

    public init(config: Florence2PostProcessorConfig = Florence2PostProcessorConfig()) { self.config = config }

    public func process(text: String, task: String, imageSize: (width: Int, height: Int)) throws -> [String: Any] {
        let type = Florence2Tasks.postProcessingType[task] ?? "pure_text"
        if let types = config.parseTypes, !types.contains(type) {
            throw ModelError.invalidInput("unsupported parse task: \(type) (not in the processor's post_processor_config)")
        }
        let answer: Any
        switch type {
        case "pure_text":
            answer = text.replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "</s>", with: "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
        case "description_with_bboxes", "bboxes":
            let parsed = try boxes(text, imageSize: imageSize, allowEmptyPhrase: type == "bboxes")
            answer = ["bboxes": parsed.map { $0.box }, "labels": parsed.map { $0.label }] as [String: Any]
        case "ocr":
            let parsed = try ocr(text, imageSize: imageSize)
            answer = ["quad_boxes": parsed.map { $0.quad }, "labels": parsed.map { $0.text }] as [String: Any]
        case "phrase_grounding":
            let parsed = try grounding(text, imageSize: imageSize)
            answer = ["bboxes": parsed.flatMap { $0.boxes }, "labels": parsed.flatMap { p in p.boxes.map { _ in p.label } }] as [String: Any]
        case "polygons":
            let parsed = try polygons(text, imageSize: imageSize, allowEmptyPhrase: true)
            answer = ["polygons": parsed.map { $0.polygons }, "labels": parsed.map { $0.label }] as [String: Any]
        default:  // description_with_bboxes_or_polygons
            var result: [String: Any] = ["bboxes": [[Int]](), "bboxes_labels": [String](), "polygons": [[[Int]]](), "polygons_labels": [String]()]
            if text.contains("<poly>") {
                let parsed = try polygons(text, imageSize: imageSize, allowEmptyPhrase: false)
                result["polygons"] = parsed.map { $0.polygons }
                result["polygons_labels"] = parsed.map { $0.label }
            } else {
                let parsed = try boxes(text, imageSize: imageSize, allowEmptyPhrase: false)
                result["bboxes"] = parsed.map { $0.box }
                result["bboxes_labels"] = parsed.map { $0.label }
            }
            answer = result
        }
        return [task: answer]
    }

    /// The result as JSON text (keys sorted).
    public func json(text: String, task: String, imageSize: (width: Int, height: Int)) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: process(text: text, task: task, imageSize: imageSize),
                                              options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: Parsers

    static let boxPattern = #"<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>"#
    static let labelPattern = #"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_)"#

    private static func clean(_ text: String) -> String {
        text.replacingOccurrences(of: "<s>", with: "").replacingOccurrences(of: "</s>", with: "").replacingOccurrences(of: "<pad>", with: "")
    }

    /// phrase.encode("ascii", "ignore").decode("ascii")
    private static func ascii(_ s: String) -> String { String(String.UnicodeScalarView(s.unicodeScalars.filter(\.isASCII))) }

    /// parse_description_with_bboxes_from_text_and_spans
    func boxes(_ text: String, imageSize: (width: Int, height: Int), allowEmptyPhrase: Bool) throws -> [(box: [Int], label: String)] {
        let pattern = allowEmptyPhrase ? #"(?:(?:<loc_\d+>){4,})"# : #"([^<]+(?:<loc_\d+>){4,})"#
        var out: [(box: [Int], label: String)] = []
        for phrase in try PyRegex.all(pattern, in: Self.clean(text)).map({ $0[0] }) {
            let p = Self.dropFirst("<obj>", from: Self.dropFirst("<ground>", from: phrase))
            if p.isEmpty && !allowEmptyPhrase { continue }
            guard let label = try PyRegex.first(Self.labelPattern, in: p)?[0] else { continue }
            let boxes = try PyRegex.all(Self.boxPattern, in: p).map { m in (1 ... 4).compactMap { Int(m[$0]) } }
            for b in boxes { out.append((Florence2Tasks.dequantize(b, imageSize: imageSize), Self.ascii(label.trimmingCharacters(in: .whitespacesAndNewlines)))) }
        }
        return out
    }

    /// parse_phrase_grounding_from_text_and_spans
    func grounding(_ text: String, imageSize: (width: Int, height: Int)) throws -> [(boxes: [[Int]], label: String)] {
        var out: [(boxes: [[Int]], label: String)] = []
        for phrase in try PyRegex.all(#"([^<]+(?:<loc_\d+>){4,})"#, in: Self.clean(text)).map({ $0[0] }) {
            let p = Self.dropFirst("<obj>", from: Self.dropFirst("<ground>", from: phrase))
            if p.isEmpty { continue }
            guard let match = try PyRegex.first(Self.labelPattern, in: p)?[0] else { continue }
            let label = match.trimmingCharacters(in: .whitespacesAndNewlines)
            if config.bannedGroundingTokens.contains(label) { continue }
            let boxes = try PyRegex.all(Self.boxPattern, in: p).map { m in (1 ... 4).compactMap { Int(m[$0]) } }
            if boxes.isEmpty { continue }
            out.append((boxes.map { Florence2Tasks.dequantize($0, imageSize: imageSize) }, Self.ascii(label)))
        }
        return out
    }

    /// parse_ocr_from_text_and_spans
    func ocr(_ text: String, imageSize: (width: Int, height: Int)) throws -> [(quad: [Int], text: String)] {
        let pattern = config.ocrPattern ?? #"(.+?)<loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)><loc_(\d+)>"#
        var out: [(quad: [Int], text: String)] = []
        for m in try PyRegex.all(pattern, in: Self.clean(text)) where m.count >= 10 {
            let quad = Florence2Tasks.dequantize((2 ... 9).compactMap { Int(m[$0]) }, imageSize: imageSize)
            if config.ocrAreaThreshold > 0 {
                // Shoelace over the first three edges, as transformers sums it.
                var twice = 0.0
                for i in 0 ..< 3 {
                    let (x0, y0, x1, y1) = (Double(quad[2 * i]), Double(quad[2 * i + 1]), Double(quad[2 * i + 2]), Double(quad[2 * i + 3]))
                    twice += x0 * y1 - x1 * y0
                }
                let area = 0.5 * abs(twice)
                if area < Double(imageSize.width * imageSize.height) * config.ocrAreaThreshold { continue }
            }
            out.append((quad, m[1].trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        return out
    }

    /// parse_description_with_polygons_from_text_and_spans (with_box_at_start false, <sep>/<poly>/</poly>).
    func polygons(_ text: String, imageSize: (width: Int, height: Int), allowEmptyPhrase: Bool) throws -> [(polygons: [[Int]], label: String)] {
        let unit = #"(?:<loc_\d+>|<sep>|<poly>|</poly>)"#
        let pattern = allowEmptyPhrase ? "(?:\(unit){4,})" : "([^<]+\(unit){4,})"
        var out: [(polygons: [[Int]], label: String)] = []
        for phrase in try PyRegex.all(pattern, in: Self.clean(text)).map({ $0[0] }) {
            let stripped = try PyRegex.replaceFirst(#"^<loc_\d+>"#, in: phrase)
            if stripped.isEmpty && !allowEmptyPhrase { continue }
            guard let match = try PyRegex.first(#"^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_|<poly>)"#, in: stripped)?[0] else { continue }
            let label = match.trimmingCharacters(in: .whitespacesAndNewlines)
            let instances = phrase.contains("<poly>") && phrase.contains("</poly>")
                ? try PyRegex.all(#"<poly>(.*?)</poly>"#, in: phrase).map { $0[1] } : [phrase]
            for instance in instances {
                let polys = try PyRegex.all(#"((?:<loc_\d+>)+)(?:<sep>|$)"#, in: instance)
                if polys.isEmpty { continue }
                var result: [[Int]] = []
                for poly in polys {
                    var bins = try PyRegex.all(#"<loc_(\d+)>"#, in: poly[1]).compactMap { Int($0[1]) }
                    if bins.count % 2 == 1 { bins.removeLast() }
                    result.append(Florence2Tasks.dequantize(bins, imageSize: imageSize))
                }
                out.append((result, label))
            }
        }
        return out
    }

    /// s.replace(token, "", 1)
    private static func dropFirst(_ token: String, from s: String) -> String {
        guard let r = s.range(of: token) else { return s }
        return s.replacingCharacters(in: r, with: "")
    }
}

// MARK: - Regular expressions

/// NSRegularExpression with Python re's findall/search shapes: each match as [whole, group 1, ...] ("" for a
/// group that did not take part).
enum PyRegex {
    static func compile(_ pattern: String) throws -> NSRegularExpression {
        do { return try NSRegularExpression(pattern: pattern) } catch {
            throw ModelError.invalidInput("invalid post-processing pattern \(pattern)")
        }
    }

    static func all(_ pattern: String, in text: String) throws -> [[String]] {
        let ns = text as NSString
        return try compile(pattern).matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (0 ..< m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
        }
    }

    static func first(_ pattern: String, in text: String) throws -> [String]? { try all(pattern, in: text).first }

    static func replaceFirst(_ pattern: String, in text: String) throws -> String {
        let ns = text as NSString
        guard let m = try compile(pattern).firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return text }
        return ns.replacingCharacters(in: m.range, with: "")
    }
}
