import Foundation

/// Reads image-caption datasets from files:
/// - JSONL: one object per line, `image` or `file` (path) and `caption` or `text`; optional `captions` (all true
///   captions), `negatives` (strings or `{"type", "caption"}` objects), `label`, `split`. The scenes manifest
///   (manifest.jsonl) is this format.
/// - CSV: a header row naming an image column (`image`, `file`, `path`, `filepath`) and a caption column
///   (`caption`, `text`, `title`); optional `label`, `split`. RFC 4180 quoting (quoted fields may hold commas,
///   doubled quotes and newlines).
/// Relative image paths resolve against the data file's folder. Errors name file:line. Missing image files are
/// not checked here: the batch pipeline skips what it cannot decode and counts it.
public enum PairedDataLoader {
    static let imageKeys = ["image", "file", "path", "filepath"]
    static let captionKeys = ["caption", "text", "title"]

    /// `path`: a .jsonl/.csv file, or a directory holding manifest.jsonl (else exactly one *.jsonl or *.csv).
    public static func load(path: URL) throws -> ArrayDataSource {
        let file = try resolve(path)
        let data: Data
        do { data = try Data(contentsOf: file) } catch { throw TrainingError.data(file: file.path, line: nil, reason: "cannot read: \(error.localizedDescription)") }
        let base = file.deletingLastPathComponent()
        let samples = file.pathExtension.lowercased() == "csv"
            ? try parseCSV(data, file: file.path, base: base) : try parseJSONL(data, file: file.path, base: base)
        guard !samples.isEmpty else { throw TrainingError.data(file: file.path, line: nil, reason: "no samples") }
        return ArrayDataSource(samples)
    }

    /// The data file a path names.
    public static func resolve(_ path: URL) throws -> URL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDir) else {
            throw TrainingError.data(file: path.path, line: nil, reason: "no such file or directory")
        }
        guard isDir.boolValue else { return path }
        let manifest = path.appendingPathComponent("manifest.jsonl")
        if FileManager.default.fileExists(atPath: manifest.path) { return manifest }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path.path)) ?? []
        let candidates = names.filter { ["jsonl", "csv"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
        guard candidates.count == 1 else {
            throw TrainingError.data(file: path.path, line: nil, reason: candidates.isEmpty
                ? "no manifest.jsonl, *.jsonl or *.csv in this directory"
                : "several data files (\(candidates.joined(separator: ", "))); name one")
        }
        return path.appendingPathComponent(candidates[0])
    }

    // MARK: JSONL

    public static func parseJSONL(_ data: Data, file: String, base: URL) throws -> [PairedSample] {
        var out: [PairedSample] = []
        var lineNumber = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let object: [String: Any]
            do {
                guard let o = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw TrainingError.data(file: file, line: lineNumber, reason: "expected a JSON object")
                }
                object = o
            } catch let e as TrainingError { throw e } catch {
                throw TrainingError.data(file: file, line: lineNumber, reason: "invalid JSON (\(shortReason(error)))")
            }
            func string(_ keys: [String]) throws -> String? {
                for k in keys {
                    guard let v = object[k] else { continue }
                    guard let s = v as? String else { throw TrainingError.data(file: file, line: lineNumber, reason: "'\(k)' must be a string") }
                    return s
                }
                return nil
            }
            guard let imagePath = try string(imageKeys), !imagePath.isEmpty else {
                throw TrainingError.data(file: file, line: lineNumber, reason: "missing image path (one of: \(imageKeys.joined(separator: ", ")))")
            }
            guard let caption = try string(captionKeys), !caption.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw TrainingError.data(file: file, line: lineNumber, reason: "missing caption (one of: \(captionKeys.joined(separator: ", ")))")
            }
            var captions: [String]? = nil
            if let c = object["captions"] {
                guard let list = c as? [String] else { throw TrainingError.data(file: file, line: lineNumber, reason: "'captions' must be a list of strings") }
                captions = list
            }
            var negatives: [NegativeCaption] = []
            if let n = object["negatives"] {
                guard let list = n as? [Any] else { throw TrainingError.data(file: file, line: lineNumber, reason: "'negatives' must be a list") }
                for item in list {
                    if let s = item as? String {
                        negatives.append(NegativeCaption(type: "negative", caption: s))
                    } else if let o = item as? [String: Any], let s = o["caption"] as? String {
                        negatives.append(NegativeCaption(type: (o["type"] as? String) ?? "negative", caption: s))
                    } else {
                        throw TrainingError.data(file: file, line: lineNumber, reason: "a negative must be a string or {\"type\", \"caption\"}")
                    }
                }
            }
            out.append(PairedSample(image: .file(resolveImage(imagePath, base: base)), caption: caption, captions: captions,
                                    negatives: negatives, label: try string(["label"]), split: try string(["split"]),
                                    origin: "\((file as NSString).lastPathComponent):\(lineNumber)"))
        }
        return out
    }

    static func shortReason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    static func resolveImage(_ path: String, base: URL) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        return expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : base.appendingPathComponent(expanded)
    }

    // MARK: CSV

    public static func parseCSV(_ data: Data, file: String, base: URL) throws -> [PairedSample] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TrainingError.data(file: file, line: nil, reason: "not UTF-8 text")
        }
        let records = try csvRecords(text, file: file)
        guard let (headerLine, header) = records.first else { throw TrainingError.data(file: file, line: nil, reason: "empty CSV") }
        let names = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ keys: [String]) -> Int? { keys.lazy.compactMap { names.firstIndex(of: $0) }.first }
        guard let imageColumn = column(imageKeys) else {
            throw TrainingError.data(file: file, line: headerLine, reason: "header has no image column (one of: \(imageKeys.joined(separator: ", ")))")
        }
        guard let captionColumn = column(captionKeys) else {
            throw TrainingError.data(file: file, line: headerLine, reason: "header has no caption column (one of: \(captionKeys.joined(separator: ", ")))")
        }
        let labelColumn = column(["label"]), splitColumn = column(["split"])
        var out: [PairedSample] = []
        for (line, fields) in records.dropFirst() {
            if fields.count == 1 && fields[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard fields.count == header.count else {
                throw TrainingError.data(file: file, line: line, reason: "\(fields.count) fields, the header has \(header.count)")
            }
            let image = fields[imageColumn], caption = fields[captionColumn]
            guard !image.isEmpty else { throw TrainingError.data(file: file, line: line, reason: "empty image path") }
            guard !caption.trimmingCharacters(in: .whitespaces).isEmpty else { throw TrainingError.data(file: file, line: line, reason: "empty caption") }
            func optional(_ c: Int?) -> String? { c.map { fields[$0] }.flatMap { $0.isEmpty ? nil : $0 } }
            out.append(PairedSample(image: .file(resolveImage(image, base: base)), caption: caption, label: optional(labelColumn),
                                    split: optional(splitColumn), origin: "\((file as NSString).lastPathComponent):\(line)"))
        }
        return out
    }

    /// RFC 4180 records with the 1-based line each starts on.
    static func csvRecords(_ text: String, file: String) throws -> [(Int, [String])] {
        var records: [(Int, [String])] = []
        var field = "", fields: [String] = []
        var inQuotes = false, fieldWasQuoted = false
        var line = 1, recordLine = 1, quoteLine = 1
        var chars = Array(text.unicodeScalars)[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }  // BOM from spreadsheet exports
        var i = chars.startIndex
        func endRecord() {
            fields.append(field)
            records.append((recordLine, fields))
            field = ""; fields = []; fieldWasQuoted = false
        }
        while i < chars.endIndex {
            let c = chars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < chars.endIndex && chars[i + 1] == "\"" { field.unicodeScalars.append("\""); i += 1 } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else {
                switch c {
                case "\"":
                    guard field.isEmpty, !fieldWasQuoted else {
                        throw TrainingError.data(file: file, line: line, reason: "quote inside an unquoted field (quote the whole field and double inner quotes)")
                    }
                    inQuotes = true; fieldWasQuoted = true; quoteLine = line
                case ",":
                    fields.append(field); field = ""; fieldWasQuoted = false
                case "\r":
                    break
                case "\n":
                    endRecord(); line += 1; recordLine = line
                default:
                    if fieldWasQuoted { throw TrainingError.data(file: file, line: line, reason: "text after a closing quote") }
                    field.unicodeScalars.append(c)
                }
            }
            i += 1
        }
        if inQuotes { throw TrainingError.data(file: file, line: quoteLine, reason: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty || fieldWasQuoted { endRecord() }
        return records
    }
}
