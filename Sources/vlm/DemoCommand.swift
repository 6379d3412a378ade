import ArgumentParser
import Foundation
import SwiftVLM
import VLMTraining

/// Where the embedded default model lives. Not a SwiftPM resource (that would copy ~10 MB into every build
/// bundle): the files are committed under Models/scenes-clip in the package, found by
///   1. `--model DIR` when given,
///   2. the `VLM_MODEL_DIR` environment variable,
///   3. Models/scenes-clip next to the package root this executable was built from (#filePath, build time),
///   4. Models/scenes-clip beside the executable or two levels up (an installed copy, `.build/<config>/vlm`).
enum DefaultModel {
    static let relativePath = "Models/scenes-clip"
    /// The embedded generative default (captions, answers, boxes), found the same way.
    static let generativeRelativePath = "Models/scenes-vlm"

    /// The committed model in the source tree this binary was built from.
    static func packageDirectory(_ relativePath: String) -> URL {
        // Sources/vlm/DemoCommand.swift -> package root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(relativePath)
    }

    static func candidates(_ relativePath: String, environment: String) -> [URL] {
        var out: [URL] = []
        if let env = ProcessInfo.processInfo.environment[environment], !env.isEmpty { return [expand(env)] }
        out.append(packageDirectory(relativePath))
        if let exe = CommandLine.arguments.first {
            let dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            out.append(dir.appendingPathComponent(relativePath))
            out.append(dir.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(relativePath))
        }
        return out
    }

    /// `path` if given, else the first default location holding a config.json (the contrastive default, or
    /// with `generative` the generative one; VLM_MODEL_DIR / VLM_GENERATIVE_MODEL_DIR override).
    static func resolve(_ path: String?, generative: Bool = false) throws -> URL {
        if let path { return expand(path) }
        let environment = generative ? "VLM_GENERATIVE_MODEL_DIR" : "VLM_MODEL_DIR"
        let list = candidates(generative ? generativeRelativePath : relativePath, environment: environment)
        if let found = list.first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path) }) {
            return found
        }
        throw ValidationError("no --model given and no default \(generative ? "generative " : "")model found (looked in \(list.map(\.path).joined(separator: ", "))); pass --model DIR or set \(environment)")
    }
}

/// `vlm demo`: the embedded model on a few fresh scenes, with no arguments: zero-shot labels for each scene,
/// one text query ranked over all of them, printed and written as a self-contained HTML page.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Classify a few synthetic scenes and search them by text (embedded model, no arguments needed).")

    @Option(help: "Checkpoint directory (default: the embedded scenes model).") var model: String?
    @Option(help: "Scenes to generate.") var count = 8
    @Option(help: "Scene seed (the embedded model was trained on seed 0's train split; the demo uses the test split).") var seed: UInt64 = 2026
    @Option(help: "Text query (default: the caption of one of the generated multi-object scenes).") var query: String?
    @Option(help: "HTML output file.") var output = "vlm-demo.html"
    @Option(help: "Kernel threads (default: all cores).") var threads: Int?
    @Option(name: .customLong("vlm-model"), help: "Generative checkpoint that captions each scene and answers a question about it (default: the embedded scenes VLM when present).")
    var vlmModel: String?

    func run() throws {
        try guarded {
            if let threads, threads > 0 { Kernels.threads = threads }
            let dir = try DefaultModel.resolve(model)
            let generative = try vlmModel.map { try DefaultModel.resolve($0, generative: true) } ?? (try? DefaultModel.resolve(nil, generative: true))
            let pipeline = try EmbeddingPipeline.load(directory: dir)
            let n = max(count, 2)
            let singles = try SceneDataset.generate(count: n / 2, seed: seed, split: .test, kind: .single)
            let multis = try SceneDataset.generate(count: n - n / 2, seed: seed, split: .test, kind: .multi, start: n)
            let scenes = singles + multis
            let images = try scenes.map { try $0.image.rgbImage() }
            let labels = SceneVocabulary.allTypes.map(\.name)
            let captions = scenes.map(\.text.caption)
            let imageEmb = try pipeline.embed(images: images)
            let captionEmb = try pipeline.embed(texts: captions)
            let text = query ?? multis.first?.text.caption ?? captions[0]
            guard let queryEmb = try pipeline.embed(texts: [text]).first else { throw ValidationError("empty query") }
            let queryScores = imageEmb.map { EvalMetrics.dot($0, queryEmb) }
            let ranking = queryScores.indices.sorted { queryScores[$0] > queryScores[$1] }

            var cards: [DemoCard] = []
            print("model: \(dir.path)")
            let speaker = try generative.map { try GenerativePipeline.load(directory: $0) }
            if let generative { print("generative model: \(generative.path)") }
            for (i, scene) in scenes.enumerated() {
                var card = DemoCard(index: i, truth: scene.text.caption, png: try ImageEncoder.png(width: images[i].width, height: images[i].height, rgb: images[i].pixels))
                if scene.scene.kind == .single {
                    card.title = "zero-shot (\(labels.count) classes)"
                    card.scores = try pipeline.classify(image: images[i], labels: labels, template: "a {}").prefix(3).map { ($0.label, $0.probability) }
                } else {
                    card.title = "best caption among the \(scenes.count) scenes"
                    card.scores = ZeroShot.scores(image: imageEmb[i], labels: captions, texts: captionEmb, scoring: pipeline.scoring)
                        .prefix(3).map { ($0.label, $0.probability) }
                }
                card.queryRank = (ranking.firstIndex(of: i) ?? 0) + 1
                card.queryScore = queryScores[i]
                let mark = card.scores.first?.0 == (scene.text.label ?? scene.text.caption) ? "ok " : "   "
                print("\(mark)scene \(i) [\(scene.text.label ?? scene.text.caption)] -> " + card.scores.map { "\($0.0) \(String(format: "%.0f%%", $0.1 * 100))" }.joined(separator: ", "))
                if let speaker { try card.speak(speaker, scene: scene, image: images[i]) }
                cards.append(card)
            }
            print("query \"\(text)\": " + ranking.prefix(3).map { "scene \($0) (\(String(format: "%.3f", queryScores[$0])))" }.joined(separator: ", "))
            let url = expand(output)
            try writeFile(Data(DemoCard.html(cards: cards, query: text, ranking: ranking, model: dir.path).utf8), url)
            print("wrote \(url.path)")
        }
    }
}

struct DemoCard {
    var index: Int
    var truth: String
    var png: Data
    var title = ""
    var scores: [(String, Float)] = []
    var queryRank = 0
    var queryScore: Float = 0
    /// The generative model's caption and (question, answer, expected) turns; boxes in 0...1 for "where" answers.
    var caption: String?
    var turns: [(String, String, String)] = []
    var boxes: [LocationTokens.Box] = []

    /// Greedy caption plus a "where" question (when the scene has a one-of-a-kind object) and one other question.
    mutating func speak(_ pipeline: GenerativePipeline, scene: GeneratedScene, image: RGBImage) throws {
        var options = SamplingOptions()
        options.maxTokens = 24
        func ask(_ prompt: String) throws -> String {
            try pipeline.generate(messages: [ChatMessage(role: "user", parts: [ChatContentPart(type: "image"), .text(prompt)])],
                                  images: [image], options: options).text.trimmingCharacters(in: .whitespaces)
        }
        caption = try ask(SceneVLM.captionPrompt)
        print("   caption: \(caption ?? "")")
        var questions = scene.text.questions.prefix(1).map { ($0.question, $0.answer) }
        if let q = SceneGrounding.locateQuestions(scene.scene).first {
            questions.append((q.question, LocationTokens.encode(q.box) + " " + q.label))
        }
        for (question, expected) in questions {
            let answer = try ask(question)
            boxes += LocationTokens.parse(answer, width: 1, height: 1)
            turns.append((question, LocationTokens.stripped(answer), LocationTokens.stripped(expected)))
            print("   \(question) -> \(answer)")
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func html(cards: [DemoCard], query: String, ranking: [Int], model: String) -> String {
        var out = """
        <!doctype html><html><head><meta charset="utf-8"><title>SwiftVLM demo</title><style>
        body{font-family:sans-serif;margin:24px;color:#222} .grid{display:flex;flex-wrap:wrap;gap:16px}
        .card{border:1px solid #ccc;border-radius:8px;padding:10px;width:230px} img{width:192px;height:192px;image-rendering:pixelated;display:block;margin:auto}
        .truth{font-weight:bold;margin:6px 0} .bar{background:#dde6f5;height:6px;margin-bottom:4px} .top{outline:3px solid #2a7}
        td{padding:2px 8px}</style></head><body>
        <h1>SwiftVLM demo</h1><p>Model: <code>\(escape(model))</code></p>
        <h2>Text query: &ldquo;\(escape(query))&rdquo;</h2><table><tr><th>rank</th><th>scene</th><th>cosine</th></tr>
        """
        for (r, i) in ranking.enumerated() { out += "<tr><td>\(r + 1)</td><td>#\(i) \(escape(cards[i].truth))</td><td>\(String(format: "%.3f", cards[i].queryScore))</td></tr>" }
        out += "</table><h2>Scenes</h2><div class=\"grid\">"
        for c in cards {
            out += "<div class=\"card\(c.queryRank == 1 ? " top" : "")\"><div style=\"position:relative;width:192px;margin:auto\">"
            out += "<img alt=\"scene \(c.index)\" src=\"data:image/png;base64,\(c.png.base64EncodedString())\">"
            for b in c.boxes {
                out += String(format: "<div title=\"%@\" style=\"position:absolute;left:%.1fpx;top:%.1fpx;width:%.1fpx;height:%.1fpx;border:2px solid #e0f;box-sizing:border-box\"></div>",
                              escape(b.label), b.x1 * 192, b.y1 * 192, max(0, b.x2 - b.x1) * 192, max(0, b.y2 - b.y1) * 192)
            }
            out += "</div>"
            if let caption = c.caption { out += "<div><i>says:</i> \(escape(caption))</div>" }
            for (q, a, expected) in c.turns {
                out += "<div><i>\(escape(q))</i> \(escape(a))\(a == expected ? " &#10003;" : " (truth: \(escape(expected)))")</div>"
            }
            out += "<div class=\"truth\">#\(c.index): \(escape(c.truth))</div><div>\(escape(c.title))</div>"
            for (label, p) in c.scores {
                out += "<div>\(escape(label)) &mdash; \(String(format: "%.1f%%", p * 100))</div><div class=\"bar\" style=\"width:\(Int(p * 200))px\"></div>"
            }
            out += "<div>query rank \(c.queryRank), cosine \(String(format: "%.3f", c.queryScore))</div></div>"
        }
        return out + "</div></body></html>\n"
    }
}
